"""The stored error classes: one list, spelled once, never renamed."""

from __future__ import annotations

import ast
from pathlib import Path

from siliconbench.core.outcomes import ErrorClass

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "siliconbench"


def test_the_stored_strings_are_the_ones_already_in_stores():
    assert {c.value for c in ErrorClass} == {
        "connect", "timeout", "reset", "disconnected", "protocol_error", "http_status", "malformed_chunk",
        "server_error_event", "truncated", "overrun", "worker_crashed"}


def _hand_spelled_error_classes(path: Path) -> list[str]:
    """`error_class = "..."` or `error_class="..."` with a non-empty literal, as file:line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.keyword) and node.arg == "error_class":
            value = node.value
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not any(getattr(t, "id", getattr(t, "attr", None)) == "error_class" for t in targets):
                continue
            value = node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_every_producer_takes_its_error_class_from_the_enum():
    spelled = [hit for path in sorted(PACKAGE.rglob("*.py")) if "telemetry" not in path.parts
               for hit in _hand_spelled_error_classes(path)]
    assert spelled == [], "use siliconbench.core.outcomes.ErrorClass"

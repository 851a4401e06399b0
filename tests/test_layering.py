"""The import contract: the agent and the collector are separate deployables that share only the core.

- `siliconbench.agent` never imports `siliconbench.collector`, and the other way round;
- `siliconbench.core` imports neither;
- only `siliconbench.core.wire` and `siliconbench.core.rpc` import the generated bindings.

Read from every module's source (every import, also those inside functions), and checked once more at run
time: importing the collector's command line loads no agent module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "siliconbench"
BINDINGS = "siliconbench.telemetry"
WIRE_MODULES = {"siliconbench.core.wire", "siliconbench.core.rpc"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))
           if BINDINGS.replace(".", "/") not in p.as_posix()}


def _importers(of: str, within: str) -> list[str]:
    return sorted(m for m, imports in MODULES.items() if (m == within or m.startswith(within + "."))
                  and any(i == of or i.startswith(of + ".") for i in imports))


def test_the_contract_sees_every_package():
    assert {m.split(".")[1] for m in MODULES if m.count(".")} >= {"agent", "collector", "core"}


@pytest.mark.parametrize("importer,forbidden", [
    ("siliconbench.agent", "siliconbench.collector"),
    ("siliconbench.collector", "siliconbench.agent"),
    ("siliconbench.core", "siliconbench.agent"),
    ("siliconbench.core", "siliconbench.collector"),
])
def test_deployables_import_only_the_core(importer, forbidden):
    assert _importers(forbidden, importer) == []


def test_only_the_wire_modules_import_the_generated_bindings():
    assert set(_importers(BINDINGS, "siliconbench")) == WIRE_MODULES


def test_the_collector_command_line_loads_no_agent_code():
    probe = ("import sys, siliconbench.collector.cli, siliconbench.collector.server; "
             "print(sorted(m for m in sys.modules if m.startswith('siliconbench.agent')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"

"""The report side's modules: each one job and small, and none reaching into another's private names
(renderers read the model's public records and tables)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import siliconbench.collector.figures
import siliconbench.collector.reports
import siliconbench.collector.rollups

MODULES = sorted([*Path(siliconbench.collector.reports.__file__).parent.glob("*.py"),
                  Path(siliconbench.collector.figures.__file__), Path(siliconbench.collector.rollups.__file__)])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_report_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_report_module_uses_another_modules_private_names(path):
    tree = ast.parse(path.read_text())
    modules = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and (node.module or "").startswith("siliconbench") for alias in node.names}
    private_imports = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                       for alias in node.names if alias.name.startswith("_")]
    private_reads = [f"{node.value.id}.{node.attr}" for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                     and isinstance(node.value, ast.Name) and node.value.id in modules and node.attr.startswith("_")]
    assert private_imports == [] and private_reads == []

"""The import contract: the agent and the collector are separate deployables that share only the core.

- `siliconbench.agent` never imports `siliconbench.collector`, and the other way round;
- `siliconbench.core` imports neither;
- `siliconbench.bench` (one node in one command) is the one package that composes both, and none of
  agent, collector or core imports it;
- only `siliconbench.core.wire` and `siliconbench.core.rpc` import the generated bindings.

Read from every module's source: every import, also those inside functions, relative ones resolved against
the module's package, and dynamic ones (`importlib.import_module("...")`, `__import__("...")`), whose name
must be a literal the contract can read. Checked once more at run time: importing every module of a
package, in a fresh interpreter, loads no module of a package it must not import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "siliconbench"
BINDINGS = "siliconbench.telemetry"
WIRE_MODULES = {"siliconbench.core.wire", "siliconbench.core.rpc"}
DYNAMIC = {"import_module", "__import__"}
FORBIDDEN = [  # importer, what it must never load
    ("siliconbench.agent", "siliconbench.collector"),
    ("siliconbench.collector", "siliconbench.agent"),
    ("siliconbench.core", "siliconbench.agent"),
    ("siliconbench.core", "siliconbench.collector"),
    ("siliconbench.agent", "siliconbench.bench"),
    ("siliconbench.collector", "siliconbench.bench"),
    ("siliconbench.core", "siliconbench.bench"),
]
COMPOSER = "siliconbench.bench"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolved(name: str, level: int, package: str) -> str:
    """`from ..x import y` in a module of `package` (level 2, name 'x') -> the absolute module name."""
    if level == 0:
        return name
    base = package.split(".")[: len(package.split(".")) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _called(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")


def imports_of(source: str, module: str, is_package: bool) -> tuple[set[str], list[str]]:
    """The absolute names `module`'s source imports, and the dynamic imports whose name is not a literal."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    unreadable: list[str] = []
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolved(node.module or "", node.level, package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and _called(node) in DYNAMIC:
            first, given = (node.args + [None, None])[:2]  # import_module(name, package)
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                level = len(first.value) - len(first.value.lstrip("."))
                against = given.value if isinstance(given, ast.Constant) and _called(node) == "import_module" else package
                names.add(_resolved(first.value.lstrip("."), level, str(against)))
            else:
                unreadable.append(f"{module}:{node.lineno}")
    return names, unreadable


def _read(path: Path) -> tuple[set[str], list[str]]:
    return imports_of(path.read_text(), _module_name(path), path.name == "__init__.py")


SOURCES = {_module_name(p): _read(p) for p in sorted(PACKAGE.rglob("*.py"))
           if BINDINGS.replace(".", "/") not in p.as_posix()}
MODULES = {module: names for module, (names, _) in SOURCES.items()}


def _importers(of: str, within: str) -> list[str]:
    return sorted(m for m, imports in MODULES.items() if (m == within or m.startswith(within + "."))
                  and any(i == of or i.startswith(of + ".") for i in imports))


def test_the_contract_sees_every_package():
    assert {m.split(".")[1] for m in MODULES if m.count(".")} >= {"agent", "bench", "collector", "core"}


@pytest.mark.parametrize("importer,forbidden", FORBIDDEN)
def test_deployables_import_only_the_core(importer, forbidden):
    assert _importers(forbidden, importer) == []


def test_only_the_composing_package_imports_both_deployables():
    both = set(_importers("siliconbench.agent", "siliconbench")) & set(_importers("siliconbench.collector", "siliconbench"))
    assert both and all(m == COMPOSER or m.startswith(COMPOSER + ".") for m in both)


def test_every_dynamic_import_names_its_module_as_a_literal():
    assert [where for _, unreadable in SOURCES.values() for where in unreadable] == []


def test_only_the_wire_modules_import_the_generated_bindings():
    assert set(_importers(BINDINGS, "siliconbench")) == WIRE_MODULES


@pytest.mark.parametrize("source, module, is_package, expected", [
    ("from ..collector import errors", "siliconbench.core.ids", False,
     {"siliconbench.collector", "siliconbench.collector.errors"}),
    ("from . import wire", "siliconbench.core", True, {"siliconbench.core", "siliconbench.core.wire"}),
    ("from .sim.profile import SimProfile", "siliconbench.agent.options", False,
     {"siliconbench.agent.sim.profile", "siliconbench.agent.sim.profile.SimProfile"}),
    ("import importlib\nimportlib.import_module('siliconbench.agent.errors')", "siliconbench.collector.export", False,
     {"importlib", "siliconbench.agent.errors"}),
    ("def f():\n    return __import__('siliconbench.collector')", "siliconbench.core.ids", False,
     {"siliconbench.collector"}),
    ("from importlib import import_module\nimport_module('.sampler', 'siliconbench.agent')",
     "siliconbench.collector.export", False, {"importlib", "importlib.import_module", "siliconbench.agent.sampler"}),
])
def test_relative_and_dynamic_imports_are_read_as_absolute_names(source, module, is_package, expected):
    assert imports_of(source, module, is_package) == (expected, [])


def test_a_dynamic_import_of_a_computed_name_is_unreadable():
    assert imports_of("import importlib\nimportlib.import_module(name)", "siliconbench.core.ids", False)[1] == [
        "siliconbench.core.ids:2"]


LOAD_ALL = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if not found.name.endswith(".__main__"):  # runs the program
        importlib.import_module(found.name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    """Per package: every module in sys.modules after importing each of its modules, in a fresh interpreter."""
    found = {}
    for package in sorted({importer for importer, _ in FORBIDDEN}):
        out = subprocess.run([sys.executable, "-c", LOAD_ALL, package], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        found[package] = json.loads(out.stdout)
    return found


@pytest.mark.parametrize("importer,forbidden", FORBIDDEN)
def test_importing_every_module_of_a_package_loads_none_it_must_not(loaded, importer, forbidden):
    assert [m for m in loaded[importer] if m == forbidden or m.startswith(forbidden + ".")] == []
    assert any(m.startswith(importer + ".") for m in loaded[importer])  # the probe did import the package


def _imported_module(name: str) -> str | None:
    """The module an imported name lives in: the longest module name it starts with."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_no_module_imports_itself_back_through_others():
    """No import cycle, deferred imports included (a module's own parent packages aside: Python runs those
    first whatever the order)."""
    edges = {m: {t for i in names if (t := _imported_module(i)) and t != m and not m.startswith(t + ".")}
             for m, names in MODULES.items()}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str], done: set[str]) -> None:
        for target in edges[module]:
            if target in path:
                cycles.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, path + [target], done)
        done.add(module)

    finished: set[str] = set()
    for module in sorted(edges):
        if module not in finished:
            visit(module, [module], finished)
    assert cycles == []


def test_no_module_is_over_400_lines_but_the_schema_s_declarations():
    declarative = {"siliconbench.collector.schema"}  # one declaration per table: a table of facts
    long = {m: n for p in PACKAGE.rglob("*.py") if BINDINGS.replace(".", "/") not in p.as_posix()
            and (m := _module_name(p)) not in declarative and (n := len(p.read_text().splitlines())) > 400}
    assert long == {}

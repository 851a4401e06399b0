"""The read side (reports, run state, lifecycle) never loads the control plane: importing any of its
modules, in a fresh interpreter, leaves gRPC unloaded. Reports then run where only the store is
reachable, and a change that routes them through the gRPC servicer shows up here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

COLLECTOR = Path(__file__).resolve().parents[2] / "src" / "siliconbench" / "collector"
READ_SIDE = ["siliconbench.collector.runs", "siliconbench.collector.lifecycle", "siliconbench.collector.reporting",
             "siliconbench.collector.reports",
             *(f"siliconbench.collector.reports.{p.stem}" for p in sorted((COLLECTOR / "reports").glob("*.py"))
               if p.stem != "__init__")]


def test_the_read_side_list_names_the_report_modules():
    assert "siliconbench.collector.reports.fleet" in READ_SIDE and "siliconbench.collector.reports.json_report" in READ_SIDE


PROBE = """
import importlib, sys
for module in sys.argv[1:]:
    importlib.import_module(module)
    if "grpc" in sys.modules:
        print(module)
        break
"""


def test_no_read_side_module_loads_grpc():
    out = subprocess.run([sys.executable, "-c", PROBE, *READ_SIDE], capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == "", f"importing {out.stdout.strip()} loaded grpc"

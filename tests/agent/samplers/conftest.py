"""Fixtures for the sampler tests: the compiled NVML stub, a driver that runs NVML scenarios in a
subprocess each, and the fake neuron-monitor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent.samplers.nvml_stub import build_stub

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FAKE_NEURON_MONITOR = HERE / "fake_neuron_monitor"
INF2_FIXTURE = HERE / "fixtures" / "monitor-sample.json"
TRN2_FIXTURE = HERE / "fixtures" / "monitor-sample-trn2.json"


@dataclass
class NvmlRun:
    results: list[Any]
    logs: list[list[str]]

    def messages(self, containing: str) -> list[str]:
        return [m for _, _, m in self.logs if containing in m]


@pytest.fixture(scope="session")
def nvml_stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stub libnvidia-ml.so.1, compiled with gcc once per test session."""
    return build_stub(tmp_path_factory.mktemp("nvml-stub"))


@pytest.fixture(scope="session")
def nvml_stub_without_energy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stub built like an older driver: no nvmlDeviceGetTotalEnergyConsumption symbol."""
    return build_stub(tmp_path_factory.mktemp("nvml-stub-old"), without_energy=True)


@pytest.fixture
def run_nvml(tmp_path: Path, nvml_stub: Path) -> Callable[..., NvmlRun]:
    """Run a scenario (a list of [action, argument] steps, see nvml_driver.py) in a fresh process."""

    def run(steps: list[list[Any]], lib: Path | None = nvml_stub) -> NvmlRun:
        env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.agent.samplers.nvml_driver", str(lib) if lib else "", str(tmp_path / "script")],
            input=json.dumps(steps),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        return NvmlRun(results=out["results"], logs=out["logs"])

    return run


@pytest.fixture
def fake_monitor_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    """Configure the fake neuron-monitor (it inherits our environment) for one test."""
    for key in list(os.environ):
        if key.startswith("FAKE_NEURON_"):
            monkeypatch.delenv(key)

    def configure(**settings: object) -> None:
        for key, value in settings.items():
            monkeypatch.setenv(f"FAKE_NEURON_{key.upper()}", str(value))

    return configure

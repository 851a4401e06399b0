"""Against a real vLLM (CPU build) serving a tiny model with two LoRA adapters built here: a three-model mix
through the agent and the collector, each request stored under the model the mix drew for it, per-model
figures and each model's first request in the report, and vLLM's own lora_requests_info kept per step.
Marker `vllm` (slow: its own server start, ~70 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from siliconbench.collector.demo import run_demo
from siliconbench.core.plan import ModelMix, Plan
from tests.vllm.conftest import MODEL, build_model, running_vllm, vllm_python
from tests.vllm.test_real_vllm import collector_sql

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

ADAPTERS = ("sql-lora", "chat-lora")
MIX = ModelMix(names=(MODEL, *ADAPTERS), zipf=1.0)
REQUESTS = 12


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    py = vllm_python()
    model_dir = tmp_path_factory.mktemp("tiny-lora-model")
    build_model(py, model_dir)
    adapter = model_dir / "adapter"
    subprocess.run([py, str(Path(__file__).parent / "build_lora_adapter.py"), str(model_dir), str(adapter)],
                   check=True, capture_output=True, timeout=300)
    store = f"chdb://{tmp_path_factory.mktemp('lora-store')}/data"
    plan = Plan(endpoint="chat", concurrency=(2,), requests_per_step=REQUESTS, repetitions=1, warmup_requests=1,
                input_tokens=32, output_tokens=16, seed=3, models=MIX)
    with running_vllm(py, model_dir, "--enable-lora", "--max-lora-rank", "8", "--max-loras", "2", "--lora-modules",
                      *(f"{name}={adapter}" for name in ADAPTERS)) as url:
        run_id = run_demo(store, url, plan, [], [])
    return store, run_id


def test_each_request_is_stored_under_the_model_the_mix_drew_and_succeeded(lora_run):
    store, run_id = lora_run
    stored = {request: (model, ok) for request, model, ok in collector_sql(
        store, f"SELECT request_id, model, error_class = '' FROM siliconbench.requests WHERE run_id = '{run_id}'")}
    assert stored == {f"{run_id}/0/{i}": (MIX.pick(3, 0, i), "1") for i in range(REQUESTS)}


def test_the_report_splits_by_model_and_shows_each_models_first_request(lora_run):
    store, run_id = lora_run
    done = subprocess.run([sys.executable, "-m", "siliconbench.collector", "report", "--run", run_id, "--format",
                           "json", "--store", store], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    tables = {t["key"]: t for t in json.loads(done.stdout)["tables"]}
    answers = tables["answers"]
    split = {row[answers["columns"].index("model")]: row[answers["columns"].index("requests")]
             for row in answers["rows"]}
    assert split == Counter(MIX.pick(3, 0, i) for i in range(REQUESTS))
    first = tables["first_requests"]
    assert {row[first["columns"].index("model")] for row in first["rows"]} == set(MIX.names)


def test_the_servers_lora_metrics_name_the_adapters_it_ran(lora_run):
    store, run_id = lora_run
    labels = [row[0] for row in collector_sql(store, "SELECT labels FROM siliconbench.server_metrics WHERE run_id = "
                                                     f"'{run_id}' AND name = 'vllm:lora_requests_info'")]
    assert any(all(name in text for name in ADAPTERS) for text in labels), labels

"""/metrics: vLLM V1 names and labels, counters that follow the traffic."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from siliconbench.agent.scrape import CONFIG_NAMES, CURRENT_NAMES, parse_metrics
from siliconbench.agent.sim import SimProfile

from .conftest import MODEL
from .sse import read_events

SERIES = [
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
    "vllm:time_to_first_token_seconds_bucket", "vllm:time_to_first_token_seconds_sum",
    "vllm:time_to_first_token_seconds_count", "vllm:inter_token_latency_seconds_bucket",
    "vllm:inter_token_latency_seconds_sum", "vllm:inter_token_latency_seconds_count",
    "vllm:e2e_request_latency_seconds_bucket", "vllm:e2e_request_latency_seconds_sum",
    "vllm:e2e_request_latency_seconds_count",
]


async def scrape(client) -> dict[str, float]:
    """`name{labels}` -> value."""
    text = await (await client.get("/metrics")).text()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def value(samples: dict[str, float], name: str, **labels: str) -> float:
    want = {"model_name": MODEL, **labels}
    for key, v in samples.items():
        metric, _, rest = key.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if metric == name and all(found.get(k) == w for k, w in want.items()):
            return v
    raise AssertionError(f"{name}{labels} not exposed")


async def test_metrics_expose_vllm_v1_series_with_model_name_label(sim):
    samples = await scrape(sim)
    for name in SERIES:
        assert any(k.startswith(name + "{") and f'model_name="{MODEL}"' in k for k in samples), name


async def test_token_and_request_counters_advance_with_traffic(sim):
    await read_events(await sim.post("/v1/completions", json={
        "model": MODEL, "prompt": [5] * 7, "max_tokens": 3, "stream": True}))
    await sim.post("/v1/completions", json={"model": MODEL, "prompt": [5] * 2, "max_tokens": 4,
                                            "sim_stop_after": 2})
    samples = await scrape(sim)
    assert value(samples, "vllm:prompt_tokens_total") == 9
    assert value(samples, "vllm:generation_tokens_total") == 5
    assert value(samples, "vllm:request_success_total", finished_reason="length") == 1
    assert value(samples, "vllm:request_success_total", finished_reason="stop") == 1
    assert value(samples, "vllm:time_to_first_token_seconds_count") == 2
    assert value(samples, "vllm:inter_token_latency_seconds_count") == 2 + 1
    assert value(samples, "vllm:e2e_request_latency_seconds_count") == 2
    assert value(samples, "vllm:time_to_first_token_seconds_bucket", le="+Inf") == 2


async def test_running_gauge_and_kv_usage_reflect_a_stream_in_flight(start_sim):
    client = await start_sim(SimProfile(ttft_ms=1, itl_ms=20))
    resp = await client.post("/v1/completions", json={"model": MODEL, "prompt": [5] * 100, "max_tokens": 50,
                                                      "stream": True})
    await resp.content.readline()  # first chunk is out: the request is running
    during = await scrape(client)
    resp.close()
    assert value(during, "vllm:num_requests_running") == 1
    assert value(during, "vllm:kv_cache_usage_perc") > 0
    # the server notices the disconnect at its next write (<= 20 ms); /metrics has no event to await
    deadline = time.monotonic() + 30
    while value(after := await scrape(client), "vllm:num_requests_running") != 0 and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert value(after, "vllm:num_requests_running") == 0
    assert value(after, "vllm:request_success_total", finished_reason="abort") == 1


def sample_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_every_series_the_simulator_exposes_is_one_vllm_exposes_with_the_same_labels(sim):
    """The page is Prometheus text (prometheus-client reads it back), and a real vLLM 0.32 page has every
    series of it, by name and label names."""
    resp = await sim.get("/metrics")
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    page = await resp.text()
    real = (Path(__file__).parents[2] / "fixtures" / "vllm-0.32-metrics.txt").read_text()
    assert sample_names(page) <= sample_names(real), sorted(sample_names(page) - sample_names(real))
    real_labels = {(s.name, frozenset(s.labels)) for f in text_string_to_metric_families(real) for s in f.samples}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            assert (sample.name, frozenset(sample.labels)) in real_labels, sample
    assert {name for name, _ in parse_metrics(page)} <= CURRENT_NAMES | CONFIG_NAMES


async def test_a_model_name_with_quotes_and_backslashes_is_escaped(start_sim):
    client = await start_sim(SimProfile(model='od"d\\name'))
    samples = parse_metrics(await (await client.get("/metrics")).text())
    assert samples[("vllm:num_requests_running", 'engine="0",model_name="od\\"d\\\\name"')] == 0

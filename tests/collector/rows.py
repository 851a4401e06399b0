"""Rows for the tables, built with known values, for rollup and report tests (inserted through Store.insert)."""

from __future__ import annotations

import datetime as dt

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def request(run_id: str, agent: str, i: int, *, step=0, concurrency=1, repetition=0, start_s=0.0, ttft_ms=100.0,
            gaps_ms=(10.0, 10.0, 10.0), tokens=None, prompt=512, error="", tail_ms=0.0) -> list:
    tokens = list(tokens or [1] * (len(gaps_ms) + 1))
    offsets = [int(ttft_ms * 1e6)]
    for g in gaps_ms:
        offsets.append(offsets[-1] + int(g * 1e6))
    e2e = offsets[-1] + int(tail_ms * 1e6)
    if error:
        offsets, tokens, ttft = [], [], -1
    else:
        ttft = offsets[0]
    return [run_id, agent, f"{run_id}/{step}/{i}", step, concurrency, repetition, at(start_s), ttft, e2e, offsets,
            tokens, prompt, sum(tokens), False, "length" if not error else "", 200 if not error else 500, error,
            "boom" if error else "", 0]


def run(run_id: str, agent: str, scenario: str = "", simulated: bool = False) -> list:
    return [run_id, agent, "start", T0, "http://vllm:8000", "meta-llama/Llama-4-Scout-17B-16E", simulated, "0.9.0",
            scenario, "{}"]


def node(agent: str, instance_type: str, kind: str = "nvidia", count: int = 8, model: str = "H100") -> list:
    return [agent, agent, instance_type, kind, count, model, "0.1.0", "550.0", T0]


def step(run_id: str, agent: str, step_no: int, concurrency: int, repetition: int, start_s: float, end_s: float) -> list:
    return [run_id, agent, step_no, concurrency, repetition, at(start_s), at(end_s), 0, "closed", 0.0, 0.0, 0.0, False]


def sample(run_id: str, agent: str, t_s: float, source: str, device: str, metric: str, value: float) -> list:
    return [run_id, agent, at(t_s), source, device, metric, value]

"""Searches stored as the collector stores them (nodes, runs, steps, search_probes, searches; for a
concurrency search its boundary probe's requests), built with known answers, for plan tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from siliconbench.collector.schema import NODES, RUNS, SEARCH_PROBES, SEARCHES, STEPS
from siliconbench.collector.store import Store
from tests.collector import rows

SLO = "ttft_p99_ms<=500,itl_p99_ms<=50"


def store_search(store: Store, instance_type: str, *, control: str = "rate", boundary: float = 10.0,
                 requests: int = 100_000, seconds: float = 600.0, e2e_s: float = 2.0, slo: str = SLO,
                 bounds: tuple[float, ...] = (250.0, 40.0), input_tokens: int = 512, output_tokens: int = 128,
                 scenario: str = "", model: str = "m", simulated: bool = False, found: bool = True,
                 verified: bool = True, started_s: float = 0.0, search_id: str = "", node: str = "node") -> str:
    """One node's finished search; returns its id. A rate search's capacity is `boundary` req/s; a
    concurrency search's is `boundary` streams ÷ `e2e_s` (its boundary probe's `requests` rows all last
    `e2e_s`, each with `output_tokens` output tokens in 4 chunks). Another `node` of a `search_id` already
    stored adds that node to it (a fleet's search)."""
    sid = search_id or f"plan-{uuid.uuid4().hex[:10]}"
    agent = f"{sid}-{node}"
    started = rows.at(started_s)
    keys = [part.split("<=")[0] for part in slo.split(",")]
    limits = [float(part.split("<=")[1]) for part in slo.split(",")]
    plan = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    store.insert("nodes", [NODES.row(agent_id=agent, node_name=agent, instance_type=instance_type,
                                     accelerator_kind="nvidia", accelerator_count=8, accelerator_model="H100",
                                     agent_version="0.1.0", driver_version="550.0", seen_at=started)], f"{agent}/n")
    store.insert("runs", [RUNS.row(run_id=sid, agent_id=agent, phase="start", time=started, target_url="http://vllm:8000",
                                   model=model, simulated=simulated, target_version="0.9.0", scenario=scenario,
                                   config_json=json.dumps(plan), outcome="", outcome_detail="", requests_sent=0,
                                   **rows.NO_TRACE_RUN)],
                 f"{agent}/r")
    store.insert("steps", [STEPS.row(run_id=sid, agent_id=agent, step=0, concurrency=int(boundary) if control ==
                                     "concurrency" else 0, repetition=0, start_time=started,
                                     end_time=started + dt.timedelta(seconds=seconds), requests=requests,
                                     mode="closed" if control == "concurrency" else "poisson",
                                     rate_rps=0.0 if control == "concurrency" else boundary, agent_cpu_pct=0.0,
                                     loop_lag_p99_ms=0.0, client_saturated=False, block_size=0, **rows.STEP_OK,
                                     **rows.NO_TRACE_STEP)], f"{agent}/s")
    store.insert("search_probes", [SEARCH_PROBES.row(
        run_id=sid, agent_id=agent, step=0, search_id=sid, probe=0, value=boundary, phase="verify",
        verdict="pass" if found else "fail", reason="", requests=requests, slo_keys=keys, slo_limits=limits,
        slo_points=list(bounds), slo_bounds=list(bounds), readings_from="collector")], f"{agent}/p")
    store.insert("searches", [SEARCHES.row(
        run_id=sid, agent_id=agent, search_id=sid, control=control, slo=slo, method="bracket", tolerance=0.05,
        found=found, boundary=boundary if found else 0.0, verified=verified, binding=keys[0], slo_keys=keys,
        slo_bounds=list(bounds), headroom=[1 - b / lim for b, lim in zip(bounds, limits)],
        output_tps=boundary * output_tokens, rps=boundary, probes=1)], f"{agent}/a")
    if control == "concurrency" and found:
        tail_ms = e2e_s * 1000 - 130
        store.insert("requests", [rows.request(sid, agent, i, step=0, start_s=started_s, tail_ms=tail_ms,
                                               tokens=[output_tokens - 3, 1, 1, 1])
                                  for i in range(requests)], f"{agent}/q")
    return sid


def price_file(path: Path, prices: dict[str, float]) -> Path:
    path.write_text("instance_type,region,kind,usd_per_hour,currency,as_of,source\n"
                    + "".join(f"{t},us-east-1,on_demand,{p},USD,2026-03,test list\n" for t, p in prices.items()),
                    encoding="utf-8")
    return path

"""A run of every load mode, as the agent would send it, stored through the collector's real ingest
(ingest.tables_of -> Store.insert_arrow, as the gRPC service does): closed-loop concurrency steps,
uncapped and capped open-loop rate steps, an explicit and a duration-bounded step, two repetitions.

Every request: TTFT 40 ms, then 6 one-token chunks 10 ms apart (E2E 100 ms, 7 output tokens), so
each point's expected figures follow from its schedule (see POINTS).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from siliconbench.collector.ingest import tables_of
from siliconbench.collector.store import Store
from siliconbench.core.plan import StepSpec, plan_from_mapping
from siliconbench.core.wire import pb

TTFT_NS, GAP_NS, GAPS = 40_000_000, 10_000_000, 6
SERVER_ITL_S = 0.009  # the server's own inter-token latency, where its /metrics are scraped
E2E_S = (TTFT_NS + GAPS * GAP_NS) / 1e9


@dataclass(frozen=True)
class ModeStep:
    spec: StepSpec
    starts_s: tuple[float, ...]    # each request's send, relative to the step's start
    verdict: str = "ok"            # client-limited: sent 12 ms late at p99; node busy: loop lag 12 ms, sent on time


def _closed(concurrency: int, rounds: int) -> tuple[float, ...]:
    """`concurrency` streams, each sending its next request as its last ends (E2E 100 ms)."""
    return tuple(r * E2E_S for r in range(rounds) for _ in range(concurrency))


def _rate(rate: float, n: int) -> tuple[float, ...]:
    return tuple(i / rate for i in range(n))


PLAN = {"steps": [{"concurrency": 2, "requests": 4},
                  {"rate": 4, "arrival": "poisson", "requests": 8},
                  {"rate": 8, "arrival": "poisson", "requests": 8},
                  {"rate": 8, "arrival": "constant", "max_concurrency": 2, "requests": 8},
                  {"concurrency": 4, "duration_s": 1.0}],
        "input_tokens": 64, "output_tokens": 7, "repetitions": 2, "warmup_requests": 1}
STEPS = tuple(ModeStep(spec, starts, verdict) for spec, starts, verdict in zip(
    plan_from_mapping(PLAN, "load_modes").step_specs(),
    (_closed(2, 2), _rate(4, 8), _rate(8, 8), _rate(8, 8), _closed(4, 10)),
    ("ok", "node busy", "client-limited", "ok", "ok")))
LIMITED_POINT, BUSY_POINT = "poisson 8 req/s", "poisson 4 req/s"
LABELS = ("concurrency 2", "concurrency 4", "constant 8 req/s, cap 2", "poisson 4 req/s", "poisson 8 req/s")
HOST_CPU_PCT, NODE_CPU_PCT, SERVER_CPU_PCT, AGENT_CPU_PCT, LAG_MS, LATE_MS = 95.0, 97.0, 180.0, 4.0, 12.0, 12.5


def _request(run_id: str, step: int, i: int, spec: StepSpec, repetition: int, start_ns: int,
             asked: int) -> pb.RequestRecord:
    offsets = [TTFT_NS + g * GAP_NS for g in range(GAPS + 1)]
    return pb.RequestRecord(run_id=run_id, request_id=f"{run_id}/{step}/{i}", step=step, concurrency=spec.concurrency,
                            repetition=repetition, start_unix_ns=start_ns, ttft_ns=TTFT_NS, e2e_ns=offsets[-1],
                            chunk_offset_ns=offsets, chunk_tokens=[1] * len(offsets), prompt_tokens=64,
                            output_tokens=len(offsets), http_status=200, finish_reason="length",
                            dispatch_delay_ns=1_000_000 if spec.open_loop else 0, max_tokens=asked)


def _evidence(mode_step: ModeStep) -> dict:
    """The step event's verdict and evidence, as the agent states them (core/verdict.py)."""
    late = mode_step.verdict == "client-limited"
    return dict(verdict=mode_step.verdict, agent_cpu_pct=AGENT_CPU_PCT, agent_processes_cpu_pct=AGENT_CPU_PCT + 1,
                loop_lag_p99_ms=LAG_MS if mode_step.verdict == "node busy" else 0.5,
                client_delay_p99_ms=LATE_MS if late else 1.0,
                client_delay_share=LATE_MS * mode_step.spec.rate_rps / 1e3 if late else 0.01,
                node_cpu_pct=NODE_CPU_PCT, server_cpu_pct=SERVER_CPU_PCT, client_saturated=late)


def ingest(store: Store, agent: str, batch: pb.Batch) -> None:
    for table, columns in tables_of(batch, agent).items():
        store.insert_arrow(table, columns, f"{table}/{batch.batch_id}")


def store_run(store: Store, run_id: str, agent: str, scenario: str, *, drop_step_event: int | None = None,
              steps: int | None = None, outcome: str = "complete", detail: str = "", undelivered: int = 0,
              server_ttft_s: float | None = None, cache_hit_rate: float = 0.0, asked: int = GAPS + 1,
              **plan_changes: object) -> None:
    """Store the run as agent `agent` sends it. `drop_step_event`: that step's StepEvent never arrives
    (the run stopped inside it); `steps`: only the first so many steps ran; `server_ttft_s`: vLLM /metrics
    are scraped, the server counting every request and token, this TTFT and SERVER_ITL_S, its prefix cache serving `cache_hit_rate`; `outcome`, `detail`: its end
    event's; `undelivered`: request records the agent made but the collector never got; `asked`: the output
    tokens each request asked for (more than the 7 it returns: every one ended early);
    `plan_changes`: plan fields stated differently (the requests stay)."""
    t0 = time.time_ns() - 600 * 10**9
    plan = plan_from_mapping({**PLAN, **plan_changes}, "load_modes")
    batch = pb.Batch(seq=1, batch_id=f"{agent}/{run_id}/1")
    batch.runs.append(pb.RunEvent(run_id=run_id, phase=pb.PHASE_START, time_unix_ns=t0, target_url="http://vllm:8000",
                                  model="tiny", simulated=True, scenario=scenario, config_json=plan.to_json()))
    step, clock = 0, t0
    schedule = [(repetition, mode_step) for repetition in range(plan.repetitions) for mode_step in STEPS]
    for repetition, mode_step in schedule[:steps]:
        spec = mode_step.spec
        for i, start_s in enumerate(mode_step.starts_s):
            batch.requests.append(_request(run_id, step, i, spec, repetition, clock + int(start_s * 1e9), asked))
        end = clock + int((mode_step.starts_s[-1] + E2E_S) * 1e9)
        if step != drop_step_event:
            batch.steps.append(pb.StepEvent(
                run_id=run_id, step=step, concurrency=spec.concurrency, repetition=repetition, start_unix_ns=clock,
                end_unix_ns=end, requests=len(mode_step.starts_s), mode=spec.mode, rate_rps=spec.rate_rps,
                **_evidence(mode_step)))
        if server_ttft_s is not None:
            n = len(mode_step.starts_s)
            prompt = 64.0 * n
            for name, delta in (("vllm:generation_tokens_total", 7.0 * n),
                                ("vllm:request_success_total", float(n)), ("vllm:prompt_tokens_total", prompt),
                                ("vllm:time_to_first_token_seconds_sum", server_ttft_s * n),
                                ("vllm:time_to_first_token_seconds_count", float(n)),
                                ("vllm:inter_token_latency_seconds_sum", SERVER_ITL_S * GAPS * n),
                                ("vllm:inter_token_latency_seconds_count", float(GAPS * n)),
                                ("vllm:request_time_per_output_token_seconds_sum", SERVER_ITL_S * n),
                                ("vllm:request_time_per_output_token_seconds_count", float(n)),
                                ("vllm:e2e_request_latency_seconds_sum", (server_ttft_s + SERVER_ITL_S * GAPS) * n),
                                ("vllm:e2e_request_latency_seconds_count", float(n)),
                                ("vllm:prefix_cache_queries_total", prompt),
                                ("vllm:prefix_cache_hits_total", prompt * cache_hit_rate)):
                batch.server_metrics.append(pb.ServerMetric(run_id=run_id, step=step, name=name, start_value=1000.0,
                                                            end_value=1000.0 + delta))
        batch.samples.append(pb.DeviceSample(run_id=run_id, time_unix_ns=clock + 10**6, source="host",
                                             device="host", values={"cpu_util_pct": HOST_CPU_PCT}))
        step, clock = step + 1, end + 10**8
    batch.runs.append(pb.RunEvent(run_id=run_id, phase=pb.PHASE_END, time_unix_ns=clock, scenario=scenario,
                                  outcome=outcome, outcome_detail=detail,
                                  requests_sent=len(batch.requests) + undelivered))
    ingest(store, agent, batch)

"""Rows for the tables, built with known values, for rollup and report tests (inserted through Store.insert).

Each row is built by column name from the table's declaration (collector/schema.py), so a column added
to, or moved in, a table changes nothing here unless a test needs its value.
"""

from __future__ import annotations

import datetime as dt

from siliconbench.collector.schema import DEVICE_SAMPLES, NODES, REQUESTS, RUNS, STEPS

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
NO_TRACE_RUN = {"trace_file": "", "trace_bad_lines": 0}  # a run's start event that replayed no trace
# a step judged ok on no measured evidence, and one that replayed no trace
STEP_OK = {"client_delay_p99_ms": 0.0, "client_delay_share": 0.0, "agent_processes_cpu_pct": 0.0, "node_cpu_pct": 0.0,
           "server_cpu_pct": -1.0, "verdict": "ok"}
NO_TRACE_STEP = {"trace_format": "", "trace_block_size": 0, "trace_time_scale": 0.0, "trace_rate_scale": 0.0,
                 "trace_window": ""}


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def request(run_id: str, agent: str, i: int, *, step=0, concurrency=1, repetition=0, start_s=0.0, ttft_ms=100.0,
            gaps_ms=(10.0, 10.0, 10.0), tokens=None, prompt=512, error="", tail_ms=0.0, model="m", kinds=(),
            tool_calls=0, tool_calls_invalid=0, max_tokens=None) -> list:
    """One request row; `kinds` (0 answer, 1 reasoning, 2 tool call per chunk; none: all answers) also set
    the first offset of each kind, as the agent does; `max_tokens`: asked for (None: what came back)."""
    tokens = list(tokens or [1] * (len(gaps_ms) + 1))
    offsets = [int(ttft_ms * 1e6)]
    for g in gaps_ms:
        offsets.append(offsets[-1] + int(g * 1e6))
    e2e = offsets[-1] + int(tail_ms * 1e6)
    if error:
        offsets, tokens, ttft = [], [], -1
    else:
        ttft = offsets[0]
    return REQUESTS.row(run_id=run_id, agent_id=agent, request_id=f"{run_id}/{step}/{i}", step=step,
                        concurrency=concurrency, repetition=repetition, start_time=at(start_s), ttft_ns=ttft, e2e_ns=e2e,
                        chunk_offset_ns=offsets, chunk_tokens=tokens, prompt_tokens=prompt, output_tokens=sum(tokens),
                        tokens_counted=False, finish_reason="length" if not error else "",
                        http_status=200 if not error else 500, error_class=error,
                        error_message="boom" if error else "", dispatch_delay_ns=0, model=model,
                        chunk_kinds=list(kinds), tool_calls=tool_calls, tool_calls_invalid=tool_calls_invalid,
                        session_id="", turn=0, expected_cached_tokens=0, cached_tokens=-1, parent_session_id="",
                        agent_node="", agent_kind="", max_tokens=sum(tokens) if max_tokens is None else max_tokens,
                        trace_line=0, trace_offset_ns=0,
                        **_firsts(offsets, list(kinds) or [0] * len(offsets)))


def _firsts(offsets: list[int], kinds: list[int]) -> dict[str, int]:
    def first(kind: int) -> int:
        return next((o for o, k in zip(offsets, kinds) if k == kind), 0)
    return {"first_answer_ns": first(0), "first_reasoning_ns": first(1), "first_tool_call_ns": first(2)}


def run(run_id: str, agent: str, scenario: str = "", simulated: bool = False, phase: str = "start") -> list:
    return RUNS.row(run_id=run_id, agent_id=agent, phase=phase, time=T0, target_url="http://vllm:8000",
                    model="meta-llama/Llama-4-Scout-17B-16E", simulated=simulated, target_version="0.9.0",
                    scenario=scenario, config_json="{}", outcome="", outcome_detail="", requests_sent=0,
                    **NO_TRACE_RUN)


def node(agent: str, instance_type: str, kind: str = "nvidia", count: int = 8, model: str = "H100") -> list:
    return NODES.row(agent_id=agent, node_name=agent, instance_type=instance_type, accelerator_kind=kind,
                     accelerator_count=count, accelerator_model=model, agent_version="0.1.0", driver_version="550.0",
                     seen_at=T0)


def step(run_id: str, agent: str, step_no: int, concurrency: int, repetition: int, start_s: float, end_s: float) -> list:
    return STEPS.row(run_id=run_id, agent_id=agent, step=step_no, concurrency=concurrency, repetition=repetition,
                     start_time=at(start_s), end_time=at(end_s), requests=0, mode="closed", rate_rps=0.0,
                     agent_cpu_pct=0.0, loop_lag_p99_ms=0.0, client_saturated=False, block_size=0, **STEP_OK,
                     **NO_TRACE_STEP)


def sample(run_id: str, agent: str, t_s: float, source: str, device: str, metric: str, value: float) -> list:
    return DEVICE_SAMPLES.row(run_id=run_id, agent_id=agent, time=at(t_s), source=source, device=device, metric=metric,
                              value=value)

"""Table 4c: the server's own figures beside the client's at each sweep point — requests, prompt and output
tokens, mean TTFT, ITL, TPOT and E2E (vLLM's /metrics over the same steps, collector/server_views.py) —
with the client-versus-server checks' outcomes."""

from __future__ import annotations

from collections.abc import Callable

from siliconbench.collector import checks
from siliconbench.collector.checks import PointFigures
from siliconbench.collector.figures import StepRow
from siliconbench.collector.reports.picks import load, pct_of, ratio
from siliconbench.collector.reports.report import Report
from siliconbench.collector.reports.table import INT, MS, PCT, RATIO, TEXT, Declared, Table, cell
from siliconbench.collector.reports.tables import At, at_every_point


def _ttft_gap(f: PointFigures) -> float | None:
    client, server = f.ttft_mean_ms, f.server_ttft_mean_ms
    return client - server if client is not None and server is not None else None


def _outcome(check: str) -> Callable[[At], str]:
    def text(a: At) -> str:
        state, why = checks.server_outcomes(a.checked())[check]
        return f"{state}: {why}"
    return text


def _steps(a: At) -> list[StepRow]:
    assert a.point is not None
    return a.report.figures.steps_at(a.series, a.point)


def _server_sum(field: str) -> Callable[[At], float | None]:
    """A server count summed over the point's steps; None where no step has it (no /metrics)."""
    def total(a: At) -> float | None:
        known = [getattr(s, field) for s in _steps(a) if getattr(s, field) is not None]
        return float(sum(known)) if known else None
    return total


def _mean(field: str) -> Callable[[At], float | None]:
    """A mean over the point's steps (each step's mean, client or server, weighted alike)."""
    def mean(a: At) -> float | None:
        known = [getattr(s, field) for s in _steps(a) if getattr(s, field) is not None]
        return sum(known) / len(known) if known else None
    return mean


def _client_sum(field: str) -> Callable[[At], float]:
    return lambda a: float(sum(getattr(s, field) for s in _steps(a)))


SERVER = Declared("server", "4c. Server beside client (vLLM's own /metrics over the same steps)", (
    cell("Scenario", TEXT, lambda a: a.series.label),
    cell("Load", TEXT, lambda a: load(a.point)),
    cell("client requests", INT, _client_sum("ok_requests")),
    cell("server requests", INT, _server_sum("server_requests")),
    cell("client prompt tokens", INT, _client_sum("tokens_in")),
    cell("server prompt tokens", INT, _server_sum("server_tokens_in")),
    cell("client output tokens", INT, lambda a: a.checked().client_tokens),
    cell("server output tokens", INT, lambda a: a.checked().server_tokens),
    cell("server ÷ client", RATIO, lambda a: ratio(a.checked().server_tokens, a.checked().client_tokens)),
    cell("client TTFT mean", MS, lambda a: a.checked().ttft_mean_ms),
    cell("server TTFT mean", MS, lambda a: a.checked().server_ttft_mean_ms),
    cell("client − server TTFT", MS, lambda a: _ttft_gap(a.checked())),
    cell("client ÷ server TTFT", RATIO, lambda a: ratio(a.checked().ttft_mean_ms, a.checked().server_ttft_mean_ms)),
    cell("client ITL/token mean", MS, _mean("itl_token_mean_ms")),
    cell("server ITL mean", MS, _mean("server_itl_mean_ms")),
    cell("client TPOT mean", MS, _mean("tpot_mean_ms")),
    cell("server TPOT mean", MS, _mean("server_tpot_mean_ms")),
    cell("client E2E mean", MS, _mean("e2e_mean_ms")),
    cell("server E2E mean", MS, _mean("server_e2e_mean_ms")),
    cell("prefix-cache hit rate", PCT, lambda a: pct_of(a.m.prefix_cache_hit_rate)),
    cell(checks.TOKENS_CHECK, TEXT, _outcome(checks.TOKENS_CHECK)),
    cell(checks.TTFT_CHECK, TEXT, _outcome(checks.TTFT_CHECK)),
))
SERVER_CAPTION = ("Server figures are deltas of vLLM's counters between the start and end of each step, summed "
                  "over the point's steps; its latencies are its histograms' sum ÷ count per step "
                  "(vllm:time_to_first_token_seconds, vllm:inter_token_latency_seconds, "
                  "vllm:request_time_per_output_token_seconds, vllm:e2e_request_latency_seconds), averaged over "
                  "the point's steps like the client's means beside them. Server requests count every request "
                  "vLLM finished (warm-up and other clients' too, if any ran in the step). prefix-cache hit rate = "
                  "prompt tokens found in the cache ÷ looked up (median of the repetitions). Each check reads "
                  "passed, warned, or could not apply with the reason (a target without vLLM /metrics has no server "
                  "figures). Client TTFT may exceed the server's by 20 ms or 25 %, whichever is more.")


def server_table(report: Report) -> Table:
    return SERVER.build(at_every_point(report), SERVER_CAPTION)

"""SLOs: the vocabulary (one table entry per metric), the two parsers of `--slo`, and each request's
samples of a metric.

A search's objectives bound a percentile over a probe (`parse_slos`):

    siliconbench-agent search --slo "ttft_p99_ms<=500,itl_p99_ms<=50,error_rate<=0.005"

Goodput's bound each request (`parse_goodput_slo`): a request is good when it met every one. The same
keys for the agent's `run --slo` (stored with the run: the report's default) and the report's `--slo`:

    siliconbench-agent run --slo ttft_ms=500,itl_ms=50     siliconbench-collector report --slo itl_ms=10

A latency objective is METRIC_PERCENTILE_ms<=LIMIT with METRIC a key of `METRICS` and PERCENTILE one of
`PERCENTILES`; `error_rate<=LIMIT` bounds the share of failed requests. The metrics are computed as the
collector computes them (collector/formulas.py): TTFT to the first content-bearing chunk, TTFA to the
first answer chunk (a request that never answered misses it), ITL per gap
between content-bearing chunks, TPOT = (E2E - TTFT) / (output tokens - 1), E2E to the last byte; a failed
request gives no latency sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from siliconbench.core.bounds import MAX_SLO_MS
from siliconbench.core.errors import ConfigError
from siliconbench.core.wire import pb

ERROR_RATE = "error_rate"


def _ttft(record: pb.RequestRecord) -> Sequence[float]:
    return (record.ttft_ns / 1e6,) if record.ttft_ns >= 0 else ()


def _ttfa(record: pb.RequestRecord) -> Sequence[float]:
    """Time to first answer token, as collector/formulas.py's req_ttfa_ms: the first answer chunk; a stream
    told apart by kinds with no answer chunk gives no sample (so it cannot pass), an agent that stored no
    kinds its first chunk."""
    if record.first_answer_ns > 0:
        return (record.first_answer_ns / 1e6,)
    if not record.chunk_kinds and not record.first_reasoning_ns and not record.first_tool_call_ns:
        return _ttft(record)
    return (float("inf"),)  # it never answered: it misses any TTFA objective


def _itl(record: pb.RequestRecord) -> Sequence[float]:
    return [(b - a) / 1e6 for a, b in pairwise(record.chunk_offset_ns)]


def _tpot(record: pb.RequestRecord) -> Sequence[float]:
    if record.output_tokens < 2 or record.ttft_ns < 0:
        return ()
    return ((record.e2e_ns - record.ttft_ns) / 1e6 / (record.output_tokens - 1),)


def _e2e(record: pb.RequestRecord) -> Sequence[float]:
    return (record.e2e_ns / 1e6,)


@dataclass(frozen=True, slots=True)
class Metric:
    label: str
    samples: Callable[[pb.RequestRecord], Sequence[float]]  # a successful request's samples, in ms
    per_request: bool  # one sample per request (else one per chunk gap)


METRICS: dict[str, Metric] = {
    "ttft": Metric("TTFT", _ttft, True),
    "ttfa": Metric("TTFA", _ttfa, True),  # time to first answer token (reasoning models: after the reasoning)
    "itl": Metric("ITL", _itl, False),
    "tpot": Metric("TPOT", _tpot, True),
    "e2e": Metric("E2E", _e2e, True),
}
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
_KEY = re.compile(rf"({'|'.join(METRICS)})_({'|'.join(PERCENTILES)})_ms")
_ITEM = re.compile(r"\s*([a-z0-9_]+)\s*<=\s*([^\s,]+)\s*")


@dataclass(frozen=True, slots=True)
class Objective:
    """One SLO: a latency percentile in ms (`metric`, `q`) or the error rate (`metric == "error_rate"`),
    at most `limit`."""

    key: str
    metric: str
    q: float
    limit: float

    @property
    def label(self) -> str:
        if self.metric == ERROR_RATE:
            return "error rate"
        return f"{METRICS[self.metric].label} p{round(self.q * 100)}"

    def show(self, value: float) -> str:
        return f"{value:.2%}" if self.metric == ERROR_RATE else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"

    def samples(self, records: Sequence[pb.RequestRecord]) -> list[float]:
        """The samples of this SLO's latency metric from the successful `records`."""
        take = METRICS[self.metric].samples
        return [v for r in records if not r.error_class for v in take(r)]


# Goodput's per-request bounds, in ms: the request's TTFT, TTFA, mean ITL (its mean gap between
# content-bearing chunks; 0 with one chunk), TPOT (0 with one output token) and E2E.
GOODPUT_KEYS = tuple(f"{m}_ms" for m in ("ttft", "ttfa", "itl", "tpot", "e2e"))


def parse_goodput_slo(items: Sequence[str], flag: str = "--slo") -> dict[str, float]:
    """['ttft_ms=500,tpot_ms=50', 'itl_ms=10'] (each item may hold several, comma-separated) -> {key: ms};
    ConfigError naming the bad item and what is accepted."""
    example = "e.g. ttft_ms=500,itl_ms=50"
    out: dict[str, float] = {}
    for part in (p.strip() for item in items for p in item.split(",")):
        if not part:
            continue
        key, sep, text = (x.strip() for x in part.partition("="))
        key = key.replace("-", "_")  # tpot-ms as the flags spell their own names
        if not sep or key not in GOODPUT_KEYS:
            raise ConfigError(f"{flag} {part!r}: write KEY=MILLISECONDS with KEY one of {', '.join(GOODPUT_KEYS)}, "
                              f"{example}")
        try:
            limit = float(text)
        except ValueError:
            limit = float("nan")
        if not 0 < limit <= MAX_SLO_MS:
            raise ConfigError(f"{flag} {key}: the limit must be a number of milliseconds in (0, {MAX_SLO_MS:.0f}], "
                              f"got {text!r}")
        if key in out:
            raise ConfigError(f"{flag} {key} is given twice")
        out[key] = limit
    return out


def slo_keys() -> list[str]:
    return [f"{m}_{p}_ms" for m in METRICS for p in PERCENTILES] + [ERROR_RATE]


def parse_slos(text: str, flag: str = "--slo") -> tuple[Objective, ...]:
    """'ttft_p99_ms<=500,error_rate<=0.005' -> its objectives; a ConfigError naming the bad item, each
    message led by `flag` (none when empty: a plan's check puts the key path there)."""
    lead = f"{flag}: " if flag else ""
    example = "e.g. 'ttft_p99_ms<=500,itl_p99_ms<=50,error_rate<=0.005'"
    objectives: dict[str, Objective] = {}
    for item in filter(str.strip, text.split(",")):
        match = _ITEM.fullmatch(item)
        if not match:
            raise ConfigError(f"{lead}{item.strip()!r}: write KEY<=LIMIT, {example}")
        key, text_limit = match.groups()
        latency = _KEY.fullmatch(key)
        if not latency and key != ERROR_RATE:
            raise ConfigError(f"{lead}unknown SLO {key!r}; one of METRIC_PERCENTILE_ms (METRIC "
                              f"{'/'.join(METRICS)}, PERCENTILE {'/'.join(PERCENTILES)}) or {ERROR_RATE}")
        try:
            limit = float(text_limit)
        except ValueError:
            limit = float("nan")
        if not limit > 0 or limit == float("inf") or (key == ERROR_RATE and limit >= 1):
            bound = "a share in (0, 1)" if key == ERROR_RATE else "a number of milliseconds > 0"
            raise ConfigError(f"{lead}{key}: the limit must be {bound}, got {text_limit!r}")
        if key in objectives:
            raise ConfigError(f"{lead}{key} is given twice")
        objectives[key] = (Objective(key, ERROR_RATE, 0.0, limit) if latency is None
                           else Objective(key, latency.group(1), PERCENTILES[latency.group(2)], limit))
    if not objectives:
        raise ConfigError(f"{lead}give at least one SLO, {example}")
    return tuple(objectives.values())

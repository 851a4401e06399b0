"""From wire messages to column tables, checking each message against the contract first.

`tables_of` raises InvalidBatch naming the first broken rule and the message it is in; a batch is
stored whole or not at all from the agent's point of view (it is acked only after every table's
insert). This is the collector's hot path: columns are built with one comprehension per field and
checked with numpy over the whole batch, never row by row in Python (a 2-core collector must take
20,000 request records/s, each with ~100 chunk offsets).
"""

from __future__ import annotations

import time
from itertools import chain

import numpy as np
import pyarrow as pa

from siliconbench.collector.errors import InvalidBatch
from siliconbench.collector.schema import BATCH_ID, COLUMNS
from siliconbench.core.wire import pb

MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_CONFIG_CHARS = 65536
MAX_CHUNKS = 1_000_000        # per request
MAX_ITEMS = 200_000           # per list in one batch (the 16 MiB message limit bites first in practice)
MAX_VALUES_PER_SAMPLE = 1000
MAX_TOKENS = 10_000_000       # per request, per chunk
MAX_ACCELERATORS = 1024
# Event times must lie between 2020 and one day ahead of the collector's clock.
_EARLIEST_NS = 1_577_836_800 * 10**9
_AHEAD_NS = 86_400 * 10**9
_DAY_NS = 86_400 * 10**9
_PHASES = {pb.PHASE_START: "start", pb.PHASE_END: "end"}
_KINDS = {"", "nvidia", "neuron", "none"}
_UTC_NS = pa.timestamp("ns", tz="UTC")


def _text(value: str, field: str, limit: int = MAX_ID_CHARS) -> str:
    if len(value) > limit:
        raise InvalidBatch(f"{field} is {len(value)} characters long; the limit is {limit}")
    return value


def _texts(values: list[str], field: str, limit: int = MAX_ID_CHARS) -> list[str]:
    longest = max(map(len, values), default=0)
    if longest > limit:
        raise InvalidBatch(f"a {field} is {longest} characters long; the limit is {limit}")
    return values


def _times(ns: np.ndarray, field: str, now_ns: int) -> np.ndarray:
    bad = (ns < _EARLIEST_NS) | (ns > now_ns + _AHEAD_NS)
    if bad.any():
        raise InvalidBatch(f"{field}={int(ns[bad][0])} is not a plausible UTC time in nanoseconds (clock wrong?)")
    return ns


def _finite(values: np.ndarray, field: str) -> np.ndarray:
    bad = ~np.isfinite(values)
    if bad.any():
        raise InvalidBatch(f"{field} is {values[bad][0]}; only finite numbers are stored")
    return values


def _non_negative(values: np.ndarray, field: str) -> np.ndarray:
    if (values < 0).any():
        raise InvalidBatch(f"{field} is {values[values < 0][0]}; it must not be negative")
    return values


def _ints(items, field: str, dtype=np.int64) -> np.ndarray:
    return np.fromiter((getattr(i, field) for i in items), dtype, len(items))


def _floats(items, field: str) -> np.ndarray:
    return np.fromiter((getattr(i, field) for i in items), np.float64, len(items))


def _strs(items, field: str, where: str, limit: int = MAX_ID_CHARS) -> list[str]:
    return _texts([getattr(i, field) for i in items], f"{where}.{field}", limit)


def check_hello(hello: pb.Hello) -> None:
    if not hello.agent_id:
        raise InvalidBatch("Hello.agent_id is empty")
    for field in ("agent_id", "node_name", "instance_type", "accelerator_kind", "accelerator_model",
                  "agent_version", "driver_version"):
        _text(getattr(hello, field), f"Hello.{field}")
    if hello.accelerator_kind not in _KINDS:
        raise InvalidBatch(f"Hello.accelerator_kind={hello.accelerator_kind!r} is none of nvidia, neuron, none")
    if hello.accelerator_count > MAX_ACCELERATORS:
        raise InvalidBatch(f"Hello.accelerator_count={hello.accelerator_count} is above {MAX_ACCELERATORS}")


def hello_row(hello: pb.Hello) -> list:
    return [hello.agent_id, hello.node_name, hello.instance_type, hello.accelerator_kind or "none",
            hello.accelerator_count, hello.accelerator_model, hello.agent_version, hello.driver_version,
            time.time_ns()]


def tables_of(batch: pb.Batch, agent_id: str) -> dict[str, pa.Table]:
    """Column tables per destination (only those with rows), each row stamped with the batch's id;
    raises InvalidBatch on the first broken rule."""
    now = time.time_ns()
    if not batch.batch_id:
        raise InvalidBatch(f"batch {batch.seq} has no batch_id")
    _text(batch.batch_id, "Batch.batch_id")
    if batch.seq == 0:
        raise InvalidBatch(f"batch {batch.batch_id!r} has seq 0; sequence numbers start at 1")
    parts = (("runs", batch.runs, _runs), ("steps", batch.steps, _steps), ("requests", batch.requests, _requests),
             ("device_samples", batch.samples, _samples), ("server_metrics", batch.server_metrics, _server_metrics))
    tables = {}
    for table, items, build in parts:
        if not items:
            continue
        if len(items) > MAX_ITEMS:
            raise InvalidBatch(f"batch {batch.seq} carries {len(items)} {table}; the limit is {MAX_ITEMS} per batch")
        columns = build(items, agent_id, now)
        n = len(columns[1])  # agent_id: one per row
        if n:
            tables[table] = pa.table([*columns, pa.repeat(batch.batch_id, n)], names=[*COLUMNS[table], BATCH_ID])
    return tables


def _agent(agent_id: str, n: int) -> pa.Array:
    return pa.repeat(agent_id, n)


def _runs(runs, agent_id: str, now: int) -> list:
    phases = []
    for r in runs:
        if r.phase not in _PHASES:
            raise InvalidBatch(f"RunEvent {r.run_id[:MAX_ID_CHARS]!r} has no phase")
        phases.append(_PHASES[r.phase])
    w = "RunEvent"
    return [_strs(runs, "run_id", w), _agent(agent_id, len(runs)), phases,
            pa.array(_times(_ints(runs, "time_unix_ns"), "RunEvent.time_unix_ns", now), _UTC_NS),
            _strs(runs, "target_url", w, MAX_TEXT_CHARS), _strs(runs, "model", w), [r.simulated for r in runs],
            _strs(runs, "target_version", w), _strs(runs, "scenario", w), _strs(runs, "config_json", w, MAX_CONFIG_CHARS)]


def _steps(steps, agent_id: str, now: int) -> list:
    start = _times(_ints(steps, "start_unix_ns"), "StepEvent.start_unix_ns", now)
    end = _times(_ints(steps, "end_unix_ns"), "StepEvent.end_unix_ns", now)
    if (end < start).any():
        s = steps[int(np.flatnonzero(end < start)[0])]
        raise InvalidBatch(f"step {s.step} of run {s.run_id[:MAX_ID_CHARS]!r} ends before it starts")
    floats = [_non_negative(_finite(_floats(steps, f), f"StepEvent.{f}"), f"StepEvent.{f}")
              for f in ("rate_rps", "agent_cpu_pct", "loop_lag_p99_ms")]
    w = "StepEvent"
    return [_strs(steps, "run_id", w), _agent(agent_id, len(steps)), _ints(steps, "step", np.uint32),
            _ints(steps, "concurrency", np.uint32), _ints(steps, "repetition", np.uint32), pa.array(start, _UTC_NS),
            pa.array(end, _UTC_NS), _ints(steps, "requests", np.uint32), _strs(steps, "mode", w), *floats,
            [s.client_saturated for s in steps]]


def _requests(reqs, agent_id: str, now: int) -> list:
    n = len(reqs)
    request_ids = _strs(reqs, "request_id", "RequestRecord")

    def fail(mask: np.ndarray, what: str) -> None:
        i = int(np.flatnonzero(mask)[0])
        raise InvalidBatch(f"request {request_ids[i]!r}: {what}")

    ttft, e2e = _ints(reqs, "ttft_ns"), _ints(reqs, "e2e_ns")
    if (e2e < 0).any() or (ttft < -1).any():
        fail((e2e < 0) | (ttft < -1), "negative duration (ttft_ns and e2e_ns must be >= 0; ttft_ns -1 means no chunk)")
    if ((ttft > e2e)).any():
        fail(ttft > e2e, "ttft_ns is after e2e_ns")
    if not all(request_ids):
        fail(np.array([not r for r in request_ids]), "request_id is empty")
    n_off = np.fromiter((len(r.chunk_offset_ns) for r in reqs), np.int64, n)
    n_tok = np.fromiter((len(r.chunk_tokens) for r in reqs), np.int64, n)
    if (n_off != n_tok).any():
        fail(n_off != n_tok, "as many chunk offsets as chunk token counts are needed")
    if (n_off > MAX_CHUNKS).any():
        fail(n_off > MAX_CHUNKS, f"more than {MAX_CHUNKS} chunks")
    bounds = np.zeros(n + 1, np.int64)
    np.cumsum(n_off, out=bounds[1:])
    total = int(bounds[-1])
    offsets = np.fromiter(chain.from_iterable(r.chunk_offset_ns for r in reqs), np.int64, total)
    tokens = np.fromiter(chain.from_iterable(r.chunk_tokens for r in reqs), np.uint32, total)
    has = n_off > 0
    if (ttft[~has] != -1).any():
        fail(~has & (ttft != -1), "ttft_ns is set but no chunk arrived (it must be -1)")
    if has.any():
        first, last = offsets[bounds[:-1][has]], offsets[bounds[1:][has] - 1]
        if (first != ttft[has]).any():
            fail(_spread(has, first != ttft[has]), "ttft_ns differs from the first chunk's offset")
        if (first < 0).any() or (last > e2e[has]).any():
            fail(_spread(has, (first < 0) | (last > e2e[has])), "chunk offsets are not within [0, e2e_ns]")
        steps_back = np.flatnonzero(np.diff(offsets) < 0) + 1  # positions where an offset decreases
        inner = steps_back[~np.isin(steps_back, bounds)]        # ... other than at a request's first chunk
        if inner.size:
            fail(np.arange(n) == np.searchsorted(bounds, inner[0], side="right") - 1, "chunk offsets are not ordered")
    if (tokens > MAX_TOKENS).any():
        raise InvalidBatch(f"a chunk carries more than {MAX_TOKENS} tokens")
    for field in ("prompt_tokens", "output_tokens"):
        values = _ints(reqs, field)
        if (values > MAX_TOKENS).any():
            fail(values > MAX_TOKENS, f"{field} above {MAX_TOKENS}")
    status = _ints(reqs, "http_status")
    if (status > 999).any():
        fail(status > 999, "http_status is not an HTTP status code")
    delay = _ints(reqs, "dispatch_delay_ns")
    if ((delay < -10**9) | (delay > _DAY_NS)).any():
        fail((delay < -10**9) | (delay > _DAY_NS), "dispatch_delay_ns is not within [-1 s, 1 day]")
    w = "RequestRecord"
    list_offsets = pa.array(bounds.astype(np.int32))
    return [_strs(reqs, "run_id", w), _agent(agent_id, n), request_ids, _ints(reqs, "step", np.uint32),
            _ints(reqs, "concurrency", np.uint32), _ints(reqs, "repetition", np.uint32),
            pa.array(_times(_ints(reqs, "start_unix_ns"), "RequestRecord.start_unix_ns", now), _UTC_NS), ttft, e2e,
            pa.ListArray.from_arrays(list_offsets, pa.array(offsets)),
            pa.ListArray.from_arrays(list_offsets, pa.array(tokens)),
            _ints(reqs, "prompt_tokens", np.uint32), _ints(reqs, "output_tokens", np.uint32),
            [r.tokens_counted for r in reqs], _strs(reqs, "finish_reason", w), status.astype(np.uint16),
            _strs(reqs, "error_class", w), _strs(reqs, "error_message", w, MAX_TEXT_CHARS), delay]


def _spread(mask: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """A mask over all rows from a mask over the rows selected by `mask`."""
    full = np.zeros(mask.shape, bool)
    full[np.flatnonzero(mask)[sub]] = True
    return full


def _samples(samples, agent_id: str, now: int) -> list:
    counts = np.fromiter((len(s.values) for s in samples), np.int64, len(samples))
    if (counts > MAX_VALUES_PER_SAMPLE).any():
        raise InvalidBatch(f"a DeviceSample carries {int(counts.max())} values; the limit is {MAX_VALUES_PER_SAMPLE}")
    w = "DeviceSample"
    times = _times(_ints(samples, "time_unix_ns"), "DeviceSample.time_unix_ns", now)
    per_sample = [pa.array(_strs(samples, "run_id", w)), pa.array(_strs(samples, "source", w)),
                  pa.array(_strs(samples, "device", w))]
    metrics = _texts(list(chain.from_iterable(s.values.keys() for s in samples)), "DeviceSample metric name")
    values = _finite(np.fromiter(chain.from_iterable(s.values.values() for s in samples), np.float64,
                                 int(counts.sum())), "a DeviceSample value")
    row_of = pa.array(np.repeat(np.arange(len(samples), dtype=np.int32), counts))  # sample index of each value
    run_id, source, device = (column.take(row_of) for column in per_sample)
    return [run_id, _agent(agent_id, len(values)), pa.array(np.repeat(times, counts), _UTC_NS), source, device,
            metrics, values]


def _server_metrics(metrics, agent_id: str, now: int) -> list:
    w = "ServerMetric"
    return [_strs(metrics, "run_id", w), _agent(agent_id, len(metrics)), _ints(metrics, "step", np.uint32),
            _strs(metrics, "name", w), _strs(metrics, "labels", w, MAX_TEXT_CHARS),
            _finite(_floats(metrics, "start_value"), "ServerMetric.start_value"),
            _finite(_floats(metrics, "end_value"), "ServerMetric.end_value")]

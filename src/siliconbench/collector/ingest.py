"""From wire messages to column tables, checking each message against the contract first.

`tables_of` raises InvalidBatch naming the first broken rule and the message it is in; a batch is
stored whole or not at all from the agent's point of view (it is acked only after every table's
insert). This is the collector's hot path: columns are built with one comprehension per field and
checked with numpy over the whole batch, never row by row in Python (a 2-core collector must take
20,000 request records/s, each with ~100 chunk offsets).

What each column holds, where it comes from and what is checked of it alone is declared once, in
collector/schema.py: a column copied from its message's field is read and checked here generically
(`_copied`); each table's builder below adds the derived columns and the rules between columns. A
table is assembled by column name against the declared Arrow schema (`_assemble`), so a column can
never land in another's place, and a column left out or not declared is an error, not a shifted row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa

from siliconbench.collector.errors import InvalidBatch
from siliconbench.collector.schema import (
    BATCH_ID,
    DEVICE_SAMPLES,
    NODES,
    REQUESTS,
    RUNS,
    SEARCH_PROBES,
    SEARCHES,
    SERVER_METRICS,
    STEPS,
    Column,
    Table,
)
from siliconbench.core.limits import MAX_CHUNKS, MAX_ID_CHARS
from siliconbench.core.wire import pb

__all__ = ["MAX_ID_CHARS", "check_hello", "hello_row", "tables_of"]

MAX_ITEMS = 200_000           # per list in one batch (the 16 MiB message limit bites first in practice)
MAX_VALUES_PER_SAMPLE = 1000
# Event times must lie between 2020 and one day ahead of the collector's clock.
_EARLIEST_NS = 1_577_836_800 * 10**9
_AHEAD_NS = 86_400 * 10**9
_PHASES = {pb.PHASE_START: "start", pb.PHASE_END: "end"}
_KINDS = {"", "nvidia", "neuron", "none"}
_HELLO_TEXT = [f.name for f in pb.Hello.DESCRIPTOR.fields if f.type == f.TYPE_STRING]

Values = Any  # a column's values: a list (text, bool), a numpy array (numbers, times) or an Arrow array
Label = Callable[[int], str]  # names the row at an index, for messages ("request 'r/0/3'")


def _no_label(_i: int) -> str:
    return ""


def _check(column: Column, values: Values, where: str, now: int, label: Label = _no_label) -> Values:
    """`values` after the column's declared check (schema.Check); InvalidBatch naming the field and the rule."""
    check = column.check
    name = f"{where}.{column.field}" if column.copied else f"{where} {column.name}"
    if check.max_chars is not None:
        longest = max(map(len, values), default=0)
        if longest > check.max_chars:
            raise InvalidBatch(f"a {name} is {longest} characters long; the limit is {check.max_chars}")
        return values
    if check.plausible_time:
        bad = (values < _EARLIEST_NS) | (values > now + _AHEAD_NS)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidBatch(f"{name}={int(values[i])}{_of(label, i)} is not a plausible UTC time in nanoseconds "
                               "(clock wrong?)")
    if check.finite:
        _refuse(name, values, ~np.isfinite(values), "only finite numbers are stored", label)
    if check.low is not None:
        _refuse(name, values, values < check.low,
                check.why or ("it must not be negative" if check.low == 0 else f"it must be at least {check.low}"),
                label)
    if check.high is not None:
        _refuse(name, values, values > check.high, check.why or f"the limit is {check.high}", label)
    return values


def _refuse(name: str, values: np.ndarray, bad: np.ndarray, rule: str, label: Label) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidBatch(f"{name} is {values[i]}{_of(label, i)}; {rule}")


def _of(label: Label, i: int) -> str:
    text = label(i)
    return f" in {text}" if text else ""


def _read(column: Column, items: Sequence, where: str, now: int, label: Label = _no_label) -> Values:
    """The column's field of every message, checked, as the column's Arrow type takes it."""
    kind, field = column.arrow, column.message_field
    if pa.types.is_string(kind) or pa.types.is_boolean(kind):
        return _check(column, [getattr(i, field) for i in items], where, now, label)
    dtype = np.float64 if pa.types.is_floating(kind) else np.int64
    values = _check(column, np.fromiter((getattr(i, field) for i in items), dtype, len(items)), where, now, label)
    return values.astype(kind.to_pandas_dtype(), copy=False) if pa.types.is_integer(kind) else values


def _copied(table: Table, items: Sequence, now: int, out: dict[str, Values], label: Label = _no_label) -> None:
    """Read every column the table copies from its message's fields into `out`, by column name, in
    declared order (so `label` may name rows by a column read before the first check that uses it)."""
    for column in table.columns:
        if column.copied:
            out[column.name] = _read(column, items, table.message, now, label)


def _assemble(table: Table, columns: dict[str, Values], agent_id: str, batch_id: str) -> pa.Table:
    """The column table: each declared column taken from `columns` by its name and built as its declared
    Arrow type. A declared column that was not built, or a built one that is not declared, is a bug
    here, never a batch's fault: KeyError naming it."""
    n = len(columns["run_id"])
    columns = {**columns, "agent_id": pa.repeat(agent_id, n), BATCH_ID: pa.repeat(batch_id, n)}
    unknown = set(columns) - {c.name for c in table.stored}
    if unknown:
        raise KeyError(f"ingest built column(s) {sorted(unknown)} that {table.name} does not declare")
    arrays = []
    for column in table.stored:
        if column.name not in columns:
            raise KeyError(f"ingest built no {table.name}.{column.name}")
        values = columns[column.name]
        if isinstance(values, pa.Array):
            arrays.append(values if values.type == column.arrow else values.cast(column.arrow))
        else:
            arrays.append(pa.array(values, column.arrow))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema)


def check_hello(hello: pb.Hello) -> None:
    if not hello.agent_id:
        raise InvalidBatch("Hello.agent_id is empty")
    for field in _HELLO_TEXT:  # every text field, stored or not (scenario goes to run_nodes and selectors)
        length = len(getattr(hello, field))
        if length > MAX_ID_CHARS:
            raise InvalidBatch(f"Hello.{field} is {length} characters long; the limit is {MAX_ID_CHARS}")
    _copied(NODES, [hello], time.time_ns(), {})
    if hello.accelerator_kind not in _KINDS:
        raise InvalidBatch(f"Hello.accelerator_kind={hello.accelerator_kind!r} is none of nvidia, neuron, none")


def hello_row(hello: pb.Hello) -> list:
    """The `nodes` row for a checked Hello, in Store.insert's order."""
    copied = {c.name: getattr(hello, c.message_field) for c in NODES.columns if c.copied}
    return NODES.row(**copied, accelerator_kind=hello.accelerator_kind or "none", seen_at=time.time_ns())


def tables_of(batch: pb.Batch, agent_id: str) -> dict[str, pa.Table]:
    """Column tables per destination (only those with rows), each row stamped with the batch's id;
    raises InvalidBatch on the first broken rule."""
    now = time.time_ns()
    if not batch.batch_id:
        raise InvalidBatch(f"batch {batch.seq} has no batch_id")
    if len(batch.batch_id) > MAX_ID_CHARS:
        raise InvalidBatch(f"Batch.batch_id is {len(batch.batch_id)} characters long; the limit is {MAX_ID_CHARS}")
    if batch.seq == 0:
        raise InvalidBatch(f"batch {batch.batch_id!r} has seq 0; sequence numbers start at 1")
    parts = ((RUNS, batch.runs, _runs), (STEPS, batch.steps, _steps), (REQUESTS, batch.requests, _requests),
             (DEVICE_SAMPLES, batch.samples, _samples), (SERVER_METRICS, batch.server_metrics, _server_metrics),
             (SEARCH_PROBES, [s for s in batch.steps if s.HasField("search_probe")], _search_probes),
             (SEARCHES, [r for r in batch.runs if r.HasField("search")], _searches))
    tables = {}
    for table, items, build in parts:
        if not items:
            continue
        if len(items) > MAX_ITEMS:
            raise InvalidBatch(f"batch {batch.seq} carries {len(items)} {table.name}; the limit is {MAX_ITEMS} "
                               "per batch")
        columns = build(items, now)
        if len(columns["run_id"]):
            tables[table.name] = _assemble(table, columns, agent_id, batch.batch_id)
    return tables


def _runs(runs, now: int) -> dict[str, Values]:
    phases = []
    for r in runs:
        if r.phase not in _PHASES:
            raise InvalidBatch(f"RunEvent {r.run_id[:MAX_ID_CHARS]!r} has no phase")
        phases.append(_PHASES[r.phase])
    columns: dict[str, Values] = {"phase": phases}
    _copied(RUNS, runs, now, columns)
    return columns


def _steps(steps, now: int) -> dict[str, Values]:
    columns: dict[str, Values] = {}
    _copied(STEPS, steps, now, columns)
    ends_early = columns["end_time"] < columns["start_time"]
    if ends_early.any():
        s = steps[int(np.flatnonzero(ends_early)[0])]
        raise InvalidBatch(f"step {s.step} of run {s.run_id[:MAX_ID_CHARS]!r} ends before it starts")
    return columns


def _requests(reqs, now: int) -> dict[str, Values]:
    n = len(reqs)
    columns: dict[str, Values] = {}
    _copied(REQUESTS, reqs, now, columns, label=lambda i: f"request {columns['request_id'][i]!r}")
    request_ids, ttft, e2e = columns["request_id"], columns["ttft_ns"], columns["e2e_ns"]

    def fail(mask: np.ndarray, what: str) -> NoReturn:
        i = int(np.flatnonzero(mask)[0])
        raise InvalidBatch(f"request {request_ids[i]!r}: {what}")

    if (e2e < 0).any() or (ttft < -1).any():
        fail((e2e < 0) | (ttft < -1), "negative duration (ttft_ns and e2e_ns must be >= 0; ttft_ns -1 means no chunk)")
    if (ttft > e2e).any():
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
    _check(REQUESTS.column("chunk_tokens"), tokens, "RequestRecord", now)
    list_offsets = pa.array(bounds.astype(np.int32))
    columns["chunk_offset_ns"] = pa.ListArray.from_arrays(list_offsets, pa.array(offsets))
    columns["chunk_tokens"] = pa.ListArray.from_arrays(list_offsets, pa.array(tokens))
    columns["chunk_kinds"] = _chunk_kinds(reqs, columns, n_off, fail)
    return columns


def _chunk_kinds(reqs, columns: dict[str, Values], n_off: np.ndarray, fail: Callable[..., NoReturn]) -> pa.Array:
    """The kinds as sent (none, or one per chunk, each 0-2), after checking them, and that the first chunk
    of each kind (0: none; the declared check refused negatives) is not after the stream's end."""
    n = len(reqs)
    n_kind = np.fromiter((len(r.chunk_kinds) for r in reqs), np.int64, n)
    if ((n_kind != 0) & (n_kind != n_off)).any():
        fail((n_kind != 0) & (n_kind != n_off), "chunk_kinds must be empty or one per chunk offset")
    bounds = np.zeros(n + 1, np.int64)
    np.cumsum(n_kind, out=bounds[1:])
    kinds = np.fromiter(chain.from_iterable(r.chunk_kinds for r in reqs), np.int64, int(bounds[-1]))
    if (kinds > 2).any():
        fail(np.arange(n) == np.searchsorted(bounds, int(np.flatnonzero(kinds > 2)[0]), side="right") - 1,
             "a chunk kind is not 0 (answer), 1 (reasoning) or 2 (tool call)")
    for name in ("first_reasoning_ns", "first_answer_ns", "first_tool_call_ns"):
        if (columns[name] > columns["e2e_ns"]).any():
            fail(columns[name] > columns["e2e_ns"], f"{name} is after e2e_ns")
    return pa.ListArray.from_arrays(pa.array(bounds.astype(np.int32)), pa.array(kinds.astype(np.uint8)))


def _spread(mask: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """A mask over all rows from a mask over the rows selected by `mask`."""
    full = np.zeros(mask.shape, bool)
    full[np.flatnonzero(mask)[sub]] = True
    return full


def _samples(samples, now: int) -> dict[str, Values]:
    counts = np.fromiter((len(s.values) for s in samples), np.int64, len(samples))
    if (counts > MAX_VALUES_PER_SAMPLE).any():
        raise InvalidBatch(f"a DeviceSample carries {int(counts.max())} values; the limit is {MAX_VALUES_PER_SAMPLE}")
    per_sample: dict[str, Values] = {}
    _copied(DEVICE_SAMPLES, samples, now, per_sample)
    row_of = pa.array(np.repeat(np.arange(len(samples), dtype=np.int32), counts))  # sample index of each value
    columns = {name: np.repeat(values, counts) if isinstance(values, np.ndarray) else pa.array(values).take(row_of)
               for name, values in per_sample.items()}
    w = DEVICE_SAMPLES.message
    columns["metric"] = _check(DEVICE_SAMPLES.column("metric"),
                               list(chain.from_iterable(s.values.keys() for s in samples)), w, now)
    columns["value"] = _check(DEVICE_SAMPLES.column("value"),
                              np.fromiter(chain.from_iterable(s.values.values() for s in samples), np.float64,
                                          int(counts.sum())), w, now)
    return columns


def _server_metrics(metrics, now: int) -> dict[str, Values]:
    columns: dict[str, Values] = {}
    _copied(SERVER_METRICS, metrics, now, columns)
    return columns


# --- siliconbench-agent search ----------------------------------------------------------------------
def _per_slo(table: Table, messages: Sequence, now: int, columns: dict[str, Values], names: Sequence[str]) -> None:
    """The per-SLO lists (`names`, after slo_keys), each as long as slo_keys, into `columns`."""
    where = table.message
    keys = [list(m.slo_keys) for m in messages]
    _check(table.column("slo_keys"), [k for ks in keys for k in ks], where, now)
    columns["slo_keys"] = keys
    for name in names:
        lists = [list(getattr(m, name)) for m in messages]
        if any(len(values) != len(ks) for values, ks in zip(lists, keys)):
            raise InvalidBatch(f"a {where} has {name} not one per slo_keys entry")
        column = table.column(name)
        if column.check.finite:
            _check(column, np.array([v for values in lists for v in values], np.float64), where, now)
        columns[name] = lists


def _search_probes(steps, now: int) -> dict[str, Values]:
    probes = [s.search_probe for s in steps]
    columns: dict[str, Values] = {"run_id": _check(SEARCH_PROBES.column("run_id"), [s.run_id for s in steps],
                                                   "StepEvent", now),
                                  "step": np.fromiter((s.step for s in steps), np.uint32, len(steps))}
    _copied(SEARCH_PROBES, probes, now, columns)
    _per_slo(SEARCH_PROBES, probes, now, columns, ("slo_limits", "slo_points", "slo_bounds"))
    return columns


def _searches(runs, now: int) -> dict[str, Values]:
    results = [r.search for r in runs]
    columns: dict[str, Values] = {"run_id": _check(SEARCHES.column("run_id"), [r.run_id for r in runs], "RunEvent",
                                                   now)}
    _copied(SEARCHES, results, now, columns)
    _per_slo(SEARCHES, results, now, columns, ("slo_bounds", "headroom"))
    return columns

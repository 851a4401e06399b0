"""Trace files, read into `TraceRow`s: when each request arrived, its lengths, and what prefix it shares.

    mooncake      JSON Lines: timestamp (ms from the trace's start), input_length, output_length, hash_ids
                  (one id per block of the trace's block size, 512; equal ids: equal prompt blocks)
    azure         CSV (Azure LLM inference traces): TIMESTAMP (date and time), ContextTokens, GeneratedTokens
    burstgpt      CSV (BurstGPT): Timestamp (s), Model, Request tokens, Response tokens, Total tokens, Log Type
    siliconbench  JSON Lines, what `siliconbench-collector export --trace` writes of a stored run:
                  offset_ms, input_tokens, output_tokens, and optionally hash_ids and session

Azure and BurstGPT carry no prefix information: their rows have no hash ids. A row's `session` keeps a
conversation on one node when a fleet splits the trace: the first hash id (its shared root), the
siliconbench `session`, else the row itself. A line that cannot be read becomes a `BadLine` with its number
and why; the caller decides whether the trace is still usable (siliconbench.agent.traces.load).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from siliconbench.core.bounds import MAX_TOKENS

Entry = TypeVar("Entry")


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One request of a trace: `line` in its file (from 1), `offset_s` after the trace's first arrival."""

    line: int
    offset_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()
    session: str = ""


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    why: str


@dataclass(slots=True)
class TraceFile:
    """What a trace file held: its rows (offsets from its first arrival) and the lines that could not be read."""

    rows: list[TraceRow] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return len(self.rows) + len(self.bad)

    @property
    def has_prefixes(self) -> bool:
        """Whether any row says which prompt blocks it shares."""
        return any(row.hash_ids for row in self.rows)


class _Bad(ValueError):
    """A line that cannot be read, and why."""


def _count(value: object, name: str, least: int = 1) -> int:
    if isinstance(value, str):
        text = value
        try:
            value = float(text) if "." in text else int(text)
        except ValueError:
            raise _Bad(f"{name} {text[:40]!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise _Bad(f"{name} must be a whole number, got {str(value)[:40]!r}")
    if not least <= value <= MAX_TOKENS:
        raise _Bad(f"{name} {int(value)} is outside {least}..{MAX_TOKENS}")
    return int(value)


def _time(value: object, name: str) -> float:
    if isinstance(value, str):
        text = value
        try:
            value = float(text)
        except ValueError:
            raise _Bad(f"{name} {text[:40]!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e15:
        raise _Bad(f"{name} must be a non-negative number, got {str(value)[:40]!r}")
    return float(value)


def _hash_ids(value: object) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in value):
        raise _Bad("hash_ids must be a list of integers")
    return tuple(value)


def _json_object(text: str) -> dict:
    try:
        row = json.loads(text)
    except ValueError as exc:
        raise _Bad(f"not JSON ({exc})") from None
    if not isinstance(row, dict):
        raise _Bad("not a JSON object")
    return row


def _field(row: dict, name: str) -> object:
    if name not in row:
        raise _Bad(f"no {name!r}")
    return row[name]


def _mooncake(text: str, line: int) -> TraceRow:
    row = _json_object(text)
    ids = _hash_ids(row.get("hash_ids", []))
    return TraceRow(line, _time(_field(row, "timestamp"), "timestamp") / 1e3,
                    _count(_field(row, "input_length"), "input_length"),
                    _count(_field(row, "output_length"), "output_length"), ids,
                    f"h{ids[0]}" if ids else f"l{line}")


def _siliconbench(text: str, line: int) -> TraceRow:
    row = _json_object(text)
    ids = _hash_ids(row.get("hash_ids", []))
    session = row.get("session", "")
    if not isinstance(session, str):
        raise _Bad("session must be a string")
    return TraceRow(line, _time(_field(row, "offset_ms"), "offset_ms") / 1e3,
                    _count(_field(row, "input_tokens"), "input_tokens"),
                    _count(_field(row, "output_tokens"), "output_tokens"), ids,
                    f"s{session}" if session else f"h{ids[0]}" if ids else f"l{line}")


def _azure_time(text: str) -> float:
    """'2023-11-16 18:15:46.6805900' -> seconds since the epoch (the trace's 7 fractional digits cut to 6)."""
    stamp = text.strip()
    head, dot, fraction = stamp.partition(".")
    try:
        moment = datetime.fromisoformat(head + (dot + fraction[:6] if dot else ""))
    except ValueError:
        raise _Bad(f"TIMESTAMP {stamp[:40]!r} is not a date and time") from None
    return moment.timestamp()


def _azure(row: dict[str, str], line: int) -> TraceRow:
    return TraceRow(line, _azure_time(str(_field(row, "TIMESTAMP"))), _count(_field(row, "ContextTokens"), "ContextTokens"),
                    _count(_field(row, "GeneratedTokens"), "GeneratedTokens"), (), f"l{line}")


def _burstgpt(row: dict[str, str], line: int) -> TraceRow:
    # a failed request of the trace has Response tokens 0: nothing to replay (counted as a bad line)
    return TraceRow(line, _time(_field(row, "Timestamp"), "Timestamp"),
                    _count(_field(row, "Request tokens"), "Request tokens"),
                    _count(_field(row, "Response tokens"), "Response tokens"), (), f"l{line}")


_HEADERS = {"azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
            "burstgpt": ("Timestamp", "Request tokens", "Response tokens")}


def _jsonl_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line


def _csv_rows(text: str, kind: str) -> Iterator[tuple[int, dict[str, str] | None]]:
    """Each data row with its line number (the header is line 1); None for a row of the wrong width."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in _HEADERS[kind] if name not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"its header has no {missing} (a {kind} trace's columns: {', '.join(_HEADERS[kind])})")
    for row in reader:
        if None in row or None in row.values():
            yield reader.line_num, None
        else:
            yield reader.line_num, row


def _read(trace: TraceFile, entries: Iterable[tuple[int, Entry | None]], parse: Callable[[Entry, int], TraceRow]) -> None:
    for line, entry in entries:
        try:
            if entry is None:
                raise _Bad("a row with the wrong number of columns")
            trace.rows.append(parse(entry, line))
        except _Bad as exc:
            trace.bad.append(BadLine(line, str(exc)))


def parse_trace(text: str, kind: str) -> TraceFile:
    """The rows of a trace in format `kind`, sorted by arrival, offsets from the first arrival; a ValueError
    when the file is not of that format at all (a CSV without the format's columns)."""
    trace = TraceFile()
    if kind in _HEADERS:
        _read(trace, _csv_rows(text, kind), _azure if kind == "azure" else _burstgpt)
    else:
        _read(trace, _jsonl_lines(text), _mooncake if kind == "mooncake" else _siliconbench)
    trace.rows.sort(key=lambda row: (row.offset_s, row.line))
    if trace.rows:
        first = trace.rows[0].offset_s
        trace.rows = [TraceRow(r.line, r.offset_s - first, r.input_tokens, r.output_tokens, r.hash_ids, r.session)
                      for r in trace.rows]
    return trace

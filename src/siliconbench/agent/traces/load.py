"""A trace made ready to replay: read, its malformed lines judged, cut to its window, split for this node of a
fleet, its clock scaled, and its lengths checked against the server's context, all before the first request.

Bad lines: `bad_lines: skip` drops them (counted, the first few named by line number), `refuse` refuses the
trace if it has any, `auto` (the default) refuses it when more than 1 % of its lines are bad.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from siliconbench.agent.errors import ConfigError
from siliconbench.agent.traces.formats import BadLine, TraceFile, TraceRow, parse_trace
from siliconbench.core.files import read_capped
from siliconbench.core.trace import BAD_LINE_SHARE, TracePlan, node_part, window_bounds

log = logging.getLogger(__name__)

# A trace is read whole before it is parsed: a day of Azure's trace is ~30 MB; 512 MiB is a typo's bound.
MAX_TRACE_BYTES = 512 << 20
_NAMED = 5  # bad lines named in a message; the rest counted


@dataclass(frozen=True, slots=True)
class Replay:
    """The requests a node replays, in arrival order, each `offset_ns` after the step's start."""

    rows: tuple[TraceRow, ...]
    offsets_ns: tuple[int, ...]
    skipped: int            # malformed lines dropped
    has_prefixes: bool      # the trace says which prompt blocks requests share (hash ids)

    @property
    def span_s(self) -> float:
        return self.offsets_ns[-1] / 1e9 if self.offsets_ns else 0.0

    def offered_rps(self) -> float:
        """The mean offered rate: requests over the span between the first and the last arrival."""
        return len(self.rows) / self.span_s if self.span_s > 0 else float(len(self.rows))


def _named(bad: list[BadLine]) -> str:
    named = "; ".join(f"line {b.line}: {b.why}" for b in bad[:_NAMED])
    return named + (f"; and {len(bad) - _NAMED} more" if len(bad) > _NAMED else "")


def read_trace(plan: TracePlan) -> TraceFile:
    """The trace file's rows; ConfigError when it cannot be read, is not of its format, or has too many bad lines."""
    raw = read_capped(plan.file, MAX_TRACE_BYTES, "trace", "cut it (trace.window applies after reading)")
    try:
        trace = parse_trace(raw.decode("utf-8-sig"), plan.format)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"trace {plan.file} is not a {plan.format} trace: {exc}") from None
    bad = trace.bad
    if not bad:
        return trace
    share = len(bad) / trace.lines
    if plan.bad_lines == "refuse" or (plan.bad_lines == "auto" and share > BAD_LINE_SHARE):
        raise ConfigError(f"trace {plan.file}: {len(bad)} of {trace.lines} lines are malformed ({share:.1%}) - "
                          f"{_named(bad)}. Fix them, or pass --trace-bad-lines skip to replay the rest")
    log.warning("trace %s: %d of %d malformed lines skipped - %s", plan.file, len(bad), trace.lines, _named(bad))
    return trace


def in_part(session: str, node: int, nodes: int) -> bool:
    """Whether a session belongs to node `node` (from 1) of `nodes`: all of a session's rows go to one node."""
    if nodes == 1:
        return True
    draw = int.from_bytes(hashlib.blake2b(session.encode(), digest_size=8).digest(), "big")
    return draw % nodes == node - 1


def shape(trace: TraceFile, plan: TracePlan) -> Replay:
    """The rows of this node's part within the window, offsets from the window's start scaled by the plan."""
    start, end = window_bounds(plan.window)
    node, nodes = node_part(plan.part)
    rows = tuple(r for r in trace.rows if start <= r.offset_s < end and in_part(r.session, node, nodes))
    if not rows:
        where = f" within window {plan.window}" if plan.window else ""
        part = f" for part {plan.part}" if plan.part else ""
        raise ConfigError(f"trace {plan.file} has no request{where}{part} (its {len(trace.rows)} requests span "
                          f"{trace.rows[-1].offset_s if trace.rows else 0:.1f} s)")
    offsets = tuple(round((r.offset_s - start) * plan.stretch * 1e9) for r in rows)
    return Replay(rows, offsets, len(trace.bad), trace.has_prefixes)


def check_lengths(replay: Replay, max_model_len: int, file: str) -> None:
    """ConfigError naming how many requests would not fit the server's context (prompt + output)."""
    if not max_model_len:
        return
    over = [r for r in replay.rows if r.input_tokens + r.output_tokens > max_model_len]
    if over:
        longest = max(r.input_tokens + r.output_tokens for r in over)
        raise ConfigError(f"trace {file}: {len(over)} of {len(replay.rows)} requests need more than the server's "
                          f"max_model_len of {max_model_len} tokens (prompt + output; the longest {longest}, line "
                          f"{over[0].line} the first); cut them with trace.window, or serve a longer context")


def load_replay(plan: TracePlan) -> Replay:
    """The trace read, judged and shaped for this node (lengths are checked once the server is known)."""
    return shape(read_trace(plan), plan)

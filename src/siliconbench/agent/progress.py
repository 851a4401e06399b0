"""Progress of a step for the person watching: a live line on a terminal, plain log lines otherwise.

The line a finished step leaves states its output tok/s as every report does (StepThroughput); the live
line before it shows the running rate since the step began.

The live line ends without a newline, so anything else written to the terminal would be glued to it. While
the line is live, a filter on the logging handlers that write to the same stream wipes it before each log
record; the next update draws it again below the record.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable
from typing import Protocol

from siliconbench.core.wire import pb

log = logging.getLogger("siliconbench.agent.progress")
REFRESH_S = 0.5
WIPE = "\r\x1b[2K"  # to the line's start, erase the line


class Stream(Protocol):
    """What progress is written to: a terminal, a log file, or nothing (the load generator's null stream)."""

    def isatty(self) -> bool: ...
    def write(self, text: str, /) -> object: ...
    def flush(self) -> None: ...


class StepThroughput:
    """A step's output tok/s as every report states it (collector/views.py, step_rollups.output_tps):
    output tokens of its successful requests ÷ its wall time, from the first request's send to the last
    request's end (failed requests included in the span). The step's console line and the fleet progress
    read it, so the console and the report agree on every step."""

    __slots__ = ("tokens", "first_ns", "last_ns")

    def __init__(self) -> None:
        self.tokens = 0
        self.first_ns = 0
        self.last_ns = 0

    def add(self, record: pb.RequestRecord) -> None:
        self.first_ns = min(self.first_ns or record.start_unix_ns, record.start_unix_ns)
        self.last_ns = max(self.last_ns, record.start_unix_ns + record.e2e_ns)
        if not record.error_class:
            self.tokens += record.output_tokens

    @property
    def wall_s(self) -> float:
        return (self.last_ns - self.first_ns) / 1e9

    @property
    def output_tps(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


class StepProgress:
    """Counts a step's finished requests; `update` is cheap (called per request), redraws at most every
    REFRESH_S on a TTY and writes nothing until `done` otherwise."""

    def __init__(self, title: str, total: int, stream: Stream | None = None,
                 note: Callable[[], str | None] | None = None) -> None:
        """`note`, asked at each redraw, adds why the load is held back (e.g. the spool's disk is full)."""
        self._stream = stream or sys.stderr
        self._note = note
        self._live = self._stream.isatty()
        self.title = title
        self.total = total
        self.done_requests = 0
        self.errors = 0
        self.tokens = 0
        self._t0 = time.perf_counter()
        self._drawn = 0.0
        self._on_screen = False
        self._guard = _WipeBeforeRecord(self)
        self._guarded = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is self._stream]
        if self._live:
            for handler in self._guarded:
                handler.addFilter(self._guard)

    def update(self, output_tokens: int, failed: bool) -> None:
        self.done_requests += 1
        self.tokens += output_tokens
        self.errors += failed
        if self._live:
            now = time.perf_counter()
            if now - self._drawn >= REFRESH_S:
                self._drawn = now
                # cut to the terminal's width: a live line that wraps leaves its first rows behind on each redraw
                self._stream.write(WIPE + self._line(now)[: shutil.get_terminal_size().columns - 1])
                self._stream.flush()
                self._on_screen = True

    def wipe(self) -> None:
        """Erase the live line, if drawn, so that the next write starts on a clean line; the next update
        draws it again at once."""
        if self._on_screen:
            self._stream.write(WIPE)
            self._stream.flush()
            self._on_screen = False
            self._drawn = 0.0

    def _line(self, now: float) -> str:
        elapsed = max(now - self._t0, 1e-9)
        total = f"/{self.total}" if self.total else ""
        note = self._note() if self._note is not None else None
        held = f"[{note}] " if note else ""  # first after the title: a narrow terminal cuts the end of the line
        return (f"{self.title}: {held}{self.done_requests}{total} requests  {self.tokens / elapsed:,.0f} output tok/s  "
                f"{self.errors} errors  {elapsed:.1f} s")

    def finish(self, throughput: StepThroughput, note: str = "") -> None:
        """The step's last line: its output tok/s as the reports state it (StepThroughput), then `note`."""
        total = f"/{self.total}" if self.total else ""
        line = (f"{self.title}: {self.done_requests}{total} requests  {throughput.output_tps:,.0f} output tok/s over "
                f"{throughput.wall_s:.2f} s (first send to last end)  {self.errors} errors" + (f"  {note}" if note else ""))
        for handler in self._guarded:
            handler.removeFilter(self._guard)
        if self._live:
            self._stream.write(WIPE + line + "\n")
            self._stream.flush()
            self._on_screen = False
        else:
            log.info("%s", line)


class _WipeBeforeRecord(logging.Filter):
    """Lets every record through, after wiping the live progress line the record would be glued to."""

    def __init__(self, progress: StepProgress) -> None:
        super().__init__()
        self._progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self._progress.wipe()
        return True

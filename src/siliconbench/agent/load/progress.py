"""Progress of a step for the person watching: a live line on a terminal, plain log lines otherwise. It
counts nothing itself: it shows the step's tally (agent/load/tally.py).

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

from siliconbench.agent.load.tally import StepTally

log = logging.getLogger(__name__)
REFRESH_S = 0.5
WIPE = "\r\x1b[2K"  # to the line's start, erase the line


class Stream(Protocol):
    """What progress is written to: a terminal, a log file, or nothing (the load generator's null stream)."""

    def isatty(self) -> bool: ...
    def write(self, text: str, /) -> object: ...
    def flush(self) -> None: ...


class StepProgress:
    """Shows a step's tally; `update` is cheap (called per finished request), redraws at most every
    REFRESH_S on a TTY and writes nothing until `finish` otherwise."""

    def __init__(self, title: str, tally: StepTally, total: int, stream: Stream | None = None,
                 note: Callable[[], str | None] | None = None) -> None:
        """`total`: the step's requests (0: bound by duration). `note`, asked at each redraw, adds why the
        load is held back (e.g. the spool's disk is full)."""
        self._stream = stream or sys.stderr
        self._note = note
        self._live = self._stream.isatty()
        self.title = title
        self.tally = tally
        self.total = total
        self._t0 = time.perf_counter()
        self._drawn = 0.0
        self._on_screen = False
        self._guard = _WipeBeforeRecord(self)
        self._guarded = [h for h in logging.getLogger().handlers if getattr(h, "stream", None) is self._stream]
        if self._live:
            for handler in self._guarded:
                handler.addFilter(self._guard)

    def update(self) -> None:
        """A request of the step has finished (and is in the tally)."""
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
        tally = self.tally
        return (f"{self.title}: {held}{tally.requests}{total} requests  "
                f"{tally.throughput.tokens / elapsed:,.0f} output tok/s  {tally.errors} errors  {elapsed:.1f} s")

    def finish(self, note: str = "") -> None:
        """The step's last line: its output tok/s as the reports state it (StepThroughput), then `note`."""
        total = f"/{self.total}" if self.total else ""
        tally, throughput = self.tally, self.tally.throughput
        line = (f"{self.title}: {tally.requests}{total} requests  {throughput.output_tps:,.0f} output tok/s over "
                f"{throughput.wall_s:.2f} s (first send to last end)  {tally.errors} errors" + (f"  {note}" if note else ""))
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

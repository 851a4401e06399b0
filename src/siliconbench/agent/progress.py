"""Progress of a step for the person watching: a live line on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Protocol

log = logging.getLogger("siliconbench.agent.progress")
REFRESH_S = 0.5


class Stream(Protocol):
    """What progress is written to: a terminal, a log file, or nothing (the load generator's null stream)."""

    def isatty(self) -> bool: ...
    def write(self, text: str, /) -> object: ...
    def flush(self) -> None: ...


class StepProgress:
    """Counts a step's finished requests; `update` is cheap (called per request), redraws at most every
    REFRESH_S on a TTY and writes nothing until `done` otherwise."""

    def __init__(self, title: str, total: int, stream: Stream | None = None) -> None:
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty()
        self.title = title
        self.total = total
        self.done_requests = 0
        self.errors = 0
        self.tokens = 0
        self._t0 = time.perf_counter()
        self._drawn = 0.0

    def update(self, output_tokens: int, failed: bool) -> None:
        self.done_requests += 1
        self.tokens += output_tokens
        self.errors += failed
        if self._live:
            now = time.perf_counter()
            if now - self._drawn >= REFRESH_S:
                self._drawn = now
                self._stream.write("\r\x1b[2K" + self._line(now))
                self._stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self._t0, 1e-9)
        total = f"/{self.total}" if self.total else ""
        return (f"{self.title}: {self.done_requests}{total} requests  {self.tokens / elapsed:,.0f} output tok/s  "
                f"{self.errors} errors  {elapsed:.1f} s")

    def finish(self, note: str = "") -> None:
        line = self._line(time.perf_counter()) + (f"  {note}" if note else "")
        if self._live:
            self._stream.write("\r\x1b[2K" + line + "\n")
            self._stream.flush()
        else:
            log.info("%s", line)

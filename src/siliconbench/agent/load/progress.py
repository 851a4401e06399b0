"""Progress of a step for the person watching: a live line on a terminal, plain log lines otherwise. It
counts nothing itself: it shows the step's tally (agent/load/tally.py), and where the whole run stands
(`PlanProgress`: steps done of all, and an estimate of the time left).

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
from siliconbench.core.plan import StepSpec

log = logging.getLogger(__name__)
REFRESH_S = 0.5
WIPE = "\r\x1b[2K"  # to the line's start, erase the line


class Stream(Protocol):
    """What progress is written to: a terminal, a log file, or nothing (the load generator's null stream)."""

    def isatty(self) -> bool: ...
    def write(self, text: str, /) -> object: ...
    def flush(self) -> None: ...


class PlanProgress:
    """Where the whole run stands: its steps done of all, and the seconds left, from each step's bounds
    (requests at a rate, a duration) and the pace of the run so far (a closed-loop step's seconds per
    request times its concurrency, from the last one finished). Told, never timing anything itself."""

    def __init__(self, specs: list[StepSpec]) -> None:
        """`specs`: every step of the run in order, repetitions included."""
        self._specs = specs
        self.finished = 0
        self._request_s: float | None = None  # a closed-loop request's seconds x its concurrency

    def step_ended(self, wall_s: float, requests: int) -> None:
        """The step under way ended after `wall_s` with `requests` measured. A run may go past its listed
        steps (a search's probes, sized as it goes): those are counted, not estimated."""
        if self.finished < len(self._specs):
            spec = self._specs[self.finished]
            if not spec.open_loop and requests:
                self._request_s = wall_s * spec.concurrency / requests
        self.finished += 1

    def left_s(self, elapsed_s: float, requests: int) -> float | None:
        """Seconds left in the run, `elapsed_s` and `requests` into the step under way; None while a step's
        length cannot be told yet (closed-loop steps bound by requests alone, before one has finished)."""
        if self.finished >= len(self._specs):
            return 0.0
        now = self._current_left(self._specs[self.finished], elapsed_s, requests)
        later = [self._step_s(spec) for spec in self._specs[self.finished + 1:]]
        if now is None or any(s is None for s in later):
            return None
        return now + sum(s for s in later if s is not None)

    def text(self, elapsed_s: float, requests: int) -> str:
        if self.finished > len(self._specs):  # past the listed steps: a search sizing its probes as it goes
            return f"run: {self.finished} steps done"
        done = f"run: {self.finished}/{len(self._specs)} steps done"
        left = self.left_s(elapsed_s, requests)
        return done if left is None else f"{done}, about {_duration(left)} left"

    def _current_left(self, spec: StepSpec, elapsed_s: float, requests: int) -> float | None:
        if spec.requests and requests:
            left: float | None = elapsed_s * max(spec.requests - requests, 0) / requests  # at the step's own pace
        else:
            whole = self._step_s(spec)
            left = None if whole is None else max(whole - elapsed_s, 0.0)
        if spec.duration_s:
            bound = max(spec.duration_s - elapsed_s, 0.0)
            return bound if left is None else min(left, bound)
        return left

    def _step_s(self, spec: StepSpec) -> float | None:
        if not spec.requests:
            return spec.duration_s
        estimate = (spec.requests / spec.rate_rps if spec.open_loop
                    else None if self._request_s is None else spec.requests * self._request_s / spec.concurrency)
        if spec.duration_s:
            return spec.duration_s if estimate is None else min(estimate, spec.duration_s)
        return estimate


def _duration(seconds: float) -> str:
    """`seconds` as a person reads a time left: 42 s, 3 min 05 s, 1 h 20 min."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class StepProgress:
    """Shows a step's tally; `update` is cheap (called per finished request), redraws at most every
    REFRESH_S on a TTY and writes nothing until `finish` otherwise."""

    def __init__(self, title: str, tally: StepTally, total: int, stream: Stream | None = None,
                 note: Callable[[], str | None] | None = None, run: PlanProgress | None = None) -> None:
        """`total`: the step's requests (0: bound by duration). `note`, asked at each redraw, adds why the
        load is held back (e.g. the spool's disk is full). `run`: the whole run's progress, shown after the
        step's (tell it the step ended before `finish`)."""
        self._stream = stream or sys.stderr
        self._note = note
        self._live = self._stream.isatty()
        self.title = title
        self.tally = tally
        self.total = total
        self._run = run
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
        run = f"({self._run.text(elapsed, tally.requests)})  " if self._run is not None else ""  # before a cut
        return (f"{self.title}: {held}{tally.requests}{total} requests  {run}"
                f"{tally.throughput.tokens / elapsed:,.0f} output tok/s  {tally.errors} errors  {elapsed:.1f} s")

    def finish(self, note: str = "") -> None:
        """The step's last line: its output tok/s as the reports state it (StepThroughput), then `note`."""
        total = f"/{self.total}" if self.total else ""
        tally, throughput = self.tally, self.tally.throughput
        line = (f"{self.title}: {tally.requests}{total} requests  {throughput.output_tps:,.0f} output tok/s over "
                f"{throughput.wall_s:.2f} s (first send to last end)  {tally.errors} errors" + (f"  {note}" if note else "")
                + (f"  | {self._run.text(0.0, 0)}" if self._run is not None else ""))
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

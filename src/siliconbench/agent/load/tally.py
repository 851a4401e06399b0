"""What the load generator counts: each finished request once, into its step's tally (nothing kept), and
the run's steps as they finish.

Every count of the run is read from here: the step's event and its last line (agent/load/step.py), the
live progress line (agent/load/progress.py), the run's end event (`RunEvent.requests_sent`, which the
collector compares with what it stored; agent/app.py) and the fleet's progress reports (agent/fleet.py).
"""

from __future__ import annotations

from collections import Counter

from siliconbench.core.wire import pb


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


class StepTally:
    """One step's finished requests, each added once as it finishes (cheap: called per request)."""

    __slots__ = ("requests", "errors", "early", "dispatch_ns", "start_ns", "e2e_ns", "by_class", "first_error",
                 "throughput", "_wanted")

    def __init__(self, output_tokens_wanted: int) -> None:
        """`output_tokens_wanted`: a successful request that ended with fewer output tokens ended early."""
        self.requests = self.errors = self.early = 0
        self.dispatch_ns: list[int] = []
        self.start_ns: list[int] = []  # each request's send (Unix ns), in the order of dispatch_ns
        self.e2e_ns: list[int] = []  # of the successful requests
        self.by_class: Counter[str] = Counter()
        self.first_error = ""  # the first failed request's message
        self.throughput = StepThroughput()
        self._wanted = output_tokens_wanted

    def add(self, record: pb.RequestRecord) -> None:
        self.requests += 1
        self.dispatch_ns.append(record.dispatch_delay_ns)
        self.start_ns.append(record.start_unix_ns)
        self.throughput.add(record)
        if record.error_class:
            if not self.errors:
                self.first_error = record.error_message
            self.errors += 1
            self.by_class[record.error_class] += 1
        else:
            self.e2e_ns.append(record.e2e_ns)
            if record.output_tokens < self._wanted:
                self.early += 1


class RunTally:
    """A run's steps: the tallies of those finished (their events are out) and of the one under way, whose
    requests count as soon as they finish (a run stopped mid-step kept them)."""

    __slots__ = ("finished", "current")

    def __init__(self) -> None:
        self.finished: list[StepTally] = []
        self.current: StepTally | None = None

    def begin(self, output_tokens_wanted: int) -> StepTally:
        self.current = StepTally(output_tokens_wanted)
        return self.current

    def end(self) -> None:
        """The step under way has finished: its event is out."""
        assert self.current is not None
        self.finished.append(self.current)
        self.current = None

    @property
    def steps(self) -> int:
        """Steps finished."""
        return len(self.finished)

    @property
    def requests(self) -> int:
        """Request records handed to the sink, the step under way's included."""
        return sum(t.requests for t in self._all())

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self._all())

    def _all(self) -> list[StepTally]:
        return self.finished + [self.current] if self.current is not None else self.finished

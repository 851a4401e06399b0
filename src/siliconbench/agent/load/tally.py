"""What the load generator counts of a step's finished requests: each record once, nothing kept."""

from __future__ import annotations

from collections import Counter

from siliconbench.agent.progress import StepProgress, StepThroughput
from siliconbench.core.wire import pb


class StepTally:
    """What a step's event and its last line need, gathered per finished request (cheap: no record is kept)."""

    __slots__ = ("requests", "errors", "early", "dispatch_ns", "by_class", "throughput", "progress")

    def __init__(self, progress: StepProgress) -> None:
        self.requests = self.errors = self.early = 0
        self.dispatch_ns: list[int] = []
        self.by_class: Counter[str] = Counter()
        self.throughput = StepThroughput()
        self.progress = progress

    def add(self, record: pb.RequestRecord, output_tokens_wanted: int) -> None:
        self.requests += 1
        self.dispatch_ns.append(record.dispatch_delay_ns)
        self.throughput.add(record)
        failed = bool(record.error_class)
        if failed:
            self.errors += 1
            self.by_class[record.error_class] += 1
        elif record.output_tokens < output_tokens_wanted:
            self.early += 1
        self.progress.update(record.output_tokens, failed)

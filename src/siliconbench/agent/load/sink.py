"""Where the load generator's records go: the agent's shipper, or a list in tests and benches.

One method takes every item, one at a time, in the order they happen: a run's start, each finished
request, a step's server metrics, the step's event (after every record of the step), the run's end.
"""

from __future__ import annotations

from typing import Protocol, TypeAlias

from siliconbench.core.wire import pb

Item: TypeAlias = pb.RunEvent | pb.StepEvent | pb.RequestRecord | pb.ServerMetric


class RecordSink(Protocol):
    """Takes the load's items and says when it has room for more (the shipper in the agent; a list in tests)."""

    def add(self, item: Item) -> None: ...

    async def wait_for_room(self) -> None:
        """Return when the sink can take more records (the shipper's spool is not full). Awaited before each
        step, and before each request sent from the agent's own process."""

    def pause_reason(self) -> str | None:
        """Why `wait_for_room` would wait now (the spool is full, or its disk refuses writes); None: it would not.
        The step's progress line shows it."""

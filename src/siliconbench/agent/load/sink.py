"""Where the load generator's records go: the agent's shipper, or a list in tests and benches."""

from __future__ import annotations

from typing import Protocol

from siliconbench.core.wire import pb


class RecordSink(Protocol):
    """Where records go (the shipper in the agent; a list in tests)."""

    def add_run(self, event: pb.RunEvent) -> None: ...

    def add_step(self, event: pb.StepEvent) -> None: ...

    def add_request(self, record: pb.RequestRecord) -> None: ...

    def add_server_metrics(self, metrics: list[pb.ServerMetric]) -> None: ...

    async def wait_for_room(self) -> None:
        """Return when the sink can take another step's records (the shipper's spool is not full)."""

    def pause_reason(self) -> str | None:
        """Why `wait_for_room` would wait now (the spool is full, or its disk refuses writes); None: it would not.
        The step's progress line shows it."""

"""The outbox of fleet commands: kept per agent until acknowledged, sent again in order, and let go
of when they can no longer matter."""

from __future__ import annotations

import time

from siliconbench.collector.commands import Outbox
from siliconbench.core.wire import pb

def later_ns() -> int:
    """A minute from now: taken when a test runs, not when the suite was collected long before."""
    return time.time_ns() + 60 * 10**9


def start(run_id: str) -> pb.Command:
    return pb.Command(start=pb.StartCommand(run_id=run_id))


def cancel(run_id: str) -> pb.Command:
    return pb.Command(cancel=pb.CancelCommand(run_id=run_id))


def test_commands_wait_per_agent_in_order_until_each_is_acknowledged():
    outbox = Outbox()
    first = outbox.put("a", start("r1"), later_ns())
    second = outbox.put("a", cancel("r1"), later_ns())
    other = outbox.put("b", start("r1"), later_ns())
    assert len({first.id, second.id, other.id}) == 3 and 0 not in {first.id, second.id, other.id}
    assert outbox.due("a") == [first, second] and outbox.due("a") == [first, second]  # sent again, not consumed
    assert outbox.unacknowledged("a", "r1") == ["start", "cancel"] and outbox.unacknowledged("a", "r2") == []
    outbox.acknowledged("a", first.id)
    outbox.acknowledged("a", other.id)  # another agent's id changes nothing here
    assert outbox.due("a") == [second] and outbox.due("b") == [other]


def test_a_command_past_its_time_is_dropped_unacknowledged():
    outbox = Outbox()
    outbox.put("a", start("r1"), time.time_ns() - 1)  # a start past the run's start grace
    kept = outbox.put("a", cancel("r1"), later_ns())
    assert outbox.due("a") == [kept]
    assert outbox.unacknowledged("a", "r1") == ["cancel"]


def test_a_cancelled_runs_starts_are_withdrawn_and_other_runs_keep_theirs():
    outbox = Outbox()
    outbox.put("a", start("r1"), later_ns())
    other = outbox.put("b", start("r2"), later_ns())
    outbox.withdraw_starts("r1")
    assert outbox.due("a") == [] and outbox.due("b") == [other]

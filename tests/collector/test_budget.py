"""The collector's global byte budget: batches wait (in arrival order) instead of being refused,
and nothing is lost when a waiting stream goes away."""

from __future__ import annotations

import asyncio

import pytest

from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.wire import pb
from tests.collector.test_service import count, open_stream, record

from siliconbench.collector.budget import ByteBudget


async def settled() -> None:
    for _ in range(3):  # let woken waiters run
        await asyncio.sleep(0)


async def test_what_fits_goes_at_once_and_the_rest_waits_until_released():
    budget = ByteBudget(100)
    first = await budget.acquire(60)
    waiting = asyncio.create_task(budget.acquire(60))
    await settled()
    assert not waiting.done() and budget.in_flight == 60
    budget.release(first)
    assert await waiting == 60 and budget.in_flight == 60


async def test_waiters_go_in_arrival_order_even_when_a_later_one_would_fit():
    budget = ByteBudget(100)
    held = await budget.acquire(90)
    big = asyncio.create_task(budget.acquire(50))
    small = asyncio.create_task(budget.acquire(5))  # fits now, but came later: no overtaking
    await settled()
    assert not big.done() and not small.done()
    budget.release(held)
    await asyncio.gather(big, small)
    assert budget.in_flight == 55


async def test_a_message_larger_than_the_budget_goes_alone():
    budget = ByteBudget(100)
    assert await budget.acquire(500) == 100
    assert budget.in_flight == 100


async def test_a_cancelled_waiter_lets_the_next_one_through():
    budget = ByteBudget(100)
    held = await budget.acquire(80)
    gone = asyncio.create_task(budget.acquire(50))
    after = asyncio.create_task(budget.acquire(20))
    await settled()
    gone.cancel()
    assert await after == 20
    with pytest.raises(asyncio.CancelledError):
        await gone
    budget.release(held)
    budget.release(20)
    assert budget.in_flight == 0


def test_a_budget_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        ByteBudget(0)


async def test_streams_over_the_budget_are_stored_one_after_another_not_refused(store, unique_id):
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(max_bytes_in_flight=1))
    try:
        async def send(a: int) -> int:
            channel, call = await open_stream(port, f"agent-{a}-{unique_id}")
            await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"agent-{a}-{unique_id}/1",
                                                            requests=[record(unique_id, a)])))
            reply = await call.read()
            await channel.close()
            return reply.ack.seq

        assert await asyncio.gather(*(send(a) for a in range(5))) == [1] * 5
    finally:
        await srv.stop(1)
    assert count(store, "requests", unique_id) == 5
    assert service.budget.peak == 1 and service.budget.in_flight == 0

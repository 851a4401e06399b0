"""The collector's global byte budget: batches wait (in arrival order) instead of being refused,
nothing is lost when a waiting stream goes away, and a batch is received only once the budget has room
for it (the agent offers it and sends it when granted)."""

from __future__ import annotations

import asyncio

import time

import pytest

from siliconbench.collector import budget as budget_module
from siliconbench.collector.budget import ByteBudget
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.wire import pb
from tests.collector.test_service import count, open_stream, record, shipper_for


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
    assert service.budget.charged_late == 5  # sent unannounced (an older agent): charged once received


async def until(condition, timeout_s: float = 20.0) -> None:
    """Wait for a state of the in-process server (no event to await there)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the server never reached the awaited state"
        await asyncio.sleep(0.01)


def batch_message(unique_id: str, a: int) -> pb.AgentMessage:
    return pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"agent-{a}-{unique_id}/1", requests=[record(unique_id, a)]))


async def offer(call, size: int) -> None:
    await call.write(pb.AgentMessage(offer=pb.Offer(seq=1, bytes=size)))


@pytest.fixture
async def one_batch_server(store, unique_id):
    """A collector whose budget holds exactly one of `batch_message`'s batches."""
    srv, service, port = await build_server(store, "127.0.0.1:0",
                                            ServerOptions(max_bytes_in_flight=batch_message(unique_id, 0).ByteSize()))
    yield service, port
    await srv.stop(1)
    service.close()


async def test_an_offer_is_granted_only_when_its_batch_fits_and_the_batch_then_uses_that_grant(
        store, unique_id, one_batch_server):
    service, port = one_batch_server
    size = batch_message(unique_id, 0).ByteSize()
    (first_channel, first), (second_channel, second) = [await open_stream(port, f"agent-{a}-{unique_id}")
                                                        for a in range(2)]
    await offer(first, size)
    assert (await first.read()).grant.seq == 1
    await offer(second, size)
    await until(lambda: service.budget.waiting == 1)  # no room: the second batch is not asked for
    await first.write(batch_message(unique_id, 0))
    assert (await first.read()).ack.seq == 1
    assert (await second.read()).grant.seq == 1  # room again once the first batch is stored
    await second.write(batch_message(unique_id, 1))
    assert (await second.read()).ack.seq == 1
    for channel in (first_channel, second_channel):
        await channel.close()
    assert count(store, "requests", unique_id) == 2
    assert (service.budget.granted, service.budget.charged_late, service.budget.peak) == (2, 0, size)


async def test_a_stream_waiting_for_its_grant_is_still_read(store, unique_id, one_batch_server):
    """A fleet member's progress reports must not queue behind its grant: the collector reads (and here
    answers a misplaced Hello) while the offer waits for room."""
    service, port = one_batch_server
    size = batch_message(unique_id, 0).ByteSize()
    (first_channel, first), (second_channel, second) = [await open_stream(port, f"agent-{a}-{unique_id}")
                                                        for a in range(2)]
    await offer(first, size)
    assert (await first.read()).grant.seq == 1
    await offer(second, size)
    await until(lambda: service.budget.waiting == 1)
    await second.write(pb.AgentMessage(hello=pb.Hello(agent_id="again")))
    reply = await asyncio.wait_for(second.read(), 10)
    assert reply.WhichOneof("kind") == "error" and reply.error.code == pb.ERROR_CODE_PROTOCOL
    await first.write(batch_message(unique_id, 0))
    assert (await first.read()).ack.seq == 1
    assert (await second.read()).grant.seq == 1
    for channel in (first_channel, second_channel):
        await channel.close()
    await until(lambda: service.budget.in_flight == 0)  # the unused grant goes back with its stream


async def test_idle_streams_hold_nothing_and_a_grant_whose_batch_never_comes_is_withdrawn(
        store, unique_id, one_batch_server, monkeypatch):
    monkeypatch.setattr(budget_module, "GRANT_TIMEOUT_S", 0.2)
    service, port = one_batch_server
    size = batch_message(unique_id, 0).ByteSize()
    idle = [await open_stream(port, f"idle-{a}-{unique_id}") for a in range(3)]
    (hung_channel, hung), (live_channel, live) = [await open_stream(port, f"agent-{a}-{unique_id}") for a in range(2)]
    await offer(hung, size)
    assert (await hung.read()).grant.seq == 1  # ... and then sends nothing for a while
    await offer(live, size)
    assert (await live.read()).grant.seq == 1  # the hung stream's grant went back after its timeout
    await live.write(batch_message(unique_id, 1))
    assert (await live.read()).ack.seq == 1
    await hung.write(batch_message(unique_id, 0))  # late: charged once received, and stored
    assert (await hung.read()).ack.seq == 1
    for channel in [hung_channel, live_channel, *(channel for channel, _ in idle)]:
        await channel.close()
    assert count(store, "requests", unique_id) == 2
    assert (service.budget.granted, service.budget.charged_late, service.budget.in_flight) == (2, 1, 0)


async def test_shippers_offer_every_batch_and_none_is_received_without_a_grant(store, unique_id, tmp_path):
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(max_bytes_in_flight=2000))
    try:
        shippers = [shipper_for(f"127.0.0.1:{port}", f"agent-{a}-{unique_id}", tmp_path / str(a), max_items=5)
                    for a in range(6)]
        for a, shipper in enumerate(shippers):
            shipper.start()
            for i in range(20):
                shipper.add(record(unique_id, a * 100 + i))
        await asyncio.gather(*(shipper.close(timeout_s=60) for shipper in shippers))
    finally:
        await srv.stop(1)
        service.close()
    assert count(store, "requests", unique_id) == 120
    assert service.budget.charged_late == 0
    assert service.budget.granted == service.batches_stored >= 24
    assert service.budget.peak <= 2000 and service.budget.in_flight == 0


async def test_a_waiter_cancelled_before_its_clean_up_ran_is_skipped_not_granted():
    budget = ByteBudget(100)
    held = await budget.acquire(100)
    gone = asyncio.create_task(budget.acquire(50))
    after = asyncio.create_task(budget.acquire(50))
    await settled()
    gone.cancel()
    budget.release(held)  # before the cancelled waiter ran: its place goes to the next one
    assert await after == 50
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert budget.in_flight == 50 and budget.waiting == 0

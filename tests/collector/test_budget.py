"""The collector's global byte budget: batches wait (in turn between agents) instead of being refused,
nothing is lost when a waiting stream goes away, a message is read only once the budget covers it (the
agent offers its batch and sends it when granted), and hostile streams cannot starve an honest agent."""

from __future__ import annotations

import asyncio

import time

import grpc
import pytest

from siliconbench.collector import budget as budget_module
from siliconbench.collector.budget import ByteBudget
from siliconbench.collector.server import ServerOptions, build_server
from siliconbench.core.limits import MAX_MESSAGE_BYTES
from siliconbench.core.wire import OFFERS_METADATA, pb
from tests.collector.test_service import count, open_stream, record, shipper_for


async def settled() -> None:
    for _ in range(3):  # let woken waiters run
        await asyncio.sleep(0)


def proven_budget(limit: int, *owners: str) -> ByteBudget:
    """A budget whose `owners` all delivered batches before (agents never proven share half of it)."""
    budget = ByteBudget(limit)
    for owner in owners:
        budget.proven(owner, True)
    return budget


async def test_what_fits_goes_at_once_and_the_rest_waits_until_released():
    budget = ByteBudget(100)
    first = await budget.acquire(60)
    waiting = asyncio.create_task(budget.acquire(60))
    await settled()
    assert not waiting.done() and budget.in_flight == 60
    budget.release(first)
    assert await waiting == 60 and budget.in_flight == 60


async def test_one_agents_waiters_go_in_arrival_order_even_when_a_later_one_would_fit():
    budget = proven_budget(100, "x", "a")
    held = await budget.acquire(90, "x")
    big = asyncio.create_task(budget.acquire(40, "a"))
    small = asyncio.create_task(budget.acquire(5, "a"))  # fits now, but came later: no overtaking
    await settled()
    assert not big.done() and not small.done()
    budget.release(held, "x")
    await asyncio.gather(big, small)
    assert budget.in_flight == 45


async def test_agents_take_turns_however_many_requests_one_of_them_queued():
    budget = proven_budget(100, "x", "many", "one")
    await budget.acquire(100, "x")
    many = [asyncio.create_task(budget.acquire(10, "many")) for _ in range(3)]
    await settled()
    one = asyncio.create_task(budget.acquire(10, "one"))
    await settled()
    budget.release(20, "x")  # room for two: one of "many"'s, then "one"'s turn, not "many"'s second
    await settled()
    assert one.done() and sum(task.done() for task in many) == 1
    for task in many:
        task.cancel()


async def test_an_agent_holding_its_share_waits_while_another_agent_takes_the_rest():
    budget = proven_budget(100, "hog", "other")
    await budget.acquire(50, "hog")
    more = asyncio.create_task(budget.acquire(10, "hog"))  # room in the budget, but not in its share
    await settled()
    assert not more.done()
    assert await asyncio.wait_for(budget.acquire(50, "other"), 10) == 50


async def test_agents_never_proven_hold_half_the_budget_and_a_proven_agent_the_other_half():
    budget = ByteBudget(100)
    for name in ("new-1", "new-2"):
        await budget.acquire(20, name)
    third = asyncio.create_task(budget.acquire(20, "new-3"))  # room in the budget, not in the untried half
    await settled()
    assert not third.done()
    budget.proven("honest", True)
    assert await asyncio.wait_for(budget.acquire(50, "honest"), 10) == 50
    assert budget.in_flight == 90 and not third.done()
    third.cancel()


async def test_a_message_larger_than_the_budget_goes_alone():
    budget = ByteBudget(100)
    assert await budget.acquire(500) == 100
    assert budget.in_flight == 100


async def test_a_cancelled_waiter_lets_the_next_one_through():
    budget = proven_budget(100, "x", "a", "b")
    held = await budget.acquire(80, "x")
    gone = asyncio.create_task(budget.acquire(50, "a"))
    after = asyncio.create_task(budget.acquire(20, "b"))
    await settled()
    gone.cancel()
    assert await after == 20
    with pytest.raises(asyncio.CancelledError):
        await gone
    budget.release(held, "x")
    budget.release(20, "b")
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
    assert service.budget.covered == 5  # sent unannounced (an older agent): each read covered first


async def until(condition, timeout_s: float = 20.0) -> None:
    """Wait for a state of the in-process server (no event to await there)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the server never reached the awaited state"
        await asyncio.sleep(0.01)


def batch_message(unique_id: str, a: int) -> pb.AgentMessage:
    return pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"agent-{a}-{unique_id}/1", requests=[record(unique_id, a)]))


async def offering_stream(port: int, agent_id: str):
    """A stream of an agent that offers its batches (as the shipper does): its reads need no cover."""
    return await open_stream(port, agent_id, metadata=(OFFERS_METADATA,))


def prove(service, *agents: str) -> None:
    """As if `agents` had delivered batches as offered before: their streams are read without a cover."""
    for agent in agents:
        service.budget.proven(agent, True)


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
    prove(service, *(f"agent-{a}-{unique_id}" for a in range(2)))
    (first_channel, first), (second_channel, second) = [await offering_stream(port, f"agent-{a}-{unique_id}")
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
    assert (service.budget.granted, service.budget.covered, service.budget.peak) == (2, 0, size)


async def test_a_stream_waiting_for_its_grant_is_still_read(store, unique_id, one_batch_server):
    """A fleet member's progress reports must not queue behind its grant: the collector reads (and here
    answers a misplaced Hello) while the offer waits for room."""
    service, port = one_batch_server
    size = batch_message(unique_id, 0).ByteSize()
    prove(service, *(f"agent-{a}-{unique_id}" for a in range(2)))
    (first_channel, first), (second_channel, second) = [await offering_stream(port, f"agent-{a}-{unique_id}")
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


async def test_idle_streams_hold_nothing_and_a_grant_whose_batch_never_comes_ends_its_stream(
        store, unique_id, one_batch_server, monkeypatch):
    monkeypatch.setattr(budget_module, "GRANT_TIMEOUT_S", 0.2)
    service, port = one_batch_server
    size = batch_message(unique_id, 0).ByteSize()
    prove(service, *(f"idle-{a}-{unique_id}" for a in range(3)), *(f"agent-{a}-{unique_id}" for a in range(2)))
    idle = [await offering_stream(port, f"idle-{a}-{unique_id}") for a in range(3)]
    (hung_channel, hung), (live_channel, live) = [await offering_stream(port, f"agent-{a}-{unique_id}")
                                                  for a in range(2)]
    await offer(hung, size)
    assert (await hung.read()).grant.seq == 1  # ... and then sends nothing
    await offer(live, size)
    assert (await live.read()).grant.seq == 1  # the hung stream's grant went back after its timeout
    ended = await hung.read()
    assert ended.error.code == pb.ERROR_CODE_UNAVAILABLE and "did not arrive within" in ended.error.message
    assert await hung.read() is grpc.aio.EOF  # no read stays posted under a grant given back
    await live.write(batch_message(unique_id, 1))
    assert (await live.read()).ack.seq == 1
    for channel in [hung_channel, live_channel, *(channel for channel, _ in idle)]:
        await channel.close()
    assert count(store, "requests", unique_id) == 1
    await until(lambda: service.budget.in_flight == 0)
    assert (service.budget.granted, service.budget.covered) == (1, 0)


async def test_an_offer_over_the_message_limit_is_refused_at_once_and_starves_nobody(store, unique_id):
    srv, service, port = await build_server(store, "127.0.0.1:0")
    try:
        prove(service, f"honest-{unique_id}")
        (_, greedy), (_, honest) = [await offering_stream(port, f"{name}-{unique_id}") for name in ("greedy", "honest")]
        await greedy.write(pb.AgentMessage(offer=pb.Offer(seq=7, bytes=2**62)))
        refused = await asyncio.wait_for(greedy.read(), 10)
        assert (refused.error.seq, refused.error.code) == (7, pb.ERROR_CODE_INVALID)
        assert f"over the {MAX_MESSAGE_BYTES} byte message limit" in refused.error.message
        await offer(honest, 11 * 2**20)
        assert (await asyncio.wait_for(honest.read(), 10)).grant.seq == 1
        assert service.budget.held_by(f"honest-{unique_id}") == 11 * 2**20
    finally:
        await srv.stop(0)
        service.close()


async def test_an_honest_agent_is_granted_beside_a_hundred_streams_that_offer_and_never_send(
        store, unique_id, monkeypatch):
    """Agents that never delivered a batch are read under a cover and hold at most half the budget (24 MiB
    by default), one agent's streams at most its share: an agent that delivers is granted its 11 MiB batch
    while the hostile streams all stay open and hold what they took."""
    monkeypatch.setattr(budget_module, "IDLE_COVER_S", 600.0)  # the hostile covers stay held throughout
    srv, service, port = await build_server(store, "127.0.0.1:0")
    try:
        _, honest = await offering_stream(port, f"honest-{unique_id}")
        await offer(honest, batch_message(unique_id, 0).ByteSize())
        assert (await honest.read()).grant.seq == 1
        await honest.write(batch_message(unique_id, 0))
        assert (await honest.read()).ack.seq == 1
        hostile = [await offering_stream(port, f"hostile-{unique_id}") for _ in range(100)]
        for _, call in hostile:
            await offer(call, 2**20)
        await until(lambda: service.budget.waiting >= 1)  # the hostile streams hold what they may, and wait
        await offer(honest, 11 * 2**20)
        assert (await asyncio.wait_for(honest.read(), 10)).grant.seq == 1
        assert service.budget.held_by(f"hostile-{unique_id}") <= service.budget.limit_bytes // 2
        assert not any(call.done() for _, call in hostile)
    finally:
        await srv.stop(0)
        service.close()


async def test_a_batch_sent_without_a_grant_is_dropped_unread_into_the_budget_and_ends_its_stream(
        store, unique_id, one_batch_server):
    service, port = one_batch_server
    prove(service, f"agent-0-{unique_id}")
    channel, call = await offering_stream(port, f"agent-0-{unique_id}")
    await offer(call, 100)
    assert (await call.read()).grant.seq == 1
    await call.write(pb.AgentMessage(batch=pb.Batch(seq=1, batch_id=f"agent-0-{unique_id}/1",
                                                    requests=[record(unique_id, i) for i in range(50)])))
    refused = await call.read()
    assert refused.error.code == pb.ERROR_CODE_PROTOCOL and "under a grant of 100" in refused.error.message
    assert await call.read() is grpc.aio.EOF
    await channel.close()
    await until(lambda: service.budget.in_flight == 0)
    assert service.budget.peak <= batch_message(unique_id, 0).ByteSize() and count(store, "requests", unique_id) == 0


async def test_only_one_stream_of_a_proven_agent_is_read_without_a_cover(store, unique_id, one_batch_server):
    """An agent that opens a second stream cannot send through it against the rules: that stream is read
    under a cover, so its batch over the offered size is read as any unannounced batch, then stored."""
    service, port = one_batch_server
    agent = f"agent-0-{unique_id}"
    prove(service, agent)
    _, trusted = await offering_stream(port, agent)
    await offer(trusted, batch_message(unique_id, 0).ByteSize())
    assert (await trusted.read()).grant.seq == 1  # granted from the budget: the agent's trusted stream
    await trusted.write(batch_message(unique_id, 0))
    assert (await trusted.read()).ack.seq == 1
    second_channel, second = await offering_stream(port, agent)
    await offer(second, 100)
    assert (await second.read()).grant.seq == 1  # granted at once: its next read is covered
    await second.write(batch_message(unique_id, 1))
    assert (await second.read()).ack.seq == 1
    await second_channel.close()
    assert (service.budget.granted, service.budget.covered, count(store, "requests", unique_id)) == (1, 1, 2)


async def test_an_agent_that_does_not_offer_is_read_only_under_a_cover_of_the_largest_message(
        store, unique_id, one_batch_server):
    """Older agents send batches unannounced: each read waits until the budget covers it (half the budget;
    a larger batch takes the rest as it arrives), so two of them never hold two batches of a budget sized
    for one."""
    service, port = one_batch_server
    streams = [await open_stream(port, f"agent-{a}-{unique_id}") for a in range(2)]
    for a, (_, call) in enumerate(streams):
        await call.write(batch_message(unique_id, a))
    for _, call in streams:
        assert (await asyncio.wait_for(call.read(), 20)).ack.seq == 1
    for channel, _ in streams:
        await channel.close()
    await until(lambda: service.budget.in_flight == 0)
    assert service.budget.covered == 2 and service.budget.peak <= service.budget.limit_bytes + service.budget.cover
    assert count(store, "requests", unique_id) == 2


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
    assert service.budget.covered == 6  # each agent's first batch: then it has proven it sends as it offers
    assert service.budget.granted + service.budget.covered == service.batches_stored >= 24
    assert service.budget.peak <= 2000 and service.budget.in_flight == 0


async def test_a_waiter_cancelled_before_its_clean_up_ran_is_skipped_not_granted():
    budget = proven_budget(100, "x", "a", "b")
    held = await budget.acquire(100, "x")
    gone = asyncio.create_task(budget.acquire(50, "a"))
    after = asyncio.create_task(budget.acquire(50, "b"))
    await settled()
    gone.cancel()
    budget.release(held, "x")  # before the cancelled waiter ran: its place goes to the next one
    assert await after == 50
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert budget.in_flight == 50 and budget.waiting == 0


async def test_streams_over_the_cap_are_refused_so_memory_does_not_grow_with_clients(store, unique_id):
    srv, service, port = await build_server(store, "127.0.0.1:0", ServerOptions(max_streams=2))
    try:
        open_calls = [await offering_stream(port, f"agent-{a}-{unique_id}") for a in range(2)]
        for _, call in open_calls:
            await call.initial_metadata()  # accepted, and held open
        _, third = await offering_stream(port, f"agent-2-{unique_id}")
        assert await asyncio.wait_for(third.code(), 10) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not any(call.done() for _, call in open_calls)
    finally:
        await srv.stop(0)
        service.close()

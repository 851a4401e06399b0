"""Merged inserts: batches of many streams go into one insert per table, and still every batch is
stored exactly once — replays after a merged insert, batches whose ack was lost, replays that arrive
while the original is still being written — and one bad batch in a group fails only itself."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from siliconbench.collector.errors import StoreUnavailable
from siliconbench.collector.group_insert import GroupInserter, ReadyBatch, StoreFailed
from siliconbench.collector.service import TelemetryService
from siliconbench.core.wire import pb
from tests.collector.test_service import count, open_stream, record, server  # noqa: F401 (fixture)

ROWS_PER_BATCH = 3


def batch(run_id: str, agent: str, seq: int, **record_overrides) -> pb.Batch:
    sample = pb.DeviceSample(run_id=run_id, time_unix_ns=time.time_ns(), source="nvml", device="0",
                             values={"power_w": 300.0, "util_gpu_pct": 90.0})
    return pb.Batch(seq=seq, batch_id=f"{agent}/boot/{seq}", samples=[sample],
                    requests=[record(run_id, seq * 100 + i, **record_overrides) for i in range(ROWS_PER_BATCH)])


def ready(run_id: str, agent: str, seq: int, **record_overrides) -> ReadyBatch:
    raw = pb.AgentMessage(batch=batch(run_id, agent, seq, **record_overrides)).SerializeToString()
    return TelemetryService.parse(agent, raw)


def digested(store, run_id: str) -> int:
    """Requests counted by the materialized view's per-step digests."""
    return store.query("SELECT sum(requests) FROM {db}.request_digests FINAL WHERE run_id = {r:String}",
                       {"r": run_id}).result_rows[0][0]


@pytest.fixture
def inserts(store, monkeypatch) -> list[tuple[str, int]]:
    """(table, rows) of every insert the store makes during the test."""
    made, real = [], store.insert_arrow

    def recording(table, columns, token):
        made.append((table, columns.num_rows))
        real(table, columns, token)

    monkeypatch.setattr(store, "insert_arrow", recording)
    return made


@pytest.fixture
async def inserter(store):
    grouped = GroupInserter(store, writers=1, linger_s=0.05)
    yield grouped
    grouped.close()


async def test_batches_that_arrive_together_are_merged_into_one_insert_per_table(store, inserter, inserts, unique_id):
    await asyncio.gather(*(inserter.store(ready(unique_id, f"agent-{a}-{unique_id}", 1)) for a in range(10)))
    assert count(store, "requests", unique_id) == 10 * ROWS_PER_BATCH
    assert count(store, "device_samples", unique_id) == 10 * 2
    assert len(inserts) < 10 * 2  # fewer inserts than batches x tables
    assert digested(store, unique_id) == 10 * ROWS_PER_BATCH


async def test_a_replayed_batch_after_a_merged_insert_is_stored_once(store, inserter, unique_id):
    group = [ready(unique_id, f"agent-{a}-{unique_id}", 1) for a in range(3)]
    assert inserter.write(group) == {}
    # the second batch again, alone and then inside another merged group with a new batch
    await inserter.store(ready(unique_id, f"agent-1-{unique_id}", 1))
    replay_and_new = [ready(unique_id, f"agent-1-{unique_id}", 1), ready(unique_id, f"agent-1-{unique_id}", 2)]
    assert inserter.write(replay_and_new) == {}
    assert count(store, "requests", unique_id) == 4 * ROWS_PER_BATCH
    assert count(store, "device_samples", unique_id) == 4 * 2
    assert digested(store, unique_id) == 4 * ROWS_PER_BATCH


async def test_a_batch_whose_ack_was_lost_is_not_double_counted(store, server, unique_id):  # noqa: F811
    agent = f"agent-{unique_id}"
    channel, call = await open_stream(server, agent)
    await call.write(pb.AgentMessage(batch=batch(unique_id, agent, 1)))
    assert (await call.read()).ack.seq == 1  # stored; the agent dies before it records the ack
    call.cancel()
    await channel.close()

    async def resend_with_others(a: int) -> int:  # the restarted agent replays while other agents send
        name = agent if a == 0 else f"other-{a}-{unique_id}"
        ch, stream = await open_stream(server, name)
        await stream.write(pb.AgentMessage(batch=batch(unique_id, name, 1)))
        reply = await stream.read()
        await stream.done_writing()
        await ch.close()
        return reply.ack.seq

    assert await asyncio.gather(*(resend_with_others(a) for a in range(5))) == [1] * 5
    assert count(store, "requests", unique_id) == 5 * ROWS_PER_BATCH
    assert digested(store, unique_id) == 5 * ROWS_PER_BATCH


async def test_a_replay_that_arrives_while_the_original_is_written_waits_for_it(store, inserter, inserts, unique_id):
    agent = f"agent-{unique_id}"
    await asyncio.gather(*(inserter.store(ready(unique_id, agent, 1)) for _ in range(3)))
    assert count(store, "requests", unique_id) == ROWS_PER_BATCH
    assert inserts == [("requests", ROWS_PER_BATCH), ("device_samples", 2)]


async def test_a_merged_group_with_one_invalid_batch_rejects_only_that_batch(store, server, unique_id):  # noqa: F811
    async def send(a: int) -> pb.CollectorMessage:
        name = f"agent-{a}-{unique_id}"
        channel, call = await open_stream(server, name)
        overrides = {"e2e_ns": -5} if a == 2 else {}
        await call.write(pb.AgentMessage(batch=batch(unique_id, name, 1, **overrides)))
        reply = await call.read()
        await call.done_writing()
        await channel.close()
        return reply

    replies = await asyncio.gather(*(send(a) for a in range(5)))
    assert [r.WhichOneof("kind") for r in replies] == ["ack", "ack", "error", "ack", "ack"]
    assert replies[2].error.code == pb.ERROR_CODE_INVALID and "negative duration" in replies[2].error.message
    assert count(store, "requests", unique_id) == 4 * ROWS_PER_BATCH


class RefusingClient:
    """The store's client, except that ClickHouse refuses any insert into `requests` that holds a row of
    a poisoned batch (the driver's own error type: the store maps it)."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def raw_insert(self, table, column_names, block, **kwargs):
        data = block.read()  # the store hands the Arrow block over as a file
        if table.endswith("`requests`") and b"poison" in data:
            raise DatabaseError("Code: 53. DB::Exception: Type mismatch (injected)")
        return self._client.raw_insert(table, column_names, io.BytesIO(data), **kwargs)


async def test_a_batch_the_store_refuses_inside_a_merged_insert_fails_alone(store, inserter, monkeypatch, unique_id):
    real = store.client
    monkeypatch.setattr(store, "client", lambda: RefusingClient(real()))
    batches = [ready(unique_id, f"agent-{a}-{unique_id}" if a != 1 else f"poison-{unique_id}", 1) for a in range(4)]
    outcomes = await asyncio.gather(*(inserter.store(b) for b in batches), return_exceptions=True)
    assert [isinstance(o, StoreFailed) for o in outcomes] == [False, True, False, False]
    assert count(store, "requests", unique_id) == 3 * ROWS_PER_BATCH


async def test_a_store_that_is_down_fails_the_whole_group_and_stores_nothing(store, inserter, monkeypatch, unique_id):
    def down(table, columns, token):
        raise StoreUnavailable("ClickHouse is down (injected)")

    monkeypatch.setattr(store, "insert_arrow", down)
    outcomes = await asyncio.gather(*(inserter.store(ready(unique_id, f"agent-{a}-{unique_id}", 1)) for a in range(3)),
                                    return_exceptions=True)
    assert all(isinstance(o, StoreFailed) for o in outcomes)
    assert count(store, "requests", unique_id) == 0

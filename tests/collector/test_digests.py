"""Rows and digests as one unit: a step whose rows were stored but whose digest was not (a kill -9
between the two writes) is found, refused by reports, and rebuilt from its rows, by the inserter
when the batch is replayed and by the collector at start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from siliconbench.collector import digests
from siliconbench.collector.group_insert import GroupInserter
from siliconbench.collector.options import ReportOptions
from siliconbench.collector.reporting import render_report
from siliconbench.collector.store import Store
from tests.collector import rows
from tests.collector.test_merged_ingest import ROWS_PER_BATCH, digested, ready


def lose_digests(store, run_id: str) -> None:
    """The state a kill -9 between the `requests` insert and its materialized view's leaves behind."""
    store.command("DELETE FROM {db}.request_digests WHERE run_id = {r:String}", {"r": run_id},
                  settings={"lightweight_deletes_sync": 2})


@pytest.fixture
async def inserter(store):
    grouped = GroupInserter(store, writers=1, linger_s=0.0)
    yield grouped
    grouped.close()


def test_a_step_with_rows_but_no_digest_is_named_with_both_counts(store, inserter, unique_id):
    agent = f"agent-{unique_id}"
    assert inserter.write([ready(unique_id, agent, 1), ready(unique_id, agent, 2)]) == {}
    assert digests.stale_steps(store, [unique_id]) == []
    lose_digests(store, unique_id)
    assert digests.stale_steps(store, [unique_id]) == [
        digests.StaleStep(unique_id, agent, 0, rows=2 * ROWS_PER_BATCH, digested=0)]


def test_a_report_refuses_stale_digests_in_one_line_that_says_how_to_repair(store, inserter, unique_id):
    assert inserter.write([ready(unique_id, f"agent-{unique_id}", 1)]) == {}
    lose_digests(store, unique_id)
    with pytest.raises(digests.DigestsStale, match="start the collector on this store once") as refused:
        render_report(ReportOptions(store=store.location.dsn, runs=(unique_id,)))
    assert "\n" not in str(refused.value)


def test_repair_rebuilds_the_digest_from_the_rows_and_a_second_repair_still_works(store, inserter, unique_id):
    agent = f"agent-{unique_id}"
    assert inserter.write([ready(unique_id, agent, 1), ready(unique_id, agent, 2)]) == {}
    for _ in range(2):  # the second rebuild inserts the same block again: deduplication must not drop it
        lose_digests(store, unique_id)
        assert [s.step for s in digests.repair(store, [unique_id])] == [0]
        assert digested(store, unique_id) == 2 * ROWS_PER_BATCH
        assert digests.stale_steps(store, [unique_id]) == []


def test_repair_leaves_consistent_steps_alone(store, inserter, unique_id):
    assert inserter.write([ready(unique_id, f"agent-{unique_id}", 1)]) == {}
    assert digests.repair(store, [unique_id]) == []
    assert digested(store, unique_id) == ROWS_PER_BATCH


async def test_a_replay_of_a_batch_whose_digest_was_lost_rebuilds_it(store, inserter, unique_id):
    agent = f"agent-{unique_id}"
    await inserter.store(ready(unique_id, agent, 1))
    await inserter.store(ready(unique_id, agent, 2))
    lose_digests(store, unique_id)  # batch 2 was not acknowledged: the agent replays it
    await inserter.store(ready(unique_id, agent, 2))
    assert inserter.replays_skipped == 1 and inserter.digests_repaired == 1
    assert digested(store, unique_id) == 2 * ROWS_PER_BATCH
    assert digests.stale_steps(store, [unique_id]) == []


def test_a_store_with_digests_per_step_gets_them_rebuilt_per_batch_from_its_rows_at_start(store, unique_id):
    old = Store(replace(store.location, database=f"old_{unique_id}"))
    try:
        old.ensure_schema()
        old.command("DROP VIEW {db}.request_digests_mv")  # the layout before digests were kept per batch
        old.command("DROP TABLE {db}.request_digests")
        old.command("CREATE TABLE {db}.request_digests (run_id String, agent_id LowCardinality(String), step UInt32, "
                    "requests SimpleAggregateFunction(sum, UInt64)) ENGINE = AggregatingMergeTree "
                    "ORDER BY (run_id, agent_id, step)")
        old.insert("requests", [rows.request(unique_id, "n1", i) for i in range(3)], f"{unique_id}/1")
        old.ensure_schema()  # this collector starts on that store
        [[engine]] = old.query("SELECT engine FROM system.tables WHERE database = {d:String} AND name = "
                               "'request_digests'", {"d": old.location.database}).result_rows
        assert engine == "ReplacingMergeTree"
        assert digested(old, unique_id) == 3 and digests.stale_steps(old, [unique_id]) == []
        old.insert("requests", [rows.request(unique_id, "n1", i) for i in range(3, 5)], f"{unique_id}/2")
        assert digested(old, unique_id) == 5  # the view fills the new table
    finally:
        old.command("DROP DATABASE IF EXISTS {db}")
        old.close()

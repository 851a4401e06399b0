"""Repairs that race: two collector replicas on one store can find the same step's digest short at
the same moment and both rebuild it, and a replica can rebuild a step while another's insert into
it is between its rows and its digest. Whatever the interleaving, reports count every stored row
exactly once.

Two replicas are modelled as two threads on one Store (a client each, as two processes would
have; chDB lets one process only open a path), made to run their statements in lockstep: each
repair's first statement starts when the other's does, and so on, so both read the same stale
step, both delete, then both insert."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from siliconbench.collector import digests
from siliconbench.collector.group_insert import GroupInserter
from siliconbench.collector.options import ReportOptions
from siliconbench.collector.reporting import render_report
from siliconbench.collector.schema import digest_select
from siliconbench.collector.store import Store
from tests.collector import rows
from tests.collector.test_digests import lose_digests
from tests.collector.test_merged_ingest import ROWS_PER_BATCH, ready
from tests.collector.test_service import count

_LOCKSTEP_S = 30.0  # only reached if the two repairs make different statements: then each goes on alone


class Lockstep:
    """The store as one of two replicas sees it: every statement waits until the other replica's
    statement of the same rank starts with it (until either replica is done)."""

    def __init__(self, store: Store, together: threading.Barrier) -> None:
        self._store = store
        self._together = together

    def query(self, sql: str, parameters: dict | None = None):
        self._wait()
        return self._store.query(sql, parameters)

    def command(self, sql: str, parameters: dict | None = None, settings: dict | None = None) -> None:
        self._wait()
        self._store.command(sql, parameters, settings)

    def _wait(self) -> None:
        try:
            self._together.wait(_LOCKSTEP_S)
        except threading.BrokenBarrierError:
            pass  # the other replica finished: nothing left to race with


def repair_in_lockstep(store: Store, runs: list[str], replicas: int = 2) -> list[list[digests.StaleStep]]:
    together = threading.Barrier(replicas)

    def one_replica(_: int) -> list[digests.StaleStep]:
        try:
            return digests.repair(Lockstep(store, together), runs)  # type: ignore[arg-type]
        finally:
            together.abort()  # a replica that is done lets the other go on alone

    with ThreadPoolExecutor(replicas) as pool:
        return list(pool.map(one_replica, range(replicas)))


def reported_requests(store: Store, run_id: str) -> int:
    """The requests the JSON report counts for the run, over its steps."""
    text = render_report(ReportOptions(store=store.location.dsn, runs=(run_id,), fmt="json", cost=False))
    return sum(step["requests"] for step in json.loads(text)["steps"])


@pytest.fixture
def agent(store, unique_id) -> str:
    """The agent of a run started under `unique_id` (the report needs its run's start event)."""
    name = f"agent-{unique_id}"
    store.insert("runs", [rows.run(unique_id, name)], f"{unique_id}/run")
    return name


@pytest.fixture
async def inserter(store):
    grouped = GroupInserter(store, writers=1, linger_s=0.0)
    yield grouped
    grouped.close()


def test_two_replicas_repairing_the_same_lost_digest_count_each_request_once(store, agent, inserter, unique_id):
    assert inserter.write([ready(unique_id, agent, 1), ready(unique_id, agent, 2)]) == {}
    lose_digests(store, unique_id)
    first, second = repair_in_lockstep(store, [unique_id])
    assert [s.step for s in first] == [s.step for s in second] == [0]  # both found it, both rebuilt it
    assert digests.stale_steps(store, [unique_id]) == []
    assert reported_requests(store, unique_id) == count(store, "requests", unique_id) == 2 * ROWS_PER_BATCH


def test_a_repair_while_another_replica_writes_the_step_counts_the_new_batch_once(store, agent, inserter, unique_id):
    late = ready(unique_id, agent, 2)
    assert inserter.write([ready(unique_id, agent, 1), late]) == {}
    # Batch 1's digest was lost by a crash; batch 2 is another replica's insert, its rows in and its
    # digest (the materialized view's block) not yet.
    lose_digests(store, unique_id)
    assert [s.step for s in digests.repair(store, [unique_id])] == [0]  # this replica rebuilds the step
    store.command("INSERT INTO {db}.request_digests "                   # then the other's digest lands
                  + digest_select("(SELECT * FROM {db}.requests WHERE batch_id = {b:String})"), {"b": late.batch_id})
    assert digests.stale_steps(store, [unique_id]) == []
    assert reported_requests(store, unique_id) == count(store, "requests", unique_id) == 2 * ROWS_PER_BATCH

"""Request rows and their digests as one unit: find the steps where they disagree and rebuild those
digests from the rows.

Reports read counts, means and throughput from `request_digests`, which a materialized view fills
as `requests` is inserted. The two are written one after the other, not atomically: a kill -9
between them (measured: 256 of 18,000 requests over five kills) leaves rows without their digest,
and the agent's replay is then left out as already stored. So the rows are the truth and the digest
is derived: a step whose digest counts a different number of requests than it has rows is rebuilt
from its rows (its digest rows deleted, then recomputed with the view's own SELECT; a crash in the
middle leaves a mismatch that the next repair finds again).

Who repairs: the collector at start, before it serves (a crash's leftovers), and the inserter when
a replay is left out as already stored in `requests` (a digest insert that failed alone). A report
only checks, never writes: it refuses a store with stale digests and says how to repair it.

Repairs need no lock, in one collector or across replicas on one store: a digest row is keyed by
(run, agent, step, batch) and made from all of that batch's rows of the step, so every row of a
key is the same digest, whether the view, this repair or another replica's made it, and readers
keep one (FINAL). Two repairs of one step at once both delete and both insert: one copy is read.
A repair that meets another replica's insert between its rows and its digest rebuilds that batch's
digest too, and the view's copy arriving later is the same row again. A batch's rows reach the view
in one block (measured with chDB: an ArrowStream insert of many batches, up to 2M rows, is one
block; the inserter writes at most 200,000 rows at once), so the view never makes two partial rows
of one key; if a server ever split one, the step would read short and be found here. The same holds
for rows written by hand without batch ids in many blocks (a large INSERT ... SELECT): they share
one key per step, so the step reads short until it is repaired (bench/report.py repairs after its
bulk insert).

Comparing counts reads three small columns of `requests` (about 30 ms for 2M rows on 2 cores).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from siliconbench.collector.errors import DigestsStale
from siliconbench.collector.schema import digest_select
from siliconbench.collector.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StaleStep:
    run_id: str
    agent_id: str
    step: int
    rows: int      # request rows stored for the step
    digested: int  # requests its digest counts

    def __str__(self) -> str:
        return (f"run {self.run_id!r} agent {self.agent_id!r} step {self.step}: {self.rows} rows, "
                f"{self.digested} in the digest")


_RUNS = "run_id IN {runs:Array(String)}"
_STALE = """
    SELECT run_id, agent_id, step, r.rows, d.digested
    FROM (SELECT run_id, toString(agent_id) AS agent_id, step, count() AS rows FROM {{db}}.requests
          WHERE {where} GROUP BY run_id, agent_id, step) AS r
    FULL OUTER JOIN
         (SELECT run_id, toString(agent_id) AS agent_id, step, sum(requests) AS digested
          FROM {{db}}.request_digests FINAL WHERE {where} GROUP BY run_id, agent_id, step) AS d
    USING (run_id, agent_id, step)
    WHERE r.rows != d.digested
    ORDER BY run_id, agent_id, step
    SETTINGS join_use_nulls = 0"""
_STEPS = "(run_id, toString(agent_id), step) IN {steps:Array(Tuple(String, String, UInt32))}"


def stale_steps(store: Store, runs: Iterable[str] | None = None) -> list[StaleStep]:
    """The steps (of `runs`; None: all) whose digest does not count exactly their rows. Read only."""
    if runs is None:
        rows = store.query(_STALE.format(where="1")).result_rows
    else:
        rows = store.query(_STALE.format(where=_RUNS), {"runs": sorted(set(runs))}).result_rows
    return [StaleStep(run, agent, int(step), int(n), int(d)) for run, agent, step, n, d in rows]


def repair(store: Store, runs: Iterable[str] | None = None) -> list[StaleStep]:
    """Rebuild from its rows the digest of every stale step (of `runs`; None: all); returns them.

    Safe while other repairs and inserts run, here or in another collector on the same store
    (module docstring): any interleaving leaves one digest per batch."""
    stale = stale_steps(store, runs)
    if not stale:
        return stale
    steps = {"steps": [(s.run_id, s.agent_id, s.step) for s in stale]}
    store.command(f"DELETE FROM {{db}}.request_digests WHERE {_STEPS}", steps,
                  settings={"lightweight_deletes_sync": 2})
    store.command("INSERT INTO {db}.request_digests "
                  + digest_select(f"(SELECT * FROM {{db}}.requests WHERE {_STEPS})"), steps)
    log.warning("rebuilt the request digests of %d step(s) from their rows (a crash between the row and digest "
                "writes): %s", len(stale), "; ".join(map(str, stale[:5])) + (" ..." if len(stale) > 5 else ""))
    return stale


def check(store: Store, runs: Iterable[str] | None = None) -> None:
    """Raise DigestsStale naming the first stale step and the fix, if any step (of `runs`) is stale."""
    stale = stale_steps(store, runs)
    if stale:
        raise DigestsStale(f"{len(stale)} step(s) have digests that do not match their rows ({stale[0]}), left by a "
                           "collector crash: start the collector on this store once (it rebuilds them before serving), "
                           "then report again")

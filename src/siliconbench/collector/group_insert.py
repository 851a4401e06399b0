"""Group commit: batches from many agent streams become one insert per table, and a replay is still
stored once.

An embedded ClickHouse (chDB) pays a fixed 3-10 ms per insert whatever its size, so 100 agents each
sending a batch a second would spend both cores on fixed costs if every batch were inserted alone.
Instead, batches that arrive while the writers are busy, or within `linger_s` of each other (unless
`full_rows` are queued already), form a group (at most `max_group_rows` rows) that is written with
one insert per table. Every row carries
its batch's id (schema.BATCH_ID), and before inserting, the group drops, table by table, the batches
that table already holds (one indexed query for all tables), so a replay, first stored alone or
merged with others, is never stored twice; the materialized view over `requests` only sees what is
inserted, so its digests never count a replay either. Within this process, a batch that is already
queued or being written is not queued again: its replay waits for that outcome.

A `requests` row and its digest are written one after the other (the materialized view): a replay
left out of `requests` gets the digests of its runs checked and rebuilt from the rows if an earlier
attempt stopped between the two (collector/digests.py). The rebuild needs no lock against inserts,
here or in another replica: digests are kept per batch, and a digest made twice is read once.

A batch is stored when every table's insert that contains it returned (or the table already held
it); only then does `store` return and the stream acknowledge it. When a merged insert fails for a
reason other than the store being down, each of its batches is inserted alone, so one batch the
store refuses fails only its own stream.

What this does not close: two collector processes inserting the same replay at the same moment both
find it absent and both insert it. An agent talks to one collector at a time, so that needs a replay
to a second replica while the first still writes the original: a stream broken by a fault (network,
agent restart) while its batch is being inserted. Planned stream ends never do it: the collector ends
a stream at its maximum age only after acknowledging every batch it took (collector/service.py),
instead of letting gRPC cut connections. On a cluster, tables are
ReplicatedMergeTree and an insert carries insert_deduplication_token (the batch_id for a single
batch, a hash of the sorted ids for a group): two replicas inserting the same single-batch replay are
deduplicated by Keeper, the remaining window is a replay merged into two different groups at once.

Memory: a stream has at most one batch here (it reads the next message only after the ack), and the
batches here and being parsed hold bytes of the service's global budget (collector/budget.py), so
what is pending is bounded by that budget whatever the number of streams.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from siliconbench.collector import digests
from siliconbench.collector.errors import CollectorError, StoreFailed, StoreUnavailable, first_line
from siliconbench.collector.kept import Keeper, Node, StepKey
from siliconbench.collector.schema import DEVICE_SAMPLES, REQUESTS, RUNS, STEPS
from siliconbench.collector.step_sql import KEY
from siliconbench.collector.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReadyBatch:
    """A checked batch, converted to column tables, waiting for its inserts."""

    agent: str
    seq: int
    batch_id: str
    tables: dict[str, pa.Table]

    @property
    def rows(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


class GroupInserter:
    def __init__(self, store: Store, writers: int = 1, linger_s: float = 0.05, full_rows: int = 10_000,
                 max_group_rows: int = 200_000, keeper: Keeper | None = None) -> None:
        self._store = store
        self._keeper = keeper  # told of the steps and ended runs each group stored (collector/kept.py)
        self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="insert")
        self._writers = writers
        self._linger_s = linger_s
        self._full_rows = full_rows
        self._max_rows = max_group_rows
        self._queue: list[ReadyBatch] = []
        self._queued_rows = 0
        self._first_queued = 0.0
        self._in_flight: dict[str, asyncio.Future] = {}  # batch_id -> outcome, from queued to written
        self._changed = asyncio.Event()  # both bind to the running loop on first use, not here
        self._free = asyncio.Semaphore(writers)
        self._flusher: asyncio.Task | None = None
        self._writing: set[asyncio.Task] = set()  # held here: the loop keeps only weak references
        self._written = asyncio.Event()  # set, and replaced by a new one, each time a group was written
        self.replays_skipped = 0
        self.digests_repaired = 0
        self.groups_written = 0
        self.batches_written = 0

    async def store(self, batch: ReadyBatch) -> None:
        """Return once `batch` is in every table it has rows for; raise StoreFailed if it is not."""
        while (earlier := self._in_flight.get(batch.batch_id)) is not None:
            try:  # the same batch is already on its way (a replay on a new stream): share its outcome
                await asyncio.shield(earlier)
                return
            except StoreFailed:
                continue  # that attempt failed (and left _in_flight): try again with this copy
        self._start()
        outcome = asyncio.get_running_loop().create_future()
        self._in_flight[batch.batch_id] = outcome
        if not self._queue:
            self._first_queued = time.monotonic()
        self._queue.append(batch)
        self._queued_rows += batch.rows
        self._changed.set()
        await asyncio.shield(outcome)  # a closed stream must not cancel a write that holds other batches

    def _start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await self._free.acquire()  # a writer is free ...
            while not self._queue:      # ... and something is queued
                self._changed.clear()
                await self._changed.wait()
            # Linger a moment so other streams' batches join the group, unless it is big enough
            # already that the insert's fixed cost does not matter.
            while self._queued_rows < self._full_rows:
                wait = self._first_queued + self._linger_s - time.monotonic()
                if wait <= 0:
                    break
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    break
            task = asyncio.create_task(self._write(self._take()))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)

    def _take(self) -> list[ReadyBatch]:
        group: list[ReadyBatch] = []
        rows = 0
        while self._queue and (not group or rows + self._queue[0].rows <= self._max_rows):
            batch = self._queue.pop(0)
            group.append(batch)
            rows += batch.rows
        self._queued_rows -= rows
        if self._queue:  # what is left waited already: it goes with the next free writer
            self._first_queued = 0.0
        return group

    async def _write(self, group: list[ReadyBatch]) -> None:
        try:
            failed = await asyncio.get_running_loop().run_in_executor(self._pool, self.write, group)
        except Exception as exc:  # not a driver catch (the store maps those): whatever failed, every stream
            failed = {batch.batch_id: exc for batch in group}  # waiting on the group must hear of it
        finally:
            self._free.release()
        for batch in group:
            outcome = self._in_flight.pop(batch.batch_id)
            if batch.batch_id in failed:
                outcome.set_exception(StoreFailed(batch.seq, failed[batch.batch_id]))
                outcome.exception()  # retrieved here: a stream that went away does not await it
            else:
                outcome.set_result(None)
        self._written.set()
        self._written = asyncio.Event()

    async def written(self, timeout_s: float) -> None:
        """Return when the next group was written (stored or failed), or after `timeout_s`."""
        try:
            await asyncio.wait_for(self._written.wait(), timeout_s)
        except TimeoutError:
            pass

    def write(self, group: list[ReadyBatch]) -> dict[str, BaseException]:
        """On a writer thread: insert the group, one insert per table, leaving out what each table
        already holds; returns the batches not stored, with the reason."""
        with self._store.writing:
            return self._write_group(group)

    def _write_group(self, group: list[ReadyBatch]) -> dict[str, BaseException]:
        members: dict[str, list[ReadyBatch]] = {}
        for batch in group:
            for table in batch.tables:
                members.setdefault(table, []).append(batch)
        held = self._store.stored_batches({table: [b.batch_id for b in batches] for table, batches in members.items()})
        skipped = {b for table, b in held}
        if skipped:
            self.replays_skipped += len(skipped)
            log.info("%d batch(es) already stored, not inserted again (replays): %s", len(skipped),
                     ", ".join(sorted(skipped)[:5]) + (" ..." if len(skipped) > 5 else ""))
        failed: dict[str, BaseException] = {}
        for table, batches in members.items():
            fresh = [b for b in batches if (table, b.batch_id) not in held and b.batch_id not in failed]
            if fresh:
                self._insert(table, fresh, failed)
            replayed = [b for b in batches if (table, b.batch_id) in held]
            if table == REQUESTS.name and replayed:
                self._repair_digests(replayed, failed)
        self.groups_written += 1
        self.batches_written += len(group) - len(failed)
        if self._keeper is not None:
            stored = [b for b in group if b.batch_id not in failed]
            self._keeper.notify(_steps_of(stored, REQUESTS.name), _steps_of(stored, STEPS.name), _ended(stored),
                                _nodes_in(stored, DEVICE_SAMPLES.name))
        return failed

    def _insert(self, table: str, batches: list[ReadyBatch], failed: dict[str, BaseException]) -> None:
        try:
            self._store.insert_arrow(table, _merged(table, batches), _token(batches))
            return
        except CollectorError as exc:  # the store maps its drivers' errors (store.store_error)
            if len(batches) == 1 or isinstance(exc, StoreUnavailable):  # down: one by one would fail too
                failed.update((b.batch_id, exc) for b in batches)
                return
            first = exc
        # The store refused the merged block: find the batch it refuses by inserting each alone,
        # after checking which of them the failed insert may have stored after all.
        log.warning("a merged insert of %d batches into %s failed (%s: %s); inserting them one by one", len(batches),
                    table, type(first).__name__, first_line(first))
        held = self._store.stored_batches({table: [b.batch_id for b in batches]})
        for batch in batches:
            if (table, batch.batch_id) in held:
                continue
            try:
                self._store.insert_arrow(table, batch.tables[table], batch.batch_id)
            except CollectorError as exc:
                failed[batch.batch_id] = exc

    def _repair_digests(self, replayed: list[ReadyBatch], failed: dict[str, BaseException]) -> None:
        """A replay's rows are stored, but an earlier attempt may have stopped before their digest was
        (collector/digests.py): rebuild the digests of its runs' stale steps before acknowledging it."""
        runs = {run for b in replayed for run in b.tables[REQUESTS.name].column("run_id").unique().to_pylist()}
        try:
            self.digests_repaired += len(digests.repair(self._store, runs))
        except CollectorError as exc:  # not acknowledged: the agent replays and the repair is tried again
            failed.update((b.batch_id, exc) for b in replayed)

    def close(self) -> None:
        if self.groups_written:
            log.info("group inserter: %d batches stored in %d groups, %d replays left out", self.batches_written,
                     self.groups_written, self.replays_skipped)
        if self._flusher is not None:
            self._flusher.cancel()
        self._pool.shutdown(wait=True)


def _steps_of(batches: list[ReadyBatch], table: str) -> set[StepKey]:
    """The (run, agent, step) keys the batches' rows of `table` belong to."""
    keys: set[StepKey] = set()
    for batch in batches:
        if (rows := batch.tables.get(table)) is not None and rows.num_rows:
            found = rows.select(list(KEY)).group_by(list(KEY)).aggregate([]).to_pylist()
            keys.update((k["run_id"], k["agent_id"], k["step"]) for k in found)
    return keys


def _ended(batches: list[ReadyBatch]) -> set[Node]:
    """The nodes whose run end the batches carry: their steps cut short, their devices and models are due."""
    nodes: set[Node] = set()
    for batch in batches:
        if (rows := batch.tables.get(RUNS.name)) is not None and rows.num_rows:
            nodes.update((run, agent) for run, agent, phase in zip(rows.column("run_id").to_pylist(),
                                                                   rows.column("agent_id").to_pylist(),
                                                                   rows.column("phase").to_pylist())
                         if phase == "end")
    return nodes


def _nodes_in(batches: list[ReadyBatch], table: str) -> set[Node]:
    """The (run, agent) pairs the batches' rows of `table` belong to."""
    return {(k["run_id"], k["agent_id"]) for batch in batches
            if (rows := batch.tables.get(table)) is not None and rows.num_rows
            for k in rows.select(["run_id", "agent_id"]).group_by(["run_id", "agent_id"]).aggregate([]).to_pylist()}


def _merged(table: str, batches: list[ReadyBatch]) -> pa.Table:
    if len(batches) == 1:
        return batches[0].tables[table]
    return pa.concat_tables([b.tables[table] for b in batches], promote_options="default")


def _token(batches: list[ReadyBatch]) -> str:
    """The insert's deduplication token: the batch_id of a single batch (a replay inserted alone is
    then deduplicated by ClickHouse too), else a digest of the group's sorted ids."""
    if len(batches) == 1:
        return batches[0].batch_id
    ids = "\n".join(sorted(b.batch_id for b in batches))
    return "group/" + hashlib.sha256(ids.encode()).hexdigest()

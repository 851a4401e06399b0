"""The ClickHouse store, reached through clickhouse-connect: embedded chDB (`chdb://PATH`) by
default, or a server (`http://user:pass@host:8123/db`) with no change of code.

clickhouse-connect has no async client for chDB, and a client serialises its calls, so the
collector gives each worker thread its own client (`Store.client()`), all on one engine.

The drivers' errors stop here: every Store method raises only the collector's errors, mapped by
`store_error` (StoreUnavailable: retry later; StoreRefused: the store rejected the statement), so no
other module catches a driver's exception or imports its types. Code that must use the client itself
(`export`'s raw stream, `sql`) wraps the call in `Store.mapped_errors()`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from siliconbench.collector.errors import CollectorError, StoreLocked, StoreRefused, StoreUnavailable, first_line
from siliconbench.collector.schema import BACKFILL, BATCH_ID, DDL, KEPT, MIGRATIONS, REBUILT, SCHEMA_VERSION, TABLES
from siliconbench.collector.answer_views import ANSWER_VIEWS
from siliconbench.collector.session_views import SESSION_VIEWS
from siliconbench.collector.views import VIEWS

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "siliconbench"
# Queries fail cleanly (ClickHouse code 241) instead of taking the host's memory.
QUERY_SETTINGS = {"max_memory_usage": 4 * 1024**3}


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed --store value."""

    dsn: str          # what clickhouse-connect gets
    database: str
    embedded: bool
    shown: str        # for logs and messages: never carries a password

    @classmethod
    def parse(cls, store: str, password: str | None = None) -> "StoreLocation":
        if store.startswith("chdb://"):
            path = store[len("chdb://"):]
            if not path:
                raise StoreUnavailable("--store chdb:// needs a path, e.g. chdb://./siliconbench-data")
            if path != "memory":
                path = os.path.abspath(path)
            return cls(dsn=f"chdb://{path}", database=DEFAULT_DATABASE, embedded=True, shown=f"chdb://{path}")
        parts = urlsplit(store)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreUnavailable(
                f"--store {store!r} is neither chdb://PATH nor http(s)://[user[:password]@]host:port[/database]"
            )
        database = parts.path.strip("/") or DEFAULT_DATABASE
        user = parts.username or "default"
        secret = password if password is not None else (parts.password or "")
        netloc = f"{parts.hostname}:{parts.port or (8443 if parts.scheme == 'https' else 8123)}"
        dsn = f"{parts.scheme}://{quote(user)}:{quote(secret)}@{netloc}/{database}"
        return cls(dsn=dsn, database=database, embedded=False, shown=f"{parts.scheme}://{user}@{netloc}/{database}")


T = TypeVar("T")

# Reader threads a store runs independent reads on (Store.concurrently). A report's reads are a dozen small
# queries whose time is mostly ClickHouse's fixed work per query on one core: on 2 cores two readers took a
# one-run report over 10 million rows from 0.21 to 0.13 s (best of 15; bench/report.py), and three or four
# were no faster there. One per core, at least two, at most four.
READERS = max(2, min(4, os.cpu_count() or 2))


class Store:
    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self._local = threading.local()
        self._clients: list[Client] = []
        self._lock = threading.Lock()
        # Held by whoever writes: the inserter's groups and the keeper's passes (collector/kept.py), one at a
        # time, so keeping never runs beside an ingest insert (a Ctrl-C test stalled once with both at the start of
        # a run on an embedded store; the cause was not isolated).
        self.writing = threading.RLock()
        self._readers: ThreadPoolExecutor | None = None

    @classmethod
    def open(cls, store: str, password: str | None = None) -> "Store":
        """Connect and create the schema if needed; raise StoreUnavailable/StoreLocked with the fix."""
        instance = cls(StoreLocation.parse(store, password))
        instance.ensure_schema()
        return instance

    @classmethod
    def open_existing(cls, store: str, password: str | None = None) -> "Store":
        """`open` for the commands that read: an embedded store must already be there (a mistyped path
        would otherwise become a new, empty store and every report an empty one)."""
        location = StoreLocation.parse(store, password)
        path = location.dsn[len("chdb://"):]
        if location.embedded and path != "memory" and not os.path.isdir(path):
            raise StoreUnavailable(f"no store at {location.shown}: check --store (`serve` and `demo` make one "
                                   "where they are told to)")
        return cls.open(store, password)

    def client(self) -> Client:
        """This thread's client (created on first use)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._connect()
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    @contextmanager
    def own_client(self) -> Iterator[Client]:
        """A client of its own for one call, closed after it: settings a query sets stay with it (chDB
        keeps a refused query's `readonly` on its connection, measured with chdb 4.4)."""
        client = self._connect()
        try:
            yield client
        finally:
            client.close()

    def _connect(self) -> Client:
        loc = self.location
        try:
            with self.mapped_errors():
                if loc.embedded:
                    return clickhouse_connect.get_client(dsn=loc.dsn)
                return clickhouse_connect.get_client(dsn=loc.dsn, connect_timeout=5)
        except StoreRefused as exc:  # refused to open (wrong password, no such database): not there for us
            raise StoreUnavailable(f"cannot open the store {loc.shown}: {first_line(exc.__cause__, None)}") from None

    def sql(self, text: str) -> str:
        """`text` with `{db}` (the one placeholder of the collector's SQL) naming this store's database."""
        return text.replace("{db}", f"`{self.location.database}`")

    @contextmanager
    def mapped_errors(self) -> Iterator[None]:
        """Run a block of driver calls; whatever the drivers raise leaves as a collector error (store_error)."""
        try:
            yield
        except Exception as exc:  # the drivers raise unrelated types; store_error sorts them
            raise store_error(exc, self.location) from exc

    def ensure_schema(self) -> None:
        db = self.location.database
        client = self.client()
        try:
            with self.mapped_errors():
                client.command(f"CREATE DATABASE IF NOT EXISTS `{db}`")
                existing = {row[0] for row in client.query(f"SHOW TABLES FROM `{db}`").result_rows}
                existing -= self._drop_outdated(client)
                for ddl in [*DDL.values(), *MIGRATIONS]:
                    client.command(self.sql(ddl))
                if "requests" in existing:  # derived tables added to an older store start from its rows
                    for table, fill in BACKFILL.items():
                        if table not in existing:
                            client.command(self.sql(fill))
                for ddl in [*VIEWS.values(), *ANSWER_VIEWS.values(), *SESSION_VIEWS.values()]:  # read-side views: replaced, so they follow the code
                    client.command(self.sql(ddl))
                applied = client.query(f"SELECT max(version) FROM `{db}`.schema_version").result_rows[0][0]
                if applied < SCHEMA_VERSION:
                    client.insert("schema_version", [[SCHEMA_VERSION, time.time_ns()]], database=db,
                                  column_names=TABLES["schema_version"].names)
        except StoreRefused as exc:
            raise StoreUnavailable(f"cannot create the schema in {self.location.shown}: {exc}") from None
        if applied > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"the store {self.location.shown} has schema version {applied}, newer than this "
                f"collector's {SCHEMA_VERSION}: upgrade siliconbench"
            )

    def _drop_outdated(self, client: Client) -> set[str]:
        """Drop each derived table whose engine is not the declared one (schema.REBUILT), with the views
        that fill it, and each kept-results table whose columns are not the declared ones (schema.KEPT: the
        collector keeps them again from the rows at start); returns them, to be made again and backfilled."""
        db = self.location.database
        engines: dict[str, str] = {name: engine for name, engine in client.query(
            "SELECT name, engine FROM system.tables WHERE database = {db:String}", parameters={"db": db}).result_rows}
        columns: dict[str, list[str]] = {}
        for table, name in client.query("SELECT table, name FROM system.columns WHERE database = {db:String} "
                                        "ORDER BY table, position", parameters={"db": db}).result_rows:
            columns.setdefault(table, []).append(name)
        dropped = {table for table in REBUILT if table in engines and engines[table] != TABLES[table].engine_name}
        for table in dropped:
            log.warning("the store's %s table has an older layout (%s): rebuilding it from the rows", table,
                        engines[table])
            for view in REBUILT[table]:
                client.command(f"DROP VIEW IF EXISTS `{db}`.`{view}`")
            client.command(f"DROP TABLE `{db}`.`{table}`")
        for table in KEPT:
            if table in columns and columns[table] != TABLES[table].names:
                log.warning("the store's %s table has an older layout: dropped; its rows are kept again from the "
                            "store's rows (reports compute them meanwhile)", table)
                client.command(f"DROP TABLE `{db}`.`{table}`")
                dropped.add(table)
        return dropped

    def insert(self, table: str, rows: list[list], dedup_token: str) -> None:
        """Insert rows into `table`; a repeat of the same dedup_token is stored once. In a table agents
        write, the token is the rows' batch id (the insert is their batch)."""
        if rows:
            names = TABLES[table].names
            if TABLES[table].batched:
                names, rows = [*names, BATCH_ID], [[*row, dedup_token] for row in rows]
            with self.mapped_errors():
                self.client().insert(table, rows, database=self.location.database, column_names=names,
                                     settings={"insert_deduplication_token": dedup_token})

    def insert_arrow(self, table: str, columns, dedup_token: str) -> None:
        """Insert a pyarrow Table (columns named as in the schema) as one ArrowStream block; a repeat
        of the same dedup_token is stored once. The collector's fast path: no per-row Python."""
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, columns.schema) as writer:
            writer.write_table(columns)
        # Handed over as a file: given the Arrow buffer itself, the driver copies it whole into Python bytes
        # (chDB) or joins it to the query text (HTTP), one more copy of the block while it is inserted.
        block = pa.BufferReader(sink.getvalue())
        with self.mapped_errors():
            self.client().raw_insert(f"`{self.location.database}`.`{table}`", columns.schema.names, block,
                                     fmt="ArrowStream", settings={"insert_deduplication_token": dedup_token})

    def stored_batches(self, ids_by_table: dict[str, list[str]]) -> set[tuple[str, str]]:
        """(table, batch_id) for each of the given batches that the table already holds: one query
        for all tables, each answered from the table's own rows (read through its batch_id index)."""
        if not ids_by_table:
            return set()
        names = list(ids_by_table)
        sql = " UNION ALL ".join(
            f"SELECT {i} AS t, {BATCH_ID} AS b FROM {{db}}.`{table}` WHERE {BATCH_ID} IN {{ids{i}:Array(String)}} "
            f"GROUP BY {BATCH_ID}" for i, table in enumerate(names))
        rows = self.query(sql, {f"ids{i}": ids_by_table[table] for i, table in enumerate(names)}).result_rows
        return {(names[i], batch_id) for i, batch_id in rows}

    def query(self, sql: str, parameters: dict | None = None):
        """Run a read query with bound parameters ({name:Type}); tables are addressed as {db}.table."""
        with self.mapped_errors():
            return self.client().query(self.sql(sql), parameters=parameters, settings=QUERY_SETTINGS)

    def concurrently(self, *calls: Callable[[], T]) -> list[T]:
        """Each of `calls` (reads of this store) run at the same time on the store's reader threads, each
        thread with its own client; their results in the order given. The first error raised is raised
        once all have ended."""
        if len(calls) < 2:
            return [call() for call in calls]
        futures = [self.started(call) for call in calls]
        wait(futures)
        return [future.result() for future in futures]

    def started(self, call: Callable[[], T]) -> Future[T]:
        """`call` (a read of this store) started on a reader thread: its result (or error) when it has ended.
        Asked for on a reader thread, it is run there and then, so that a reader never waits on another."""
        if getattr(self._local, "reader", False):
            done: Future[T] = Future()
            try:
                done.set_result(call())
            except BaseException as exc:  # handed to whoever asks for the result, as a reader thread would
                done.set_exception(exc)
            return done
        with self._lock:
            if self._readers is None:
                self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="store-reader")
            readers = self._readers
        return readers.submit(self._as_reader, call)

    def _as_reader(self, call: Callable[[], T]) -> T:
        self._local.reader = True
        return call()

    def command(self, sql: str, parameters: dict | None = None, settings: dict | None = None) -> None:
        """Run a statement that returns no rows (INSERT ... SELECT, DELETE) with bound parameters."""
        with self.mapped_errors():
            self.client().command(self.sql(sql), parameters=parameters, settings={**QUERY_SETTINGS, **(settings or {})})

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, None
        if readers is not None:
            readers.shutdown(wait=True)
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        self._local = threading.local()


# chDB's refusal to open a store another process holds (a ProgrammingError naming its embedded server).
_LOCKED = ("Error initializing EmbeddedServer", "Cannot lock file")


def store_error(exc: BaseException, location: StoreLocation) -> CollectorError:
    """The collector's error for what a ClickHouse driver raised: the one place they are mapped.

    StoreLocked: chDB refused to open a store another process holds. StoreUnavailable: the store could
    not be reached (clickhouse-connect's OperationalError, an OSError) or failed in a way of chDB's own
    (types other than clickhouse-connect's): a retry may succeed. StoreRefused: the store answered and
    refused the statement (every other clickhouse-connect error: bad SQL, rows of the wrong type, a
    memory limit). A collector error passes through as it is."""
    if isinstance(exc, CollectorError):
        return exc
    text, line = str(exc), first_line(exc, None)
    if location.embedded and any(mark in text for mark in _LOCKED):
        return StoreLocked(f"the embedded store {location.shown} is in use by another process (a running "
                           "collector?). Stop that process first, or serve the data from a ClickHouse server")
    if isinstance(exc, (OperationalError, OSError)) or not isinstance(exc, ClickHouseError):
        return StoreUnavailable(f"the store {location.shown} is unavailable: {line}")
    return StoreRefused(f"the store {location.shown} refused it: {line}")

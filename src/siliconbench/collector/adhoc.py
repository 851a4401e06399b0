"""The `sql` command as a function: one query of the operator's own against the store, read-only
unless asked to write.

Without --write a statement runs only when it is one read of the store's database, of system tables or
of a generator (numbers(), values(), ...): ClickHouse itself formats it (`formatQuery`, which refuses
two statements) and parses it (`EXPLAIN AST`), and the tree is walked (collector/sql_guard.py) for any
other statement kind, table function (file, url, s3, remote, mysql, executable, input, ...), INTO
OUTFILE, dictionary or other database. Only the formatted statement that was checked is then run, so
text the check did not see never reaches the store. Both checks are plain queries through the same
client, so they hold the same against embedded chDB and a ClickHouse server URL (formatQuery needs
ClickHouse 23.10 or newer).

Behind that, ClickHouse's `readonly = 2` refuses every statement that changes data or tables, or the
`readonly` setting (code 164, READONLY); `--write` lifts both for one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from siliconbench.collector.errors import StoreRefused
from siliconbench.collector.sql_guard import parse_tree, refusal
from siliconbench.collector.store import Store

READ_ONLY = {"readonly": 2}  # 2: reads and query settings (views set some); never data, tables or readonly itself


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[Sequence[Any]]


def run_query(store: Store, query: str, write: bool = False) -> QueryResult:
    """Run `query` as written (tables named siliconbench.requests etc.); without `write`, only a read of
    the store (see above). A refused statement says what was refused and how to allow it."""
    try:
        # StoreRefused carries ClickHouse's own first line: what is wrong with the query
        with store.own_client() as client, store.mapped_errors():
            if not write:
                query = _checked(store, client, query)
            result = client.query(query, settings=None if write else READ_ONLY)
    except StoreRefused as exc:
        if write or "READONLY" not in str(exc):
            raise
        raise StoreRefused(f"{exc} (`sql` is read-only; add --write to change data or tables)") from None
    return QueryResult(list(result.column_names), list(result.result_rows))


def _checked(store: Store, client, query: str) -> str:
    """The statement as ClickHouse formats it, once its syntax tree shows a read of the store; raises
    StoreRefused naming what is refused otherwise."""
    try:
        with store.mapped_errors():
            formatted = client.query("SELECT formatQuery({q:String})", parameters={"q": query},
                                     settings=READ_ONLY).result_rows[0][0]
    except StoreRefused as exc:  # not one statement ClickHouse can parse: its own reason, without our wrapping
        if "UNKNOWN_FUNCTION" in str(exc) and "formatQuery" in str(exc):
            raise StoreRefused("`sql` cannot check a statement on this ClickHouse (formatQuery needs 23.10 or newer): "
                               "upgrade it, or add --write to run the statement unchecked") from None
        reason = str(exc).partition("DB::Exception: ")[2].rpartition(": In scope ")[0] or str(exc)
        raise StoreRefused(f"`sql` cannot run this text: {reason}") from None
    dump = client.raw_query(f"EXPLAIN AST {formatted}", settings=READ_ONLY).decode()
    why = refusal(formatted, parse_tree(dump.splitlines()), store.location.database)
    if why is not None:
        raise StoreRefused(f"`sql` refused {why}: without --write it only reads the store's tables, system tables "
                           "and numbers()/values(); add --write to run it with full rights")
    return formatted

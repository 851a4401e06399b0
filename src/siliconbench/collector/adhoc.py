"""The `sql` command as a function: one query of the operator's own against the store, read-only
unless asked to write.

ClickHouse's `readonly = 2` refuses every statement that changes data or tables, or the `readonly` setting (DROP,
INSERT, ALTER ... DELETE, TRUNCATE, and `SET readonly = 0` itself: code 164, READONLY), so a
mistyped or pasted statement cannot delete the benchmark's rows; `--write` lifts it for one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from siliconbench.collector.errors import StoreRefused
from siliconbench.collector.store import Store

READ_ONLY = {"readonly": 2}  # 2: reads and query settings (views set some); never data, tables or readonly itself


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[Sequence[Any]]


def run_query(store: Store, query: str, write: bool = False) -> QueryResult:
    """Run `query` as written (tables named siliconbench.requests etc.); read-only unless `write`.
    A statement refused for writing says how to allow it."""
    try:
        # StoreRefused carries ClickHouse's own first line: what is wrong with the query
        with store.own_client() as client, store.mapped_errors():
            result = client.query(query, settings=None if write else READ_ONLY)
    except StoreRefused as exc:
        if write or "READONLY" not in str(exc):
            raise
        raise StoreRefused(f"{exc} (`sql` is read-only; add --write to change data or tables)") from None
    return QueryResult(list(result.column_names), list(result.result_rows))

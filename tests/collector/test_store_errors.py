"""What the ClickHouse drivers raise becomes one of the collector's errors, in one place (store_error),
and nothing of the driver leaves the store."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from siliconbench.collector.errors import InvalidOption, StoreLocked, StoreRefused, StoreUnavailable
from siliconbench.collector.store import StoreLocation, store_error

EMBEDDED = StoreLocation.parse("chdb:///tmp/sb-store")
SERVER = StoreLocation.parse("http://u:secret@ch:8123/db")


def test_a_refused_statement_is_store_refused_with_clickhouses_first_line():
    error = store_error(DatabaseError("Code: 62. DB::Exception: Syntax error\nstack trace"), SERVER)
    assert isinstance(error, StoreRefused)
    assert str(error) == "the store http://u@ch:8123/db refused it: Code: 62. DB::Exception: Syntax error"


@pytest.mark.parametrize("raised", [OperationalError("Connection refused"), ConnectionResetError("reset"),
                                    RuntimeError("chDB engine closed")])
def test_an_unreachable_store_is_store_unavailable_and_never_shows_the_password(raised):
    error = store_error(raised, SERVER)
    assert isinstance(error, StoreUnavailable) and not isinstance(error, StoreLocked)
    assert "secret" not in str(error)


def test_an_embedded_store_held_by_another_process_is_store_locked():
    held = ProgrammingError("Unable to open the chdb engine at '/tmp/sb-store': Failed to create connection: "
                            "Code: 36. DB::Exception: Error initializing EmbeddedServer: . (BAD_ARGUMENTS)")
    assert isinstance(store_error(held, EMBEDDED), StoreLocked)


def test_a_collector_error_passes_through_as_it_is():
    error = InvalidOption("--format 'x'")
    assert store_error(error, SERVER) is error


def test_a_bad_query_through_the_store_raises_store_refused(store):
    with pytest.raises(StoreRefused, match="Code: 47"):
        store.query("SELECT no_such_column FROM {db}.requests")

"""Nothing the operator reads with can change the data: `sql` is read-only unless --write, and a
report or a listing makes no write at all (the shipped prices are loaded by `serve` and `prices import`)."""

from __future__ import annotations

import pytest

from siliconbench.collector.adhoc import run_query
from siliconbench.collector.errors import StoreRefused
from siliconbench.collector.prices import default_file
from siliconbench.collector.reports import Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import rows
from tests.collector.test_report_cli import cli


def requests_of(store, run_id: str) -> int:
    return run_query(store, f"SELECT count() FROM siliconbench.requests WHERE run_id = '{run_id}'").rows[0][0]


@pytest.mark.parametrize("statement", [
    "DROP TABLE siliconbench.requests",
    "TRUNCATE TABLE siliconbench.requests",
    "ALTER TABLE siliconbench.requests DELETE WHERE 1",
    "DELETE FROM siliconbench.requests WHERE 1",
    "SELECT 1 SETTINGS readonly = 0",
])
def test_sql_refuses_a_statement_that_writes_and_says_how_to_allow_it(store, unique_id, statement):
    store.insert("requests", [rows.request(unique_id, f"agent-{unique_id}", 0)], unique_id)
    with pytest.raises(StoreRefused) as refused:
        run_query(store, statement)
    assert "READONLY" in str(refused.value) and "--write" in str(refused.value)
    assert requests_of(store, unique_id) == 1


def test_sql_reads_the_views_that_set_their_own_settings(store, unique_id):
    """Read-only still lets a query set query settings (readonly = 2): the rollup views set some, and a
    column list or an outer aggregate over them needs its own SETTINGS (the README's examples do)."""
    store.insert("requests", [rows.request(unique_id, f"agent-{unique_id}", i) for i in range(3)], unique_id)
    result = run_query(store, "SELECT run_id, count() FROM siliconbench.sweep_results(ttft_ms = inf, tpot_ms = inf, "
                              f"e2e_ms = inf) WHERE run_id = '{unique_id}' GROUP BY run_id "
                              "SETTINGS prefer_column_name_to_alias = 1")
    assert result.columns == ["run_id", "count()"]


def test_sql_with_write_changes_data(store, unique_id):
    table = f"siliconbench.scratch_{unique_id}"
    run_query(store, f"CREATE TABLE {table} (x UInt8) ENGINE = MergeTree ORDER BY x", write=True)
    run_query(store, f"DROP TABLE {table}", write=True)
    assert list(run_query(store, f"EXISTS TABLE {table}").rows[0]) == [0]


def test_a_report_with_costs_makes_no_write(store, unique_id, monkeypatch):
    agent, run_id = f"agent-{unique_id}", f"run-{unique_id}"
    store.insert("nodes", [rows.node(agent, "p5.48xlarge")], f"n/{agent}")
    store.insert("runs", [rows.run(run_id, agent, scenario=unique_id)], f"r/{run_id}")
    store.insert("requests", [rows.request(run_id, agent, i) for i in range(4)], run_id)

    def no_write(*_args, **_kwargs):
        raise AssertionError("a report wrote to the store")

    for method in ("insert", "insert_arrow", "command"):
        monkeypatch.setattr(store, method, no_write)
    report = build_report(store, Selection(runs=(run_id,)), Options())
    assert [c.price is not None for c in report.costs] == [True]


def test_prices_list_reads_and_leaves_an_empty_price_table_empty(tmp_path):
    store = f"chdb://{tmp_path}/data"
    listed = cli("prices", "list", "--store", store)
    assert listed.returncode == 0 and "serve` or `prices import FILE` loads" in listed.stderr
    assert listed.stdout.splitlines()[1:] == []
    counted = cli("sql", "SELECT count() FROM siliconbench.prices", "--store", store)
    assert counted.stdout.splitlines()[1:] == ["0"]
    assert cli("prices", "import", str(default_file()), "--store", store).returncode == 0
    assert len(cli("prices", "list", "--store", store).stdout.splitlines()) > 1

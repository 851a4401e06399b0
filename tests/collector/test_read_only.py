"""Nothing the operator reads with can change the data: `sql` is read-only unless --write, and a
report or a listing makes no write at all (the shipped prices are loaded by `serve` and `prices import`)."""

from __future__ import annotations

import http.server
import os
import threading

import pytest

from siliconbench.collector.adhoc import run_query
from siliconbench.collector.errors import StoreRefused
from siliconbench.collector.prices import default_file
from siliconbench.collector.reports import Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import rows
from tests.collector.test_report_cli import cli
from tests.servers import make_store


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
    assert "--write" in str(refused.value) and "\n" not in str(refused.value)
    assert requests_of(store, unique_id) == 1


@pytest.fixture
def http_target():
    """A loopback HTTP server that counts the requests it gets: a refused url() must send none."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"1\n")

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.mark.parametrize(("statement", "named"), [
    ("INSERT INTO FUNCTION file('{path}', 'CSV', 'x UInt8') SELECT 1", "INSERT"),
    ("INSERT INTO FUNCTION file('{path}', 'CSV', 'x UInt8') SELECT 1 SETTINGS engine_file_truncate_on_insert = 1",
     "INSERT"),
    ("SELECT 1 INTO OUTFILE '{path}'", "INTO OUTFILE"),
    ("SELECT 1 INTO OUTFILE '{path}' TRUNCATE", "INTO OUTFILE"),
    ("EXPLAIN SELECT 1 INTO OUTFILE '{path}'", "INTO OUTFILE"),
    ("SHOW TABLES FROM siliconbench INTO OUTFILE '{path}'", "INTO OUTFILE"),
    ("DESCRIBE TABLE siliconbench.requests INTO OUTFILE '{path}'", "INTO OUTFILE"),
    ("EXISTS TABLE siliconbench.requests INTO OUTFILE '{path}'", "INTO OUTFILE"),
    ("SELECT 1; INSERT INTO FUNCTION file('{path}', 'CSV', 'x UInt8') SELECT 1", "Multi-statements"),
    ("SELECT 1 PARALLEL WITH INSERT INTO FUNCTION file('{path}', 'CSV', 'x UInt8') SELECT 1", "PARALLEL"),
    ("EXPLAIN PIPELINE INSERT INTO FUNCTION file('{path}', 'CSV', 'x UInt8') SELECT 1", "INSERT"),
    ("CREATE TEMPORARY TABLE scratch (x UInt8)", "CREATE"),
    ("SYSTEM STOP MERGES", "SYSTEM"),
    ("KILL QUERY WHERE query_id = 'none'", "KILL"),
    ("SET max_threads = 1", "SET"),
])
def test_sql_refuses_every_statement_that_writes_anything_anywhere(store, tmp_path, statement, named):
    target = tmp_path / "written.csv"
    with pytest.raises(StoreRefused) as refused:
        run_query(store, statement.format(path=target))
    text = str(refused.value)
    assert named in text and "\n" not in text
    assert not target.exists()


@pytest.mark.parametrize(("source", "named"), [
    ("file('/proc/self/environ', 'LineAsString')", "file()"),
    ("url('{url}/x', 'LineAsString')", "url()"),
    ("s3('{url}/bucket/x', 'LineAsString')", "s3()"),
    ("remote('127.0.0.1:1', system.one)", "remote()"),
    ("mysql('127.0.0.1:1', 'db', 't', 'u', 'p')", "mysql()"),
    ("executable('env', 'LineAsString', 'line String')", "executable()"),
    ("input('x UInt8')", "input()"),
    ("merge('.*', '.*')", "merge()"),
    ("dictionary('siliconbench_prices')", "dictionary()"),
    ("(SELECT * FROM url('{url}/y', 'LineAsString'))", "url()"),
    ("view(SELECT * FROM url('{url}/z', 'LineAsString'))", "url()"),
    ("siliconbench.requests AS r, url('{url}/j', 'LineAsString') AS u", "url()"),
    ("`silicon bench`.requests", "silicon bench"),
    ("default.scratch", "default.scratch"),
])
def test_sql_reads_nothing_outside_the_store(store, http_target, source, named):
    url, hits = http_target
    with pytest.raises(StoreRefused) as refused:
        run_query(store, f"SELECT * FROM {source.format(url=url)}")
    text = str(refused.value)
    assert named in text and "--write" in text and "\n" not in text
    assert hits == []


@pytest.mark.parametrize(("expression", "named"), [
    ("file('/proc/self/environ')", "file()"),
    ("dictGet('siliconbench_prices', 'usd', 1)", "dictGet()"),
    ("joinGet('siliconbench.requests', 'x', 1)", "joinGet()"),
    ("(SELECT count() FROM url('{url}/w', 'LineAsString'))", "url()"),
    ("1 IN (SELECT * FROM file('/proc/self/environ', 'LineAsString'))", "file()"),
    ("1 IN default.scratch", "default.scratch"),
    ("1 GLOBAL NOT IN default.scratch", "default.scratch"),
])
def test_sql_calls_no_function_that_reads_outside_the_store(store, http_target, expression, named):
    url, hits = http_target
    with pytest.raises(StoreRefused) as refused:
        run_query(store, f"SELECT {expression.format(url=url)}")
    assert named in str(refused.value)
    assert hits == []


def test_sql_never_shows_the_environment(store, monkeypatch):
    monkeypatch.setenv("SILICONBENCH_PROBE", "secret-in-the-environment")
    with pytest.raises(StoreRefused) as refused:
        run_query(store, "SELECT * FROM file('/proc/self/environ', 'RawBLOB')")
    assert "secret-in-the-environment" not in str(refused.value)
    assert os.environ["SILICONBENCH_PROBE"] == "secret-in-the-environment"


@pytest.mark.parametrize("statement", [
    "SELECT count() FROM siliconbench.requests WHERE run_id = 'none'",
    "SELECT name FROM system.tables WHERE database = 'siliconbench' ORDER BY name LIMIT 1",
    "SELECT count() FROM information_schema.tables",
    "SELECT sum(number) FROM numbers(4)",
    "SELECT * FROM values('x UInt8', 1, 2) ORDER BY x",
    "WITH recent AS (SELECT run_id FROM siliconbench.requests LIMIT 1) SELECT count() FROM recent",
    "SELECT count() FROM (SELECT 1 UNION ALL SELECT 2)",
    "SHOW TABLES FROM siliconbench",
    "SHOW TABLES FROM siliconbench LIKE '%req%' LIMIT 3",
    "SHOW CREATE TABLE siliconbench.requests",
    "EXPLAIN PLAN header = 1 SELECT count() FROM siliconbench.requests",
    "DESCRIBE TABLE siliconbench.requests",
    "EXISTS TABLE siliconbench.requests",
    "EXPLAIN SELECT count() FROM siliconbench.requests",
    "SELECT 1 SETTINGS max_threads = 1",
    "SELECT 0 IN system.one",
])
def test_sql_runs_every_read_of_the_store(store, statement):
    assert run_query(store, statement).columns


def test_sql_reads_the_views_that_set_their_own_settings(store, unique_id):
    """Read-only still lets a query set query settings (readonly = 2): the rollup views set some, and a
    column list or an outer aggregate over them needs its own SETTINGS (the README's examples do)."""
    store.insert("requests", [rows.request(unique_id, f"agent-{unique_id}", i) for i in range(3)], unique_id)
    result = run_query(store, "SELECT run_id, count() FROM siliconbench.sweep_results(ttft_ms = inf, ttfa_ms = inf, itl_ms = inf, tpot_ms = inf, "
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
    store = make_store(f"chdb://{tmp_path}/data")
    listed = cli("prices", "list", "--store", store)
    assert listed.returncode == 0 and "serve` or `prices import FILE` loads" in listed.stderr
    assert listed.stdout.splitlines()[1:] == []
    counted = cli("sql", "SELECT count() FROM siliconbench.prices", "--store", store)
    assert counted.stdout.splitlines()[1:] == ["0"]
    assert cli("prices", "import", str(default_file()), "--store", store).returncode == 0
    assert len(cli("prices", "list", "--store", store).stdout.splitlines()) > 1


def test_a_server_too_old_to_check_a_statement_says_so(store):
    """Against a server the check is the same two queries; one without formatQuery (before 23.10) is named."""
    from clickhouse_connect.driver.exceptions import DatabaseError

    from siliconbench.collector import adhoc

    class OldServer:
        def query(self, *_args, **_kwargs):
            raise DatabaseError("Code: 46. DB::Exception: Unknown function formatQuery. (UNKNOWN_FUNCTION)")

    with pytest.raises(StoreRefused, match=r"formatQuery needs 23.10 or newer.*--write"):
        adhoc._checked(store, OldServer(), "SELECT 1")

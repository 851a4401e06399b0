"""Grafana's dashboards (deploy/grafana) work against a store: every panel's query and every variable's,
with the ClickHouse plugin's macros and the variables expanded, runs and returns rows on a store holding
two runs of a fleet (requests, steps, device samples with power and energy, live progress). Every
percentile is exact, and every dashboard reads the provisioned data source."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import yaml

from siliconbench.collector.schema import TABLES
from siliconbench.core.wire import pb
from tests.collector import load_modes, rows
from tests.deploy.conftest import DEPLOY
from tests.deploy.grafana_macros import TimeRange, expand

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = {path.stem: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}
PANELS = [(name, panel) for name, board in DASHBOARDS.items() for panel in board["panels"]]
VARIABLES = [(name, v) for name, board in DASHBOARDS.items() for v in board["templating"]["list"]]
INSTANCE_TYPES = ("p5.48xlarge", "trn2.48xlarge")
NOT_EXACT = re.compile(r"\b(quantiles?|quantileTDigest\w*|quantileTiming\w*|median)(If)?\(")


@pytest.fixture(scope="module")
def fleet(store) -> dict[str, list[str]]:
    """Two runs of two nodes each, as agents send them, with GPU samples and fleet progress: the values of
    the dashboards' variables."""
    tag = uuid.uuid4().hex[:8]
    runs, agents = [f"graf-{tag}-a", f"graf-{tag}-b"], [f"graf-{tag}-n1", f"graf-{tag}-n2"]
    for agent, itype in zip(agents, INSTANCE_TYPES, strict=True):
        store.insert("nodes", [rows.node(agent, itype)], f"n/{agent}")
    for run_id in runs:
        for agent in agents:
            load_modes.store_run(store, run_id, agent, f"S-{tag}")
            start_ns, end_ns = store.query(
                "SELECT toUnixTimestamp64Nano(min(start_time)), toUnixTimestamp64Nano(max(end_time)) "
                "FROM {db}.steps WHERE run_id = {r:String} AND agent_id = {a:String}",
                {"r": run_id, "a": agent}).result_rows[0]
            batch = pb.Batch(seq=2, batch_id=f"{agent}/{run_id}/gpu")
            for k, t_ns in enumerate(range(start_ns - 10**9, end_ns + 10**9, 2 * 10**8)):
                batch.samples.append(pb.DeviceSample(run_id=run_id, time_unix_ns=t_ns, source="nvml", device="gpu0",
                                                     values={"gpu_util_pct": 80.0, "power_w": 500.0,
                                                             "mem_used_bytes": 60e9, "energy_mj": 1e6 + k * 1e5}))
            load_modes.ingest(store, agent, batch)
            store.insert("run_progress", [TABLES["run_progress"].row(
                run_id=run_id, agent_id=agent, state="running", step=1, steps_total=4, requests_done=10,
                output_tokens_per_s=900.0, errors=0, detail="", time=rows.at(0))], f"p/{run_id}/{agent}")
    return {"run": runs, "node": agents, "instance_type": list(INSTANCE_TYPES), "run_a": runs[:1], "run_b": runs[1:]}


def values_for(board: dict, fleet: dict[str, list[str]]) -> dict[str, str | list[str]]:
    """The selection a user makes: multi-value variables all their values, single ones the first."""
    return {v["name"]: fleet[v["name"]] if v.get("multi") else fleet[v["name"]][0]
            for v in board["templating"]["list"]}


def run_sql(store, sql: str) -> list[tuple]:
    assert "$" not in sql, sql  # every macro and variable expanded
    return store.query(sql).result_rows


WHOLE_TIME = TimeRange(from_s=int(time.time()) - 3 * 3600, to_s=int(time.time()) + 3600)


@pytest.mark.parametrize("board, panel", PANELS, ids=[f"{b}:{p['title']}" for b, p in PANELS])
def test_every_panel_s_query_returns_rows_from_the_store(store, fleet, board, panel):
    [target] = panel["targets"]
    sql = expand(target["rawSql"], WHOLE_TIME, values_for(DASHBOARDS[board], fleet))
    assert run_sql(store, sql), sql


@pytest.mark.parametrize("board, variable", VARIABLES, ids=[f"{b}:{v['name']}" for b, v in VARIABLES])
def test_every_variable_s_query_lists_the_store_s_values(store, fleet, board, variable):
    found = [row[0] for row in run_sql(store, expand(variable["query"], WHOLE_TIME, values_for(DASHBOARDS[board], fleet)))]
    assert set(fleet[variable["name"]]) <= set(found)


def test_the_dashboards_cover_fleet_run_devices_and_comparison_with_their_variables():
    assert set(DASHBOARDS) == {"fleet-overview", "run", "devices-energy", "run-vs-run"}
    names = {board: {v["name"] for v in DASHBOARDS[board]["templating"]["list"]} for board in DASHBOARDS}
    assert names["fleet-overview"] >= {"run", "node", "instance_type"} and names["run"] >= {"run", "node"}
    assert names["devices-energy"] >= {"run", "node", "instance_type"} and names["run-vs-run"] == {"run_a", "run_b"}


def test_every_percentile_is_exact():
    queries = [p["targets"][0]["rawSql"] for _, p in PANELS]
    assert [q for q in queries if NOT_EXACT.search(q)] == []
    assert any("quantileExact" in q for q in queries)


def test_every_query_reads_the_provisioned_data_source_and_every_dashboard_is_deployed():
    [source] = yaml.safe_load((GRAFANA / "provisioning/datasources/clickhouse.yaml").read_text())["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    for _, panel in PANELS:
        assert {panel["datasource"]["uid"], panel["targets"][0]["datasource"]["uid"]} == {source["uid"]}
    for _, variable in VARIABLES:
        assert variable["datasource"]["uid"] == source["uid"]
    generated = yaml.safe_load((GRAFANA / "kustomization.yaml").read_text())["configMapGenerator"]
    deployed = {f for generator in generated for f in generator["files"] if f.startswith("dashboards/")}
    assert deployed == {f"dashboards/{name}.json" for name in DASHBOARDS}


def test_the_macros_expand_as_the_plugin_expands_them():
    span = TimeRange(from_s=100, to_s=200, interval_s=30)
    sql = ("SELECT $__timeInterval(t) AS time FROM x WHERE $__timeFilter(t) AND t < $__toTime AND t > $__fromTime "
           "AND r IN (${run:singlequote}) AND n = '${node}' AND k = $kind AND m IN ($many) GROUP BY time / $__interval_s")
    assert expand(sql, span, {"run": ["a", "b'c"], "node": "n1", "kind": "7", "many": ["x", "y"]}) == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 30 second) AS time FROM x WHERE t >= toDateTime(100) "
        "AND t <= toDateTime(200) AND t < toDateTime(200) AND t > toDateTime(100) AND r IN ('a','b\\'c') "
        "AND n = 'n1' AND k = 7 AND m IN ('x','y') GROUP BY time / 30")
    # the plugin's interval is whole seconds, at least 1 (a panel of a few points a second asks for less)
    assert expand("$__timeInterval(t) $__interval_s", TimeRange(0, 1, interval_s=0), {}) == (
        "toStartOfInterval(toDateTime(t), INTERVAL 1 second) 1")


# The provisioning keys the plugin documents (docs/sources/configure.md) and reads (pkg/plugin/settings.go)
PLUGIN_JSON_DATA = {"host", "port", "protocol", "secure", "path", "username", "defaultDatabase", "defaultTable",
                    "tlsSkipVerify", "tlsAuth", "tlsAuthWithCACert", "dialTimeout", "queryTimeout",
                    "connMaxLifetime", "maxIdleConns", "maxOpenConns", "validateSql", "configMode", "signalType"}


def test_the_data_source_uses_only_the_plugin_s_keys_and_grafana_installs_that_plugin():
    [source] = yaml.safe_load((GRAFANA / "provisioning/datasources/clickhouse.yaml").read_text())["datasources"]
    assert set(source["jsonData"]) <= PLUGIN_JSON_DATA
    assert source["jsonData"]["protocol"] in ("native", "http") and set(source["secureJsonData"]) == {"password"}
    [deployment] = [d for d in yaml.safe_load_all((GRAFANA / "grafana.yaml").read_text()) if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    plugin, _, version = env["GF_PLUGINS_PREINSTALL_SYNC"].partition("@")
    assert plugin == source["type"] and re.fullmatch(r"4\.\d+\.\d+", version)  # a pinned release of the v4 line
    assert re.fullmatch(r"docker\.io/grafana/grafana:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", container["image"])

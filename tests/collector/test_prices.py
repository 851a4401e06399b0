"""The price table: CSV import, the shipped default, cost formula, and a missing price as an error."""

from __future__ import annotations

import pytest

from siliconbench.collector.errors import InvalidPriceFile, PriceMissing
from siliconbench.collector.prices import default_file, ensure_prices, import_csv, price_for, read_csv, usd_per_million
from siliconbench.collector.reports import Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import rows

HEADER = "instance_type,region,kind,usd_per_hour,currency,as_of,source\n"


def test_cost_per_million_tokens_is_price_over_tokens_per_hour():
    assert usd_per_million(98.32, 4200) == pytest.approx(6.5026, rel=1e-4)
    assert usd_per_million(10.0, 0) is None


def test_the_shipped_default_is_loaded_when_the_table_is_empty(store):
    ensure_prices(store)
    price = price_for(store, "p5.48xlarge", "us-east-1", "on_demand")
    assert price.usd_per_hour == pytest.approx(55.04) and price.as_of == "2026-03" and "cut" in price.source
    assert default_file().is_file()


def test_an_imported_price_with_a_newer_date_wins(store, tmp_path, unique_id):
    itype = f"x{unique_id}.large"
    path = tmp_path / "p.csv"
    path.write_text(HEADER + f"{itype},us-east-1,spot,1.5,USD,2026-01,test\n{itype},us-east-1,spot,1.25,USD,2026-02,test\n")
    assert import_csv(store, path) == 2
    assert price_for(store, itype, "us-east-1", "spot").usd_per_hour == 1.25


@pytest.mark.parametrize("line, message", [
    ("a,us-east-1,reserved,1,USD,2026-01,s", "kind 'reserved'"),
    ("a,us-east-1,spot,cheap,USD,2026-01,s", "not a number"),
    ("a,us-east-1,spot,-1,USD,2026-01,s", "positive"),
    (",us-east-1,spot,1,USD,2026-01,s", "instance_type is empty"),
])
def test_a_bad_price_line_is_rejected_with_its_line_number(tmp_path, line, message):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + line + "\n")
    with pytest.raises(InvalidPriceFile, match=f"bad.csv:2: .*{message}"):
        read_csv(path)


def test_a_node_without_a_price_is_an_error_naming_its_type_and_the_fix(store, unique_id):
    agent = f"node-{unique_id}"
    store.insert("nodes", [rows.node(agent, "z9.mega")], f"n/{unique_id}")
    store.insert("runs", [rows.run(unique_id, agent, scenario="Z")], f"r/{unique_id}")
    store.insert("requests", [rows.request(unique_id, agent, 0)], unique_id)
    with pytest.raises(PriceMissing, match=r"'z9.mega'.*prices import FILE"):
        price_for(store, "z9.mega", "us-east-1", "on_demand")
    note = build_report(store, Selection(runs=(unique_id,)), Options()).table("cost").rows[0][-1]
    assert "'z9.mega'" in note and "prices import FILE" in note  # the report says so in the row, and goes on
    report = build_report(store, Selection(runs=(unique_id,)), Options(cost=False))
    assert "cost" not in [t.key for t in report.tables]

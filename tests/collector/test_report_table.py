"""A table declared as data: each column's getter applied to each row's source, in order."""

from __future__ import annotations

from siliconbench.collector.reports.table import INT, MS, TEXT, Column, Declared, cell

LATENCY = Declared("latency", "Latency", (
    cell("name", TEXT, lambda r: r["name"]),
    cell("requests", INT, lambda r: r["n"]),
    cell("TTFT p50", MS, lambda r: r["ttft"]),
), empty="Nothing measured. ")


def test_each_row_holds_each_columns_getter_over_its_source():
    table = LATENCY.build([{"name": "A", "n": 3, "ttft": 0.0}, {"name": "B", "n": 1, "ttft": None}], "TTFT = ...")
    assert table.columns == [Column("name", TEXT), Column("requests", INT), Column("TTFT p50", MS)]
    assert table.rows == [["A", 3, 0.0], ["B", 1, None]]
    assert (table.key, table.title, table.caption) == ("latency", "Latency", "TTFT = ...")


def test_a_table_without_rows_says_so_before_its_caption():
    assert LATENCY.build([], "TTFT = ...").caption == "Nothing measured. TTFT = ..."


def test_the_title_can_name_what_the_build_knows():
    assert LATENCY.build([], "", title="Latency (on demand)").title == "Latency (on demand)"

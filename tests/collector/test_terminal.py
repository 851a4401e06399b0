"""Markdown printed to a terminal fits its width; the columns left out are named."""

from __future__ import annotations

from siliconbench.collector.reports.terminal import fit_markdown

WIDE = "\n".join([
    "# siliconbench run r1",
    "",
    "- generated from chdb://./siliconbench-data; " + "a long sentence of prose " * 8,
    "",
    "| Scenario | " + " | ".join(f"column {k}" for k in range(20)) + " | price row used |",
    "|---|" + "---:|" * 20 + "---|",
    "| A \\| p5 | " + " | ".join(f"{k * 1000.5:,.1f}" for k in range(20)) + " | " + "no price: " * 12 + " |",
    "",
    "| Narrow | table |",
    "|---|---|",
    "| x | y |",
])


def test_every_line_fits_and_the_first_column_stays():
    fitted = fit_markdown(WIDE, 80).split("\n")
    assert max(len(line) for line in fitted) <= 80
    table = [line for line in fitted if line.startswith("| Scenario") or line.startswith("| A")]
    assert table[0].startswith("| Scenario | column 0") and table[1].startswith("| A \\| p5 ")


def test_the_columns_left_out_are_named():
    fitted = fit_markdown(WIDE, 80)
    note = fitted[fitted.index("more columns"):]
    assert "column 19" in note and "price row used" in note and "-o FILE" in note


def test_a_table_that_fits_is_unchanged():
    assert fit_markdown(WIDE, 80).endswith("| Narrow | table |\n|---|---|\n| x | y |")

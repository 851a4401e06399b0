"""The SQL the README and docs show runs against a store as written, and its exact percentiles are the
report's: every ```sql block of README.md and docs/*.md that reads (SELECT) runs on a stored run, and the
README's per-step percentiles equal the report's step figures. Blocks that set a server up (users,
grants, tables ON CLUSTER) need a ClickHouse server and are only checked to be that."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from siliconbench.collector.reports import Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import load_modes as lm

ROOT = Path(__file__).parents[1]
FENCE = re.compile(r"^( *)```sql\n(.*?)^\1```", re.S | re.M)
SERVER_SETUP = ("CREATE USER", "CREATE TABLE", "GRANT")


def sql_blocks() -> list[tuple[str, str]]:
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in FENCE.finditer(path.read_text()):
            indent = len(match.group(1))
            text = "\n".join(line[indent:] for line in match.group(2).splitlines())
            out.append((path.name, text))
    return out


def statements(block: str) -> list[str]:
    """The block's statements, comments dropped."""
    text = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def test_the_docs_show_sql_and_every_block_reads_or_sets_a_server_up():
    blocks = sql_blocks()
    assert sum(1 for name, _ in blocks if name == "README.md") >= 3
    for name, block in blocks:
        kinds = {"read" if s.upper().startswith("SELECT") else "setup" for s in statements(block)}
        assert len(kinds) == 1, (name, block)
        if kinds == {"setup"}:
            assert all(s.upper().startswith(SERVER_SETUP) for s in statements(block)), (name, block)


@pytest.fixture(scope="module")
def stored_run(store) -> str:
    run_id = "docs-sql-run"
    lm.store_run(store, run_id, "docs-sql-agent", "D", server_ttft_s=0.035)
    return run_id


def _run(store, statement: str, run_id: str):
    return store.query(statement.replace("'...'", f"'{run_id}'").replace("'SEARCH_ID'", "'none'"))


@pytest.mark.parametrize("name, block", [b for b in sql_blocks() if statements(b[1])[0].upper().startswith("SELECT")],
                         ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_every_select_in_the_docs_runs_on_a_stored_run(store, stored_run, name, block):
    for statement in statements(block):
        _run(store, statement, stored_run)  # runs as written (a store error fails the test)


def test_the_readmes_per_step_percentiles_are_the_reports_exact_figures(store, stored_run):
    block = next(b for name, b in sql_blocks() if name == "README.md" and "ttft_ns / 1e6" in b)
    assert "quantiles(" not in block  # sampled: disagrees with the report's exact figures
    rows = _run(store, statements(block)[0], stored_run).result_rows
    report = build_report(store, Selection(runs=(stored_run,)), Options(cost=False))
    steps = {s.step: s for s in report.figures.steps}
    assert len(rows) == len(steps) == 10
    for step, _conc, ttft, itl in rows:
        figures = steps[step]
        assert ttft == [figures.ttft_ms.p50, figures.ttft_ms.p90, figures.ttft_ms.p99]
        assert itl == [figures.itl_ms.p50, figures.itl_ms.p90, figures.itl_ms.p99]

"""One benchmark on one node in one command: the collector on the embedded store (a child process of its
own, the same ingest, validation and spool as `siliconbench-collector serve`), the agent's run in this
process (as `siliconbench-agent run`), then each step's result read back from the store.

The collector runs in a session of its own, so a Ctrl-C at the terminal reaches only this process: the
agent ends the run as interrupted and delivers what was measured while the collector still takes it,
and the collector is stopped after (collector/demo.py `process`)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from siliconbench.agent.app import event_loop_runner, run_benchmark
from siliconbench.agent.config import AgentConfig
from siliconbench.agent.errors import RunInterrupted
from siliconbench.bench.result import step_result
from siliconbench.collector import digests
from siliconbench.collector.demo import server_process
from siliconbench.collector.errors import CollectorError
from siliconbench.collector.options import ReportOptions
from siliconbench.collector.reporting import render_report
from siliconbench.collector.rollups import Selection, load_figures, parse_slo, select_series
from siliconbench.collector.store import Store
from siliconbench.core.ids import new_run_id
from siliconbench.core.plan import Plan

log = logging.getLogger(__name__)


@contextlib.contextmanager
def local_collector(store: str) -> Iterator[str]:
    """`siliconbench-collector serve` on the embedded `store`, on a loopback port the kernel picks; yields its
    address, stops it (delivering what it holds) when the block ends."""
    with server_process([sys.executable, "-m", "siliconbench.collector", "serve", "--listen", "127.0.0.1:0",
                         "--store", store], "collector") as (child, address):
        yield address
        child.terminate()
        if child.wait(60) != 0:
            raise CollectorError(f"the collector on {store} exited with code {child.returncode}; see its log above")


@contextlib.contextmanager
def simulator(args: list[str]) -> Iterator[str]:
    """The agent's simulator (`siliconbench-agent sim`) on a port the kernel picks; yields its base URL."""
    with server_process([sys.executable, "-m", "siliconbench.agent", "sim", "--port", "0", *args],
                        "simulator") as (_, address):
        yield f"http://{address}"


def bench(node: AgentConfig, plan: Plan, store: str, run_id: str | None) -> tuple[str, RunInterrupted | None]:
    """Run `plan` with `node`'s options against its target, stored in `store`; the run id, and the
    interruption when a signal ended the run early (what was measured is stored)."""
    run_id = run_id or new_run_id()
    with local_collector(store) as address:
        try:
            event_loop_runner()(run_benchmark(dataclasses.replace(node, collector=address), plan, run_id))
        except RunInterrupted as stopped:
            return run_id, stopped
    return run_id, None


def step_results(store: str, run_id: str, plan: Plan) -> list[dict]:
    """Each step of `run_id` as the flat object `--save-result` writes (bench/result.py)."""
    opened = Store.open_existing(store)
    try:
        digests.check(opened, [run_id])
        [series] = select_series(opened, Selection(runs=(run_id,)))
        slo = parse_slo([f"{metric}={ms:g}" for metric, ms in plan.slo.items()])
        steps = load_figures(opened, [series], slo).steps_of(series)
    finally:
        opened.close()
    return [step_result(series, step, goodput=bool(plan.slo)) for step in steps]


def html_report(store: str, run_id: str, path: Path) -> None:
    path.write_text(render_report(ReportOptions(store=store, runs=(run_id,), fmt="html")), encoding="utf-8")

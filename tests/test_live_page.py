"""The collector's live page in a real browser: a fleet run of two agent daemons (each beside its own
simulator) driven through a real collector serving `--http`, watched in headless Chromium while it runs.
The page loads, its numbers grow while the run runs, it ends showing what the store holds, it logs no
error, and its reports are the read commands' own output."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser import Browser, chromium_or_skip
from tests.servers import Proc, start_collector, start_sim
from tests.collector.test_reads_while_serving import GENERATED

NODES = [("node-a", "A", "p5.48xlarge", 20.0, 6.0), ("node-b", "B", "p4d.24xlarge", 30.0, 8.0)]
REQUESTS_PER_STEP = 40
PLAN = f"""\
concurrency: [1, 2]
requests_per_step: {REQUESTS_PER_STEP}
input_tokens: 16
output_tokens: 24
warmup_requests: 0
repetitions: 1
"""
SNAPSHOT = """JSON.stringify({
  state: document.getElementById('state').textContent,
  refreshed: Number(document.getElementById('live').dataset.refreshed || 0),
  rows: [...document.querySelectorAll('#nodes tr')].map(r => [...r.cells].map(c => c.textContent)),
})"""
NODE, STEPS, REQUESTS, TOKENS_PER_S, HOST_CPU = 0, 4, 5, 7, 11  # columns of the page's node table
ENDED = ("finished", "cancelled", "failed")
RUN_TIMEOUT_S = 300.0


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siliconbench.collector", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A collector serving pages on loopback, two nodes connected; yields (pages URL, collector, plan file)."""
    chromium_or_skip()
    tmp = tmp_path_factory.mktemp("live")
    collector = start_collector(f"chdb://{tmp}/data", tmp / "collector.log", "--http", "127.0.0.1:0")
    pages = collector.wait_log(re.compile(r"pages listening on (http://\S+:\d+)")).group(1)
    processes: list[Proc] = []
    try:
        for node, scenario, itype, ttft, itl in NODES:
            sim = start_sim(tmp / f"{node}-sim.log", "--ttft-ms", str(ttft), "--itl-ms", str(itl))
            env = {"SILICONBENCH_NODE_NAME": node, "SILICONBENCH_SCENARIO": scenario,
                   "SILICONBENCH_INSTANCE_TYPE": itype}
            processes += [Proc.start(f"daemon {node}", ["-m", "siliconbench.agent", "daemon", "--target", sim.url,
                                                        "--collector", collector.address, "--spool-dir",
                                                        str(tmp / node)], tmp / f"{node}-daemon.log", env), sim]
        (tmp / "plan.yaml").write_text(PLAN)
        yield pages, collector, tmp / "plan.yaml", tmp
    finally:
        for process in processes:
            process.stop()
        collector.stop()


async def watch(url: str, profile: Path) -> tuple[list[dict], dict, list[str]]:
    """Open the live view and read it every second until the run ends; then reload it until it shows every
    request stored. Returns the snapshots taken while it ran, the final one, and the browser's errors."""
    async with Browser(profile) as page:
        await page.open(url)
        running: list[dict] = []
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            snapshot = json.loads(await page.evaluate(SNAPSHOT))
            if snapshot["state"] in ENDED:
                break
            if snapshot["state"] == "running":
                running.append(snapshot)
            await asyncio.sleep(1.0)
        expected = len(NODES) * 2 * REQUESTS_PER_STEP
        while time.monotonic() < deadline:  # the last batches may land after the last progress report
            await page.open(url)
            await asyncio.sleep(2.0)
            final = json.loads(await page.evaluate(SNAPSHOT))
            if final["refreshed"] and sum(int(row[REQUESTS]) for row in final["rows"]) >= expected:
                break
        return running, final, page.errors


@pytest.fixture(scope="module")
def watched(fleet):
    pages, collector, plan, tmp = fleet
    started = cli("run", "start", "--plan", str(plan), "--collector", collector.address, "--min-agents", "2",
                  "--wait-s", "120", "--start-delay-s", "1")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    running, final, errors = asyncio.run(watch(f"{pages}/run?id={run_id}", tmp / "profile"))
    return run_id, running, final, errors


def total_requests(snapshot: dict) -> int:
    return sum(int(row[REQUESTS]) for row in snapshot["rows"])


def test_the_page_shows_each_node_and_its_numbers_grow_while_the_run_runs(watched):
    _, running, _, _ = watched
    totals = [total_requests(s) for s in running]
    assert totals == sorted(totals), totals                     # stored requests never go back
    assert len(set(totals)) >= 3, totals                        # and grew on the page at least twice while it ran
    assert running[-1]["refreshed"] > running[0]["refreshed"]   # by the page's own refreshing, not a reload
    shown = {row[NODE] for s in running for row in s["rows"]}
    assert shown == {node for node, *_ in NODES}
    assert any(float(row[TOKENS_PER_S]) > 0 for s in running for row in s["rows"] if row[TOKENS_PER_S] != "–")
    assert all(re.fullmatch(r"\d+", row[HOST_CPU]) for s in running[-1:] for row in s["rows"])


def test_the_page_ends_with_the_run_finished_and_every_request_stored(watched):
    _, _, final, _ = watched
    assert final["state"] == "finished"
    for row in final["rows"]:
        assert row[STEPS] == "2/2" and int(row[REQUESTS]) == 2 * REQUESTS_PER_STEP, row


def test_the_page_logs_no_error_in_the_browser(watched):
    _, _, _, errors = watched
    assert errors == []


def test_each_report_by_url_is_the_read_command_s_own_output(fleet, watched):
    pages, _, _, tmp = fleet
    run_id = watched[0]
    store = f"chdb://{tmp}/data"
    for path, argv in ((f"/report?run={run_id}", ["report", "--run", run_id]),
                       (f"/fleet-report?run={run_id}", ["run", "report", "--run", run_id])):
        with urllib.request.urlopen(pages + path, timeout=300) as response:
            page = response.read().decode()
        done = cli(*argv, "--format", "html", "--store", store)
        assert done.returncode == 0, done.stderr
        assert GENERATED.sub("", page) == GENERATED.sub("", done.stdout), path
        assert page.startswith("<!DOCTYPE html>") and run_id in page

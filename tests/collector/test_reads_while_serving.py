"""Reports while the collector serves: the collector holds its embedded store, and each read command run
meanwhile is answered by it, with the output and exit code the command has once the collector stopped.
Writes are never run for others, nor commands on another store."""

from __future__ import annotations

import re
import subprocess

import pytest

from siliconbench.collector.reads import ReadService, forwarded, read_command
from siliconbench.collector.store import StoreLocation
from siliconbench.core.errors import ExitCode
from tests.servers import PY, REPO, start_collector, start_sim

GENERATED = re.compile(r"[Gg]enerated(?:_at)?\W{0,4}\d{4}-\d\d-\d\d[ T][\d:.]+(?: UTC|Z|\+00:00)?")
PLAN = ("--concurrency", "1,2", "--requests-per-step", "4", "--repetitions", "1", "--warmup-requests", "0",
        "--input-tokens", "16", "--output-tokens", "4")


def cli(*args: str) -> tuple[int, str, str]:
    done = subprocess.run([PY, "-m", "siliconbench.collector", *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def commands(store: str, runs: list[str]) -> list[tuple[str, ...]]:
    return [("runs", "--store", store), ("runs", "list", "--store", store),
            ("report", "--run", runs[0], "--store", store),
            ("report", "--run", runs[0], "--format", "json", "--store", store),
            ("compare", "--run", runs[0], "--run", runs[1], "--store", store),
            ("sql", "SELECT run_id, count() FROM siliconbench.requests GROUP BY run_id ORDER BY run_id", "--store", store),
            ("export", "--table", "steps", "--run", runs[1], "--store", store),
            ("run", "report", "--run", runs[0], "--store", store),
            ("check-slo", "--run", runs[0], "--slo", "ttft_p99_ms<=60000", "--store", store),
            ("check-slo", "--run", runs[0], "--slo", "ttft_p99_ms<=0.001", "-f", "json", "--store", store),
            ("report", "--run", "no-such-run", "--store", store)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A collector serving a store with two runs, and the read commands' outcomes while it serves."""
    tmp = tmp_path_factory.mktemp("served")
    store = f"chdb://{tmp}/data"
    sim = start_sim(tmp / "sim.log", "--ttft-ms", "2", "--itl-ms", "1")
    collector = start_collector(store, tmp / "collector.log")
    try:
        runs = []
        for n in range(2):
            done = subprocess.run([PY, "-m", "siliconbench.agent", "run", "--target", sim.url, "--collector",
                                   collector.address, "--spool-dir", str(tmp / f"spool{n}"), *PLAN],
                                  capture_output=True, text=True, timeout=300, cwd=REPO)
            assert done.returncode == 0, done.stderr[-3000:]
            runs.append(done.stdout.strip().splitlines()[-1])
        todo = commands(store, runs)
        while_serving = [cli(*command) for command in todo]
        writing = cli("sql", "DROP TABLE siliconbench.requests", "--write", "--store", store)
        assert collector.popen.poll() is None  # it served throughout
    finally:
        collector.stop()
        sim.stop()
    return todo, while_serving, writing, [cli(*command) for command in todo]


def same_but_the_generation_time(outcome: tuple[int, str, str]) -> tuple[int, str, str]:
    """A report states when it was generated: the one difference between two runs of a command."""
    code, out, err = outcome
    return code, GENERATED.sub("generated TIME", out), err


def test_each_read_command_while_the_collector_serves_reads_as_it_does_offline(served):
    todo, while_serving, _, offline = served
    for command, online, stopped in zip(todo, while_serving, offline, strict=True):
        assert same_but_the_generation_time(online) == same_but_the_generation_time(stopped), command
    answered = [code for command, (code, _, _) in zip(todo, offline, strict=True)
                if command[0] != "run" and "no-such-run" not in command]
    # runs, runs list, report (markdown, json), compare, sql, export: read and told; check-slo's verdicts
    assert answered == [0] * 7 + [0, ExitCode.SLO_BROKEN]
    assert offline[-1][0] == ExitCode.BAD_INPUT and "no run matches 'no-such-run'" in offline[-1][2]


def test_a_write_is_not_run_for_others_and_says_the_store_is_held(served):
    _, _, (code, _, err), _ = served
    assert code == ExitCode.STORE and "is in use by another process" in err


def test_only_read_commands_on_the_collector_s_own_store_are_answered():
    own = StoreLocation.parse("chdb:///srv/data")
    service = ReadService(own, lambda argv: (0, "ran", ""))
    assert service.answer(["report", "--store", "chdb:///srv/data"]) == (0, "ran", "")
    for argv in (["sql", "DROP TABLE x", "--write", "--store", "chdb:///srv/data"],
                 ["prices", "import", "p.csv", "--store", "chdb:///srv/data"],
                 ["report", "--store", "chdb:///srv/other"], ["runs"]):
        code, out, err = service.answer(argv)
        assert (code, out) == (ExitCode.BAD_INPUT, "") and err.startswith("error: "), argv
    assert read_command(["runs", "list", "--store", "x"]) == ("runs", "list")


def test_a_forwarded_command_names_its_store_and_output_by_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = StoreLocation.parse("chdb://./data")
    assert forwarded(["report", "--store", "chdb://./data", "-o", "r.html"], location) == [
        "report", "-o", str(tmp_path / "r.html"), "--store", f"chdb://{tmp_path}/data"]


def test_a_forwarded_plan_names_its_price_file_by_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = StoreLocation.parse("chdb://./data")
    assert forwarded(["plan", "--prices", "p.csv", "--store", "chdb://./data"], location) == [
        "plan", "--prices", str(tmp_path / "p.csv"), "--store", f"chdb://{tmp_path}/data"]
    assert read_command(["plan", "--load", "1 req/s"]) == ("plan",)

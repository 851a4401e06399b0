"""What a hostile target costs, end to end through real processes: the hostile server of tests/hostile/server.py
misbehaves on one request of a run (or on /metrics), the released agent CLI runs against it and ships to a
real collector on its own chDB path. For each case: the agent finishes with exit 0 and its one-line summary,
every request of the run is stored exactly once, the bad one as an error of the expected class, the good ones
without error, and a healthy run afterwards on the same spool is stored whole.

One collector serves every case (process start-up dominates: ~2 s an agent run); the store is read once, after
the collector stopped."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from siliconbench.core.errors import ExitCode
from tests.servers import PY, REPO, Proc, start_collector

REQUESTS = 5  # per run, at concurrency 1: the 3rd is the bad one
# mode -> the error class its bad request is stored with ("" : every request succeeds)
CASES = {
    "endless": "overrun",                  # chunks until the request timeout
    "past_max": "overrun",                 # 100 chunks past max_tokens, then [DONE]
    "huge_line": "malformed_chunk",        # a 2 MiB SSE line
    "bad_utf8": "malformed_chunk",
    "usage_range": "malformed_chunk",      # usage.prompt_tokens = 20,000,000: past what the store takes
    "usage_huge": "malformed_chunk",       # usage.completion_tokens = 99,999,999,999
    "long_finish": "malformed_chunk",      # a 300-character finish_reason
    "surrogate": "malformed_chunk",        # a lone surrogate in finish_reason
    "html200": "truncated",                # 200 with an HTML page
    "midchunk_close": "disconnected",      # the connection closed in the middle of a chunk
    "slowloris": "timeout",                # a ping now and then, never a response
    "nan_metrics": "",                     # NaN in /metrics: the series is dropped, the requests are fine
    "usage_backwards": "malformed_chunk",  # completion_tokens n, then n - 1
    "metrics_bad_utf8": "",                # a byte in /metrics that is not UTF-8: read with a replacement
}
# The module's fixture runs 24 agent processes: ~45 s on an idle 2-core machine, a few times that loaded.
pytestmark = pytest.mark.timeout(900)
PLAN = ["--concurrency", "1", "--requests-per-step", str(REQUESTS), "--repetitions", "1", "--output-tokens", "8",
        "--input-tokens", "8", "--warmup-requests", "0", "--request-timeout-s", "5"]  # slowloris costs 5 s


# The agent's CLI, in a process that prints its own peak RSS as it exits: VmHWM, the high-water mark of
# this process's own memory (getrusage's ru_maxrss survives exec on Linux, so a child of a big pytest process
# would report its parent's size; RUSAGE_CHILDREN would mix in every process the session waited for).
AGENT = ("import atexit, re, sys; from siliconbench.agent.cli import main; "
         "atexit.register(lambda: print('peak_rss_kib', re.search(r'VmHWM:\\s+(\\d+)', "
         "open('/proc/self/status').read()).group(1), file=sys.stderr)); "
         "sys.argv[0] = 'siliconbench-agent'; main()")


def agent_run(target_port: int, collector_port: int, spool: Path, run_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-c", AGENT, "run", "--target", f"http://127.0.0.1:{target_port}",
                           "--collector", f"127.0.0.1:{collector_port}", "--spool-dir", str(spool),
                           "--run-id", run_id, *PLAN], capture_output=True, text=True, cwd=REPO, timeout=180)


def peak_rss_mib(agent: subprocess.CompletedProcess) -> float:
    return int(agent.stderr.rsplit("peak_rss_kib ", 1)[1].split()[0]) / 1024


def start_hostile(mode: str, log_path: Path, *options: str) -> tuple[Proc, int]:
    """The hostile server on a port the kernel picks, and that port (from its "listening on" line)."""
    server = Proc.start("hostile server", ["-m", "tests.hostile.server", "--port", "0", "--mode", mode, *options],
                       log_path)
    return server, int(server.wait_line("listening on").rpartition(":")[2])


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Per case: (bad run's agent, healthy run's agent, their run ids); then the store's rows per run."""
    tmp = tmp_path_factory.mktemp("hostile")
    store = f"chdb://{tmp / 'store'}"
    collector = start_collector(store, tmp / "collector.log")
    port = collector.port
    def case(mode: str) -> tuple:
        server, target = start_hostile(mode, tmp / f"{mode}.log")
        spool = tmp / f"spool-{mode}"
        bad_id, healthy_id = (f"{mode}-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("bad", "healthy"))
        try:
            bad = agent_run(target, port, spool, bad_id)
            healthy = agent_run(target, port, spool, healthy_id)  # the server misbehaves only once
        finally:
            server.stop()
        return bad, healthy, bad_id, healthy_id

    try:
        with ThreadPoolExecutor(3) as pool:  # cases are independent; their waits (timeouts, acks) overlap
            runs = dict(zip(CASES, pool.map(case, CASES)))
    finally:
        assert collector.stop() == 0, collector.log()[-3000:]
    rows = subprocess.run([PY, "-m", "siliconbench.collector", "sql", "SELECT run_id, request_id, error_class "
                           "FROM siliconbench.requests ORDER BY run_id, request_id", "--store", store],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert rows.returncode == 0, rows.stderr
    stored: dict[str, list[tuple[str, str]]] = {}
    for line in rows.stdout.strip().splitlines()[1:]:
        run_id, request_id, error_class = (line.split("\t") + [""])[:3]
        stored.setdefault(run_id, []).append((request_id, error_class))
    return runs, stored


@pytest.mark.parametrize("mode", CASES)
def test_one_bad_response_costs_one_request_and_nothing_else(outcomes, mode):
    runs, stored = outcomes
    bad, healthy, bad_id, healthy_id = runs[mode]
    assert bad.returncode == 0, bad.stderr[-3000:]
    assert "Traceback" not in bad.stderr
    assert f"{REQUESTS} requests served, {REQUESTS} stored, 0 set aside, 0 still in the spool" in bad.stderr
    rows = stored.get(bad_id, [])
    assert sorted(r for r, _ in rows) == [f"{bad_id}/0/{i}" for i in range(REQUESTS)]  # each exactly once
    errors = {request_id: error for request_id, error in rows if error}
    assert errors == ({f"{bad_id}/0/2": CASES[mode]} if CASES[mode] else {})
    assert healthy.returncode == 0, healthy.stderr[-3000:]
    assert [e for _, e in stored.get(healthy_id, [])] == [""] * REQUESTS


def test_nan_in_metrics_is_dropped_with_a_warning(outcomes):
    runs, _ = outcomes
    assert "dropped: its value is nan; only finite numbers are stored" in runs["nan_metrics"][0].stderr


def test_a_metrics_page_that_is_not_utf8_is_read_with_a_warning(outcomes):
    runs, _ = outcomes
    assert "/metrics is not valid UTF-8" in runs["metrics_bad_utf8"][0].stderr
    assert "read with replacement characters" in runs["metrics_bad_utf8"][0].stderr


def test_the_agents_memory_stays_bounded(outcomes):
    """An endless stream made a record of millions of chunk offsets (agent RSS 337 MiB, issue 11)."""
    runs, _ = outcomes
    peaks = {mode: peak_rss_mib(bad) for mode, (bad, *_) in runs.items()}
    assert max(peaks.values()) < 300, peaks  # ~70 MiB each here


def test_a_model_id_the_store_cannot_hold_stops_the_run_with_one_line(tmp_path, held_port):
    server, target = start_hostile("long_model", tmp_path / "server.log")
    try:
        result = agent_run(target, held_port, tmp_path / "spool", "long-model")
    finally:
        server.stop()
    assert result.returncode == ExitCode.TARGET and "Traceback" not in result.stderr
    assert "serves a model whose id" in result.stderr and "is 300 characters long; the limit is 256" in result.stderr


def test_sigterm_mid_run_delivers_every_finished_request_and_says_what_was_kept(tmp_path):
    """The server hangs on the 7th request (the 2nd of step 2) for longer than the test: SIGTERM lands there."""
    store = f"chdb://{tmp_path / 'store'}"
    collector = start_collector(store, tmp_path / "collector.log")
    collector_port = collector.port
    server, port = start_hostile("slowloris", tmp_path / "server.log", "--bad", str(REQUESTS + 2))
    args = [*PLAN, "--concurrency", "1,1", "--request-timeout-s", "600"]  # later flags win
    agent = Proc.start("agent", ["-m", "siliconbench.agent", "run", "--target", f"http://127.0.0.1:{port}",
                                 "--collector", f"127.0.0.1:{collector_port}", "--spool-dir", str(tmp_path / "spool"),
                                 "--run-id", "sigterm-run", *args], tmp_path / "agent.log")
    try:
        server.wait_line("hanging")  # every request before the hanging one has been answered in full
        agent.popen.send_signal(signal.SIGTERM)
        code = agent.wait(120)
    finally:
        server.stop()
        collector.stop()
    served = REQUESTS + 1
    assert code == ExitCode.INTERRUPTED and "Traceback" not in agent.log()
    assert (f"error: run sigterm-run interrupted: {served} requests served, {served} stored, 0 set aside, "
            "0 still in the spool") in agent.log()
    result = subprocess.run([PY, "-m", "siliconbench.collector", "sql", "SELECT count(), uniqExact(request_id) FROM "
                             "siliconbench.requests WHERE run_id = 'sigterm-run'", "--store", store],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.stdout.strip().splitlines()[1].split("\t") == [str(served), str(served)]


def wait_for_text(proc: Proc, text: str, timeout_s: float = 120.0) -> None:
    """Wait until `proc`'s log holds `text` (a hang guard, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while text not in proc.log():
        assert proc.popen.poll() is None and time.monotonic() < deadline, proc.log()[-3000:]
        time.sleep(0.1)

"""Real processes for fault tests: collectors on their own chDB paths, scripted agents, a TCP
proxy that can cut the network, and reading the results back through the collector's CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from pathlib import Path

from siliconbench.collector.step_sql import NO_SLO_ARGS
from tests.servers import PY, REPO, HeldPort, Proc, Server, start_server


def start_flaky_collector(store: str, log_path: Path, down_file: Path) -> Server:
    return start_server("collector", ["-m", "tests.faults.flaky_collector", "--listen", "127.0.0.1:0", "--store", store,
                                      "--down-file", str(down_file)], log_path)


def start_agent(port: int, spool: Path, run_id: str, log_path: Path, *, start: int = 0, count: int = 200,
                **options) -> Proc:
    args = ["-m", "tests.faults.agent_proc", "--collector", f"127.0.0.1:{port}", "--spool-dir", str(spool),
            "--run", run_id, "--start", str(start), "--count", str(count)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return Proc.start("agent", args, log_path)


def stored(store: str, run_id: str) -> tuple[int, int]:
    """(rows, distinct request ids) of a run, read through the CLI once the collector has stopped."""
    [[rows, distinct]] = sql(store, "SELECT count(), uniqExact(request_id) FROM siliconbench.requests "
                                    f"WHERE run_id = '{run_id}'")
    return int(rows), int(distinct)


def sql(store: str, query: str) -> list[list[str]]:
    """The rows (tab-separated fields) of a query, run through the CLI once the collector has stopped."""
    return _sql(store, query)[1:]


def sql_rows(store: str, query: str, *flags: str) -> list[dict[str, str]]:
    """The rows of a query as {column: field}, through the CLI: run by the collector while one serves the
    store (collector/reads.py), else opening it."""
    header, *rows = _sql(store, query, *flags)
    return [dict(zip(header, row, strict=True)) for row in rows]


def _sql(store: str, query: str, *flags: str) -> list[list[str]]:
    result = subprocess.run([PY, "-m", "siliconbench.collector", "sql", query, "--store", store, *flags],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.rstrip("\n").splitlines()]


def step_results(store: str, run_id: str) -> list[dict[str, str]]:
    """A run's step_results (every SLO inf: goodput is the kept one), `kept` saying which were read kept."""
    return sql_rows(store, f"SELECT * FROM siliconbench.step_results({NO_SLO_ARGS}) WHERE run_id = '{run_id}' "
                           "ORDER BY agent_id, step")


def step_answers(store: str, run_id: str) -> list[dict[str, str]]:
    return sql_rows(store, f"SELECT * FROM siliconbench.step_answers WHERE run_id = '{run_id}' "
                           "ORDER BY agent_id, step, model")


def wait_kept(store: str, run_id: str, steps: int, timeout_s: float = 15.0) -> None:
    """Wait, polling through the serving collector, until the run's `steps` steps all read as kept."""
    deadline = time.monotonic() + timeout_s
    while [row["kept"] for row in step_results(store, run_id)] != ["True"] * steps:
        assert time.monotonic() < deadline, f"not every step of {run_id} kept within {timeout_s:.0f} s: " \
                                             f"{[(r['agent_id'], r['step'], r['kept']) for r in step_results(store, run_id)]}"
        time.sleep(0.2)


def forget_kept(store: str) -> None:
    """Drop every kept step result (the collector stopped): the views then compute each step from its rows."""
    for table in ("kept_steps", "kept_answers"):
        _sql(store, f"TRUNCATE TABLE siliconbench.{table}", "--write")


def reported_requests(store: str, run_id: str) -> int:
    """The requests the JSON report counts for a run (over its steps), through the CLI."""
    result = subprocess.run([PY, "-m", "siliconbench.collector", "report", "--run", run_id, "--format", "json",
                             "--no-cost", "--store", store], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return sum(step["requests"] for step in json.loads(result.stdout)["steps"])


def wait_sealed(agent: Proc, at_least: int, timeout_s: float = 60.0) -> bool:
    """Wait until a scripted agent printed `sealed N` with N >= at_least; False if it finished producing first."""
    while not (line := agent.wait_line("", timeout_s)).startswith("produced"):
        if line.startswith("sealed") and int(line.split()[1]) >= at_least:
            return True
    return False


class CuttableProxy:
    """A TCP proxy on its own thread; `cut()` closes the listener and every connection (agents get
    'connection refused'), `restore()` listens again on the same port, which stays held meanwhile."""

    def __init__(self, target_port: int) -> None:
        self._held = HeldPort()
        self.port = self._held.port
        self._target = target_port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self.restore()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def restore(self) -> None:
        async def listen():
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_port=True)
        self._call(listen())

    def cut(self) -> None:
        async def close():
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
        self._call(close())

    async def _handle(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._held.close()

"""Reports while the collector serves. A collector holds its embedded store (chDB: one process at a time),
so a read command (`READ_COMMANDS`) on a store a collector serves asks that collector to run it: the
collector listens for this on a loopback HTTP port of its own, named in the store's directory
(`SERVING_FILE`, there while it serves), runs the command in its own process against the store it holds, and answers with the
command's output and exit code. The same code runs the command, so its output is what it is offline.

Only reads are run: the commands of `READ_COMMANDS`, never `sql --write`, and only against the
collector's own store. The port listens on loopback alone (only users of this host, who can read an
embedded store's files anyway, reach it); a ClickHouse server store is read directly, never through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import os
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from aiohttp import web

from siliconbench.collector.errors import CollectorError
from siliconbench.collector.store import StoreLocation
from siliconbench.core.cli import given_args
from siliconbench.core.errors import ExitCode

log = logging.getLogger(__name__)

SERVING_FILE = "siliconbench-serving.json"  # in the embedded store's directory, while a collector serves it
READ_COMMANDS = (("runs", "list"), ("run", "report"), ("report",), ("compare",), ("runs",), ("sql",), ("export",),
                 ("plan",), ("check-slo",))
WRITING_FLAGS = ("--write", "--validate")  # `sql --write` changes the store; `plan --validate` starts a fleet run
FILE_FLAGS = ("-o", "--output", "--prices")  # a file the command writes or reads: named by its absolute path
Outcome = tuple[int, str, str]  # exit code, standard output, standard error
_served_here: set[str] = set()  # the stores this process serves: its own read commands open them directly


def serving_file(location: StoreLocation) -> Path:
    return Path(location.dsn[len("chdb://"):]) / SERVING_FILE


def read_command(argv: list[str]) -> tuple[str, ...] | None:
    """The read command `argv` runs, or None when it is not one (or is `sql --write`, `plan --validate`)."""
    found = next((command for command in READ_COMMANDS if tuple(argv[:len(command)]) == command), None)
    return None if found is None or any(flag in argv for flag in WRITING_FLAGS) else found


def store_of(argv: list[str]) -> str | None:
    """The --store value in `argv` (the last one given), None without one."""
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--store"]
    values += [arg.partition("=")[2] for arg in argv if arg.startswith("--store=")]
    return values[-1] if values else None


def forwarded(argv: list[str], location: StoreLocation) -> list[str]:
    """`argv` as the collector runs it, whatever its working directory: the store named by its absolute
    path, an output or input file too (`FILE_FLAGS`)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        before = argv[i - 1] if i else ""
        if arg == "--store" or arg.startswith("--store=") or before == "--store":
            continue
        out.append(os.path.abspath(arg) if before in FILE_FLAGS else arg)
    return [*out, "--store", location.dsn]


class ReadService:
    """The collector's side: runs read commands through `run` (the command line, in this process) one at a
    time, for the store at `location`."""

    def __init__(self, location: StoreLocation, run: Callable[[list[str]], Outcome]) -> None:
        self._location = location
        self._run = run
        self._lock = threading.Lock()  # standard output is redirected while a command runs

    def answer(self, argv: list[str]) -> Outcome:
        if read_command(argv) is None:
            return ExitCode.BAD_INPUT, "", f"error: {' '.join(argv[:2])} is not a read command this collector runs\n"
        given = store_of(argv)
        if given is None or StoreLocation.parse(given).dsn != self._location.dsn:
            return ExitCode.BAD_INPUT, "", f"error: this collector serves {self._location.shown} only\n"
        with self._lock:
            return self._run(argv)


def run_captured(main: Callable[[list[str]], None], argv: list[str]) -> Outcome:
    """`main(argv)` (a program's main: it exits) with its standard output and error captured."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)  # `export` writes bytes
    err = io.StringIO()
    code: object = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exited:
            code = exited.code
    out.flush()
    return (code if isinstance(code, int) else int(bool(code))), raw.getvalue().decode("utf-8", "replace"), err.getvalue()


@contextlib.asynccontextmanager
async def serving_reads(service: ReadService, location: StoreLocation):
    """While the block runs: `service` on a loopback port, named in the store's SERVING_FILE."""
    async def command(request: web.Request) -> web.Response:
        body = await request.json()
        argv = body.get("argv") if isinstance(body, dict) else None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            return web.json_response({"error": "argv: a list of strings"}, status=400)
        code, out, err = await asyncio.to_thread(service.answer, argv)
        return web.json_response({"code": code, "stdout": out, "stderr": err})

    app = web.Application()
    app.router.add_post("/v1/command", command)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    path = serving_file(location)
    _served_here.add(location.dsn)
    path.write_text(json.dumps({"address": f"127.0.0.1:{port}", "pid": os.getpid()}), encoding="utf-8")
    log.info("read commands on %s are answered at 127.0.0.1:%d while this collector serves it", location.shown, port)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _served_here.discard(location.dsn)
        await runner.cleanup()


def served(command: Callable[..., None]) -> Callable[..., None]:
    """A read command (its --store flag named `store`) that, while a collector serves its embedded store,
    runs in that collector: reports while it serves, with the output they have offline."""

    @functools.wraps(command)
    def wrapper(**values: object) -> None:
        answer = ask_collector(given_args(), str(values["store"]))
        if answer is None:
            command(**values)
            return
        code, out, err = answer
        sys.stdout.write(out)
        sys.stderr.write(err)
        raise SystemExit(code)

    return wrapper


def ask_collector(argv: list[str], store: str) -> Outcome | None:
    """The outcome of the read command `argv`, run by the collector that serves the embedded `store`;
    None when no collector answers for it (the command then opens the store itself)."""
    try:
        location = StoreLocation.parse(store)
    except CollectorError:
        return None  # the command says what is wrong with --store
    if not location.embedded or read_command(argv) is None or location.dsn in _served_here:
        return None
    try:
        address = json.loads(serving_file(location).read_text(encoding="utf-8"))["address"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no collector serves it, or one that does not answer read commands
    request = urllib.request.Request(f"http://{address}/v1/command",
                                     data=json.dumps({"argv": forwarded(argv, location)}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            answer = json.loads(response.read())
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return None  # a collector that stopped without removing its file (killed)
        raise CollectorError(f"the collector serving {location.shown} did not answer at {address} ({exc.reason}); "
                             "stop it to read the store directly") from None
    except (OSError, ValueError) as exc:
        raise CollectorError(f"the collector serving {location.shown} did not answer at {address} ({exc}); "
                             "stop it to read the store directly") from None
    return int(answer["code"]), str(answer["stdout"]), str(answer["stderr"])

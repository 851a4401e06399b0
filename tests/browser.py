"""Headless Chromium driven over its DevTools protocol (a WebSocket, through aiohttp's client): open a page,
evaluate JavaScript in it, and collect what its console and runtime report as errors.

Chromium comes from Debian (scripts/ensure_chromium.sh); a test that needs it is skipped without it. It
is started with `--remote-debugging-port=0` and names the port it picked on standard error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest

STARTUP_TIMEOUT_S = 120.0  # a cold Chromium on a loaded 2-core machine


def chromium_or_skip() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (scripts/ensure_chromium.sh installs it)")
    return found


class Browser:
    """One headless Chromium and one page of it. Use as `async with Browser(profile) as page:`."""

    def __init__(self, profile: Path) -> None:
        self._profile = profile
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self.errors: list[str] = []  # console errors, uncaught exceptions, failed loads: one line each
        self._loaded = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._proc = await asyncio.create_subprocess_exec(
            chromium_or_skip(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--remote-debugging-port=0", f"--user-data-dir={self._profile}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        port = await asyncio.wait_for(self._devtools_port(), STARTUP_TIMEOUT_S)
        self._drain = asyncio.create_task(self._read_log())  # a full stderr pipe would stall chromium
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Runtime", "Log", "Page"):
            await self.call(f"{domain}.enable")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        await self._ws.close()
        await self._session.close()
        self._proc.terminate()
        await asyncio.wait_for(self._proc.wait(), 30)
        self._drain.cancel()

    async def _devtools_port(self) -> int:
        assert self._proc.stderr is not None
        async for line in self._proc.stderr:
            if found := re.search(rb"DevTools listening on ws://[^:]+:(\d+)/", line):
                return int(found.group(1))
        raise AssertionError(f"chromium exited with code {await self._proc.wait()} before it listened")

    async def _read_log(self) -> None:
        assert self._proc.stderr is not None
        async for _ in self._proc.stderr:
            pass

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data:
                self._pending.pop(data["id"]).set_result(data)
            else:
                self._event(data["method"], data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append("exception: " + details.get("exception", {}).get("description", details["text"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        self._pending[number] = asyncio.get_running_loop().create_future()
        await self._ws.send_json({"id": number, "method": method, "params": params})
        reply = await asyncio.wait_for(self._pending[number], 60)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply["result"]

    async def open(self, url: str) -> None:
        """Navigate to `url`; returns once the page has loaded."""
        self._loaded.clear()
        navigated = await self.call("Page.navigate", url=url)
        if "errorText" in navigated:
            raise AssertionError(f"{url}: {navigated['errorText']}")
        await asyncio.wait_for(self._loaded.wait(), 60)

    async def evaluate(self, expression: str) -> Any:
        """The value of `expression` in the page (JSON-able)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']['text']}")
        return result["result"].get("value")

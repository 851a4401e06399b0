"""serve(): listens, announces itself in one log line, stops when cancelled."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import pytest

from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.server import serve


async def test_serve_logs_its_address_answers_and_stops_on_cancel(caplog):
    caplog.set_level(logging.INFO, logger="siliconbench.agent.sim.server")
    listening = asyncio.Event()

    class Announce(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            listening.set()

    handler = Announce()
    logging.getLogger("siliconbench.agent.sim.server").addHandler(handler)
    task = asyncio.create_task(serve(SimProfile(ttft_ms=1, itl_ms=1), "127.0.0.1", 0))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        (message,) = [r.getMessage() for r in caplog.records if "listening" in r.getMessage()]
        match = re.fullmatch(r"simulator listening on http://127\.0\.0\.1:(\d+) \(profile model=.*\)", message)
        assert match, message
        url = f"http://127.0.0.1:{match.group(1)}"
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/version") as resp:
                assert (await resp.json())["simulated"] is True
    finally:
        logging.getLogger("siliconbench.agent.sim.server").removeHandler(handler)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url + "/health")

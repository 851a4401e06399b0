"""The daemon's start: it waits for its vLLM to load (GET /health) before running a plan."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from siliconbench.agent.app import wait_for_target
from tests.servers import HeldPort

BOUND_S = 60.0  # a bound on a hung wait, never reached when the code works: not a timing assertion


class Tried(logging.Handler):
    """Set when the agent has asked the target once and says it keeps waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for the target"):
            self.event.set()


@pytest.fixture
def tried(caplog):
    caplog.set_level(logging.INFO, logger="siliconbench.agent.app")
    handler = Tried()
    logging.getLogger("siliconbench.agent.app").addHandler(handler)
    yield handler.event
    logging.getLogger("siliconbench.agent.app").removeHandler(handler)


async def test_waits_until_the_target_answers_health_then_returns(tried):
    with HeldPort() as port:  # bound, not listening: the target refuses until its server starts
        stop = asyncio.Event()
        waiting = asyncio.create_task(wait_for_target(f"http://127.0.0.1:{port.port}", stop, every_s=0.05))
        await asyncio.wait_for(tried.wait(), BOUND_S)
        assert not waiting.done()  # refused: it keeps waiting

        async def health(request: web.Request) -> web.Response:
            return web.Response()

        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port.port, reuse_port=True).start()
        try:
            await asyncio.wait_for(waiting, BOUND_S)
        finally:
            await runner.cleanup()


async def test_stop_ends_the_wait_without_a_target(tried):
    with HeldPort() as port:
        stop = asyncio.Event()
        waiting = asyncio.create_task(wait_for_target(f"http://127.0.0.1:{port.port}", stop, every_s=0.05))
        await asyncio.wait_for(tried.wait(), BOUND_S)
        stop.set()
        await asyncio.wait_for(waiting, BOUND_S)

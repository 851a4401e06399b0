"""The daemon's start: it waits for its vLLM to load (GET /health) before running a plan."""

from __future__ import annotations

import asyncio

from aiohttp import web

from siliconbench.agent.app import wait_for_target
from siliconbench.collector.demo import free_port


async def test_waits_until_the_target_answers_health_then_returns():
    port = free_port()
    stop = asyncio.Event()
    waiting = asyncio.create_task(wait_for_target(f"http://127.0.0.1:{port}", stop, every_s=0.05))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing listens yet
    async def health(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.wait_for(waiting, 2)
    finally:
        await runner.cleanup()


async def test_stop_ends_the_wait_without_a_target():
    stop = asyncio.Event()
    waiting = asyncio.create_task(wait_for_target(f"http://127.0.0.1:{free_port()}", stop, every_s=0.05))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(waiting, 1)

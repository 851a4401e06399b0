"""Fixtures: a real simulator on a loopback port, one per test, with a client session to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from siliconbench.agent.sim import SendLog, SimProfile
from siliconbench.agent.sim.server import create_app

StartSim = Callable[..., Awaitable[TestClient]]

MODEL = SimProfile().model


@pytest_asyncio.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """`await start_sim(profile=None, send_log=None)` -> a TestClient bound to a fresh simulator."""
    clients: list[TestClient] = []

    async def start(profile: SimProfile | None = None, send_log: SendLog | None = None) -> TestClient:
        client = TestClient(TestServer(create_app(profile or SimProfile(ttft_ms=1, itl_ms=1), send_log)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest_asyncio.fixture
async def sim(start_sim: StartSim) -> TestClient:
    """A fast simulator (1 ms TTFT, 1 ms ITL) with the default model name."""
    return await start_sim()

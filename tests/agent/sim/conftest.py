"""Fixtures: a real simulator on a loopback port, one per test, with a client session to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from siliconbench.agent.sim import SendLog, SimProfile, create_app

StartSim = Callable[..., Awaitable[TestClient]]

MODEL = SimProfile().model

# Each chunk is written at its absolute deadline, never before it, so a time the client sees (or the
# send log stamps) is never early: it is late by the loopback round trip plus, on a busy machine, a
# descheduled wake-up of either process. With two CPU hogs on a 2-core machine, medians of five
# requests were measured 1-10 ms late (single ones up to ~20 ms); LATE_S allows 40. Timing tests
# check medians against [deadline, deadline + LATE_S): a term left out of a schedule fails the lower
# bound, and each test's schedule is chosen so that a term counted twice, a stamp taken at the wrong
# moment or sleeps that drift land more than LATE_S late.
LATE_S = 0.040


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

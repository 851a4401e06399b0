"""Fixtures shared by the agent's tests (a fixture imported from another test module shadows itself)."""

import pytest_asyncio
from aiohttp.test_utils import TestServer

from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.server import create_app


@pytest_asyncio.fixture
async def sim_url():
    """The simulator on a loopback port, as a base URL."""
    server = TestServer(create_app(SimProfile(ttft_ms=5, itl_ms=1)))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()

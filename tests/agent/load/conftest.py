"""A raw TCP server that sends crafted bytes (HTTP framing, SSE, resets) exactly as a test's script writes
them, for the send path's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest_asyncio

from siliconbench.agent.httpstream import StreamingClient


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable]:
    servers = []

    async def start(script, timeout_s: float = 1.0) -> StreamingClient:
        async def handle(reader, writer):
            try:
                await read_request(reader)
                await script(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return StreamingClient(f"http://127.0.0.1:{port}", timeout_s=timeout_s)

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()

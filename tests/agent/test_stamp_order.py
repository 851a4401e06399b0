"""Every chunk of a request is stamped no earlier than the one before it, however busy the machine: the
collector refuses a record whose chunk offsets go backwards. Real client, real kernel receive times, a
zero-delay server in its own process (tests/agent/chunk_server.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from siliconbench.agent.httpstream import StreamingClient
from siliconbench.agent.sse import SseDecoder

SERVER = Path(__file__).with_name("chunk_server.py")
BURN = "while True: pass"


@contextmanager
def chunk_server(chunks: int) -> Iterator[str]:
    server = subprocess.Popen([sys.executable, str(SERVER), str(chunks)], stdout=subprocess.PIPE)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


@contextmanager
def cpu_burners(count: int) -> Iterator[None]:
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def one_request(client: StreamingClient, request_id: str) -> tuple[list[int], int]:
    """The arrival offset of each body piece of one request, and the number of SSE events it carried."""
    offsets: list[int] = []
    events: list[bytes] = []
    decoder = SseDecoder()

    def on_body(data: bytes, offset_ns: int) -> None:
        offsets.append(offset_ns)
        events.extend(decoder.feed(data))

    ex = await client.exchange(client.request_bytes("/v1/completions", b"{}", request_id), on_body, 1 << 30)
    assert ex.error is None and ex.status == 200, ex.error
    return offsets, len(events)


async def stream_offsets(url: str, streams: int, requests_each: int) -> list[tuple[list[int], int]]:
    """`streams` concurrent streams, each sending `requests_each` requests one after another."""
    client = StreamingClient(url, timeout_s=120)

    async def one_stream(stream: int) -> list[tuple[list[int], int]]:
        return [await one_request(client, f"{stream}-{number}") for number in range(requests_each)]

    try:
        per_stream = await asyncio.gather(*(one_stream(stream) for stream in range(streams)))
    finally:
        client.close()
    return [request for stream in per_stream for request in stream]


def ordered(offsets: list[int]) -> bool:
    return all(0 <= a <= b for a, b in zip([0, *offsets], offsets))


async def test_chunk_offsets_never_go_backwards_beside_cpu_burners():
    with chunk_server(256) as url, cpu_burners(2):
        requests = await stream_offsets(url, streams=8, requests_each=8)
    assert [events for _, events in requests] == [257] * 64  # every token event and [DONE]
    assert [ordered(offsets) for offsets, _ in requests] == [True] * 64


async def test_chunk_offsets_never_go_backwards_at_the_client_ceiling():
    with chunk_server(1024) as url:  # 64 concurrent streams of 1,024 one-token chunks, zero delay
        requests = await stream_offsets(url, streams=64, requests_each=1)
    assert [events for _, events in requests] == [1025] * 64
    assert [ordered(offsets) for offsets, _ in requests] == [True] * 64

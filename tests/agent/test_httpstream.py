"""When the streaming client says bytes arrived: the kernel's receive time on plain connections, so that a
busy event loop (or core) does not make a chunk look late; the loop's own stamp where the kernel's is not
available."""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import threading
import time

import pytest
import uvloop

from siliconbench.agent import transport
from siliconbench.agent.errors import ConnectionReset
from siliconbench.agent.http1 import Exchange
from siliconbench.agent.httpstream import StreamingClient
from siliconbench.agent.transport import MAX_KERNEL_AGE_NS, _arrival

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
LOOP_BLOCKED_S = 0.3


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def read_request(conn: socket.socket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)


def serve_two_pieces(listener: socket.socket, send_second: threading.Event, sent_at: list[int]) -> None:
    """Answer a warm-up request at once, then a request with a first piece, then, once told, a second one
    (its wall-clock send time in `sent_at`), then the end of the body."""
    conn, _ = listener.accept()
    with conn:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        read_request(conn)
        conn.sendall(SSE_HEAD + http_chunk(b"data: first\n\n"))
        send_second.wait(10)
        sent_at.append(time.time_ns())
        conn.sendall(http_chunk(b"data: second\n\n"))
        time.sleep(LOOP_BLOCKED_S * 2)  # after the client's loop is free again
        conn.sendall(b"0\r\n\r\n")


async def second_piece_lateness_s() -> float:
    """How late the client times a piece that arrives while its event loop is held for LOOP_BLOCKED_S."""
    listener = socket.create_server(("127.0.0.1", 0))
    send_second = threading.Event()
    sent_at: list[int] = []
    server = threading.Thread(target=serve_two_pieces, args=(listener, send_second, sent_at), daemon=True)
    server.start()
    pieces: list[tuple[bytes, int]] = []

    def on_body(data: bytes, offset_ns: int) -> None:
        pieces.append((data, offset_ns))
        if len(pieces) == 1:  # the loop is held while the second piece arrives
            send_second.set()
            time.sleep(LOOP_BLOCKED_S)

    client = StreamingClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_s=10)
    try:  # a warm-up first, as the agent sends one: the kernel stamps packets from a moment after it is asked
        await client.exchange(client.request_bytes("/v1/completions", b"{}", "warm-up"), lambda d, o: None, 0)
        ex = await client.exchange(client.request_bytes("/v1/completions", b"{}", "r1"), on_body, 1 << 20)
    finally:
        client.close()
        listener.close()
    assert ex.error is None and ex.status == 200
    second = [offset for data, offset in pieces if b"second" in data]
    assert len(second) == 1
    return (ex.start_unix_ns + second[0] - sent_at[0]) / 1e9


@pytest.mark.skipif(sys.platform != "linux", reason="kernel receive times are read on Linux")
async def test_a_piece_is_timed_when_the_kernel_received_it_not_when_the_busy_loop_read_it():
    assert await second_piece_lateness_s() < LOOP_BLOCKED_S / 3


async def test_without_kernel_times_a_piece_is_timed_when_the_loop_reads_it(monkeypatch):
    monkeypatch.setattr(transport, "SO_TIMESTAMPNS", 0)  # as on TLS connections and other platforms
    assert await second_piece_lateness_s() > LOOP_BLOCKED_S / 2


def timespec(wall_ns: int) -> bytes:
    return struct.pack("qq", wall_ns // 1_000_000_000, wall_ns % 1_000_000_000)


WALL_OFFSET_NS = 1_700_000_000_000_000_000  # wall clock minus monotonic clock, as read for one read


def test_a_kernel_time_is_moved_onto_the_monotonic_clock_by_the_reads_one_offset():
    loop_ns = 5_000_000_000
    kernel_wall = loop_ns - 5_000_000 + WALL_OFFSET_NS
    assert _arrival(timespec(kernel_wall), loop_ns, WALL_OFFSET_NS) == loop_ns - 5_000_000


def test_a_kernel_time_after_the_loops_stamp_is_not_used():
    loop_ns = 5_000_000_000
    assert _arrival(timespec(loop_ns + 1 + WALL_OFFSET_NS), loop_ns, WALL_OFFSET_NS) == loop_ns


def test_a_kernel_time_older_than_the_bound_is_not_used():
    loop_ns = 50_000_000_000
    old = loop_ns - MAX_KERNEL_AGE_NS - 1 + WALL_OFFSET_NS
    assert _arrival(timespec(old), loop_ns, WALL_OFFSET_NS) == loop_ns


async def test_a_request_larger_than_the_socket_buffer_is_sent_whole():
    got = bytearray()
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        got.extend(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        done.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    client = StreamingClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout_s=10)
    body = bytes(range(256)) * 40_000  # 10 MB: many socket buffers
    try:
        ex = await client.exchange(client.request_bytes("/v1/completions", body, "r1"), lambda d, o: None, 0)
        await done.wait()
    finally:
        client.close()
        server.close()
        await server.wait_closed()
    assert ex.error is None and ex.status == 200
    assert bytes(got) == body


def serve_then_reset(listener: socket.socket, client_busy: threading.Event, reset_sent: threading.Event) -> None:
    """Answer a request with a first chunk, then, while the client's loop is held, a second chunk and a TCP
    reset (SO_LINGER 0), so that the reset is waiting when the client next looks at the socket."""
    conn, _ = listener.accept()
    read_request(conn)
    conn.sendall(SSE_HEAD + http_chunk(b"data: first\n\n"))
    client_busy.wait(10)
    conn.sendall(http_chunk(b"data: second\n\n"))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    reset_sent.set()


async def exchange_reset_mid_stream() -> Exchange:
    listener = socket.create_server(("127.0.0.1", 0))
    client_busy, reset_sent = threading.Event(), threading.Event()
    threading.Thread(target=serve_then_reset, args=(listener, client_busy, reset_sent), daemon=True).start()

    def on_body(data: bytes, offset_ns: int) -> None:
        if not client_busy.is_set():
            client_busy.set()
            reset_sent.wait(10)  # the loop is held until the reset has been sent

    client = StreamingClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout_s=REQUEST_TIMEOUT_S)
    try:
        return await client.exchange(client.request_bytes("/v1/completions", b"{}", "r1"), on_body, 1 << 20)
    finally:
        client.close()
        listener.close()


REQUEST_TIMEOUT_S = 60


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_a_reset_mid_stream_ends_the_request_as_a_reset_at_once(run):
    ex = run(exchange_reset_mid_stream())
    assert isinstance(ex.error, ConnectionReset)
    assert ex.end_ns - ex.t0_ns < REQUEST_TIMEOUT_S * 1e9  # not left to the request's timeout

"""The streaming client's sockets: each read stamped first, with the kernel's receive time where there is one.

Why not aiohttp here (it still serves /v1/models, /tokenize and /metrics): aiohttp hands a read to the
request's coroutine through a future, and stamps can only be taken when that coroutine runs, after every
other stream woken in the same loop iteration has been parsed. Measured on this 2-core machine at
concurrency 64 against a zero-delay server, that put the client's TTFT at 310 ms p50 on a 0 ms server.
Here the callback that receives the bytes stamps them first (`perf_counter_ns`, before any parsing) and
hands them to the connection's parser (agent/http1.py) on the spot, with no coroutine hop per read; reads
are capped at `READ_BYTES`, so one busy stream holds the loop for one small read's work and a waiting
stream's bytes are read within an iteration of arriving.

The kernel's arrival time (plain HTTP on Linux): a stamp taken when the loop gets to a socket is late by
whatever held the loop or its core: other sockets read first in the same iteration, the CPU's wake-up
from idle, other threads holding the GIL, other processes on the core. Measured on this shared 2-core
machine at concurrency 32, those put 3-12 % of the chunks 1-4 ms late. So plain connections are read with
`recvmsg` and `SO_TIMESTAMPNS`: the kernel stamps each packet as it enters the receive path (where tcpdump
stamps it too), and a read's arrival is that time, brought onto the monotonic clock by one offset between
the clocks, read once per read right after the loop's stamp (`_arrival`). The loop's own stamp stays the
bound: a kernel time later than it, or older than `MAX_KERNEL_AGE_NS` (the wall clock was stepped
meanwhile), is not used. The offset read per read wobbles by the moment between its two clock reads (a
preempted thread: tens of µs), so a read could come out earlier than the read before it; within an exchange
a stamp is never earlier than the previous one (or than the send): the connection raises such a stamp to it
and counts it in `Exchange.stamps_clamped`. A read that carries several packets has the time of the last
one (Linux reports the last packet's), as the loop's stamp would: chunks are timed apart only while the loop
reads each before the next arrives. TLS connections, and platforms without SO_TIMESTAMPNS, use the event
loop's transport and its stamp.
"""

from __future__ import annotations

import asyncio
import platform
import select
import socket
import struct
import sys
from time import perf_counter_ns, time_ns

from siliconbench.agent.http1 import Http1Connection

READ_BYTES = 8 * 1024   # one read's bytes; smaller reads keep every stream's stamps close to arrival
MAX_KERNEL_AGE_NS = 10_000_000_000  # an older kernel arrival time means the wall clock was stepped

# SO_TIMESTAMPNS (asm-generic, so x86-64 and arm64) and its 64-bit struct timespec; elsewhere 0: none.
SO_TIMESTAMPNS = 35 if sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64") else 0
_TIMESPEC = struct.Struct("qq")
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if SO_TIMESTAMPNS else 0


class Poller:
    """A client's plain sockets, watched through an epoll of its own whose descriptor the event loop
    watches; each ready socket gets one read (or send) per loop iteration.

    Why not `loop.add_reader` per socket: uvloop (libuv's uv_poll) stops watching a socket at its first
    EPOLLERR without calling its reader, so a TCP reset that arrived before the reader ran left the request
    waiting for its timeout. An epoll descriptor reports no error of its own: a socket's reset reaches its
    connection's read, which fails with ConnectionResetError at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._epoll = select.epoll()
        self._loop = loop
        self._connections: dict[int, TcpConnection] = {}
        loop.add_reader(self._epoll.fileno(), self._ready)

    def watch(self, fd: int, conn: TcpConnection) -> None:
        self._connections[fd] = conn
        self._epoll.register(fd, select.EPOLLIN)

    def want_send(self, fd: int, sending: bool) -> None:
        self._epoll.modify(fd, select.EPOLLIN | select.EPOLLOUT if sending else select.EPOLLIN)

    def forget(self, fd: int) -> None:
        if self._connections.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def _ready(self) -> None:
        connections = self._connections
        for fd, events in self._epoll.poll(0):
            conn = connections.get(fd)
            if conn is not None and events & select.EPOLLOUT:
                conn.writable()
            conn = connections.get(fd)  # a failed send forgets it
            if conn is not None and events & ~select.EPOLLOUT:
                conn.readable()

    def close(self) -> None:
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()


class TcpConnection(Http1Connection):
    """Plain TCP, read with the kernel's arrival times: the socket is watched by the client's `Poller` and
    read with `recvmsg_into`, one read of at most READ_BYTES per loop iteration."""

    def __init__(self, sock: socket.socket, poller: Poller) -> None:
        super().__init__()
        self._sock = sock
        self._poller = poller
        self._view = memoryview(bytearray(READ_BYTES))
        self._buffers = [self._view]
        self._unsent = b""
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:  # a kernel without it: no ancillary data comes, and reads keep the loop's stamp
            pass
        poller.watch(sock.fileno(), self)

    def readable(self) -> None:
        now = perf_counter_ns()  # stamp first: the arrival of these bytes, at the latest
        wall_offset = time_ns() - now  # the one clock offset for this read's kernel time
        try:
            nbytes, ancillary, _, _ = self._sock.recvmsg_into(self._buffers, _ANCILLARY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._broken(exc)
            return
        if not nbytes:
            self._close()
            self._lost(None)
            return
        if ancillary:
            now = _arrival(ancillary[0][2], now, wall_offset)
        self._received(bytes(self._view[:nbytes]), now)

    def _write(self, data: bytes) -> None:
        self._unsent = data
        self._send_unsent()
        if self._unsent and not self.closed:  # a long prompt: the rest goes as the socket takes it
            self._poller.want_send(self._sock.fileno(), True)

    def writable(self) -> None:
        self._send_unsent()
        if not self._unsent and not self.closed:
            self._poller.want_send(self._sock.fileno(), False)

    def _send_unsent(self) -> None:
        """Send what the socket takes now of the request's unsent bytes; a failed send ends the connection."""
        try:
            sent = self._sock.send(self._unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._broken(exc)
            return
        self._unsent = self._unsent[sent:]

    def _broken(self, exc: OSError) -> None:
        """A read or a send failed: the connection ends with `exc` as its reason."""
        self._close()
        self._lost(exc)

    def _shut(self) -> None:
        fd = self._sock.fileno()
        if fd >= 0:
            self._poller.forget(fd)
        self._sock.close()


def _arrival(timespec: bytes, loop_ns: int, wall_offset_ns: int) -> int:
    """The monotonic time at which the kernel received the bytes of a read, from its SO_TIMESTAMPNS wall-clock
    time less `wall_offset_ns` (wall clock minus monotonic clock, read once for the read). The loop's stamp
    `loop_ns` where the kernel's is unusable (later than it, or too old: a stepped wall clock)."""
    seconds, nanos = _TIMESPEC.unpack_from(timespec)
    age = loop_ns - (seconds * 1_000_000_000 + nanos - wall_offset_ns)
    return loop_ns - age if 0 <= age < MAX_KERNEL_AGE_NS else loop_ns


class LoopConnection(Http1Connection, asyncio.BufferedProtocol):
    """Through the event loop's transport (TLS, or a platform without SO_TIMESTAMPNS): stamped in its read
    callback."""

    def __init__(self) -> None:
        super().__init__()
        self._view = memoryview(bytearray(READ_BYTES))
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        now = perf_counter_ns()  # stamp first: the arrival of these bytes
        self._received(bytes(self._view[:nbytes]), now)
        if nbytes == READ_BYTES and not self.closed:
            # More is probably waiting. uvloop (libuv) would read this socket up to 32 times in a row before
            # serving any other: yield it until the next loop iteration so that every stream is read, and
            # stamped, once per iteration.
            self.transport.pause_reading()  # type: ignore[union-attr]
            asyncio.get_running_loop().call_soon(self._resume)

    def _resume(self) -> None:
        if not self.closed:
            self.transport.resume_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost finishes the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def _write(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]

    def _shut(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_tcp(host: str, port: int, poller: Poller) -> TcpConnection:
    """A plain connection to the first of `host`'s addresses that accepts one, watched by `poller`."""
    loop = asyncio.get_running_loop()
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError):
                raise
            error = exc
            continue
        return TcpConnection(sock, poller)
    raise error


def kernel_stamps_on() -> socket.socket | None:
    """A socket that asks for receive times for as long as it is open. Linux stamps packets only while some
    socket asks, and turns that on a moment after the first one does (a deferred switch), so a connection's
    first packets could come unstamped; held from the client's creation, the switch is on before its
    first connection (and stays on between connections). None where there are no kernel times."""
    if not SO_TIMESTAMPNS:
        return None
    keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        keeper.close()
        return None
    return keeper

"""A minimal HTTP/1.1 client for the load generator's timed streaming POSTs.

Why not aiohttp here (it still serves /v1/models, /tokenize and /metrics): aiohttp hands a read to the
request's coroutine through a future, and stamps can only be taken when that coroutine runs, after every
other stream woken in the same loop iteration has been parsed. Measured on this 2-core machine at
concurrency 64 against a zero-delay server, that put the client's TTFT at 310 ms p50 on a 0 ms server.
Here the callback that receives the bytes stamps them first (`perf_counter_ns`, before any parsing) and
parses them on the spot, with no coroutine hop per read; reads are capped at `READ_BYTES`, so one busy
stream holds the loop for one small read's work and a waiting stream's bytes are read within an iteration
of arriving.

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
a stamp is never earlier than the previous one (or than the send): such a stamp is raised to it and counted
in `Exchange.stamps_clamped`. A read that carries several
packets has the time of the last one (Linux reports the last packet's), as the loop's stamp would: chunks
are timed apart only while the loop reads each before the next arrives. TLS connections, and platforms
without SO_TIMESTAMPNS, use the event loop's transport and its stamp.

Scope: plain HTTP/1.1 (or TLS) to one origin, `Content-Length`, chunked and close-delimited bodies,
keep-alive with a LIFO pool of idle connections. Nothing else (no redirects, proxies, compression).
"""

from __future__ import annotations

import asyncio
import platform
import select
import socket
import ssl
import struct
import sys
from collections.abc import Callable
from time import perf_counter_ns, time_ns
from urllib.parse import urlsplit

from siliconbench.agent.errors import (ConnectFailed, ConnectionDropped, ConnectionReset, HttpFault, RequestTimedOut,
                                       StreamFault, StreamOverrun)

READ_BYTES = 8 * 1024   # one read's bytes; smaller reads keep every stream's stamps close to arrival
MAX_HEAD_BYTES = 64 * 1024
MAX_ERROR_BODY = 4096     # bytes of a non-200 body kept for the record's message

MAX_KERNEL_AGE_NS = 10_000_000_000  # an older kernel arrival time means the wall clock was stepped

# SO_TIMESTAMPNS (asm-generic, so x86-64 and arm64) and its 64-bit struct timespec; elsewhere none.
_SO_TIMESTAMPNS = 35 if sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64") else 0
_TIMESPEC = struct.Struct("qq")
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if _SO_TIMESTAMPNS else 0

BodyCallback = Callable[[bytes, int], None]  # (bytes, arrival offset ns since the send); may raise StreamFault

_HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE, _DONE = range(5)


class Exchange:
    """One request and its response on a connection: what the caller reads afterwards."""

    __slots__ = ("t0_ns", "start_unix_ns", "end_ns", "status", "error", "error_body", "keep_alive",
                 "stamps_clamped", "last_ns", "_future", "_on_body", "_body_left", "_max_body_bytes")

    def __init__(self, future: asyncio.Future, on_body: BodyCallback, max_body_bytes: int) -> None:
        self.t0_ns = 0
        self.start_unix_ns = 0
        self.end_ns = 0          # monotonic ns of the last byte (or of the failure)
        self.status = 0
        self.error: StreamFault | None = None
        self.error_body = b""
        self.keep_alive = True
        self.stamps_clamped = 0  # reads whose stamp was earlier than the previous one's, raised to it
        self.last_ns = 0         # the latest stamp given to this exchange's bytes (the send's at first)
        self._future = future
        self._on_body = on_body
        self._body_left = self._max_body_bytes = max_body_bytes


class _Connection:
    """One keep-alive HTTP/1.1 connection; runs one exchange at a time. Its subclass reads and writes the
    socket. The read path (the subclass's read callback, `_received`, `_chunked`) is the load generator's
    hot path: stamp, de-frame, hand over, nothing else."""

    def __init__(self) -> None:
        self._buf = bytearray(READ_BYTES)
        self._view = memoryview(self._buf)
        self.closed = False
        self._ex: Exchange | None = None
        self._state = _DONE
        self._head = b""
        self._left = 0           # _LENGTH: body bytes to come; _CHUNKED: bytes of the current chunk incl. CRLF
        self._tail = b""         # _CHUNKED: an incomplete chunk-size line
        self._timer: asyncio.TimerHandle | None = None

    # -- what the subclass provides -------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _shut(self) -> None:
        """Close the socket (the connection is marked closed already)."""
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------------------------------
    def _received(self, data: bytes, now: int) -> None:
        """`data` arrived at monotonic `now`; a stamp earlier than the exchange's latest is raised to it."""
        ex = self._ex
        if ex is None:
            self._close()  # bytes nobody asked for: the connection cannot be trusted for another request
            return
        if now < ex.last_ns:
            now = ex.last_ns
            ex.stamps_clamped += 1
        else:
            ex.last_ns = now
        try:
            state = self._state
            if state == _CHUNKED:
                self._chunked(ex, data, now)
            elif state == _HEAD:
                self._on_head(ex, data, now)
            elif state == _LENGTH:
                self._length(ex, data, now)
            elif state == _UNTIL_CLOSE:
                self._body(ex, data, now)
        except StreamFault as exc:
            self._fail(exc, now)

    def _lost(self, exc: BaseException | None) -> None:
        """The connection ended (`exc`: why; None: the server closed it)."""
        self.closed = True
        ex = self._ex
        if ex is None:
            return
        now = perf_counter_ns()
        if self._state == _UNTIL_CLOSE:
            self._finish(ex, now)
        elif isinstance(exc, ConnectionResetError):
            self._fail(ConnectionReset(f"connection reset by the server ({exc})"), now)
        elif exc is not None:
            self._fail(ConnectionDropped(f"connection lost: {exc.__class__.__name__}: {exc}"), now)
        elif self._state == _HEAD:
            self._fail(ConnectionDropped("the server closed the connection before answering"), now)
        else:
            self._fail(ConnectionDropped("the server closed the connection before the response ended"), now)

    # -- requests -------------------------------------------------------------------------------------
    def send(self, request: bytes, on_body: BodyCallback, max_body_bytes: int, timeout_s: float) -> Exchange:
        loop = asyncio.get_running_loop()
        ex = Exchange(loop.create_future(), on_body, max_body_bytes)
        self._ex = ex
        self._state = _HEAD
        self._head = b""
        self._tail = b""
        self._timer = loop.call_later(timeout_s, self._on_timeout, timeout_s)
        ex.start_unix_ns = time_ns()
        ex.t0_ns = ex.last_ns = perf_counter_ns()  # DESIGN §3: just before the request is written to the socket
        self._write(request)
        return ex

    def _on_timeout(self, timeout_s: float) -> None:
        self._timer = None
        if self._ex is not None:
            self._fail(RequestTimedOut(f"no complete response within {timeout_s:g} s (raise request_timeout_s "
                                       "if the target is this slow)"), perf_counter_ns())

    # -- response parsing -----------------------------------------------------------------------------
    def _on_head(self, ex: Exchange, data: bytes, now: int) -> None:
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HEAD_BYTES:
                raise HttpFault("response head larger than 64 KiB")
            self._head = head
            return
        self._head = b""
        lines = head[:end].split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1.") or not status_line[1].isdigit():
            raise HttpFault(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(status_line[1])
        if 100 <= status < 200:  # interim response: the real one follows
            return self._on_head(ex, head[end + 4:], now) if end + 4 < len(head) else None
        ex.status = status
        length = -1
        chunked = False
        ex.keep_alive = status_line[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise HttpFault(f"bad Content-Length {value[:40]!r}") from None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                value = value.strip().lower()
                ex.keep_alive = value != b"close" and (ex.keep_alive or value == b"keep-alive")
        if status != 200:
            ex._on_body = ex_error_body(ex)
        rest = head[end + 4:]
        if chunked:
            self._state = _CHUNKED
            self._left = 0
            if rest:
                self._chunked(ex, rest, now)
        elif length >= 0:
            self._state = _LENGTH
            self._left = length
            if length == 0:
                self._finish(ex, now)
            elif rest:
                self._length(ex, rest, now)
        else:
            self._state = _UNTIL_CLOSE
            ex.keep_alive = False
            if rest:
                self._body(ex, rest, now)

    def _body(self, ex: Exchange, data: bytes, now: int) -> None:
        ex.end_ns = now
        ex._body_left -= len(data)
        if ex._body_left < 0:
            raise StreamOverrun(f"the response body went past {ex._max_body_bytes} bytes, the most the request "
                                "could need; the agent stopped reading it there")
        ex._on_body(data, now - ex.t0_ns)

    def _length(self, ex: Exchange, data: bytes, now: int) -> None:
        left = self._left - len(data)
        if left < 0:
            raise HttpFault("more body bytes than Content-Length")
        self._left = left
        self._body(ex, data, now)
        if left == 0:
            self._finish(ex, now)

    def _chunked(self, ex: Exchange, data: bytes, now: int) -> None:
        if self._tail:
            data = self._tail + data
            self._tail = b""
        pieces = []
        pos = 0
        n = len(data)
        left = self._left
        while pos < n:
            if left:  # inside a chunk: its data, then its CRLF
                take = n - pos if n - pos < left else left
                payload = take if take <= left - 2 else left - 2
                if payload > 0:
                    pieces.append(data[pos:pos + payload])
                pos += take
                left -= take
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                if n - pos > 1024:
                    raise HttpFault("chunk-size line longer than 1 KiB")
                self._tail = data[pos:]
                break
            try:
                size = int(data[pos:eol].split(b";", 1)[0], 16)
            except ValueError:
                raise HttpFault(f"bad chunk size {data[pos:eol][:40]!r}") from None
            pos = eol + 2
            if size == 0:  # last chunk; trailers (none from vLLM) and the final CRLF are not awaited
                self._left = 0
                if pieces:
                    self._body(ex, pieces[0] if len(pieces) == 1 else b"".join(pieces), now)
                self._finish(ex, now)
                return
            left = size + 2
        self._left = left
        if pieces:
            self._body(ex, pieces[0] if len(pieces) == 1 else b"".join(pieces), now)

    # -- ending an exchange ---------------------------------------------------------------------------
    def _finish(self, ex: Exchange, now: int) -> None:
        self._state = _DONE
        self._ex = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ex.end_ns = ex.end_ns or now
        if not ex.keep_alive:
            self._close()
        if not ex._future.done():
            ex._future.set_result(None)

    def _fail(self, error: StreamFault, now: int) -> None:
        ex = self._ex
        if ex is None:
            return
        ex.error = error
        ex.keep_alive = False
        ex.end_ns = now
        self._finish(ex, now)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self._shut()


class _Poller:
    """The client's plain sockets, watched through an epoll of its own whose descriptor the event loop
    watches; each ready socket gets one read (or send) per loop iteration.

    Why not `loop.add_reader` per socket: uvloop (libuv's uv_poll) stops watching a socket at its first
    EPOLLERR without calling its reader, so a TCP reset that arrived before the reader ran left the request
    waiting for its timeout. An epoll descriptor reports no error of its own: a socket's reset reaches its
    connection's read, which fails with ConnectionResetError at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._epoll = select.epoll()
        self._loop = loop
        self._connections: dict[int, _TcpConnection] = {}
        loop.add_reader(self._epoll.fileno(), self._ready)

    def watch(self, fd: int, conn: _TcpConnection) -> None:
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
                conn._writable()
            conn = connections.get(fd)  # a failed send forgets it
            if conn is not None and events & ~select.EPOLLOUT:
                conn._readable()

    def close(self) -> None:
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()


class _TcpConnection(_Connection):
    """Plain TCP, read with the kernel's arrival times (see the module docstring): the socket is watched
    by the client's `_Poller` and read with `recvmsg_into`, one read of at most READ_BYTES per loop
    iteration."""

    def __init__(self, sock: socket.socket, poller: _Poller) -> None:
        super().__init__()
        self._sock = sock
        self._poller = poller
        self._buffers = [self._view]
        self._unsent = b""
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        except OSError:  # a kernel without it: no ancillary data comes, and reads keep the loop's stamp
            pass
        poller.watch(sock.fileno(), self)

    def _readable(self) -> None:
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

    def _writable(self) -> None:
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


class _TransportConnection(_Connection, asyncio.BufferedProtocol):
    """Through the event loop's transport (TLS, or a platform without SO_TIMESTAMPNS): stamped in its read
    callback."""

    def __init__(self) -> None:
        super().__init__()
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


def ex_error_body(ex: Exchange) -> BodyCallback:
    """A body callback that keeps the start of a non-200 body (the server's error message)."""

    def keep(data: bytes, offset_ns: int) -> None:
        if len(ex.error_body) < MAX_ERROR_BODY:
            ex.error_body += data[: MAX_ERROR_BODY - len(ex.error_body)]

    return keep


class StreamingClient:
    """POSTs to one origin over a pool of keep-alive connections; one exchange per connection at a time."""

    def __init__(self, base_url: str, timeout_s: float, connect_timeout_s: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self._fixed_headers = (f"Host: {host_header}\r\nContent-Type: application/json\r\n"
                               "Accept: text/event-stream\r\nUser-Agent: siliconbench-agent\r\n").encode()
        self.timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self.stamps_clamped = 0  # over every exchange so far: reads whose stamp was raised to the previous one's
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._stamps_on = _kernel_stamps_on()
        self._poller: _Poller | None = None  # made on the first plain connection, in the running loop

    def request_bytes(self, path: str, body: bytes, request_id: str) -> bytes:
        """The full request; built before a step starts so that sending is one socket write."""
        return (f"POST {self._prefix}{path} HTTP/1.1\r\nX-Request-Id: {request_id}\r\nContent-Length: {len(body)}\r\n"
                .encode() + self._fixed_headers + b"\r\n" + body)

    async def exchange(self, request: bytes, on_body: BodyCallback, max_body_bytes: int) -> Exchange:
        """Send `request`, feed each piece of a 200 body to `on_body` as it arrives, return when it ends.
        A body longer than `max_body_bytes` is cut off there (`StreamOverrun`). Failures are returned in
        `Exchange.error`, never raised (a connect failure included)."""
        try:
            conn = await self._connection()
        except StreamFault as exc:
            ex = Exchange(asyncio.get_running_loop().create_future(), on_body, max_body_bytes)
            ex.start_unix_ns = time_ns()
            ex.t0_ns = ex.end_ns = perf_counter_ns()
            ex.error = exc
            return ex
        ex = conn.send(request, on_body, max_body_bytes, self.timeout_s)
        try:
            await ex._future
        except asyncio.CancelledError:
            conn._close()
            raise
        self.stamps_clamped += ex.stamps_clamped
        if ex.keep_alive and not conn.closed:
            self._idle.append(conn)
        else:
            conn._close()
            self._all.discard(conn)
        return ex

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
            self._all.discard(conn)
        try:
            conn = await asyncio.wait_for(self._connect(), self._connect_timeout_s)
        except asyncio.TimeoutError:
            raise ConnectFailed(f"connecting to {self._host}:{self._port} timed out after "
                                f"{self._connect_timeout_s:g} s") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self._host}:{self._port}: {exc.strerror or exc}") from None
        self._all.add(conn)
        return conn

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._ssl is not None or not _SO_TIMESTAMPNS:
            _, conn = await loop.create_connection(_TransportConnection, self._host, self._port, ssl=self._ssl)
            return conn
        error: OSError = OSError(f"no address for {self._host}")
        for family, kind, proto, _, address in await loop.getaddrinfo(self._host, self._port,
                                                                       type=socket.SOCK_STREAM):
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
            if self._poller is None:
                self._poller = _Poller(loop)
            return _TcpConnection(sock, self._poller)
        raise error

    def close(self) -> None:
        for conn in self._all:
            conn._close()
        self._all.clear()
        self._idle.clear()
        if self._stamps_on is not None:
            self._stamps_on.close()
            self._stamps_on = None
        if self._poller is not None:
            self._poller.close()
            self._poller = None


def _kernel_stamps_on() -> socket.socket | None:
    """A socket that asks for receive times for as long as it is open. Linux stamps packets only while some
    socket asks, and turns that on a moment after the first one does (a deferred switch), so a connection's
    first packets could come unstamped; held from the client's creation, the switch is on before its
    first connection (and stays on between connections). None where there are no kernel times."""
    if not _SO_TIMESTAMPNS:
        return None
    keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        keeper.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        keeper.close()
        return None
    return keeper

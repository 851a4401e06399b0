"""HTTP/1.1 responses for the streaming client, parsed by llhttp (`httptools`) as their bytes arrive.

A connection runs one exchange at a time. Its transport (agent/transport.py) stamps each read before
anything else and hands the bytes and the stamp to `_received`, which feeds them to the parser; llhttp calls
`on_body` from inside `feed_data`, so a body piece reaches the request's callback with the stamp of the read
that carried it, with no hop in between (a maintained parser, and a third of the per-read cost of the
hand-written one it replaced: bench/http_read.py).

Kept here, around llhttp: interim (1xx) responses are skipped; a response head past `MAX_HEAD_BYTES` and a
body past the request's bound end the request; a body with neither a length nor chunked framing ends when
the server closes; keep-alive as llhttp decides it; the start of a non-200 body is kept as the error
message; broken framing is an `HttpFault` of this request alone. Bytes past the end of a response (nobody
asked for them) close the connection: it cannot be trusted with another request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import perf_counter_ns, time_ns

import httptools

from siliconbench.agent.errors import ConnectionDropped, ConnectionReset, HttpFault, RequestTimedOut, StreamFault, StreamOverrun

MAX_HEAD_BYTES = 64 * 1024
MAX_ERROR_BODY = 4096     # bytes of a non-200 body kept for the record's message

BodyCallback = Callable[[bytes, int], None]  # (bytes, arrival offset ns since the send); may raise StreamFault


class Exchange:
    """One request and its response on a connection: what the caller reads afterwards."""

    __slots__ = ("t0_ns", "start_unix_ns", "end_ns", "status", "error", "error_body", "keep_alive",
                 "stamps_clamped", "last_ns", "future", "on_body", "body_left", "max_body_bytes")

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
        self.future = future
        self.on_body = on_body
        self.body_left = self.max_body_bytes = max_body_bytes

    def keep_error_body(self, data: bytes, offset_ns: int) -> None:
        """The body callback of a non-200 response: keeps its start (the server's error message)."""
        if len(self.error_body) < MAX_ERROR_BODY:
            self.error_body += data[: MAX_ERROR_BODY - len(self.error_body)]


class _AfterTheEnd(Exception):
    """Bytes arrived past the end of the response."""


class Http1Connection:
    """One keep-alive HTTP/1.1 connection's protocol half. The transport subclass provides `_write` and
    `_shut`, and calls `_received` with each read and its stamp, and `_lost` when the connection ends.
    The `on_*` methods are llhttp's callbacks."""

    def __init__(self) -> None:
        self.closed = False
        self._ex: Exchange | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._now = 0            # the stamp of the read being parsed
        self._head_bytes = 0     # bytes received before the final response's head was complete
        self._in_body = False    # the final response's head is complete
        self._framed = False     # the response has a Content-Length or is chunked (else it ends at close)
        self._timer: asyncio.TimerHandle | None = None

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _shut(self) -> None:
        """Close the socket (the connection is marked closed already)."""
        raise NotImplementedError

    # -- from the transport ---------------------------------------------------------------------------
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
        self._now = now
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:  # raised in a callback: the cause is its context
            cause = exc.__context__
            if isinstance(cause, _AfterTheEnd):
                self._close()
            elif isinstance(cause, StreamFault):
                self._fail(cause, now)
            else:
                raise  # a bug in a body callback: not this request's fault
        except httptools.HttpParserError as exc:
            self._fail(HttpFault(f"the response broke HTTP/1.1 framing: {exc}"), now)
        else:
            if not self._in_body and self._ex is ex:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._fail(HttpFault("response head larger than 64 KiB"), now)

    def _lost(self, exc: BaseException | None) -> None:
        """The connection ended (`exc`: why; None: the server closed it)."""
        self.closed = True
        ex = self._ex
        if ex is None:
            return
        now = perf_counter_ns()
        if self._in_body and not self._framed:
            self._finish(ex, now)  # a body delimited by the close
        elif isinstance(exc, ConnectionResetError):
            self._fail(ConnectionReset(f"connection reset by the server ({exc})"), now)
        elif exc is not None:
            self._fail(ConnectionDropped(f"connection lost: {exc.__class__.__name__}: {exc}"), now)
        elif not self._in_body:
            self._fail(ConnectionDropped("the server closed the connection before answering"), now)
        else:
            self._fail(ConnectionDropped("the server closed the connection before the response ended"), now)

    # -- requests -------------------------------------------------------------------------------------
    def send(self, request: bytes, on_body: BodyCallback, max_body_bytes: int, timeout_s: float) -> Exchange:
        loop = asyncio.get_running_loop()
        ex = Exchange(loop.create_future(), on_body, max_body_bytes)
        self._ex = ex
        self._in_body = False
        self._head_bytes = 0
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

    # -- llhttp's callbacks, inside feed_data ---------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._ex is None:
            raise _AfterTheEnd
        self._framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # an interim response: the final one follows
        ex = self._ex
        assert ex is not None
        ex.status = status
        ex.keep_alive = self._parser.should_keep_alive()
        self._in_body = True
        if status != 200:
            ex.on_body = ex.keep_error_body

    def on_body(self, body: bytes) -> None:
        ex = self._ex
        assert ex is not None
        now = self._now
        ex.end_ns = now
        ex.body_left -= len(body)
        if ex.body_left < 0:
            raise StreamOverrun(f"the response body went past {ex.max_body_bytes} bytes, the most the request "
                                "could need; the agent stopped reading it there")
        ex.on_body(body, now - ex.t0_ns)

    def on_message_complete(self) -> None:
        if self._in_body:  # else an interim response ended
            self._finish(self._ex, self._now)  # type: ignore[arg-type]

    # -- ending an exchange ---------------------------------------------------------------------------
    def _finish(self, ex: Exchange, now: int) -> None:
        self._ex = None
        self._in_body = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ex.end_ns = ex.end_ns or now
        if not ex.keep_alive:
            self._close()
        if not ex.future.done():
            ex.future.set_result(None)

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

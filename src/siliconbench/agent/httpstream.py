"""A minimal HTTP/1.1 client for the load generator's timed streaming POSTs.

Three parts: this module's `StreamingClient` (the origin, request bytes, a LIFO pool of idle keep-alive
connections); agent/transport.py (sockets, read by a callback that stamps each read first, with the
kernel's receive time on plain connections); agent/http1.py (responses parsed by llhttp from that callback,
each body piece handed on with its read's stamp).

Scope: plain HTTP/1.1 (or TLS) to one origin, `Content-Length`, chunked and close-delimited bodies,
keep-alive. Nothing else (no redirects, proxies, compression).
"""

from __future__ import annotations

import asyncio
import ssl
from time import perf_counter_ns, time_ns
from urllib.parse import urlsplit

from siliconbench.agent import transport
from siliconbench.agent.errors import ConnectFailed, StreamFault
from siliconbench.agent.http1 import BodyCallback, Exchange, Http1Connection

__all__ = ["BodyCallback", "Exchange", "StreamingClient"]


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
        self.stamps_clamped = 0  # over every exchange so far: reads whose stamp was raised to the previous one's
        self._connect_timeout_s = connect_timeout_s
        self._idle: list[Http1Connection] = []
        self._all: set[Http1Connection] = set()
        self._stamps_on = transport.kernel_stamps_on()
        self._poller: transport.Poller | None = None  # made for the first plain connection, in the running loop

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
            await ex.future
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

    async def _connection(self) -> Http1Connection:
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

    async def _connect(self) -> Http1Connection:
        if self._ssl is not None or not transport.SO_TIMESTAMPNS:
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(transport.LoopConnection, self._host, self._port, ssl=self._ssl)
            return conn
        if self._poller is None:
            self._poller = transport.Poller(asyncio.get_running_loop())
        return await transport.open_tcp(self._host, self._port, self._poller)

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

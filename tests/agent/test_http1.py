"""HTTP/1.1 responses as the streaming client parses them (llhttp through httptools): every read's stamp
reaches the body callback, framing edge cases agree with a second parser (h11), and every framing fault is
one request's error."""

from __future__ import annotations

import asyncio

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siliconbench.agent.errors import ConnectionDropped, HttpFault, StreamOverrun
from siliconbench.agent.http1 import MAX_ERROR_BODY, MAX_HEAD_BYTES, Exchange, Http1Connection

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class RecordedConnection(Http1Connection):
    """The client's connection logic with no socket: bytes are handed to it with chosen stamps."""

    def _write(self, data: bytes) -> None:
        pass

    def _shut(self) -> None:
        pass


def start(max_body_bytes: int = 1 << 20) -> tuple[RecordedConnection, Exchange, list[tuple[bytes, int]]]:
    conn = RecordedConnection()
    pieces: list[tuple[bytes, int]] = []
    ex = conn.send(b"POST / HTTP/1.1\r\n\r\n", lambda data, offset: pieces.append((data, offset)), max_body_bytes, 60)
    return conn, ex, pieces


async def test_a_read_stamped_earlier_than_the_one_before_is_raised_to_it_and_counted():
    conn, ex, pieces = start()
    t0 = ex.t0_ns
    # Kernel times as one offset per read would give them when the offset read for the second and fourth
    # reads came out 20 us larger than for the others (the thread was preempted between the two clock reads).
    conn._received(SSE_HEAD + http_chunk(b"data: a\n\n"), t0 + 100_000)
    conn._received(http_chunk(b"data: b\n\n"), t0 + 90_000)
    conn._received(http_chunk(b"data: c\n\n"), t0 + 120_000)
    conn._received(http_chunk(b"data: d\n\n"), t0 + 110_000)
    conn._received(b"0\r\n\r\n", t0 + 130_000)
    assert ex.error is None and ex.status == 200 and ex.future.done()
    assert [offset for _, offset in pieces] == [100_000, 100_000, 120_000, 120_000]
    assert ex.stamps_clamped == 2


async def test_a_read_stamped_before_the_request_was_sent_is_raised_to_the_send():
    conn, ex, pieces = start()
    conn._received(SSE_HEAD + http_chunk(b"data: a\n\n"), ex.t0_ns - 3_000)
    assert [offset for _, offset in pieces] == [0] and ex.stamps_clamped == 1


async def test_every_piece_of_one_read_carries_that_reads_stamp():
    conn, ex, pieces = start()
    conn._received(SSE_HEAD + http_chunk(b"a") + http_chunk(b"b") + b"0\r\n\r\n", ex.t0_ns + 7)
    assert pieces == [(b"a", 7), (b"b", 7)] and ex.end_ns == ex.t0_ns + 7


async def test_interim_responses_are_skipped():
    conn, ex, pieces = start()
    conn._received(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
                   b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", ex.t0_ns + 1)
    assert ex.status == 200 and pieces == [(b"ok", 1)] and ex.keep_alive and not conn.closed


async def test_a_body_without_length_or_chunks_ends_when_the_server_closes():
    conn, ex, pieces = start()
    conn._received(b"HTTP/1.1 200 OK\r\n\r\nsome", ex.t0_ns + 1)
    assert not ex.future.done()
    conn._lost(None)
    assert ex.error is None and pieces == [(b"some", 1)] and not ex.keep_alive


async def test_a_chunked_body_cut_by_the_close_is_a_disconnect():
    conn, ex, _ = start()
    conn._received(SSE_HEAD + http_chunk(b"data: a\n\n"), ex.t0_ns + 1)
    conn._lost(None)
    assert isinstance(ex.error, ConnectionDropped) and "before the response ended" in str(ex.error)


async def test_connection_close_and_http_1_0_end_keep_alive():
    for head in (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                 b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"):
        conn, ex, _ = start()
        conn._received(head, ex.t0_ns + 1)
        assert ex.error is None and not ex.keep_alive and conn.closed


async def test_a_non_200_body_is_kept_as_the_error_message_up_to_its_bound():
    conn, ex, pieces = start()
    body = b"e" * (MAX_ERROR_BODY + 10)
    conn._received(b"HTTP/1.1 503 Busy\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body), ex.t0_ns + 1)
    assert ex.status == 503 and ex.error_body == body[:MAX_ERROR_BODY] and pieces == []


async def test_a_body_past_the_requests_bound_is_an_overrun():
    conn, ex, _ = start(max_body_bytes=10)
    conn._received(SSE_HEAD + http_chunk(b"x" * 11), ex.t0_ns + 1)
    assert isinstance(ex.error, StreamOverrun) and conn.closed


async def test_a_head_past_its_bound_is_a_protocol_error():
    conn, ex, _ = start()
    conn._received(b"HTTP/1.1 200 OK\r\n", ex.t0_ns + 1)
    for _ in range(MAX_HEAD_BYTES // 1000 + 1):
        conn._received(b"x-pad: " + b"p" * 991 + b"\r\n", ex.t0_ns + 1)
    assert isinstance(ex.error, HttpFault) and "head larger than" in str(ex.error)


async def test_bytes_past_the_end_of_a_response_close_the_connection_and_keep_the_response():
    conn, ex, pieces = start()
    conn._received(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", ex.t0_ns + 1)
    assert ex.error is None and pieces == [(b"ok", 1)] and conn.closed


MALFORMED = [
    b"HTTX/1.1 200 OK\r\n\r\n",                                             # not a status line
    b"HTTP/1.1 2x0 OK\r\n\r\n",                                             # not a status code
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",          # not a chunk size
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n",    # a chunk longer than its size
    b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",                         # not a length
    b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",    # two lengths
    b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",                                # a header without a colon
]


@pytest.mark.parametrize("response", MALFORMED)
async def test_broken_framing_is_a_protocol_error_of_this_request_as_h11_finds_it(response):
    client = h11_client()
    with pytest.raises(h11.RemoteProtocolError):
        client.receive_data(response)
        while client.next_event() is not h11.NEED_DATA:
            pass
    conn, ex, _ = start()
    conn._received(response, ex.t0_ns + 1)
    assert isinstance(ex.error, HttpFault) and ex.future.done() and conn.closed


# -- differential: the same responses through h11 ---------------------------------------------------------

TOKEN = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
BODY = st.binary(min_size=0, max_size=40)


@st.composite
def responses(draw) -> tuple[bytes, int, bytes, bool]:
    """(wire bytes, final status, body, delimited by close) with interim responses, extra headers, and a
    Content-Length, chunked (extensions, trailers) or close-delimited body."""
    wire = b""
    for status in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2)):
        wire += b"HTTP/1.1 %d Interim\r\nx-hint: %s\r\n\r\n" % (status, draw(TOKEN).encode())
    status = draw(st.sampled_from([200, 200, 200, 404, 500]))
    head = b"HTTP/1.1 %d Some Reason\r\nx-extra: %s\r\n" % (status, draw(TOKEN).encode())
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    chunks = draw(st.lists(BODY.filter(bool), max_size=4))
    body = b"".join(chunks)
    if framing == "length":
        wire += head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    elif framing == "close":
        wire += head + b"\r\n" + body
    else:
        wire += head + b"Transfer-Encoding: chunked\r\n\r\n"
        for chunk in chunks:
            extension = b";%s=%s" % (draw(TOKEN).encode(), draw(TOKEN).encode()) if draw(st.booleans()) else b""
            wire += b"%x%s\r\n%s\r\n" % (len(chunk), extension, chunk)
        wire += b"0\r\n" + b"".join(b"x-trailer-%s: v\r\n" % draw(TOKEN).encode()
                                    for _ in range(draw(st.integers(0, 2)))) + b"\r\n"
    return wire, status, body, framing == "close"


def h11_client() -> h11.Connection:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="POST", target="/", headers=[("Host", "x"), ("Content-Length", "0")]))
    client.send(h11.EndOfMessage())
    return client


def through_h11(pieces: list[bytes], closed: bool) -> tuple[int, bytes, bool]:
    client = h11_client()
    status, body, complete = 0, b"", False
    for piece in [*pieces, b""] if closed else pieces:
        client.receive_data(piece)
        while (event := client.next_event()) is not h11.NEED_DATA and event is not h11.PAUSED:
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                complete = True
            elif isinstance(event, h11.ConnectionClosed):
                break
    return status, body, complete


def through_ours(pieces: list[bytes], closed: bool) -> tuple[int, bytes, bool]:
    conn, ex, received = start()
    for stamp, piece in enumerate(pieces, 1):
        conn._received(piece, ex.t0_ns + stamp)
    if closed:
        conn._lost(None)
    assert ex.error is None, ex.error
    body = b"".join(data for data, _ in received) if ex.status == 200 else ex.error_body
    return ex.status, body, ex.future.done()


@st.composite
def split(draw, wire: bytes) -> list[bytes]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(wire) - 1)), max_size=6)))
    return [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)]) if wire[a:b]]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_responses_split_anywhere_parse_as_h11_parses_them(data):
    wire, status, body, closed = data.draw(responses())
    pieces = data.draw(split(wire))
    ours = asyncio.run(_in_loop(through_ours, pieces, closed))
    assert ours == through_h11(pieces, closed) == (status, body, True)


async def _in_loop(parse, pieces: list[bytes], closed: bool):
    return parse(pieces, closed)


async def test_every_split_point_of_a_chunked_stream_gives_the_same_body_and_completion():
    wire = SSE_HEAD + http_chunk(b"data: a\r\n\r\n") + b"5;ext=1\r\nhello\r\n0\r\nx-t: v\r\n\r\n"
    for cut in range(1, len(wire)):  # split CRLFs included
        assert through_ours([wire[:cut], wire[cut:]], False) == through_h11([wire[:cut], wire[cut:]], False)

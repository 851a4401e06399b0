"""Every way a streamed request can fail is recorded with a typed reason, against a raw TCP server that
sends crafted bytes (HTTP framing, SSE, resets) exactly as written."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable


from siliconbench.agent.httpstream import StreamingClient
from tests.agent.load.conftest import read_request
from siliconbench.agent.load.send import send_request
from siliconbench.agent.stream import OUTPUT_SLACK
from siliconbench.core.wire import pb

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], "asyncio.Future | object"]


def chunk(text: str, n: int, finish: str | None = None) -> bytes:
    reason = f'"{finish}"' if finish else "null"
    return (f'data: {{"id":"cmpl-1","object":"text_completion","choices":[{{"index":0,"text":"{text}",'
            f'"finish_reason":{reason}}}],"usage":{{"prompt_tokens":4,"total_tokens":{4 + n},'
            f'"completion_tokens":{n}}}}}\n\n').encode()


USAGE = b'data: {"id":"cmpl-1","object":"text_completion","choices":[],"usage":{"prompt_tokens":4,"total_tokens":7,"completion_tokens":3}}\n\n'
DONE = b"data: [DONE]\n\n"
GOOD = [chunk("a", 1), chunk("b", 2), chunk("c", 3, "length"), USAGE, DONE]
MAX_TOKENS = 3  # what every request here asks for
SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def run_one(client: StreamingClient) -> pb.RequestRecord:
    record = pb.RequestRecord()
    await send_request(client, client.request_bytes("/v1/completions", b"{}", "r1"), record, MAX_TOKENS)
    client.close()
    return record


def sse(writer: asyncio.StreamWriter, *events: bytes) -> None:
    for event in events:
        writer.write(http_chunk(event))


async def test_complete_stream_is_a_success_with_every_chunk_timed(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, *GOOD)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    record = await run_one(await serve(script))
    assert record.error_class == ""
    assert (record.http_status, record.output_tokens, list(record.chunk_tokens)) == (200, 3, [1, 1, 1])
    assert record.finish_reason == "length" and record.prompt_tokens == 4
    assert record.ttft_ns == record.chunk_offset_ns[0] > 0


async def test_stream_cut_before_done_is_truncated(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, *GOOD[:2])
        writer.write(b"0\r\n\r\n")

    record = await run_one(await serve(script))
    assert record.error_class == "truncated"
    assert len(record.chunk_offset_ns) == 2


async def test_connection_closed_mid_body_is_disconnected(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, *GOOD[:2])
        await writer.drain()

    record = await run_one(await serve(script))
    assert record.error_class == "disconnected"
    assert len(record.chunk_offset_ns) == 2


async def test_connection_reset_is_reset(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, GOOD[0])
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
        writer.transport.abort()

    record = await run_one(await serve(script))
    assert record.error_class == "reset"


async def test_mid_stream_error_event_is_typed_and_keeps_the_chunks_before_it(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, GOOD[0], b'data: {"error":{"message":"engine died","type":"InternalServerError","code":500}}\n\n', DONE)
        writer.write(b"0\r\n\r\n")

    record = await run_one(await serve(script))
    assert record.error_class == "server_error_event"
    assert "engine died" in record.error_message
    assert len(record.chunk_offset_ns) == 1


async def test_http_500_is_recorded_with_status_and_body(serve):
    async def script(reader, writer):
        body = b'{"error":{"message":"boom"}}'
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(body), body))

    record = await run_one(await serve(script))
    assert (record.error_class, record.http_status) == ("http_status", 500)
    assert "boom" in record.error_message and record.ttft_ns == -1


async def test_http_404_is_an_http_status_error(serve):
    async def script(reader, writer):
        writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}")

    record = await run_one(await serve(script))
    assert (record.error_class, record.http_status) == ("http_status", 404)


async def test_comment_lines_crlf_and_several_events_per_write_are_all_legal(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        body = b": ping\r\n\r\n" + GOOD[0].replace(b"\n", b"\r\n") + b": keep-alive\n\n" + b"".join(GOOD[1:])
        # one write holding several events, then the same bytes re-cut at odd places across HTTP chunks
        writer.write(http_chunk(body[:7]) + http_chunk(body[7:250]))
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(http_chunk(body[250:]) + b"0\r\n\r\n")

    record = await run_one(await serve(script))
    assert record.error_class == ""
    assert (record.output_tokens, len(record.chunk_offset_ns)) == (3, 3)


async def test_malformed_sse_payload_is_malformed_chunk(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, GOOD[0], b"data: {not json}\n\n", DONE)
        writer.write(b"0\r\n\r\n")

    record = await run_one(await serve(script))
    assert record.error_class == "malformed_chunk"


async def test_a_payload_that_is_not_utf8_is_a_malformed_chunk_not_a_disconnect(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, GOOD[0], chunk("b", 2).replace(b'"text":"b"', b'"text":"\xff"'), *GOOD[2:])
        writer.write(b"0\r\n\r\n")

    record = await run_one(await serve(script))
    assert record.error_class == "malformed_chunk"
    assert "utf-8" in record.error_message and len(record.chunk_offset_ns) == 1


# A hostile server: each of these streams would run until the request timeout, or for ever; the timeout is
# set far away so that the request can only end by the agent's own bound.
FAR = 60.0


async def test_a_stream_that_goes_on_past_max_tokens_is_cut_off_as_an_overrun(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        n = 0
        while True:
            n += 1
            sse(writer, chunk("x", n))
            await writer.drain()

    record = await run_one(await serve(script, timeout_s=FAR))
    assert record.error_class == "overrun"
    assert len(record.chunk_offset_ns) == record.output_tokens == MAX_TOKENS + OUTPUT_SLACK


async def test_a_huge_sse_line_is_a_malformed_chunk_and_ends_the_request(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, GOOD[0])
        while True:  # one line that never ends
            writer.write(http_chunk(b"x" * 65536))
            await writer.drain()

    record = await run_one(await serve(script, timeout_s=FAR))
    assert record.error_class == "malformed_chunk" and "SSE line is longer" in record.error_message
    assert len(record.chunk_offset_ns) == 1


async def test_an_endless_run_of_empty_data_lines_is_a_malformed_chunk_within_the_event_bound(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, GOOD[0])
        while True:  # one event whose data lines are all empty, never dispatched
            writer.write(http_chunk(b"data:\n" * 8192))
            await writer.drain()

    record = await run_one(await serve(script, timeout_s=FAR))
    assert record.error_class == "malformed_chunk" and "event's data is longer" in record.error_message
    assert len(record.chunk_offset_ns) == 1


async def test_endless_bytes_that_are_no_chunks_are_an_overrun(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        while True:  # keep-alive comments only
            writer.write(http_chunk(b": ping\n\n" * 8192))
            await writer.drain()

    record = await run_one(await serve(script, timeout_s=FAR))
    assert record.error_class == "overrun" and "response body went past" in record.error_message


async def test_broken_http_framing_is_a_protocol_error(serve):
    async def script(reader, writer):
        writer.write(SSE_HEAD + b"zz\r\n")

    record = await run_one(await serve(script))
    assert record.error_class == "protocol_error"


async def test_silent_server_times_out(serve):
    async def script(reader, writer):
        await asyncio.sleep(5)

    record = await run_one(await serve(script))
    assert record.error_class == "timeout"
    assert 0.9e9 <= record.e2e_ns < 3e9


async def test_refused_connection_is_connect():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        record = await run_one(StreamingClient(f"http://127.0.0.1:{port}", timeout_s=1.0))
    assert record.error_class == "connect"


async def test_content_length_body_and_keep_alive_serve_two_requests_on_one_connection(serve):
    connections = []

    async def script(reader, writer):
        connections.append(writer)
        for _ in range(2):
            body = b"".join(GOOD)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
            if _ == 0:
                await read_request(reader)

    client = await serve(script)
    first, second = pb.RequestRecord(), pb.RequestRecord()
    request = client.request_bytes("/v1/completions", b"{}", "r")
    await send_request(client, request, first, MAX_TOKENS)
    await send_request(client, request, second, MAX_TOKENS)
    client.close()
    assert first.error_class == second.error_class == ""
    assert len(connections) == 1


async def test_a_usage_count_that_goes_backwards_is_one_malformed_request(serve):
    """A negative token count would not fit the record's uint32 and would end the step; it is this request's
    fault alone."""
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, chunk("a", 5), chunk("b", 3), DONE)
        writer.write(b"0\r\n\r\n")

    record = await run_one(await serve(script))
    assert record.error_class == "malformed_chunk"
    assert "usage went backwards: 5 then 3" in record.error_message
    assert list(record.chunk_tokens) == [5]

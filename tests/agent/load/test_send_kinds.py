"""What a request record says of a stream's kinds: the first chunk of each (0 when none came), the kinds
stored only when some chunk was not an answer, and the tool calls' outcome (a count, never an error)."""

from __future__ import annotations

import json

from tests.agent.load.test_send_errors import DONE, SSE_HEAD, run_one, sse


def chat(delta: dict, n: int, finish: str | None = None) -> bytes:
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4 + n, "completion_tokens": n}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def script_of(*events: bytes):
    async def script(reader, writer):
        writer.write(SSE_HEAD)
        sse(writer, *events, DONE)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    return script


async def test_a_plain_stream_stores_no_kinds_and_its_first_answer_is_its_first_chunk(serve):
    record = await run_one(await serve(script_of(chat({"content": "a"}, 1), chat({"content": "b"}, 2),
                                                 chat({"content": "c"}, 3, "length"))))
    assert list(record.chunk_kinds) == []
    assert record.first_answer_ns == record.ttft_ns > 0
    assert (record.first_reasoning_ns, record.first_tool_call_ns) == (0, 0)


async def test_a_reasoning_stream_stores_each_chunks_kind_and_the_first_of_each(serve):
    record = await run_one(await serve(script_of(chat({"reasoning_content": "hm"}, 1), chat({"content": "a"}, 2),
                                                 chat({"content": "b"}, 3, "length"))))
    assert list(record.chunk_kinds) == [1, 0, 0]
    assert record.first_reasoning_ns == record.ttft_ns == record.chunk_offset_ns[0]
    assert record.first_answer_ns == record.chunk_offset_ns[1]
    assert record.error_class == ""


async def test_tool_call_arguments_that_are_not_json_are_counted_not_an_error(serve):
    call = {"index": 0, "id": "t1", "type": "function", "function": {"name": "f"}}
    record = await run_one(await serve(script_of(
        chat({"tool_calls": [call]}, 1), chat({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}, 2),
        chat({"tool_calls": [{"index": 0, "function": {"arguments": "1"}}]}, 3, "tool_calls"))))
    assert (record.error_class, record.tool_calls, record.tool_calls_invalid) == ("", 1, 1)
    assert list(record.chunk_kinds) == [2, 2, 2] and record.first_tool_call_ns == record.ttft_ns
    assert record.first_answer_ns == 0

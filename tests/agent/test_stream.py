"""What a streamed completion's chunks mean for timing (DESIGN §3)."""

import json

import pytest

from siliconbench.agent.errors import MalformedChunk, ServerErrorEvent
from siliconbench.agent.stream import StreamTimeline


def chunk(**fields) -> bytes:
    return json.dumps(fields).encode()


def chat(delta: dict, usage: dict | None = None, finish: str | None = None) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


def completion(text: str, usage: dict | None = None, finish: str | None = None) -> bytes:
    return json.dumps({"object": "text_completion", "usage": usage,
                       "choices": [{"index": 0, "text": text, "finish_reason": finish}]}).encode()


def test_ttft_ignores_role_only_chunk():
    t = StreamTimeline()
    t.on_event(chat({"role": "assistant", "content": ""}), 100)
    t.on_event(chat({"content": "Hi"}), 250)
    assert t.offsets_ns == [250]


def test_reasoning_and_tool_calls_count_as_content():
    t = StreamTimeline()
    t.on_event(chat({"reasoning_content": "think"}), 10)
    t.on_event(chat({"tool_calls": [{"index": 0}]}), 20)
    t.on_event(chat({"reasoning": "more"}), 30)
    assert t.offsets_ns == [10, 20, 30]


def test_usage_chunk_with_empty_choices_sets_tokens_but_is_not_a_chunk():
    t = StreamTimeline()
    t.on_event(completion("a"), 10)
    t.on_event(completion("b", finish="length"), 20)
    t.on_event(chunk(choices=[], usage={"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}), 30)
    t.on_event(b"[DONE]", 31)
    assert t.offsets_ns == [10, 20]
    assert (t.prompt_tokens, t.output_tokens, t.tokens_counted) == (7, 2, False)
    assert t.finish_reason == "length" and t.done


def test_continuous_usage_gives_tokens_per_chunk_for_multi_token_chunks():
    t = StreamTimeline()
    t.on_event(completion("ab", usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}), 10)
    t.on_event(completion("cde", usage={"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}), 20)
    assert t.tokens == [2, 3]


def test_empty_text_chunk_that_carries_a_token_is_content():
    t = StreamTimeline()
    t.on_event(completion("", usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}), 10)
    assert t.offsets_ns == [10] and t.tokens == [1]


def test_without_usage_tokens_are_counted_and_flagged():
    t = StreamTimeline()
    t.on_event(completion("a"), 10)
    t.on_event(completion("b"), 20)
    assert (t.output_tokens, t.tokens_counted) == (2, True)


def test_error_event_mid_stream_raises_with_server_message():
    t = StreamTimeline()
    t.on_event(completion("a"), 10)
    with pytest.raises(ServerErrorEvent, match="out of memory"):
        t.on_event(chunk(error={"message": "out of memory", "type": "InternalServerError", "code": 500}), 20)


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'{"choices": "x"}', b'{"choices": [{"index": 0}], "usage": 5}'])
def test_malformed_chunk_raises_a_typed_error(payload):
    with pytest.raises(MalformedChunk):
        StreamTimeline().on_event(payload, 1)

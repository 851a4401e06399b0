"""What a streamed completion's chunks mean for timing (DESIGN §3).

Chunks are shaped as vLLM sends them (shared/notes/vllm-api.md §2: envelope, `logprobs`, `stop_reason`,
`usage: null` on completions without continuous usage) and every test runs on compact JSON, as vLLM writes
it, and on spaced JSON (", " and ": "), as `json.dumps` and some proxies write it: one decode path for both.
"""

import json

import pytest

from siliconbench.agent.errors import MalformedChunk, ServerErrorEvent, StreamOverrun
from siliconbench.agent.stream import OUTPUT_SLACK, StreamTimeline

MAX_TOKENS = 64  # what the request asked for
ENVELOPE = {"id": "cmpl-1", "created": 1735000000, "model": "m"}


@pytest.fixture(params=["compact", "spaced"])
def dumps(request):
    separators = (",", ":") if request.param == "compact" else (", ", ": ")
    return lambda body: json.dumps(body, separators=separators).encode()


def usage(completion: int, prompt: int = 5) -> dict:
    return {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion}


def completion(text: str, usage: dict | None = None, finish: str | None = None) -> dict:
    return {**ENVELOPE, "object": "text_completion", "usage": usage,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}]}


def chat(delta: dict, usage: dict | None = None, finish: str | None = None) -> dict:
    body = {**ENVELOPE, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return body


def usage_only(completion_tokens: int, prompt: int = 5) -> dict:
    return {**ENVELOPE, "object": "text_completion", "choices": [], "usage": usage(completion_tokens, prompt)}


def feed(dumps, *chunks: dict) -> StreamTimeline:
    """A timeline fed `chunks` at offsets 10, 20, 30... ns."""
    t = StreamTimeline(MAX_TOKENS)
    for i, body in enumerate(chunks, 1):
        t.on_event(dumps(body), 10 * i)
    return t


def test_ttft_ignores_role_only_chunk(dumps):
    t = feed(dumps, chat({"role": "assistant", "content": ""}), chat({"content": "Hi"}))
    assert t.offsets_ns == [20]


def test_role_only_chunk_with_continuous_usage_carries_no_token(dumps):
    t = feed(dumps, chat({"role": "assistant", "content": ""}, usage(0)), chat({"content": "Hi"}, usage(1)))
    assert (t.offsets_ns, t.tokens) == ([20], [1])


def test_reasoning_and_tool_calls_count_as_content(dumps):
    t = feed(dumps, chat({"reasoning_content": "think"}), chat({"tool_calls": [{"index": 0}]}),
             chat({"reasoning": "more"}), chat({"tool_calls": []}), chat({"content": None}))
    assert t.offsets_ns == [10, 20, 30]


def test_usage_chunk_with_empty_choices_sets_tokens_but_is_not_a_chunk(dumps):
    t = feed(dumps, completion("a"), completion("b", finish="length"), usage_only(2, prompt=7))
    t.on_event(b"[DONE]", 40)
    assert t.offsets_ns == [10, 20]
    assert (t.prompt_tokens, t.output_tokens, t.tokens_counted) == (7, 2, False)
    assert t.finish_reason == "length" and t.done


def test_continuous_usage_gives_tokens_per_chunk_for_multi_token_completion_chunks(dumps):
    t = feed(dumps, completion("ab", usage(2)), completion("cde", usage(5)), usage_only(5))
    assert (t.offsets_ns, t.tokens, t.output_tokens) == ([10, 20], [2, 3], 5)


def test_continuous_usage_gives_tokens_per_chunk_for_multi_token_chat_chunks(dumps):
    t = feed(dumps, chat({"role": "assistant", "content": ""}, usage(0)), chat({"content": "ab"}, usage(2)),
             chat({"content": "cdef"}, usage(6), finish="length"), usage_only(6))
    assert (t.offsets_ns, t.tokens, t.finish_reason) == ([20, 30], [2, 4], "length")


def test_empty_text_chunk_that_carries_a_token_is_content(dumps):
    t = feed(dumps, completion("", usage(1)))
    assert t.offsets_ns == [10] and t.tokens == [1]


def test_without_usage_tokens_are_counted_and_flagged(dumps):
    t = feed(dumps, completion("a"), completion("b"))
    assert (t.output_tokens, t.tokens_counted) == (2, True)


def test_non_ascii_text_is_content(dumps):
    t = feed(dumps, chat({"content": "Grüße, 東京"}, usage(3)))
    assert t.tokens == [3]


def test_error_event_mid_stream_raises_with_server_message(dumps):
    t = feed(dumps, completion("a"))
    error = {"error": {"message": "out of memory", "type": "InternalServerError", "param": None, "code": 500}}
    with pytest.raises(ServerErrorEvent, match="out of memory"):
        t.on_event(dumps(error), 20)
    assert t.offsets_ns == [10]


def test_error_event_that_is_a_bare_string_keeps_the_string(dumps):
    with pytest.raises(ServerErrorEvent, match="engine died"):
        feed(dumps, {"error": "engine died"})


@pytest.mark.parametrize("payload", [
    b"{not json", b"[1, 2]", b'{"choices": "x"}', b'{"choices": [{"index": 0}], "usage": 5}',
    b'{"choices": [1]}', b'{"choices": [{"text": 7}]}', b'{"usage": {"completion_tokens": "3"}}',
    b'{"choices": [{"finish_reason": 1}]}', b"",
    b'{"choices": [], "usage": {"completion_tokens": -5}}',               # a count the record cannot hold
    b'{"choices": [], "usage": {"prompt_tokens": 99999999999}}',
    # values the store refuses (core/limits.py): one malformed request, not a refused batch
    b'{"choices": [], "usage": {"prompt_tokens": 20000000}}',
    b'{"choices": [{"index": 0, "text": "a", "finish_reason": "' + b"x" * 300 + b'"}]}',
    b'{"choices": [{"index": 0, "text": "a", "finish_reason": "\\ud800"}]}',   # a lone surrogate
    b'{"error": {"message": "\\udfff"}}',                                    # in the server's error event
])
def test_malformed_chunk_raises_a_typed_error(payload):
    with pytest.raises(MalformedChunk, match="not a completion chunk"):
        StreamTimeline(MAX_TOKENS).on_event(payload, 1)


@pytest.mark.parametrize("payload", [
    b'{"choices":[{"index":0,"text":"\xff"}]}',        # in a field the timeline reads
    b'{"id":"\xc3(","choices":[{"index":0,"text":"a"}]}',  # in one it skips
])
def test_a_payload_that_is_not_utf8_is_a_malformed_chunk(payload):
    with pytest.raises(MalformedChunk, match="utf-8"):
        StreamTimeline(MAX_TOKENS).on_event(payload, 1)


def test_a_stream_past_max_tokens_is_an_overrun_that_keeps_the_chunks_up_to_the_bound(dumps):
    t = StreamTimeline(MAX_TOKENS)
    bound = MAX_TOKENS + OUTPUT_SLACK
    for k in range(1, bound + 1):
        t.on_event(dumps(completion("x", usage(k))), k)
    with pytest.raises(StreamOverrun, match=f"{bound + 1} completion tokens for {MAX_TOKENS} tokens asked"):
        t.on_event(dumps(completion("x", usage(bound + 1))), bound + 1)
    assert (len(t.offsets_ns), t.output_tokens) == (bound, bound)


def test_chunks_past_the_bound_without_usage_are_an_overrun(dumps):
    t = StreamTimeline(MAX_TOKENS)
    for k in range(MAX_TOKENS + OUTPUT_SLACK):
        t.on_event(dumps(chat({"content": "x"})), k)
    with pytest.raises(StreamOverrun, match="more than 80 content chunks"):
        t.on_event(dumps(chat({"content": "x"})), 999)
    assert t.output_tokens == MAX_TOKENS + OUTPUT_SLACK


def test_an_out_of_range_usage_count_is_an_overrun_not_a_record_value(dumps):
    t = feed(dumps, completion("a", usage(1)))
    with pytest.raises(StreamOverrun, match="20000000 completion tokens"):
        t.on_event(dumps(usage_only(20_000_000)), 20)
    assert t.output_tokens == 1


@pytest.mark.parametrize("last", [
    pytest.param(lambda: completion("c", usage(3)), id="content chunk"),
    pytest.param(lambda: usage_only(3), id="final usage"),
])
def test_a_usage_count_that_goes_backwards_is_a_malformed_chunk(dumps, last):
    """Usage counts are cumulative: a smaller one is a broken server, not a negative number of tokens."""
    t = feed(dumps, completion("a", usage(2)), completion("b", usage(5)))
    with pytest.raises(MalformedChunk, match="usage went backwards: 5 then 3"):
        t.on_event(dumps(last()), 30)
    assert t.tokens == [2, 3]

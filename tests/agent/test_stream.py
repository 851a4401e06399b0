"""What a streamed completion's chunks mean for timing (DESIGN §3).

Chunks are shaped as vLLM sends them (shared/notes/vllm-api.md §2: envelope, `logprobs`, `stop_reason`,
`usage: null` on completions without continuous usage) and every test runs on compact JSON, as vLLM writes
it, and on spaced JSON (", " and ": "), as `json.dumps` and some proxies write it: one decode path for both.
"""

import json

import pytest

from siliconbench.agent.errors import MalformedChunk, ServerErrorEvent, StreamOverrun
from siliconbench.agent.stream import ANSWER, OUTPUT_SLACK, REASONING, TOOL_CALL, StreamTimeline
from siliconbench.core.limits import MAX_TOOL_CALLS

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


def test_the_servers_cached_prompt_tokens_are_read_from_usage_and_minus_1_when_it_does_not_say(dumps):
    said = usage_only(2, prompt=300)
    said["usage"]["prompt_tokens_details"] = {"cached_tokens": 256}
    assert feed(dumps, completion("a"), said).cached_tokens == 256
    assert feed(dumps, completion("a"), usage_only(2, prompt=300)).cached_tokens == -1
    silent = usage_only(2, prompt=300)
    silent["usage"]["prompt_tokens_details"] = None  # vLLM without --enable-prompt-tokens-details
    assert feed(dumps, completion("a"), silent).cached_tokens == -1


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


# ---- kinds: reasoning, answer, tool calls (vLLM's reasoning and tool-call parsers) ----------------------

def tool_delta(index: int, arguments: str | None = None, name: str | None = None) -> dict:
    """A `delta.tool_calls` entry as vLLM streams it: the first with id, type and name, then fragments."""
    call: dict = {"index": index, "function": {}}
    if name is not None:
        call.update(id=f"chatcmpl-tool-{index}", type="function")
        call["function"]["name"] = name
    if arguments is not None:
        call["function"]["arguments"] = arguments
    return {"tool_calls": [call]}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_first_answer_is_the_first_content_after_reasoning_in_either_field_name(dumps, field):
    t = feed(dumps, chat({"role": "assistant", "content": ""}), chat({field: "Let"}), chat({field: " me"}),
             chat({"content": "Paris"}), chat({"content": "."}))
    assert t.first_ns == [40, 20, -1]  # by kind: answer, reasoning, tool call
    assert t.kinds == [REASONING, REASONING, ANSWER, ANSWER]
    assert t.offsets_ns[0] == 20  # TTFT: the first token of any kind


def test_a_chunk_with_reasoning_and_content_is_an_answer_that_also_starts_the_reasoning(dumps):
    t = feed(dumps, chat({"reasoning": "so", "content": "Paris"}), chat({"content": "."}))
    assert (t.kinds, t.first_ns) == ([ANSWER, ANSWER], [10, 10, -1])


def test_a_chunk_that_carries_tokens_without_text_keeps_the_kind_before_it(dumps):
    t = feed(dumps, chat({"reasoning": "hm"}, usage(1)), chat({"reasoning": ""}, usage(2)),
             chat({"content": "A"}, usage(3)))
    assert (t.kinds, t.tokens) == ([REASONING, REASONING, ANSWER], [1, 1, 1])


def test_completions_text_is_an_answer(dumps):
    t = feed(dumps, completion("Hi"))
    assert (t.kinds, t.first_ns) == ([ANSWER], [10, -1, -1])


def test_tool_call_deltas_are_counted_per_call_and_their_arguments_checked_at_the_end(dumps):
    t = feed(dumps, chat(tool_delta(0, name="get_weather")), chat(tool_delta(0, '{"city": ')),
             chat(tool_delta(0, '"Paris"}')), chat(tool_delta(1, name="get_time")), chat(tool_delta(1, "{}")))
    assert t.kinds == [TOOL_CALL] * 5
    assert t.first_ns == [-1, -1, 10]
    assert (t.tool_calls, t.invalid_tool_calls()) == (2, 0)


def test_tool_call_arguments_that_are_not_json_are_an_outcome_not_an_error(dumps):
    t = feed(dumps, chat(tool_delta(0, name="f")), chat(tool_delta(0, '{"city": "Par')),
             chat(tool_delta(1, name="g")), chat(tool_delta(1, '{"x": 1}')), chat({}, finish="tool_calls"))
    assert (t.tool_calls, t.invalid_tool_calls(), t.finish_reason) == (2, 1, "tool_calls")


def test_a_tool_call_index_past_the_limit_is_a_malformed_chunk(dumps):
    with pytest.raises(MalformedChunk):
        feed(dumps, chat(tool_delta(MAX_TOOL_CALLS, name="f")))

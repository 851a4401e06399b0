"""/v1/chat/completions: role-only first chunk, content deltas, usage."""

from __future__ import annotations

import time

import pytest

from siliconbench.agent.sim import SimProfile
from tests.timing import LATE_S

from .conftest import MODEL
from .sse import content_events, read_events

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


def body(**extra):
    return {"model": MODEL, "messages": MESSAGES, "max_completion_tokens": 4, "stream": True, **extra}


async def test_chat_stream_starts_with_role_only_chunk(sim):
    events = await read_events(await sim.post("/v1/chat/completions", json=body()))
    first = events[0].data
    assert first["object"] == "chat.completion.chunk"
    assert first["id"].startswith("chatcmpl-")
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert first["choices"][0]["finish_reason"] is None
    assert "role" not in events[1].data["choices"][0]["delta"]


@pytest.mark.timing
async def test_chat_role_chunk_arrives_together_with_first_token(start_sim):
    client = await start_sim(SimProfile(ttft_ms=30, itl_ms=100))
    t0 = time.perf_counter()
    events = await read_events(await client.post("/v1/chat/completions", json=body()))
    role, first, second = (e.t - t0 for e in events[:3])
    assert role >= 0.030  # not sent at once, ahead of the first token
    assert first - role < LATE_S  # the same write, not one ITL (100 ms) later
    assert second >= 0.130


async def test_chat_stream_content_then_length_then_usage_then_done(sim):
    events = await read_events(await sim.post(
        "/v1/chat/completions", json=body(stream_options={"include_usage": True})))
    content = content_events(events)
    assert len(content) == 4
    assert [e.data["choices"][0]["finish_reason"] for e in content] == [None, None, None, "length"]
    assert all(len(e.data["choices"][0]["delta"]["content"].split()) == 1 for e in content)
    assert all("usage" not in e.data for e in events[:-2])  # chat omits usage unless continuous
    assert events[-2].data["choices"] == []
    assert events[-2].data["usage"]["completion_tokens"] == 4
    assert events[-1].data == "[DONE]"
    assert len(events) == 1 + 4 + 1 + 1


async def test_chat_continuous_usage_counts_from_zero_on_role_chunk(sim):
    options = {"include_usage": True, "continuous_usage_stats": True}
    events = await read_events(await sim.post("/v1/chat/completions", json=body(stream_options=options)))
    assert [e.data["usage"]["completion_tokens"] for e in events[:-2]] == [0, 1, 2, 3, 4]


async def test_chat_prompt_tokens_include_template_and_match_tokenize(sim):
    tokenized = await (await sim.post("/tokenize", json={"model": MODEL, "messages": MESSAGES})).json()
    events = await read_events(await sim.post(
        "/v1/chat/completions", json=body(stream_options={"include_usage": True})))
    # <s> <|system|> be brief <|user|> hello there <|assistant|>
    assert tokenized["count"] == 8
    assert events[-2].data["usage"]["prompt_tokens"] == 8


async def test_chat_accepts_max_tokens_alias_and_text_parts(sim):
    messages = [{"role": "user", "content": [{"type": "text", "text": "x y"}]}]
    resp = await sim.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "max_tokens": 2})
    data = await resp.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert len(data["choices"][0]["message"]["content"].split()) == 2
    assert data["usage"]["prompt_tokens"] == 5  # <s> <|user|> x y <|assistant|>

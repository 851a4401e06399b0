"""Reasoning streams, tool calls and served adapters, as vLLM's reasoning and tool-call parsers and its
LoRA serving shape them (shared/notes/vllm-api.md §2.2)."""

from __future__ import annotations

import json

import pytest

from siliconbench.agent.sim import SimProfile

from .conftest import MODEL
from .sse import read_events

MESSAGES = [{"role": "user", "content": "weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
CONTINUOUS = {"include_usage": True, "continuous_usage_stats": True}


def body(**extra):
    return {"model": MODEL, "messages": MESSAGES, "max_completion_tokens": 6, "stream": True,
            "stream_options": CONTINUOUS, **extra}


def chunks(events) -> list:
    """The events that carry generated output of any kind (not the role-only first chunk, not usage)."""
    return [e for e in events if e.has_choices and "role" not in e.data["choices"][0]["delta"]]


def deltas(events) -> list[dict]:
    return [e.data["choices"][0]["delta"] for e in chunks(events)]


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_reasoning_streams_first_in_the_profiles_field_then_the_answer(start_sim, field):
    sim = await start_sim(SimProfile(ttft_ms=1, itl_ms=1, reasoning_tokens=4, reasoning_field=field))
    events = await read_events(await sim.post("/v1/chat/completions", json=body()))
    kinds = [next(k for k in (field, "content") if d.get(k)) for d in deltas(events)]
    assert kinds == [field] * 4 + ["content"] * 2
    assert [e.data["usage"]["completion_tokens"] for e in chunks(events)] == [1, 2, 3, 4, 5, 6]


async def test_chunks_never_straddle_the_end_of_the_reasoning(start_sim):
    sim = await start_sim(SimProfile(ttft_ms=1, itl_ms=1, reasoning_tokens=3, tokens_per_chunk=2))
    events = await read_events(await sim.post("/v1/chat/completions", json=body()))
    usage = [e.data["usage"]["completion_tokens"] for e in chunks(events)]
    assert usage == [2, 3, 5, 6]
    assert ["reasoning" in d for d in deltas(events)] == [True, True, False, False]


async def test_reasoning_not_streamed_is_a_silence_then_an_answer_whose_usage_counts_it(start_sim):
    sim = await start_sim(SimProfile(ttft_ms=1, itl_ms=1, reasoning_tokens=4, reasoning_streamed=False))
    events = await read_events(await sim.post("/v1/chat/completions", json=body()))
    assert all("reasoning" not in d for d in deltas(events))
    assert [e.data["usage"]["completion_tokens"] for e in chunks(events)] == [5, 6]
    assert events[0].data["choices"][0]["delta"] == {"role": "assistant", "content": ""}


async def test_a_request_with_tools_gets_one_call_with_id_type_and_name_first_then_json_arguments(sim):
    events = await read_events(await sim.post("/v1/chat/completions", json=body(tools=TOOLS)))
    calls = [d["tool_calls"][0] for d in deltas(events)]
    assert calls[0]["id"].startswith("chatcmpl-tool-") and calls[0]["type"] == "function"
    assert calls[0]["function"] == {"name": "get_weather"}
    assert all(set(c) == {"index", "function"} and c["index"] == 0 for c in calls[1:])
    arguments = json.loads("".join(c["function"]["arguments"] for c in calls[1:]))
    assert set(arguments) == {"text"}
    assert chunks(events)[-1].data["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_arguments_left_unclosed_on_request(sim):
    events = await read_events(await sim.post("/v1/chat/completions",
                                              json=body(tools=TOOLS, sim_tool_args_invalid=True)))
    joined = "".join(d["tool_calls"][0]["function"].get("arguments", "") for d in deltas(events))
    with pytest.raises(json.JSONDecodeError):
        json.loads(joined)


async def test_tool_choice_none_answers_with_text(sim):
    events = await read_events(await sim.post("/v1/chat/completions", json=body(tools=TOOLS, tool_choice="none")))
    assert all("content" in d for d in deltas(events))


async def test_models_lists_the_base_then_each_adapter_and_requests_are_served_by_name(start_sim):
    sim = await start_sim(SimProfile(ttft_ms=1, itl_ms=1, adapters="sql-lora,chat-lora"))
    cards = (await (await sim.get("/v1/models")).json())["data"]
    assert [(c["id"], c["parent"]) for c in cards] == [(MODEL, None), ("sql-lora", MODEL), ("chat-lora", MODEL)]
    events = await read_events(await sim.post("/v1/chat/completions", json=body(model="chat-lora")))
    assert {e.data["model"] for e in chunks(events)} == {"chat-lora"}
    refused = await sim.post("/v1/chat/completions", json=body(model="other-lora"))
    assert refused.status == 404

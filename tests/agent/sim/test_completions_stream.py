"""/v1/completions: vLLM's stream and JSON shapes."""

from __future__ import annotations

from siliconbench.agent.sim import SimProfile
from siliconbench.agent.sim.tokenizer import tokenize

from .conftest import MODEL
from .sse import content_events, read_events


def body(**extra):
    return {"model": MODEL, "prompt": [10, 11, 12, 13], "max_tokens": 5, "stream": True, **extra}


async def test_completion_stream_chunks_are_text_completions_ending_with_done(sim):
    resp = await sim.post("/v1/completions", json=body())
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = await read_events(resp)
    assert events[-1].data == "[DONE]"
    chunks = events[:-1]
    assert len(chunks) == 5
    ids = {c.data["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("cmpl-")
    for c in chunks:
        assert c.data["object"] == "text_completion"
        assert c.data["model"] == MODEL
        assert c.data["usage"] is None  # vLLM serialises completions chunks with usage: null
        choice = c.data["choices"][0]
        assert set(choice) == {"index", "text", "logprobs", "finish_reason", "stop_reason"}
        assert len(tokenize(choice["text"], add_special_tokens=False)) == 1


async def test_completion_last_content_chunk_has_finish_reason_length(sim):
    events = await read_events(await sim.post("/v1/completions", json=body()))
    reasons = [e.data["choices"][0]["finish_reason"] for e in content_events(events)]
    assert reasons == [None, None, None, None, "length"]


async def test_sim_stop_after_ends_early_with_finish_reason_stop(sim):
    events = await read_events(await sim.post("/v1/completions", json=body(sim_stop_after=2, ignore_eos=False)))
    reasons = [e.data["choices"][0]["finish_reason"] for e in content_events(events)]
    assert reasons == [None, "stop"]


async def test_include_usage_adds_one_final_usage_chunk_with_empty_choices(sim):
    events = await read_events(await sim.post(
        "/v1/completions", json=body(stream_options={"include_usage": True})))
    assert events[-1].data == "[DONE]"
    usage_chunk = events[-2].data
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    assert all(e.data["usage"] is None for e in events[:-2])


async def test_continuous_usage_stats_put_cumulative_usage_on_every_chunk(sim):
    options = {"include_usage": True, "continuous_usage_stats": True}
    events = await read_events(await sim.post("/v1/completions", json=body(stream_options=options)))
    cumulative = [e.data["usage"]["completion_tokens"] for e in content_events(events)]
    assert cumulative == [1, 2, 3, 4, 5]
    assert all(e.data["usage"]["prompt_tokens"] == 4 for e in content_events(events))


async def test_multi_token_chunks_carry_tokens_per_chunk_tokens(start_sim):
    client = await start_sim(SimProfile(ttft_ms=1, itl_ms=1, tokens_per_chunk=3))
    options = {"include_usage": True, "continuous_usage_stats": True}
    events = await read_events(await client.post(
        "/v1/completions", json=body(max_tokens=7, stream_options=options)))
    chunks = content_events(events)
    assert [e.data["usage"]["completion_tokens"] for e in chunks] == [3, 6, 7]
    assert [len(e.data["choices"][0]["text"].split()) for e in chunks] == [3, 3, 1]


async def test_token_id_prompt_counts_exactly_and_string_prompt_adds_bos(sim):
    options = {"include_usage": True}
    ids = await read_events(await sim.post("/v1/completions", json=body(prompt=list(range(6, 106)),
                                                                         stream_options=options)))
    text = await read_events(await sim.post("/v1/completions", json=body(prompt="one two three",
                                                                          stream_options=options)))
    assert ids[-2].data["usage"]["prompt_tokens"] == 100
    assert text[-2].data["usage"]["prompt_tokens"] == 4  # <s> + three words


async def test_non_streaming_completion_returns_whole_text_and_usage(sim):
    resp = await sim.post("/v1/completions", json={"model": MODEL, "prompt": "a b", "max_tokens": 4})
    assert resp.status == 200
    data = await resp.json()
    assert data["object"] == "text_completion"
    assert data["choices"][0]["finish_reason"] == "length"
    assert len(data["choices"][0]["text"].split()) == 4
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


async def test_completions_default_to_sixteen_tokens_like_vllm(sim):
    data = await (await sim.post("/v1/completions", json={"model": MODEL, "prompt": "a"})).json()
    assert data["usage"]["completion_tokens"] == 16


async def test_model_may_be_omitted_as_in_vllm(sim):
    resp = await sim.post("/v1/completions", json={"prompt": "a", "max_tokens": 1})
    assert resp.status == 200

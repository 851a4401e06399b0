"""Rejections with vLLM's error JSON, and the mid-stream error event."""

from __future__ import annotations

from siliconbench.agent.sim import SimProfile

from .conftest import MODEL
from .sse import content_events, read_events


def assert_error_shape(data, code, err_type):
    assert set(data) == {"error"}
    assert set(data["error"]) == {"message", "type", "param", "code"}
    assert data["error"]["code"] == code
    assert data["error"]["type"] == err_type
    assert data["error"]["message"]


async def test_wrong_model_is_404_not_found_error(sim):
    resp = await sim.post("/v1/completions", json={"model": "gpt-9", "prompt": "a"})
    assert resp.status == 404
    data = await resp.json()
    assert_error_shape(data, 404, "NotFoundError")
    assert data["error"]["message"] == "The model `gpt-9` does not exist."


async def test_wrong_model_on_chat_and_tokenize_is_404(sim):
    chat = await sim.post("/v1/chat/completions", json={"model": "x", "messages": [{"role": "user", "content": "a"}]})
    tok = await sim.post("/tokenize", json={"model": "x", "prompt": "a"})
    assert (chat.status, tok.status) == (404, 404)


async def test_bad_json_is_400_bad_request_error(sim):
    resp = await sim.post("/v1/completions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert_error_shape(await resp.json(), 400, "BadRequestError")


async def test_missing_prompt_and_missing_messages_are_400(sim):
    a = await sim.post("/v1/completions", json={"model": MODEL, "max_tokens": 1})
    b = await sim.post("/v1/chat/completions", json={"model": MODEL, "max_tokens": 1})
    assert (a.status, b.status) == (400, 400)
    assert (await a.json())["error"]["param"] == "prompt"
    assert (await b.json())["error"]["param"] == "messages"


async def test_request_longer_than_max_model_len_is_400(start_sim):
    client = await start_sim(SimProfile(ttft_ms=0, itl_ms=0, max_model_len=10))
    resp = await client.post("/v1/completions", json={"model": MODEL, "prompt": [7] * 8, "max_tokens": 3})
    assert resp.status == 400
    assert "maximum context length is 10" in (await resp.json())["error"]["message"]


async def test_out_of_vocabulary_token_id_is_400(sim):
    resp = await sim.post("/v1/completions", json={"model": MODEL, "prompt": [5, 10**9], "max_tokens": 1})
    assert resp.status == 400


async def test_stream_options_without_stream_is_400(sim):
    resp = await sim.post("/v1/completions", json={"model": MODEL, "prompt": "a",
                                                   "stream_options": {"include_usage": True}})
    assert resp.status == 400


async def test_sim_error_after_sends_error_event_then_done(sim):
    resp = await sim.post("/v1/completions", json={"model": MODEL, "prompt": "a", "max_tokens": 10,
                                                   "stream": True, "sim_error_after": 3})
    assert resp.status == 200
    events = await read_events(resp)
    assert len(content_events(events)) == 3
    assert_error_shape(events[-2].data, 500, "InternalServerError")
    assert events[-1].data == "[DONE]"


async def test_sim_error_after_on_non_streaming_request_is_500(sim):
    resp = await sim.post("/v1/completions", json={"model": MODEL, "prompt": "a", "max_tokens": 10,
                                                   "sim_error_after": 3})
    assert resp.status == 500
    assert_error_shape(await resp.json(), 500, "InternalServerError")


async def test_every_response_says_it_is_simulated(sim):
    responses = [
        await sim.get("/health"),
        await sim.get("/no-such-route"),
        await sim.post("/v1/completions", data=b"{"),
        await sim.post("/v1/completions", json={"model": MODEL, "prompt": "a", "max_tokens": 1, "stream": True}),
    ]
    assert [r.headers.get("X-Siliconbench-Simulator") for r in responses] == ["1"] * 4

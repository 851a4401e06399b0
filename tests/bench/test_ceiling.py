"""The ceiling of bench/loadgen_fidelity.py: what its pre-built zero-delay server answers (the shapes a
vLLM streams, which the agent and the public clients read alike), and how each client's figures are
taken from the requests it timed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from loadgen_fidelity import MODEL, NOT_FOUND, Usage, ceiling_figures, ceiling_responses, request_key
from peers import ClientRequest

MS = 1_000_000


def events(response: bytes) -> list[str]:
    """The SSE data lines of a chunked HTTP response, one per HTTP chunk."""
    head, body = response.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in head
    found = []
    while True:
        size, body = body.split(b"\r\n", 1)
        if int(size, 16) == 0:
            return found
        chunk, body = body[: int(size, 16)], body[int(size, 16) + 2:]
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")  # one whole event per HTTP chunk
        found.append(chunk[6:-2].decode())


def test_chat_stream_opens_with_a_role_only_chunk_then_one_token_per_chunk_with_usage_then_done():
    stream = events(ceiling_responses(3)[b"POST /v1/chat/completions"])
    assert stream[-1] == "[DONE]"
    chunks = [json.loads(e) for e in stream[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and {c["model"] for c in chunks} == {MODEL}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"] for c in chunks[1:4]] == [{"content": " tok"}] * 3
    assert [c["choices"][0]["finish_reason"] for c in chunks[:4]] == [None, None, None, "length"]
    assert [c["usage"]["completion_tokens"] for c in chunks] == [0, 1, 2, 3, 3]
    assert chunks[4]["choices"] == []


def test_completions_stream_sends_one_token_per_chunk_then_usage_then_done():
    stream = events(ceiling_responses(2)[b"POST /v1/completions"])
    chunks = [json.loads(e) for e in stream[:-1]]
    assert stream[-1] == "[DONE]"
    assert [c["choices"][0]["text"] for c in chunks[:2]] == [" tok", " tok"]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:2]] == [None, "length"]
    assert [c["usage"]["completion_tokens"] for c in chunks] == [1, 2, 2] and chunks[2]["choices"] == []


def test_models_names_the_model_every_client_asks_for():
    response = ceiling_responses(1)[b"GET /v1/models"]
    head, body = response.split(b"\r\n\r\n", 1)
    assert f"content-length: {len(body)}".encode() in head
    assert json.loads(body)["data"][0]["id"] == MODEL


def test_requests_are_answered_by_method_and_path_without_the_query():
    responses = ceiling_responses(1)
    assert request_key(b"GET /v1/models?limit=1 HTTP/1.1") == b"GET /v1/models"
    assert request_key(b"POST /tokenize HTTP/1.1") not in responses  # answered NOT_FOUND: clients that try it go on
    assert NOT_FOUND.startswith(b"HTTP/1.1 404") and b"content-length: 0" in NOT_FOUND


def test_figures_are_taken_over_the_clients_window_of_the_load_start_up_excluded():
    t0 = 1_700_000_000 * 10**9
    records = [ClientRequest(t0, 2 * MS, [t0 + 2 * MS, t0 + 3 * MS]),
               ClientRequest(t0 + MS, 4 * MS, [t0 + 5 * MS, t0 + 6 * MS, t0 + 10 * MS])]
    # CPU seconds of the client's tree: 5 s of start-up before the load, 0.005 s within its 10 ms window
    client = Usage(6.0, 500.0, [(t0 - 10 * MS, 5.0), (t0, 5.0), (t0 + 10 * MS, 5.005), (t0 + 20 * MS, 6.0)])
    server = Usage(0.0, 0.0, [(t0, 1.0), (t0 + 10 * MS, 1.001)])
    fig = ceiling_figures(records, 3, client, server)
    assert round(fig["chunks_s"]) == 500  # 5 chunks in 10 ms
    assert round(fig["cpu_pct"]) == 50 and round(fig["server_cpu_pct"]) == 10
    assert round(fig["per_cpu_s"]) == 1000
    assert fig["per_request"] == 2.5 and fig["errors"] == 1 and fig["rss_mb"] == 500.0
    assert fig["ttft50"] == 4.0

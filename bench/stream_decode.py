"""What the load generator's read path costs per SSE chunk: `StreamTimeline.on_event`, fed vLLM-shaped
payloads, beside `json.loads` of the same bytes (a decode with no accounting, for scale). Prints a table.

    PYTHONPATH=src .venv/bin/python bench/stream_decode.py [--rounds 7]

Payloads are byte-for-byte what vLLM sends (docs: shared/notes/vllm-api.md §2): compact JSON with the
id/object/created/model envelope, continuous usage on every chunk; the "spaced" rows are the same objects
as `json.dumps` writes them (", " and ": "), which some servers and proxies send. Each figure is the median
over rounds of the mean per chunk in a round of 20,000 calls; the spread is the rounds' min-max. Run it on
an idle core: the figures are CPU time of one call, and another process on the core inflates them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from siliconbench.agent.stream import StreamTimeline

ENVELOPE = {"id": "cmpl-9f2c1a7b8e5d4c3b2a190817161514", "created": 1735000000,
            "model": "meta-llama/Llama-4-Scout-17B-16E-Instruct"}


def usage(completion: int) -> dict:
    return {"prompt_tokens": 512, "total_tokens": 512 + completion, "completion_tokens": completion}


def completion_chunk(text: str, completion: int) -> dict:
    return {**ENVELOPE, "object": "text_completion",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": None, "stop_reason": None}],
            "usage": usage(completion)}


def chat_chunk(delta: dict, completion: int) -> dict:
    return {**ENVELOPE, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
            "usage": usage(completion)}


CASES = {
    "completions content": completion_chunk(" Paris", 7),
    "completions, 4 tokens in one chunk": completion_chunk(" is the capital", 11),
    "chat content": chat_chunk({"content": " Paris"}, 7),
    "chat role-only first chunk": chat_chunk({"role": "assistant", "content": ""}, 0),
    "chat reasoning": chat_chunk({"reasoning": " Let"}, 7),
    "chat tool-call argument fragment": chat_chunk(
        {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}, 7),
    "usage-only final chunk": {**ENVELOPE, "object": "text_completion", "choices": [], "usage": usage(64)},
}


def payloads() -> list[tuple[str, bytes]]:
    rows = [(name, json.dumps(body, separators=(",", ":")).encode()) for name, body in CASES.items()]
    rows += [(name + ", spaced JSON", json.dumps(body).encode()) for name, body in list(CASES.items())[:3]]
    return rows


def per_call_ns(call, payload: bytes, calls: int) -> float:
    start = time.perf_counter_ns()
    for i in range(calls):
        call(payload, i)
    return (time.perf_counter_ns() - start) / calls


def on_event_call():
    """`on_event` on a timeline of 1,000 tokens, renewed every 1,000 chunks (its bound)."""
    state = {"timeline": StreamTimeline(1000)}

    def call(payload: bytes, i: int) -> None:
        if i % 1000 == 0:
            state["timeline"] = StreamTimeline(1000)
        state["timeline"].on_event(payload, i)

    return call


def json_loads_call(payload: bytes, i: int) -> None:
    json.loads(payload)


def measure(call, payload: bytes, rounds: int, calls: int) -> tuple[float, float, float]:
    per_round = [per_call_ns(call, payload, calls) / 1000 for _ in range(rounds)]
    return statistics.median(per_round), min(per_round), max(per_round)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    print("| payload | bytes | StreamTimeline.on_event (us) | json.loads alone (us) |")
    print("|---|---|---|---|")
    for name, payload in payloads():
        ours = measure(on_event_call(), payload, args.rounds, args.calls)
        loads = measure(json_loads_call, payload, args.rounds, args.calls)
        print(f"| {name} | {len(payload)} | {ours[0]:.2f} ({ours[1]:.2f}-{ours[2]:.2f}) "
              f"| {loads[0]:.2f} ({loads[1]:.2f}-{loads[2]:.2f}) |", flush=True)


if __name__ == "__main__":
    main()

"""How long a closed-loop slot takes from freeing to its next send, and what the record says of it. Prints a table.

    PYTHONPATH=src .venv/bin/python bench/closed_loop_prepare.py [--requests 300] [--against OTHER/src]

One process sends a closed-loop step at concurrency 1 through the agent's `Sender`, with a stand-in for the
HTTP client: each request is in flight for 2 ms (the loop is free meanwhile) and answered `data: [DONE]`.
The stand-in stamps (perf_counter_ns) when a request ends and when the next one is written, so the gap is
exactly what lies between a slot freeing and its next send: the code's own work, and the next body's
build where the code does it there (`request_body`: JSON of the prompt's token ids). "recorded" is the
dispatch delay the request's record states for the same gap. `--against` measures another source tree
(e.g. an older checkout's `src`) in a child process, with the same script, in the same table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import ClassVar

IN_FLIGHT_S = 0.002
PROMPT_TOKENS = (512, 8192)


def sender_module():
    """The module holding `Sender` in this source tree (`agent/load/send.py`; before it, `agent/loadgen.py`)."""
    try:
        from siliconbench.agent.load import send
    except ImportError:
        from siliconbench.agent import loadgen as send
    return send


class InFlight:
    """Stands in for StreamingClient: logs when each request is written and when it ends."""

    made: ClassVar[list[InFlight]] = []  # every client made, the last one the sender's

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.sent: list[int] = []
        self.ended: list[int] = []
        InFlight.made.append(self)

    def request_bytes(self, path: str, body: bytes, request_id: str) -> bytes:
        return body

    async def exchange(self, request: bytes, on_body, max_body_bytes: int) -> SimpleNamespace:
        t0_ns = time.perf_counter_ns()
        self.sent.append(t0_ns)
        await asyncio.sleep(IN_FLIGHT_S)
        on_body(b"data: [DONE]\n\n", 0)
        end_ns = time.perf_counter_ns()
        self.ended.append(end_ns)
        return SimpleNamespace(start_unix_ns=time.time_ns(), t0_ns=t0_ns, end_ns=end_ns, status=200, error=None,
                               error_body=b"")

    def close(self) -> None:
        pass


async def measure(tokens: int, requests: int) -> dict:
    from siliconbench.agent.target import PromptBook
    from siliconbench.core.plan import Plan, StepSpec

    send = sender_module()
    send.StreamingClient = InFlight
    spec = StepSpec("closed", 1, 0.0, requests, 0.0)
    plan = Plan(steps=(spec,), input_tokens=tokens, output_tokens=1, repetitions=1, workers=1)
    prompts = PromptBook(list(range(1000, 1000 + tokens)), tokens).salted("bench")
    sender = send.Sender(plan, "m", "http://127.0.0.1:1", prompts, "bench")
    [client] = InFlight.made[-1:]
    sender.start()
    records: list = []
    await sender.run(send.whole_step(spec, 0, 0, 0, 0), time.perf_counter_ns(), records.append)
    sender.close()
    build_ns = []
    for k in range(50):
        t0 = time.perf_counter_ns()
        send.request_body(plan, "m", prompts.prompt(k))
        build_ns.append(time.perf_counter_ns() - t0)
    gaps = sorted(after - before for before, after in zip(client.ended, client.sent[1:]))
    recorded = sorted(r.dispatch_delay_ns for r in records[1:])
    return {"tokens": tokens, "gap_p50": gaps[len(gaps) // 2], "gap_p99": gaps[int(len(gaps) * 0.99)],
            "recorded_p50": recorded[len(recorded) // 2], "build_p50": sorted(build_ns)[len(build_ns) // 2]}


def run_here(requests: int) -> list[dict]:
    return [asyncio.run(measure(tokens, requests)) for tokens in PROMPT_TOKENS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--against", help="another source tree to measure with this script (e.g. an older src/)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the child's output
    args = parser.parse_args()
    if args.json:
        print(json.dumps(run_here(args.requests)))
        return
    rows = [("this tree", row) for row in run_here(args.requests)]
    if args.against:
        child = subprocess.run([sys.executable, __file__, "--requests", str(args.requests), "--json"],
                               env={**os.environ, "PYTHONPATH": args.against}, capture_output=True, text=True,
                               check=True)
        rows += [(args.against, row) for row in json.loads(child.stdout)]
    print("| prompt tokens | source | body build p50 (us) | slot free -> next send p50 (us) | p99 (us) "
          "| recorded dispatch delay p50 (us) |")
    print("|---:|---|---:|---:|---:|---:|")
    for source, r in sorted(rows, key=lambda row: row[1]["tokens"]):
        print(f"| {r['tokens']:,} | {source} | {r['build_p50'] / 1e3:.0f} | {r['gap_p50'] / 1e3:.0f} "
              f"| {r['gap_p99'] / 1e3:.0f} | {r['recorded_p50'] / 1e3:.0f} |")


if __name__ == "__main__":
    main()

"""What one read costs the streaming client's HTTP/1.1 de-framing: the parser of agent/http1.py (llhttp
through httptools) beside the hand-written parser it replaced, on the same bytes. Prints a table.

    PYTHONPATH=src .venv/bin/python bench/http_read.py [--rounds 3] [--calls 100000] [--old-rev 2da6cb2]

The read is the hot path's common case: 329 bytes, one HTTP chunk carrying one vLLM completions event
(compact JSON, continuous usage), handed to the connection with its stamp exactly as the transport
hands a read (`_received`), the body delivered to a callback that does nothing. The hand-written parser is
the module `agent/httpstream.py` as of `--old-rev` (read from git into a temporary module, so the figure is
measured here, beside the new one, not copied); "llhttp alone" is `HttpResponseParser.feed_data` with an
empty body callback (the floor). Each figure is the best over rounds of the mean per read in a round of
`--calls` reads, in CPU time, the variants' rounds interleaved (best, as `timeit` advises: the slower rounds
measure the machine, not the code). Run it on an idle core.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httptools

from siliconbench.agent.http1 import Http1Connection

REPO = Path(__file__).resolve().parents[1]
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
EVENT = {"id": "cmpl-9f2c1a7b8e5d4c3b2a190817161514", "object": "text_completion", "created": 1735000000,
         "model": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
         "choices": [{"index": 0, "text": " Paris", "logprobs": None, "finish_reason": None, "stop_reason": None}],
         "usage": {"prompt_tokens": 512, "total_tokens": 519, "completion_tokens": 7}}


def one_read(size: int = 329) -> bytes:
    """One HTTP chunk of `size` bytes holding one SSE event (its id lengthened to fit)."""
    data = b"data: " + json.dumps(EVENT, separators=(",", ":")).encode() + b"\n\n"
    data = data.replace(b'"cmpl-', b'"cmpl-' + b"0" * (size - len(data) - len(b"%x\r\n\r\n" % len(data))), 1)
    return b"%x\r\n%s\r\n" % (len(data), data)


def in_body(connection_class: type) -> object:
    """A connection of `connection_class` (no socket) inside a chunked 200 response's body."""

    class Unplugged(connection_class):  # type: ignore[misc, valid-type]
        def _write(self, data: bytes) -> None:
            pass

        def _shut(self) -> None:
            pass

    conn = Unplugged()
    conn.send(b"", lambda data, offset: None, 1 << 62, 3600)
    conn._received(HEAD, time.perf_counter_ns())
    return conn


def round_us(feed, read: bytes, calls: int) -> float:
    """The mean CPU time of one read over `calls` reads (CPU time: another process on the core does not
    count, though it still cools the caches)."""
    start = time.process_time_ns()
    for now in range(calls):
        feed(read, now)
    return (time.process_time_ns() - start) / calls / 1000


def old_connection_class(rev: str) -> type | None:
    """`_Connection` of the hand-written parser as of `rev`, or None where git cannot show it."""
    done = subprocess.run(["git", "show", f"{rev}:src/siliconbench/agent/httpstream.py"], cwd=REPO,
                          capture_output=True)
    if done.returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "httpstream_old.py"
        path.write_bytes(done.stdout)
        spec = importlib.util.spec_from_file_location("httpstream_old", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module._Connection


class _Floor:
    def on_body(self, body: bytes) -> None:
        pass


async def rows(args: argparse.Namespace) -> dict[str, float]:
    """The best round of each way of de-framing; their rounds interleaved, so that a busy moment of the
    machine falls on all of them alike."""
    feeds = {"agent/http1.py: llhttp through httptools": in_body(Http1Connection)._received}
    old = old_connection_class(args.old_rev)
    if old is None:
        print(f"(no hand-written parser at {args.old_rev}: git cannot show it here)", file=sys.stderr)
    else:
        feeds[f"hand-written parser as of {args.old_rev}"] = in_body(old)._received
    parser = httptools.HttpResponseParser(_Floor())
    parser.feed_data(HEAD)
    feeds["llhttp alone (feed_data, empty on_body)"] = lambda data, now: parser.feed_data(data)
    read = one_read()
    best = dict.fromkeys(feeds, float("inf"))
    for _ in range(args.rounds):
        for name, feed in feeds.items():
            best[name] = min(best[name], round_us(feed, read, args.calls))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--old-rev", default="2da6cb2", help="a commit with the hand-written parser")
    args = parser.parse_args()
    print(f"one {len(one_read())}-byte read, one HTTP chunk; best of {args.rounds} x {args.calls:,} reads")
    print("| de-framing | us per read |")
    print("|---|---:|")
    for name, us in asyncio.run(rows(args)).items():
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()

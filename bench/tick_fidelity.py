"""How exactly the agent times chunks that a server writes for every stream at once. Prints a table.

    PYTHONPATH=src .venv/bin/python bench/tick_fidelity.py [--quick]

vLLM produces one token for every running stream per engine step and writes them back to back, so at
concurrency C the client finds C sockets readable at the same moment, every step. The simulator
(bench/loadgen_fidelity.py) schedules each stream on its own and does not show that. Here a server
(its own process, on core 0) advances every open stream on one 10 ms tick, 40 ms after its request came,
writing each stream's chunk in turn and noting the wall-clock time before each write; the agent's
`Sender` (its own process, on core 1) runs one closed-loop step. Per chunk, error = agent arrival -
server write (same host, same wall clock), also by the chunk's place in its tick's burst.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadgen_fidelity import complete_requests, free_port, pct, pinned, wait_http

TICK_S = 0.010
FIRST_AFTER_NS = 40_000_000
CHUNKS = 64
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(i: int) -> bytes:
    finish = '"length"' if i == CHUNKS - 1 else "null"
    return http_chunk(f'data: {{"id":"cmpl-t","object":"text_completion","created":1,"model":"m","choices":[{{"index":0,'
                      f'"text":" tok","logprobs":null,"finish_reason":{finish}}}],"usage":{{"prompt_tokens":3,'
                      f'"total_tokens":{4 + i},"completion_tokens":{i + 1}}}}}\n\n'.encode())


async def tick_server(port: int, log_path: str) -> None:
    from siliconbench.agent.clock import DeadlineTimer

    timer = DeadlineTimer()
    timer.start()
    chunks = [event(i) for i in range(CHUNKS)]
    tail = http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    streams: list[list] = []  # [transport, request id, next chunk, first due (monotonic ns), write times]
    log: dict[str, list[int]] = {}

    class Serve(asyncio.Protocol):
        def connection_made(self, transport):
            self.t, self.buf = transport, b""

        def data_received(self, data):
            heads, self.buf = complete_requests(self.buf + data)
            for head in heads:
                rid = head.lower().split(b"x-request-id:")[1].split(b"\r\n")[0].strip().decode()
                self.t.write(HEAD)
                streams.append([self.t, rid, 0, time.monotonic_ns() + FIRST_AFTER_NS, []])

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Serve, "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def ticks() -> None:
        due = time.monotonic() + TICK_S
        while True:
            await timer.sleep_until(due)
            due += TICK_S
            now = time.monotonic_ns()
            for stream in list(streams):  # one engine step: every stream's chunk, back to back
                transport, rid, i, first_due, sent = stream
                if first_due > now:
                    continue
                sent.append(time.time_ns())
                transport.write(chunks[i])
                stream[2] = i + 1
                if i + 1 == CHUNKS:
                    transport.write(tail)
                    streams.remove(stream)
                    log[rid] = sent

    task = asyncio.create_task(ticks())
    await stop.wait()
    task.cancel()
    server.close()
    timer.close()
    Path(log_path).write_text(json.dumps(log))


async def client(port: int, concurrency: int, requests: int, out: str) -> None:
    from siliconbench.agent.load.send import Sender, whole_step
    from siliconbench.agent.target import PromptBook
    from siliconbench.core.plan import Plan, StepSpec

    spec = StepSpec("closed", concurrency, 0.0, requests, 0.0)
    plan = Plan(steps=(spec,), input_tokens=3, output_tokens=CHUNKS, repetitions=1, workers=1)
    sender = Sender(plan, "m", f"http://127.0.0.1:{port}", PromptBook([1, 2, 3], 3), "tick")
    sender.start()
    records: list = []
    await sender.warm_up(range(concurrency))
    report = await sender.run(whole_step(spec, 0, 0, 0, concurrency), time.perf_counter_ns(), records.append)
    sender.close()
    Path(out).write_text(json.dumps({"cpu": report.monitor.cpu_pct, "requests": [
        {"id": r.request_id, "start": r.start_unix_ns, "offsets": list(r.chunk_offset_ns), "error": r.error_class}
        for r in records]}))


def measure(concurrency: int, requests: int) -> dict:
    port, log_path, out = free_port(), tempfile.mktemp(), tempfile.mktemp()
    server = subprocess.Popen(pinned([sys.executable, __file__, "--server", str(port), log_path], 0))
    try:
        wait_http(port, server)
        subprocess.run(pinned([sys.executable, __file__, "--client", str(port), str(concurrency), str(requests), out],
                              1), check=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    data, sent = json.loads(Path(out).read_text()), json.loads(Path(log_path).read_text())
    os.unlink(out)
    os.unlink(log_path)
    errors, firsts, by_place = [], [], {}
    writes = sorted((t, r["id"], k) for r in data["requests"] for k, t in enumerate(sent.get(r["id"], [])))
    place, previous = {}, 0
    for t, rid, k in writes:  # a write within 2 ms of the previous one belongs to the same tick
        place[(rid, k)] = place.get("last", -1) + 1 if t - previous < 2_000_000 else 0
        place["last"], previous = place[(rid, k)], t
    matched = 0
    for r in data["requests"]:
        times = sent.get(r["id"])
        if r["error"] or not times or len(times) != len(r["offsets"]):
            continue
        matched += 1
        err = [(r["start"] + off - t) / 1e6 for off, t in zip(r["offsets"], times)]
        errors += err
        firsts.append(err[0])
        for k, e in enumerate(err):
            by_place.setdefault(min(place[(r["id"], k)] // 8 * 8, 24), []).append(e)
    return {"c": concurrency, "matched": matched, "requests": len(data["requests"]), "errors": errors,
            "firsts": firsts, "by_place": by_place, "cpu": data["cpu"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--server", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.server:
        uvloop.run(tick_server(int(args.server[0]), args.server[1]))
        return
    if args.client:
        port, concurrency, requests, out = args.client
        uvloop.run(client(int(port), int(concurrency), int(requests), out))
        return
    scale = 1 if args.quick else 4
    print(f"siliconbench chunk timing against a server that writes every stream on one {TICK_S * 1e3:.0f} ms tick, "
          f"{os.cpu_count()} cores; server on core 0, agent on core 1; host load average {os.getloadavg()[0]:.1f}\n")
    print("| concurrency | requests | chunk arrival error p50 / p90 / p99 / max (ms) | first chunk p50 / p99 (ms) "
          "| p50 by place in the tick's burst: 0-7 / 8-15 / 16-23 / 24+ (ms) | agent CPU |")
    print("|---|---|---|---|---|---|")
    for concurrency, requests in ((1, 4 * scale), (32, 32 * scale), (128, 128 * scale)):
        r = measure(concurrency, requests)
        e, f, places = r["errors"], r["firsts"], r["by_place"]
        burst = " / ".join(f"{pct(places[p], 0.5):.3f}" if p in places else "-" for p in (0, 8, 16, 24))
        print(f"| {concurrency} | {r['matched']}/{r['requests']} | {pct(e, 0.5):.3f} / {pct(e, 0.9):.3f} / "
              f"{pct(e, 0.99):.3f} / {max(e):.3f} | {pct(f, 0.5):.3f} / {pct(f, 0.99):.3f} | {burst} | "
              f"{r['cpu']:.0f}% |", flush=True)


if __name__ == "__main__":
    main()

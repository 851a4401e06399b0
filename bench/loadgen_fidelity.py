"""How exactly the agent times a stream, and how fast it can read one. Prints a table.

    .venv/bin/python bench/loadgen_fidelity.py [--quick]

Fidelity: the simulator (its own process, `--send-log`) streams on a known schedule (TTFT 50 ms, ITL 10 ms)
and records the wall-clock send time of every chunk; the agent's load generator (its own process) runs a
closed-loop step at concurrency 1, 32 and 256. Per chunk, error = agent arrival - simulator send (same host,
same wall clock); per request, client TTFT - server TTFT (server: first chunk sent - request received).
Records go where the agent's go: into the real `Shipper` (spool in a temporary directory, default batch
size and age) that ships them to a stand-in collector (its own process, on the server's core) acknowledging
every batch, so sealing, spool writes and reads and the gRPC stream run beside the stamping as in a run.

Ceiling: content chunks/s the agent's read path consumes at concurrency 64 from a zero-delay server
whose responses (1024 one-token chunks with continuous usage, one HTTP chunk per SSE event, as uvicorn
sends them) are pre-built, so the server costs almost no CPU; its CPU is shown beside the agent's. Also
against the simulator at zero delay, where the simulator is the limit.

On a 2-core machine the server is pinned to core 0 and the agent to core 1 (taskset) when possible. The
ceiling also runs unpinned with `workers` 1 and 2 (siliconbench.agent.workers): server and agent then share every core,
so a second worker can only use what the server leaves; the two unpinned rows compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(args: list[str], core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core), *args]
    return args


def wait_http(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# --- the agent side (run in its own process: `--client`) ---------------------------------------------------
async def client_fidelity(url: str, concurrency: int, requests: int, collector: str, out: str) -> None:
    import aiohttp

    from cost import peak_rss_mb, tree_cpu_s

    from siliconbench.agent.loadgen import LoadGenerator
    from siliconbench.agent.shipper import Shipper
    from siliconbench.agent.spool import Spool
    from siliconbench.agent.target import calibrate_prompts, inspect_target
    from siliconbench.core.plan import Plan, StepSpec
    from siliconbench.core.wire import pb

    class Sink:
        """The shipper, plus what the bench compares with the simulator's send log."""

        def __init__(self, shipper):
            self.shipper = shipper
            self.requests = []

        def add_request(self, r):
            self.requests.append({"id": r.request_id, "start": r.start_unix_ns, "ttft": r.ttft_ns,
                                  "offsets": list(r.chunk_offset_ns), "error": r.error_class})
            self.shipper.add_request(r)

        def add_step(self, e):
            self.step = {"cpu": e.agent_cpu_pct, "lag": e.loop_lag_p99_ms, "saturated": e.client_saturated}
            self.shipper.add_step(e)

        def add_run(self, e):
            self.shipper.add_run(e)

        def add_server_metrics(self, m):
            self.shipper.add_server_metrics(m)

        async def wait_for_room(self):
            await self.shipper.wait_for_room()

        def pause_reason(self):
            return self.shipper.pause_reason()

    plan = Plan(steps=(StepSpec("closed", concurrency, 0.0, requests, 0.0),), input_tokens=128, output_tokens=64,
                repetitions=1, warmup_requests=min(concurrency, 32))
    with tempfile.TemporaryDirectory() as spool_dir:
        shipper = Shipper(collector, pb.Hello(agent_id="bench"), Spool.open(Path(spool_dir), "bench"))
        shipper.start()
        sink = Sink(shipper)
        async with aiohttp.ClientSession() as session:
            target = await inspect_target(session, url, None)
            prompts = await calibrate_prompts(session, target, plan.input_tokens)
            cpu_at_boundaries: list[float] = []  # the agent's CPU (all its processes) at the step's start and end
            await LoadGenerator(plan, target, prompts, sink, "bench", show_progress=False,
                                on_step_boundary=lambda: cpu_at_boundaries.append(tree_cpu_s())).run(session)
        await shipper.close(30)
    step_cpu_s = cpu_at_boundaries[1] - cpu_at_boundaries[0]
    Path(out).write_text(json.dumps({"requests": sink.requests, "step": sink.step, "rss_mb": peak_rss_mb(),
                                     "step_cpu_s": step_cpu_s}))


async def acking_collector(port: int) -> None:
    """A stand-in collector: acknowledges every batch it receives, stores nothing."""
    import grpc

    from siliconbench.core.wire import pb

    async def stream(requests, context):
        await context.send_initial_metadata(())  # accepted, as the collector says it (agent/shipper.py)
        async for raw in requests:
            message = pb.AgentMessage.FromString(raw)
            if message.WhichOneof("kind") == "batch":
                yield pb.CollectorMessage(ack=pb.Ack(seq=message.batch.seq)).SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        "siliconbench.telemetry.v1.Telemetry", {"Stream": grpc.stream_stream_rpc_method_handler(stream)})
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 2**20)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await server.start()
    await stop.wait()
    await server.stop(0)


async def client_ceiling(url: str, concurrency: int, requests: int, workers: int, out: str) -> None:
    """One closed-loop step through the agent's send path: its `Sender` in this process (workers=1) or its
    `WorkerPool` (records shipped back to this process as the agent ships them)."""
    from siliconbench.agent.loadgen import Sender, whole_step
    from siliconbench.core.plan import Plan, StepSpec
    from siliconbench.agent.target import PromptBook
    from siliconbench.agent.workers import WorkerPool

    model = "siliconbench/sim-llama"  # the simulator's default (importing siliconbench.agent.sim would weigh on the RSS shown)

    spec = StepSpec("closed", concurrency, 0.0, requests, 0.0)
    plan = Plan(steps=(spec,), input_tokens=3, output_tokens=1024, repetitions=1, warmup_requests=workers,
                workers=workers)
    prompts = PromptBook([1, 2, 3], 3)
    records: list = []
    me = psutil.Process()
    if workers == 1:
        sender = Sender(plan, model, url, prompts, "ceiling")
        sender.start()
        await sender.warm_up(range(1))
        step = sender.run(whole_step(spec, 0, 0, 0, 1), time.perf_counter_ns(), records.append)
    else:
        pool = WorkerPool(workers, plan, model, url, prompts, "ceiling")
        await pool.start()
        await pool.warm_up(range(workers))
        step = pool.run_step(spec, 0, 0, 0, 1, records.append)
    procs = [me, *me.children()]
    cpu0 = [sum(p.cpu_times()[:2]) for p in procs]
    t0 = time.perf_counter()
    await step
    wall = time.perf_counter() - t0
    cpu = [100 * (sum(p.cpu_times()[:2]) - c) / wall for p, c in zip(procs, cpu0)]
    rss_mb = sum(p.memory_info().rss for p in procs) / 2**20
    if workers == 1:
        sender.close()
    else:
        await pool.close()
    first = min(r.start_unix_ns for r in records)
    last = max(r.start_unix_ns + r.e2e_ns for r in records)
    Path(out).write_text(json.dumps({
        "chunks": sum(len(r.chunk_offset_ns) for r in records), "wall_s": (last - first) / 1e9,
        "cpu_pct": sum(cpu), "parent_cpu_pct": cpu[0], "errors": sum(1 for r in records if r.error_class),
        "ttft_ms": [r.ttft_ns / 1e6 for r in records], "rss_mb": rss_mb, "processes": len(procs)}))


# --- the zero-delay server for the ceiling --------------------------------------------------------------
def ceiling_response(chunks: int) -> bytes:
    events = []
    for i in range(chunks):
        finish = '"length","stop_reason":null' if i == chunks - 1 else 'null,"stop_reason":null'
        events.append((f'data: {{"id":"cmpl-b","object":"text_completion","created":1,"model":"m","choices":'
                       f'[{{"index":0,"text":" tok","logprobs":null,"finish_reason":{finish}}}],"usage":'
                       f'{{"prompt_tokens":3,"total_tokens":{4 + i},"completion_tokens":{i + 1}}}}}\n\n').encode())
    events.append(b'data: {"id":"cmpl-b","object":"text_completion","created":1,"model":"m","choices":[],'
                  b'"usage":{"prompt_tokens":3,"total_tokens":%d,"completion_tokens":%d}}\n\n' % (3 + chunks, chunks))
    events.append(b"data: [DONE]\n\n")
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" + body


async def zero_delay_server(port: int, chunks: int) -> None:
    response = ceiling_response(chunks)

    class Serve(asyncio.Protocol):
        def connection_made(self, transport):
            self.t, self.buf = transport, b""

        def data_received(self, data):
            self.buf += data
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                head = self.buf[:end].lower()
                at = head.find(b"content-length:")
                length = int(head[at + 15:].split(b"\r\n")[0]) if at >= 0 else 0
                if len(self.buf) < end + 4 + length:
                    return
                self.buf = self.buf[end + 4 + length:]
                self.t.write(response)

    server = await asyncio.get_running_loop().create_server(Serve, "127.0.0.1", port)
    await server.serve_forever()


# --- orchestration --------------------------------------------------------------------------------------
def run_client(mode: str, url: str, concurrency: int, requests: int, workers: int = 1, pin: bool = True,
               collector: str = "") -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    args = [PY, __file__, "--client", mode, url, str(concurrency), str(requests), str(workers), collector or "-",
            out]
    subprocess.run(pinned(args, 1) if pin else args, check=True, cwd=ROOT)
    data = json.loads(Path(out).read_text())
    os.unlink(out)
    return data


def fidelity(concurrency: int, requests: int) -> dict:
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "sendlog.jsonl"
    sim = subprocess.Popen(pinned([PY, "-m", "siliconbench.agent", "sim", "--port", str(port), "--ttft-ms", "50", "--itl-ms", "10",
                                   "--send-log", str(log)], 0), cwd=ROOT, stderr=subprocess.DEVNULL)
    collector_port = free_port()
    collector = subprocess.Popen(pinned([PY, __file__, "--acking-collector", "--port", str(collector_port)], 0),
                                 cwd=ROOT)
    try:
        wait_http(port, sim)
        wait_http(collector_port, collector)
        server = psutil.Process(sim.pid)
        cpu0 = sum(server.cpu_times()[:2])
        t0 = time.perf_counter()
        data = run_client("fidelity", f"http://127.0.0.1:{port}", concurrency, requests,
                          collector=f"127.0.0.1:{collector_port}")
        server_cpu = 100 * (sum(server.cpu_times()[:2]) - cpu0) / (time.perf_counter() - t0)
    finally:
        for proc in (sim, collector):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    sent = {}
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        sent[rec["x_request_id"]] = rec
    chunks = sum(len(r["offsets"]) for r in data["requests"])
    arrival_err, ttft_diff = [], []
    for r in data["requests"]:
        s = sent.get(r["id"])
        if s is None or r["error"] or len(r["offsets"]) != len(s["chunk_sent_ns"]):
            continue
        arrival_err += [(r["start"] + off - t) / 1e6 for off, t in zip(r["offsets"], s["chunk_sent_ns"])]
        ttft_diff.append((r["ttft"] - (s["chunk_sent_ns"][0] - s["arrival_ns"])) / 1e6)
    return {"c": concurrency, "requests": len(data["requests"]), "matched": len(ttft_diff),
            "err50": pct(arrival_err, 0.5), "err99": pct(arrival_err, 0.99),
            "ttft50": pct(ttft_diff, 0.5), "ttft99": pct(ttft_diff, 0.99), "rss": data["rss_mb"],
            "agent_cpu": data["step"]["cpu"], "server_cpu": server_cpu, "saturated": data["step"]["saturated"],
            "cpu_ms_per_1k_chunks": 1e6 * data["step_cpu_s"] / chunks if chunks else float("nan")}


def ceiling(server_args: list[str], concurrency: int, requests: int, workers: int = 1, pin: bool = True) -> dict:
    """`pin`: server on core 0, agent (and its workers) on core 1; otherwise both float over every core."""
    port = free_port()
    server_cmd = [PY, *server_args, "--port", str(port)]
    proc = subprocess.Popen(pinned(server_cmd, 0) if pin else server_cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_http(port, proc)
        server = psutil.Process(proc.pid)
        cpu0 = sum(server.cpu_times()[:2])
        t0 = time.perf_counter()
        data = run_client("ceiling", f"http://127.0.0.1:{port}", concurrency, requests, workers, pin)
        server_cpu = 100 * (sum(server.cpu_times()[:2]) - cpu0) / (time.perf_counter() - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"chunks_s": data["chunks"] / data["wall_s"], "agent_cpu": data["cpu_pct"], "server_cpu": server_cpu,
            "parent_cpu": data["parent_cpu_pct"], "ttft50": pct(data["ttft_ms"], 0.5), "errors": data["errors"],
            "rss": data["rss_mb"], "processes": data["processes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--only", choices=("fidelity", "ceiling"), help="run one of the two tables")
    parser.add_argument("--client", nargs=7, help=argparse.SUPPRESS)
    parser.add_argument("--zero-delay-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--acking-collector", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import uvloop

    if args.zero_delay_server:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvloop.run(zero_delay_server(args.port, 1024))
        return
    if args.acking_collector:
        asyncio.run(acking_collector(args.port))
        return
    if args.client:
        mode, url, c, n, workers, collector, out = args.client
        if mode == "fidelity":
            uvloop.run(client_fidelity(url, int(c), int(n), collector, out))
        else:
            uvloop.run(client_ceiling(url, int(c), int(n), int(workers), out))
        return
    scale = 1 if args.quick else 2
    if args.only != "ceiling":
        fidelity_table(scale)
    if args.only != "fidelity":
        ceiling_table(scale)


def fidelity_table(scale: int) -> None:
    print(f"siliconbench load-generator fidelity, {os.cpu_count()} cores; server on core 0, agent on core 1; "
          f"host load average {os.getloadavg()[0]:.1f} at start (other processes share these cores)\n")
    print("| concurrency | requests | chunk arrival error p50 / p99 (ms) | client - server TTFT p50 / p99 (ms) "
          "| agent CPU | agent CPU per 1,000 chunks | server CPU | agent peak RSS | saturated |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c, n in ((1, 10 * scale), (32, 64 * scale), (256, 256 * scale)):
        r = fidelity(c, n)
        print(f"| {c} | {r['matched']}/{r['requests']} | {r['err50']:.3f} / {r['err99']:.3f} | "
              f"{r['ttft50']:.3f} / {r['ttft99']:.3f} | {r['agent_cpu']:.0f}% | {r['cpu_ms_per_1k_chunks']:.0f} ms | "
              f"{r['server_cpu']:.0f}% | "
              f"{r['rss']:.0f} MB | {r['saturated']} |", flush=True)


def ceiling_table(scale: int) -> None:
    print("\nClient ceiling, concurrency 64, 1024 one-token chunks per request. Agent CPU: all its processes, "
          "% of one core (parent's share in brackets); chunks per agent CPU-second: the cost of a chunk, which "
          "other load on the host does not change; RSS: all its processes\n")
    print("| server | cores | workers | content chunks/s | chunks per agent CPU-s | agent CPU | server CPU | TTFT p50 (ms) "
          "| errors | agent RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    zero = [__file__, "--zero-delay-server"]
    sim = ["-m", "siliconbench.agent", "sim", "--ttft-ms", "0", "--itl-ms", "0"]
    for name, server_args, n, workers, pin in (
        ("pre-built zero-delay", zero, 640 * scale, 1, True),
        ("pre-built zero-delay", zero, 640 * scale, 1, False),
        ("pre-built zero-delay", zero, 640 * scale, 2, False),
        ("simulator, ttft=itl=0", sim, 64 * scale, 1, True),
    ):
        r = ceiling(server_args, 64, n, workers, pin)
        cores = "server 0, agent 1" if pin else "shared"
        per_cpu_s = r["chunks_s"] / (r["agent_cpu"] / 100) if r["agent_cpu"] else 0.0
        print(f"| {name} | {cores} | {workers} | {r['chunks_s']:,.0f} | {per_cpu_s:,.0f} | {r['agent_cpu']:.0f}% "
              f"({r['parent_cpu']:.0f}%) | {r['server_cpu']:.0f}% | {r['ttft50']:.2f} | {r['errors']} | "
              f"{r['rss']:.0f} MB ({r['processes']} proc) |", flush=True)


if __name__ == "__main__":
    main()

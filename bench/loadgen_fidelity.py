"""How exactly the agent times a stream, measured against the wire, beside public clients; and how fast it
can read one. Prints tables.

    .venv/bin/python bench/loadgen_fidelity.py [--quick] [--rounds N] [--peers inference-perf,vllm-bench]

Fidelity: the simulator (its own process, `--send-log`) streams chat completions on a fixed schedule
(TTFT 40 ms, ITL 10 ms; 64 prompt and 64 output tokens) to one client at a time, closed loop at
concurrency 1, 32 and 256. The truth is the wire: tcpdump captures the loopback port with the kernel's
nanosecond timestamps, and bench/wire.py rebuilds every exchange from it: the last request byte out, the
first byte of each content event in. Per request, client TTFT minus wire TTFT; per content chunk, the
client's arrival stamp minus the wire's (same host, same wall clock); ITL p99 by the client minus by the
wire. Every request is matched to its exchange exactly: by its X-Request-Id (the agent, vllm bench) or
by its body (inference-perf, which sends no id but records the body). The simulator's send log gives the server's side (client minus server TTFT,
arrival minus send) and the server's own ITL p99 while each client loads it (interference). Cost: each
client's CPU seconds (its whole process tree, start-up included) and RSS, and its CPU per 1,000 chunks
while the load is on the wire. Without tcpdump, or without the right to capture, the wire columns are
left out with the reason (scripts/ensure_tcpdump.sh installs tcpdump).

The agent's records go where they go in a run: into the real `Shipper` (spool in a temporary directory,
default batch size and age) that ships them to a stand-in collector (its own process, on the server's
core) acknowledging every batch, so sealing, spool writes and the gRPC stream run beside the stamping.

Peers (`--peers`, optional, never in CI; scripts/peers_env.sh installs them under `.peers/`, vllm bench
from the vLLM venv `--vllm-venv`): each runs the same load against a fresh simulator, clients one after
another, `--rounds` rounds interleaved (default 3), and every figure is the median of the rounds.

Ceiling: content chunks/s the agent's read path consumes at concurrency 64 from a zero-delay server
whose responses (1024 one-token chunks with continuous usage, one HTTP chunk per SSE event, as uvicorn
sends them) are pre-built, so the server costs almost no CPU; its CPU is shown beside the agent's. Also
against the simulator at zero delay, where the simulator is the limit.

On a 2-core machine the server (and tcpdump) are pinned to core 0 and the client to core 1 (taskset) when
possible. The ceiling also runs unpinned with `workers` 1 and 2 (siliconbench.agent.workers): server and
agent then share every core, so a second worker can only use what the server leaves; the two unpinned rows
compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from capture import Capture
from peers import ClientRequest, InferencePerf, Load, Peer, VllmBench, environment, monotonic_to_wall_ns
from wire import Exchange, read_exchanges

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CHAT = "/v1/chat/completions"
MODEL = "siliconbench/sim-llama"  # the simulator's default (importing siliconbench.agent.sim would weigh on the RSS shown)
TTFT_MS, ITL_MS, INPUT_TOKENS, OUTPUT_TOKENS = 40, 10, 64, 64


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

    from siliconbench.agent.loadgen import LoadGenerator
    from siliconbench.agent.shipper import Shipper
    from siliconbench.agent.spool import Spool
    from siliconbench.agent.app import build_prompts
    from siliconbench.agent.target import inspect_target
    from siliconbench.core.plan import Plan, StepSpec
    from siliconbench.core.wire import pb

    class Sink:
        """The shipper, plus the timings the bench compares with the wire and the simulator's send log."""

        def __init__(self, shipper):
            self.shipper = shipper
            self.requests = []

        def add_request(self, r):
            self.requests.append({"id": r.request_id, "start": r.start_unix_ns, "ttft": r.ttft_ns,
                                  "offsets": list(r.chunk_offset_ns), "error": r.error_class})
            self.shipper.add_request(r)

        def add_step(self, e):
            self.step = {"saturated": e.client_saturated}
            self.shipper.add_step(e)

        def add_run(self, e):
            self.shipper.add_run(e)

        def add_server_metrics(self, m):
            self.shipper.add_server_metrics(m)

        async def wait_for_room(self):
            await self.shipper.wait_for_room()

        def pause_reason(self):
            return self.shipper.pause_reason()

    plan = Plan(steps=(StepSpec("closed", concurrency, 0.0, requests, 0.0),), input_tokens=INPUT_TOKENS,
                output_tokens=OUTPUT_TOKENS, endpoint="chat", repetitions=1, warmup_requests=min(concurrency, 32))
    with tempfile.TemporaryDirectory() as spool_dir:
        shipper = Shipper(collector, pb.Hello(agent_id="bench"), Spool.open(Path(spool_dir), "bench"))
        shipper.start()
        sink = Sink(shipper)
        async with aiohttp.ClientSession() as session:
            target = await inspect_target(session, url, None)
            prompts = await build_prompts(session, target, plan)
            await LoadGenerator(plan, target, prompts, sink, "bench", show_progress=False).run(session)
        await shipper.close(30)
    Path(out).write_text(json.dumps({"requests": sink.requests, "step": sink.step}))


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

    spec = StepSpec("closed", concurrency, 0.0, requests, 0.0)
    plan = Plan(steps=(spec,), input_tokens=3, output_tokens=1024, repetitions=1, warmup_requests=workers,
                workers=workers)
    prompts = PromptBook([1, 2, 3], 3)
    records: list = []
    me = psutil.Process()
    if workers == 1:
        sender = Sender(plan, MODEL, url, prompts, "ceiling")
        sender.start()
        await sender.warm_up(range(1))
        step = sender.run(whole_step(spec, 0, 0, 0, 1), time.perf_counter_ns(), records.append)
    else:
        pool = WorkerPool(workers, plan, MODEL, url, prompts, "ceiling")
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
def run_client(mode: str, url: str, concurrency: int, requests: int, workers: int = 1, pin: bool = True) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    args = [PY, __file__, "--client", mode, url, str(concurrency), str(requests), str(workers), "-", out]
    subprocess.run(pinned(args, 1) if pin else args, check=True, cwd=ROOT)
    data = json.loads(Path(out).read_text())
    os.unlink(out)
    return data


# --- the fidelity table: each client against a fresh simulator, on the wire ---------------------------------
class Agent:
    """The agent as a client of the fidelity table: its load generator and shipper in their own process."""

    name = "siliconbench agent"
    matched_by = "request id"

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.saturated = False  # the agent's own verdict on its last run

    def command(self, load: Load, out: Path) -> list[str]:
        return [PY, __file__, "--client", "fidelity", load.url, str(load.concurrency), str(load.requests), "1",
                self.collector, str(out / "agent.json")]

    def read(self, out: Path, offset_ns: int) -> list[ClientRequest]:
        data = json.loads((out / "agent.json").read_text())
        self.saturated = data["step"]["saturated"]
        return [ClientRequest(r["start"], r["ttft"], [r["start"] + o for o in r["offsets"]], r["id"])
                for r in data["requests"] if not r["error"]]


@dataclass
class Usage:
    """A client process tree's cost: CPU seconds in all (start-up included), peak RSS, and its CPU
    seconds sampled over time (wall ns, CPU s) to price a window of the run."""

    cpu_s: float
    rss_mb: float
    samples: list[tuple[int, float]] = field(default_factory=list)

    def cpu_between(self, start_ns: int, end_ns: int) -> float:
        def at(t: int) -> float:
            before = [c for w, c in self.samples if w <= t]
            return before[-1] if before else 0.0
        return at(end_ns) - at(start_ns)


def run_measured(args: list[str], log: Path) -> Usage:
    """Run a client to its end, sampling its process tree's CPU every 0.1 s; fail with its output's tail."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=environment(), stdout=out, stderr=subprocess.STDOUT)
    usage = Usage(0.0, 0.0)
    stop = threading.Event()

    def sample() -> None:
        seen: dict[int, float] = {}
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for p in tree:
                try:
                    t = p.cpu_times()
                    seen[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            usage.samples.append((time.time_ns(), sum(seen.values())))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{args[:3]} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
    usage.cpu_s = rusage.ru_utime + rusage.ru_stime
    usage.rss_mb = rusage.ru_maxrss / 1024
    return usage


def match(records: list[ClientRequest], chat: list[Exchange]) -> list[tuple[ClientRequest, Exchange]]:
    """Each request with its exchange on the wire: by the X-Request-Id it sent, else by its exact body."""
    by_id = {e.request_id: e for e in chat if e.request_id}
    by_body = {e.body: e for e in chat}
    pairs = []
    for r in records:
        e = by_id.get(r.request_id) if r.request_id else by_body.get(r.body or b"")
        if e is not None:
            pairs.append((r, e))
    return pairs


def gaps(times: list[int]) -> list[float]:
    return [(b - a) / 1e6 for a, b in zip(times, times[1:])]


WIRE_FIGURES = ("ttft50", "ttft99", "dttft50", "dttft99", "arr50", "arr99", "itl99", "wire50", "wire99")


def compare(records: list[ClientRequest], exchanges: list[Exchange] | None, sent: list[dict],
            usage: Usage) -> dict[str, float]:
    """One run's figures (ms unless named otherwise); NaN where the run cannot give one."""
    nan = float("nan")
    by_response = {s["request_id"]: s for s in sent}
    by_x_id = {s["x_request_id"]: s for s in sent if s["x_request_id"]}
    fig: dict[str, float] = {"ok": len(records), "matched": 0, "mismatched": 0} | dict.fromkeys(WIRE_FIGURES, nan)
    if exchanges is not None:
        chat = [e for e in exchanges if e.method == "POST" and e.path == CHAT and e.status == 200 and e.events]
        pairs = match(records, chat)
        fig["matched"] = len(pairs)
        ttft_c = [r.ttft_ns / 1e6 for r, _ in pairs]
        ttft_w = [(e.ttft_ns or 0) / 1e6 for _, e in pairs]
        diff = [c - w for c, w in zip(ttft_c, ttft_w)]
        arrival: list[float] = []
        itl_c: list[float] = []
        itl_w: list[float] = []
        for r, e in pairs:
            if len(r.arrivals_ns) != len(e.events):
                fig["mismatched"] += 1
                continue
            arrival += [(a - ev.first_ns) / 1e6 for a, ev in zip(r.arrivals_ns, e.events)]
            itl_c += gaps(r.arrivals_ns)
            itl_w += gaps([ev.first_ns for ev in e.events])
        fig |= {"ttft50": pct(diff, 0.5), "ttft99": pct(diff, 0.99),
                "dttft50": pct(ttft_c, 0.5) - pct(ttft_w, 0.5), "dttft99": pct(ttft_c, 0.99) - pct(ttft_w, 0.99),
                "arr50": pct(arrival, 0.5), "arr99": pct(arrival, 0.99),
                "itl99": pct(itl_c, 0.99) - pct(itl_w, 0.99) if itl_c else nan,
                "wire50": pct(ttft_w, 0.5), "wire99": pct(ttft_w, 0.99)}
        server_pairs = [(r, by_response.get(e.response_id)) for r, e in pairs]
        window = [e for _, e in pairs]
        start_ns, end_ns = (min(e.first_byte_ns for e in window), max(e.end_ns for e in window)) if window else (0, 0)
        chunks = sum(len(e.events) for e in window)
    else:
        server_pairs = [(r, by_x_id.get(r.request_id or "")) for r in records]
        start_ns = min((r.start_ns for r in records), default=0)
        end_ns = max((r.arrivals_ns[-1] for r in records if r.arrivals_ns), default=0)
        chunks = sum(len(r.arrivals_ns) for r in records)
    server_ttft, client_server, send_err = [], [], []
    for r, s in server_pairs:
        if s is None or not s["chunk_sent_ns"]:
            continue
        server_ttft.append((s["chunk_sent_ns"][0] - s["arrival_ns"]) / 1e6)
        client_server.append(r.ttft_ns / 1e6 - server_ttft[-1])
        if len(r.arrivals_ns) == len(s["chunk_sent_ns"]):
            send_err += [(a - t) / 1e6 for a, t in zip(r.arrivals_ns, s["chunk_sent_ns"])]
    window_cpu = usage.cpu_between(start_ns, end_ns)
    fig |= {"server_matched": len(server_ttft), "cs50": pct(client_server, 0.5), "cs99": pct(client_server, 0.99),
            "send50": pct(send_err, 0.5), "send99": pct(send_err, 0.99),
            "server50": pct(server_ttft, 0.5), "server99": pct(server_ttft, 0.99),
            "server_itl99": pct([g for s in sent for g in gaps(s["chunk_sent_ns"])], 0.99),
            "cpu_s": usage.cpu_s, "rss_mb": usage.rss_mb,
            "cpu_per_1k": window_cpu * 1e3 / (chunks / 1e3) if chunks and window_cpu > 0 else nan}
    return fig


def run_once(client: Peer, concurrency: int, requests: int, tokenizer: Path, wire: bool) -> dict[str, float]:
    """`client` runs the table's load against a fresh simulator, captured on the wire if `wire`."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sb-fidelity-") as tmp_dir:
        tmp = Path(tmp_dir)
        log = tmp / "sendlog.jsonl"
        with (tmp / "sim.log").open("wb") as sim_log:
            sim = subprocess.Popen(pinned([PY, "-m", "siliconbench.agent", "sim", "--port", str(port), "--ttft-ms",
                                           str(TTFT_MS), "--itl-ms", str(ITL_MS), "--send-log", str(log)], 0),
                                   cwd=ROOT, stderr=sim_log)
        out = tmp / "client"
        out.mkdir()
        capture = None
        try:
            wait_http(port, sim)
            load = Load(f"http://127.0.0.1:{port}", MODEL, concurrency, requests, INPUT_TOKENS, OUTPUT_TOKENS,
                        tokenizer)
            command = pinned(client.command(load, out), 1)
            capture = Capture.start(port, tmp / "wire.pcap", cpu=0) if wire else None
            offset_ns = monotonic_to_wall_ns()
            try:
                usage = run_measured(command, tmp / "client.log")
            finally:
                if capture is not None:
                    capture.stop()
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(30)
        if not log.exists():  # e.g. another process took the port between free_port() and the bind
            raise RuntimeError(f"the simulator (exit {sim.returncode}) wrote no send log: "
                               f"{(tmp / 'sim.log').read_text(errors='replace')[-1000:]}")
        records = client.read(out, offset_ns)
        exchanges = read_exchanges(capture.path, port) if capture is not None else None
        sent = [json.loads(line) for line in log.read_text().splitlines()]
    fig = compare(records, exchanges, sent, usage)
    fig["dropped"] = capture.dropped if capture is not None else 0
    return fig


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


PEERS = ("inference-perf", "vllm-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, one round")
    parser.add_argument("--only", choices=("fidelity", "ceiling"), help="run one of the two tables")
    parser.add_argument("--rounds", type=int, help="fidelity rounds, clients interleaved; medians shown (default 3, "
                        "--quick 1)")
    parser.add_argument("--peers", default="", help=f"comma-separated public clients to run beside the agent: "
                        f"{', '.join(PEERS)} (install them with scripts/peers_env.sh)")
    parser.add_argument("--peers-dir", type=Path, default=ROOT / ".peers", help="where scripts/peers_env.sh put "
                        "them (default .peers)")
    parser.add_argument("--vllm-venv", type=Path, default=Path(os.environ.get("SILICONBENCH_VLLM_VENV",
                                                                                 ROOT / ".vllm-venv")),
                        help="the vLLM venv whose `vllm bench serve` runs (default $SILICONBENCH_VLLM_VENV or "
                        ".vllm-venv; scripts/vllm_cpu_env.sh)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer directory for the peers (default "
                        "PEERS_DIR/tiny-model)")
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
    peers = peer_clients(args, parser)
    scale = 1 if args.quick else 2
    if args.only != "ceiling":
        fidelity_table(args.quick, args.rounds or (1 if args.quick else 3), peers,
                       args.tokenizer or args.peers_dir / "tiny-model")
    if args.only != "fidelity":
        ceiling_table(scale)


def peer_clients(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Peer]:
    """The `--peers` asked for, each checked to be installed."""
    found: list[Peer] = []
    for name in filter(None, args.peers.split(",")):
        if name == "inference-perf":
            path = args.peers_dir / "inference-perf" / "bin" / "inference-perf"
            found.append(InferencePerf(path))
        elif name == "vllm-bench":
            path = args.vllm_venv / "bin" / "python"
            found.append(VllmBench(path))
        else:
            parser.error(f"--peers: unknown client {name!r} (known: {', '.join(PEERS)})")
        if not path.exists():
            parser.error(f"--peers {name}: {path} is missing: run scripts/peers_env.sh (and pass --peers-dir or "
                         "--vllm-venv if they live elsewhere)")
    tokenizer = args.tokenizer or args.peers_dir / "tiny-model"
    if found and not (tokenizer / "tokenizer.json").exists():
        parser.error(f"--peers: no tokenizer in {tokenizer}: run scripts/peers_env.sh or pass --tokenizer DIR")
    return found


LOADS = {False: ((1, 32), (32, 128), (256, 256)), True: ((1, 4), (32, 32), (256, 256))}  # quick: (concurrency, requests)


def fidelity_table(quick: bool, rounds: int, peers: list[Peer], tokenizer: Path) -> None:
    reason = Capture.unavailable()
    print(f"siliconbench load-generator fidelity against the wire, {os.cpu_count()} cores; server and tcpdump on "
          f"core 0, client on core 1; host load average {os.getloadavg()[0]:.1f} at start (other processes share "
          f"these cores). Chat, {INPUT_TOKENS} prompt and {OUTPUT_TOKENS} output tokens, simulator TTFT {TTFT_MS} "
          f"ms and ITL {ITL_MS} ms; {rounds} round(s), clients interleaved, medians.\n")
    if reason:
        print(f"wire: not captured ({reason}); the wire columns are left out\n")
    collector_port = free_port()
    collector = subprocess.Popen(pinned([PY, __file__, "--acking-collector", "--port", str(collector_port)], 0),
                                 cwd=ROOT)
    agent = Agent(f"127.0.0.1:{collector_port}")
    clients: list[Peer] = [agent, *peers]
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    saturated = set()
    try:
        wait_http(collector_port, collector)
        for _ in range(rounds):
            for c, n in LOADS[quick]:
                for client in clients:
                    try:
                        fig = run_once(client, c, n, tokenizer, not reason)
                    except RuntimeError as exc:  # a shared machine: a port taken under us, a client that fell over
                        print(f"{client.name} at concurrency {c} failed, run again once: {exc}", flush=True)
                        fig = run_once(client, c, n, tokenizer, not reason)
                    results.setdefault((client.name, c), []).append(fig)
                    if client is agent and agent.saturated:
                        saturated.add(c)
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(30)
    asked = dict(LOADS[quick])
    print("| client | concurrency | requests ok / asked (matched to the wire) | client − wire TTFT per request "
          "p50 / p99 (ms) | TTFT p50 / p99, client − wire (ms) | chunk arrival client − wire p50 / p99 (ms) "
          "| ITL p99 client − wire (ms) | client CPU (s) | CPU per 1,000 chunks (ms) | peak RSS (MB) "
          "| server ITL p99 (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, c), runs in results.items():
        m = medians(runs)
        matched = f"{m['matched']:.0f} by {by_name(clients, name)}" if not reason else "not captured"
        print(f"| {name} | {c} | {m['ok']:.0f}/{asked[c]} ({matched}) | {pair(m, 'ttft50', 'ttft99')} | "
              f"{pair(m, 'dttft50', 'dttft99')} | {pair(m, 'arr50', 'arr99')} | {one(m['itl99'])} | "
              f"{m['cpu_s']:.1f} | {one(m['cpu_per_1k'], '.0f')} | {m['rss_mb']:.0f} | {m['server_itl99']:.2f} |")
    print(f"\nAgainst the simulator's send log (the server's side; schedule: TTFT {TTFT_MS} ms, ITL {ITL_MS} ms)\n")
    print("| client | concurrency | wire TTFT p50 / p99 (ms) | server TTFT p50 / p99 (ms) | client − server TTFT "
          "p50 / p99 (ms) | chunk arrival − server send p50 / p99 (ms) | requests matched to the log "
          "| chunk counts differing | packets dropped |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, c), runs in results.items():
        m = medians(runs)
        print(f"| {name} | {c} | {pair(m, 'wire50', 'wire99', form='.2f')} | "
              f"{pair(m, 'server50', 'server99', form='.2f')} | {pair(m, 'cs50', 'cs99')} | "
              f"{pair(m, 'send50', 'send99')} | {m['server_matched']:.0f} | {m['mismatched']:.0f} | "
              f"{max(r['dropped'] for r in runs):.0f} |", flush=True)
    if saturated:
        print(f"\nthe agent reported itself saturated at concurrency {sorted(saturated)}")


def by_name(clients: list[Peer], name: str) -> str:
    return next(c.matched_by for c in clients if c.name == name)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds that have it."""
    return {k: statistics.median(v) if (v := [r[k] for r in runs if r[k] == r[k]]) else float("nan")
            for k in runs[0]}


def one(value: float, form: str = "+.2f") -> str:
    return "–" if value != value else f"{value:{form}}"


def pair(m: dict[str, float], p50: str, p99: str, form: str = "+.2f") -> str:
    return "–" if m[p50] != m[p50] else f"{m[p50]:{form}} / {m[p99]:{form}}"


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

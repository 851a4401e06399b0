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

Ceiling: every client (the agent and each peer, in the same run) sends the same load, chat at concurrency
64, requests of 1024 one-token chunks, to a zero-delay server whose responses (vLLM's chat stream: the
role-only chunk, the content chunks with continuous usage, usage, [DONE], one HTTP chunk per SSE event, as
uvicorn sends them) are pre-built, so the server costs almost no CPU. Each client's content chunks/s,
its CPU (whole process tree, sampled) and the server's, and its TTFT p50 are taken over its own window of
the load, from the requests it timed: first request out to last chunk in, start-up excluded. The agent runs
with `workers: auto` (its default; the step twice, so auto can resize after the first) and with `workers`
1 and 2; a line per core setting sets the agent with auto against the fastest and the cheapest peer. Also
the agent against the simulator at zero delay, where the simulator is the limit.

On a 2-core machine the server (and tcpdump) are pinned to core 0 and the client to core 1 (taskset) when
possible. The ceiling runs every client pinned so and again unpinned (server and client then share every
core, so a second agent worker, or a peer's own worker processes, can only use what the server leaves).
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
from collections.abc import Callable
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
def request_json(r) -> dict:
    """What the bench reads of an agent's request record (`Agent.read`)."""
    return {"id": r.request_id, "start": r.start_unix_ns, "ttft": r.ttft_ns, "offsets": list(r.chunk_offset_ns),
            "error": r.error_class}


async def client_fidelity(url: str, concurrency: int, requests: int, collector: str, out: str) -> None:
    import aiohttp

    from siliconbench.agent.load.step import LoadGenerator
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

        def add(self, item):
            if isinstance(item, pb.RequestRecord):
                self.requests.append(request_json(item))
            elif isinstance(item, pb.StepEvent):
                self.step = {"saturated": item.client_saturated}
            self.shipper.add(item)

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


class ListSink:
    """The records and step events of the ceiling's agent, kept in memory (no shipper: the read path alone)."""

    def __init__(self) -> None:
        from siliconbench.core.wire import pb

        self.requests: list = []
        self.steps: list = []
        self._kept = {pb.RequestRecord: self.requests, pb.StepEvent: self.steps}

    def add(self, item) -> None:
        kept = self._kept.get(type(item))
        if kept is not None:
            kept.append(item)

    async def wait_for_room(self) -> None:
        pass

    def pause_reason(self) -> str:
        return ""


async def client_ceiling(url: str, concurrency: int, requests: int, workers: str, out: str) -> None:
    """One closed-loop chat step through the agent's `LoadGenerator` with `workers` 1, 2... or auto (the
    agent's default; the step then runs twice, so that the second is sent by the processes auto chose after
    the first, unless auto stopped the run there). Writes the last step's figures."""
    import aiohttp

    from siliconbench.agent.errors import AgentSaturated
    from siliconbench.agent.load.step import LoadGenerator
    from siliconbench.agent.target import PromptBook, TargetInfo
    from siliconbench.core.plan import Plan, StepSpec

    auto = workers == "auto"
    plan = Plan(steps=(StepSpec("closed", concurrency, 0.0, requests, 0.0),), endpoint="chat",
                input_tokens=CEILING_INPUT_TOKENS, output_tokens=CEILING_CHUNKS, repetitions=2 if auto else 1,
                warmup_requests=2, workers="auto" if auto else int(workers))
    prompts = PromptBook([], 0, pool=[[{"role": "user", "content": CEILING_PROMPT}]])
    me = psutil.Process()
    sending: list[int] = []  # at each step boundary: the processes sending (the agent's own, or its workers)

    def boundary() -> None:
        sending.append(len(me.children()) or 1)

    sink = ListSink()
    generator = LoadGenerator(plan, TargetInfo(url, MODEL, "", False), prompts, sink, "ceiling",
                              show_progress=False, on_step_boundary=boundary)
    stopped = False
    async with aiohttp.ClientSession() as session:
        try:
            await generator.run(session)
        except AgentSaturated:
            stopped = True
    last = sink.steps[-1]
    Path(out).write_text(json.dumps({
        "requests": [request_json(r) for r in sink.requests if r.step == last.step],
        "step": {"saturated": last.client_saturated, "workers": sending[-2], "stopped": stopped}}))


# --- the zero-delay server for the ceiling --------------------------------------------------------------
CEILING_CHUNKS, CEILING_INPUT_TOKENS = 1024, 8
CEILING_REQUESTS = {False: 1280, True: 320}  # quick: fewer
CEILING_PROMPT = "Count to a thousand and twenty four, slowly."  # what the agent sends; the server ignores it


def sse_response(events: list[str]) -> bytes:
    """A streamed 200 with one HTTP chunk per SSE event, as uvicorn sends them."""
    encoded = [f"data: {e}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in encoded) + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" + body


def stream_events(kind: str, choices: list[tuple[str, int]], tokens: int) -> list[str]:
    """vLLM's stream events of `kind` (its `object`): one per (choice, completion tokens so far), each with
    continuous usage, then the usage-only event."""
    def usage(k: int) -> str:
        return f'{{"prompt_tokens":{CEILING_INPUT_TOKENS},"total_tokens":{CEILING_INPUT_TOKENS + k},' \
               f'"completion_tokens":{k}}}'
    head = f'"id":"b","object":"{kind}","created":1,"model":"{MODEL}"'
    return [f'{{{head},"choices":[{c}],"usage":{usage(k)}}}' for c, k in choices] + \
           [f'{{{head},"choices":[],"usage":{usage(tokens)}}}']


def finish(i: int, chunks: int) -> str:
    """Event i's finish_reason (and stop_reason, which vLLM's chat stream sets only with it)."""
    return '"length","stop_reason":null' if i == chunks - 1 else "null"


def ceiling_responses(chunks: int) -> dict[bytes, bytes]:
    """What the zero-delay server answers, by request method and path: streams of `chunks` one-token chunks
    on completions and on chat (the role-only chunk first, as vLLM sends it), its model, and empty metrics."""
    stop = ',"stop_reason":null'  # always there on completions
    text = [(f'{{"index":0,"text":" tok","logprobs":null,"finish_reason":{finish(i, chunks)}'
             f'{"" if i == chunks - 1 else stop}}}', i + 1) for i in range(chunks)]
    chat = [('{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}', 0)] + \
           [(f'{{"index":0,"delta":{{"content":" tok"}},"logprobs":null,"finish_reason":{finish(i, chunks)}}}', i + 1)
            for i in range(chunks)]
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "root": MODEL,
                                                     "max_model_len": 4096}]}).encode()
    return {b"POST /v1/completions": sse_response(stream_events("text_completion", text, chunks)),
            b"POST /v1/chat/completions": sse_response(stream_events("chat.completion.chunk", chat, chunks)),
            b"GET /v1/models": b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                               % (len(models), models),
            b"GET /metrics": b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n"}


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


def request_key(head: bytes) -> bytes:
    """`METHOD /path` of a request head (its query string dropped): the key of `ceiling_responses`."""
    method, target, _ = head.split(b" ", 2)
    return method + b" " + target.split(b"?", 1)[0]


def complete_requests(buf: bytes) -> tuple[list[bytes], bytes]:
    """The heads of the complete requests at the start of `buf` (each body skipped by its Content-Length), and
    the bytes left over: a bench server's whole HTTP/1.1 parser."""
    heads = []
    while (end := buf.find(b"\r\n\r\n")) >= 0:
        lower = buf[:end].lower()
        at = lower.find(b"content-length:")
        length = int(lower[at + 15:].split(b"\r\n")[0]) if at >= 0 else 0
        if len(buf) < end + 4 + length:
            break
        heads.append(buf[:end])
        buf = buf[end + 4 + length:]
    return heads, buf


async def zero_delay_server(port: int, chunks: int) -> None:
    responses = ceiling_responses(chunks)

    class Serve(asyncio.Protocol):
        def connection_made(self, transport):
            self.t, self.buf = transport, b""

        def data_received(self, data):
            heads, self.buf = complete_requests(self.buf + data)
            for head in heads:
                self.t.write(responses.get(request_key(head.split(b"\r\n", 1)[0]), NOT_FOUND))

    server = await asyncio.get_running_loop().create_server(Serve, "127.0.0.1", port)
    await server.serve_forever()


# --- orchestration --------------------------------------------------------------------------------------
# --- the fidelity table: each client against a fresh simulator, on the wire ---------------------------------
class Agent:
    """The agent as a client of the fidelity table: its load generator and shipper in their own process."""

    name = "siliconbench agent"
    matched_by = "request id"

    def __init__(self, collector: str) -> None:
        self.collector = collector
        self.saturated = False  # the agent's own verdict on its last run
        self.step: dict = {}     # what its client said of its last step

    def command(self, load: Load, out: Path) -> list[str]:
        return [PY, __file__, "--client", "fidelity", load.url, str(load.concurrency), str(load.requests), "1",
                self.collector, str(out / "agent.json")]

    def read(self, out: Path, offset_ns: int) -> list[ClientRequest]:
        data = json.loads((out / "agent.json").read_text())
        self.step = data["step"]
        self.saturated = self.step["saturated"]
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


def sample_cpu(pid: int, usage: Usage, stop: threading.Event) -> None:
    """Until `stop` (or the process is gone): every 0.1 s, the CPU seconds of `pid`'s process tree into `usage`."""
    seen: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
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


def sampled(pid: int) -> tuple[Usage, Callable[[], None]]:
    """`pid`'s process tree sampled (sample_cpu) in a thread until the function returned is called."""
    usage, stop = Usage(0.0, 0.0), threading.Event()
    sampler = threading.Thread(target=sample_cpu, args=(pid, usage, stop), daemon=True)
    sampler.start()

    def done() -> None:
        stop.set()
        sampler.join()
    return usage, done


def run_measured(args: list[str], log: Path) -> Usage:
    """Run a client to its end, sampling its process tree's CPU every 0.1 s; fail with its output's tail."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=environment(), stdout=out, stderr=subprocess.STDOUT)
    usage, done = sampled(proc.pid)
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done()
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


# --- the ceiling table: every client against the same zero-delay server ------------------------------------
class CeilingAgent(Agent):
    """The agent as a client of the ceiling table: its load generator alone (records kept in memory, no
    shipper), sending from `workers` processes ("1", "2"...) or as `workers: auto` sizes it."""

    def __init__(self, workers: str) -> None:
        super().__init__("-")
        self.workers = workers

    def command(self, load: Load, out: Path) -> list[str]:
        return [PY, __file__, "--client", "ceiling", load.url, str(load.concurrency), str(load.requests),
                self.workers, "-", str(out / "agent.json")]

    def sent_by(self) -> str:
        """The processes that sent its last run's measured step, as the table shows them."""
        sent = f"{self.step['workers']}" if self.workers != "auto" else f"auto: {self.step['workers']}"
        return sent + (" (stopped: saturated)" if self.step["stopped"] else "")


def ceiling(client: Peer, server_args: list[str], requests: int, pin: bool, tokenizer: Path) -> dict[str, float]:
    """`client` sends the ceiling load (concurrency 64, CEILING_CHUNKS chunks per request) to a fresh server.
    `pin`: server on core 0, the client's processes on core 1; otherwise both float over every core.
    Every figure is over the client's own window of the load (its first request's start to its last chunk,
    start-up excluded); CPU: its whole process tree, and the server's, sampled over that window."""
    port = free_port()
    server_cmd = [PY, *server_args, "--port", str(port)]
    proc = subprocess.Popen(pinned(server_cmd, 0) if pin else server_cmd, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        wait_http(port, proc)
        server, done = sampled(proc.pid)
        load = Load(f"http://127.0.0.1:{port}", MODEL, 64, requests, CEILING_INPUT_TOKENS, CEILING_CHUNKS, tokenizer)
        with tempfile.TemporaryDirectory(prefix="sb-ceiling-") as tmp_dir:
            out = Path(tmp_dir)
            command = client.command(load, out)
            offset_ns = monotonic_to_wall_ns()
            usage = run_measured(pinned(command, 1) if pin else command, out / "client.log")
            done()
            records = client.read(out, offset_ns)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return ceiling_figures(records, requests, usage, server)


def ceiling_figures(records: list[ClientRequest], requests: int, client: Usage, server: Usage) -> dict[str, float]:
    """Content chunks/s over the client's window of the load, its CPU and the server's over that window (% of
    one core), chunks per client CPU-second, TTFT p50 (ms), content chunks read per request (the server sends
    CEILING_CHUNKS), requests that failed, the client's peak RSS."""
    start_ns = min(r.start_ns for r in records)
    end_ns = max(r.arrivals_ns[-1] for r in records if r.arrivals_ns)
    wall_s = (end_ns - start_ns) / 1e9
    chunks = sum(len(r.arrivals_ns) for r in records)
    cpu_s = client.cpu_between(start_ns, end_ns)
    return {"chunks_s": chunks / wall_s, "cpu_pct": 100 * cpu_s / wall_s,
            "per_cpu_s": chunks / cpu_s if cpu_s > 0 else float("nan"),
            "server_cpu_pct": 100 * server.cpu_between(start_ns, end_ns) / wall_s,
            "ttft50": pct([r.ttft_ns / 1e6 for r in records], 0.5), "per_request": chunks / len(records),
            "errors": requests - len(records), "rss_mb": client.rss_mb}


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
        uvloop.run(zero_delay_server(args.port, CEILING_CHUNKS))
        return
    if args.acking_collector:
        asyncio.run(acking_collector(args.port))
        return
    if args.client:
        mode, url, c, n, workers, collector, out = args.client
        if mode == "fidelity":
            uvloop.run(client_fidelity(url, int(c), int(n), collector, out))
        else:
            uvloop.run(client_ceiling(url, int(c), int(n), workers, out))
        return
    peers = peer_clients(args, parser)
    tokenizer = args.tokenizer or args.peers_dir / "tiny-model"
    if args.only != "ceiling":
        fidelity_table(args.quick, args.rounds or (1 if args.quick else 3), peers, tokenizer)
    if args.only != "fidelity":
        ceiling_table(CEILING_REQUESTS[args.quick], peers, tokenizer)


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


def ceiling_table(requests: int, peers: list[Peer], tokenizer: Path) -> None:
    print(f"\nClient ceiling: every client sends the same load, chat, concurrency 64, {requests} requests of "
          f"{CEILING_CHUNKS} one-token chunks, to a fresh server; host load average {os.getloadavg()[0]:.1f} at "
          "start (other processes share these cores). Each client's figures are over its own window of the load "
          "(first request out to last chunk in: start-up excluded); CPU: its whole process tree and the server's, "
          "sampled over that window, % of one core; chunks per client CPU-second: the cost of a chunk, which "
          "other load on the host changes little; RSS: its largest process's peak; TTFT p50 as the client "
          "reports it. workers: the agent's sending processes (auto: as `workers: auto`, the agent's default, "
          "chose them for the step shown; the step runs twice so auto can resize after the first)\n")
    print("| client | server | cores | workers | content chunks/s | chunks per client CPU-s | client CPU | "
          f"server CPU | TTFT p50 (ms) | chunks read per request (of {CEILING_CHUNKS}) | errors | client RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    zero = [__file__, "--zero-delay-server"]
    sim = ["-m", "siliconbench.agent", "sim", "--ttft-ms", "0", "--itl-ms", "0"]
    runs: list[tuple[Peer, str, list[str], int, bool]] = []
    for pin in (True, False):
        workers = ("auto", "1") if pin else ("auto", "1", "2")
        runs += [(CeilingAgent(w), "pre-built zero-delay", zero, requests, pin) for w in workers]
        runs += [(peer, "pre-built zero-delay", zero, requests, pin) for peer in peers]
    runs.append((CeilingAgent("1"), "simulator, ttft=itl=0", sim, requests // 10, True))
    rows = []
    for client, server, server_args, n, pin in runs:
        r = ceiling(client, server_args, n, pin, tokenizer)
        workers = client.sent_by() if isinstance(client, CeilingAgent) else "–"
        rows.append((client, server, pin, r))
        print(f"| {client.name} | {server} | {'server 0, client 1' if pin else 'shared'} | {workers} | "
              f"{r['chunks_s']:,.0f} | {r['per_cpu_s']:,.0f} | {r['cpu_pct']:.0f}% | {r['server_cpu_pct']:.0f}% | "
              f"{r['ttft50']:.2f} | {r['per_request']:,.1f} | {r['errors']} | {r['rss_mb']:.0f} MB |", flush=True)
    if peers:
        print()
        for pin in (True, False):
            print(ceiling_verdict([(c, r) for c, server, p, r in rows if p == pin and server == "pre-built zero-delay"],
                                  "server 0, client 1" if pin else "shared"))


def ceiling_verdict(rows: list[tuple[Peer, dict[str, float]]], cores: str) -> str:
    """The agent with `workers: auto` against the best peer on one setting of the cores: the ceiling's
    targets (TTFT p50 <= 5 ms on a zero-delay server, >= 3x the best peer's chunks/s, the cheapest chunk)."""
    [agent] = [r for c, r in rows if isinstance(c, CeilingAgent) and c.workers == "auto"]
    name, best = max(((c.name, r) for c, r in rows if not isinstance(c, CeilingAgent)), key=lambda cr: cr[1]["chunks_s"])
    cheapest = max(r["per_cpu_s"] for c, r in rows if not isinstance(c, CeilingAgent))
    return (f"{cores}: the agent (workers auto) reads {agent['chunks_s'] / best['chunks_s']:.1f}x the chunks/s of "
            f"the fastest peer ({name}; target >= 3x) with TTFT p50 {agent['ttft50']:.2f} ms (target <= 5 ms), "
            f"at {agent['per_cpu_s'] / cheapest:.1f}x the chunks per CPU-second of the cheapest peer")


if __name__ == "__main__":
    main()

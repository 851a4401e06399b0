"""Process workers: one step's load sent from N processes, so the client scales with cores (`workers: N`, or
`auto`: siliconbench.agent.sizing decides N, and may grow the pool between steps).

The parent (the agent: shipper, samplers, scrapes, progress) starts N worker processes once per run
(`python -m siliconbench.agent.workers`, importing only the send path: never the collector, grpc or chdb). For each
step it splits the load into shares (`split_step`), sends each worker its share and one shared start
instant on the monotonic clock (system-wide on Linux), and merges what comes back: finished records
into the sink, each worker's self-monitoring into the step's evidence (the busiest worker's CPU and loop
lag; core/verdict.py).

Each worker runs a uvloop event loop with the same `Sender` the single-process agent uses. A finished
record is only appended to a list on the hot path; every `FLUSH_S` (and at the share's end) the list is
serialised into one frame and handed to a non-blocking pipe transport, so a slow parent never stalls a
read callback (the transport buffers instead).

Wire (pipes, both ways): frames of kind (1 byte), length (4 bytes, big-endian), payload. Control payloads
are pickles (parent and worker are the same code); RECORDS is the worker's next request number (8 bytes)
then length-prefixed serialised `RequestRecord`s.

A worker that dies mid-step does not lose requests silently: every request of its share that did not
come back (bounded steps: the whole share; duration-bound: those it had started, as of its last frame)
is recorded as an error of class `worker_crashed`, the step is client-limited, and the run stops with
`WorkerCrashed` once the step's records and event are out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import sys
import time
from pathlib import Path
from time import perf_counter_ns
from typing import cast

from siliconbench.agent.errors import WorkerCrashed
from siliconbench.agent.load.send import UNBOUNDED, Done, Sender, Share, ShareReport, WarmUp
from siliconbench.core.outcomes import ErrorClass
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.agent.selfmon import SelfReport
from siliconbench.agent.target import PromptBook
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

FLUSH_S = 0.05               # a worker ships its finished records this often
START_LEAD_NS = 50_000_000   # a step starts this long after the parent sends the shares: all workers have them
STOP_TIMEOUT_S = 5.0

_INIT, _READY, _WARMUP, _STEP, _RECORDS, _DONE = b"IRWSCD"


def _frame(kind: int, payload: bytes) -> bytes:
    return bytes((kind,)) + len(payload).to_bytes(4, "big") + payload


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(5)
    return head[0], await reader.readexactly(int.from_bytes(head[1:], "big"))


# --- splitting a step ----------------------------------------------------------------------------------
def apportion(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights` as integers summing to it (largest remainder; ties to the
    first)."""
    whole = sum(weights)
    parts = [total * w // whole for w in weights]
    by_remainder = sorted(range(len(weights)), key=lambda k: -(total * weights[k] % whole))
    for k in by_remainder[:total - sum(parts)]:
        parts[k] += 1
    return parts


def split_step(spec: StepSpec, step: int, repetition: int, seed: int, prompt_base: int,
               workers: int) -> list[Share]:
    """The step as up to `workers` shares that together make the same load. Closed loop: concurrency split
    as evenly as possible, requests in proportion to it. Open loop: the rate (and a cap) split evenly, each
    share with its own schedule from its own seed; constant arrivals are phased so the merged schedule stays
    evenly spaced. A bounded step's request numbers are split into contiguous blocks, a duration-bound
    step's are interleaved (worker w takes w, w + n, ...). Never more shares than requests in flight."""
    active = workers
    if spec.concurrency:
        active = min(active, spec.concurrency)
    if spec.requests:
        active = min(active, spec.requests)
    concurrency = apportion(spec.concurrency, [1] * active) if spec.concurrency else [0] * active
    if spec.requests:
        counts = apportion(spec.requests, [1] * active if spec.open_loop else concurrency)
        firsts = [sum(counts[:w]) for w in range(active)]
        numbers = [range(first, first + n) for first, n in zip(firsts, counts)]
    else:
        numbers = [range(w, UNBOUNDED, active) for w in range(active)]
    rate = spec.rate_rps / active
    phase_ns = int(1e9 / spec.rate_rps) if spec.mode == "constant" else 0
    return [Share(spec, step, repetition, concurrency[w], rate, numbers[w], f"{seed}/{step}/{w}",
                  phase_ns * w, prompt_base) for w in range(active)]


# --- the parent's side ---------------------------------------------------------------------------------
class _Worker:
    """The parent's handle on one worker process and its share of the current step."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, run_id: str) -> None:
        self.index = index
        self.proc = proc
        self.run_id = run_id
        self.lost = ""
        self._reply: asyncio.Future | None = None
        self._done: Done | None = None
        self._share: Share | None = None
        self._received: set[int] = set()
        self._next_number = 0
        self._reader = asyncio.create_task(self._read())

    async def send(self, kind: int, payload: object) -> None:
        self._reply = asyncio.get_running_loop().create_future()
        if self.lost:
            self._reply.set_result(None)
            return
        self.proc.stdin.write(_frame(kind, pickle.dumps(payload)))  # type: ignore[union-attr]
        try:
            await self.proc.stdin.drain()  # type: ignore[union-attr]
        except ConnectionError:
            pass  # the reader sees the end and reports it

    async def reply(self) -> object:
        """The worker's answer to the last command; None when it died first."""
        assert self._reply is not None
        return await self._reply

    def begin(self, share: Share, done: Done) -> None:
        self._share, self._done = share, done
        self._received = set()
        self._next_number = 0

    async def _read(self) -> None:
        reader = self.proc.stdout
        try:
            while True:
                kind, payload = await _read_frame(reader)  # type: ignore[arg-type]
                if kind == _RECORDS:
                    self._on_records(payload)
                elif self._reply is not None and not self._reply.done():
                    self._reply.set_result(pickle.loads(payload))
        except asyncio.IncompleteReadError:
            code = await self.proc.wait()
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            self.lost = f"agent worker {self.index} (pid {self.proc.pid}) died ({how})"
        except Exception as exc:  # a frame this side cannot read: the worker is no use any more
            log.exception("agent worker %d (pid %d): unreadable frame", self.index, self.proc.pid)
            self.proc.kill()
            await self.proc.wait()
            self.lost = f"agent worker {self.index} (pid {self.proc.pid}) sent an unreadable frame ({exc!r})"
        if self._reply is not None and not self._reply.done():
            self._reply.set_result(None)

    def _on_records(self, payload: bytes) -> None:
        self._next_number = int.from_bytes(payload[:8], "big")
        done, received, parse = self._done, self._received, pb.RequestRecord.FromString
        pos, end = 8, len(payload)
        while pos < end:
            size = int.from_bytes(payload[pos:pos + 4], "big")
            record = parse(payload[pos + 4:pos + 4 + size])
            pos += 4 + size
            received.add(int(record.request_id.rpartition("/")[2]))
            done(record)  # type: ignore[misc]

    def account_for_loss(self) -> ShareReport:
        """Record every request of the share that did not come back as a `worker_crashed` error."""
        share, done = self._share, self._done
        assert share is not None and done is not None
        numbers = share.numbers
        if not share.spec.requests:  # duration-bound: only what the worker had started
            numbers = range(numbers.start, min(numbers.stop, self._next_number), numbers.step)
        message = (f"{self.lost} during step {share.step}; this request never came back (the worker's other "
                   f"requests of the step were recorded as they finished)")
        now = time.time_ns()
        run_id = self.run_id
        missing = [n for n in numbers if n not in self._received]
        for n in missing:
            done(pb.RequestRecord(run_id=run_id, request_id=f"{run_id}/{share.step}/{n}", step=share.step,
                                  concurrency=share.spec.concurrency, repetition=share.repetition,
                                  start_unix_ns=now, ttft_ns=-1, error_class=ErrorClass.WORKER_CRASHED,
                                  error_message=message[:500]))
        log.error("%s during step %d: %d of its requests recorded as %s", self.lost, share.step, len(missing),
                  ErrorClass.WORKER_CRASHED)
        return ShareReport(SelfReport(0.0, 0.0), self._next_number, lost=self.lost)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.stdin.close()  # type: ignore[union-attr]  # end of commands: the worker exits
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.warning("agent worker %d (pid %d) did not exit; killing it", self.index, self.proc.pid)
                self.proc.kill()
                await self.proc.wait()
        await self._reader


class WorkerPool:
    """`size` worker processes sending a run's steps. `start`, then `warm_up`, `run_step` per step, `close`."""

    def __init__(self, size: int, plan: Plan, model: str, base_url: str, prompts: PromptBook,
                 run_id: str) -> None:
        self._size = size
        self._init = (plan, model, base_url, prompts, run_id)
        self._run_id = run_id
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        """Start the workers; return when every one is ready to send."""
        await self._spawn(self._size)

    async def grow(self, size: int) -> None:
        """Start more workers, up to `size` in all; the next steps are split across all of them."""
        await self._spawn(size - len(self._workers))

    async def _spawn(self, count: int) -> None:
        env = dict(os.environ)
        # the worker imports `siliconbench` from wherever this process did
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(Path(__file__).resolve().parents[2]),
                                                          env.get("PYTHONPATH"))))
        procs = await asyncio.gather(*(asyncio.create_subprocess_exec(
            sys.executable, "-m", "siliconbench.agent.workers", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=env) for _ in range(count)))
        first = len(self._workers)
        new = [_Worker(first + i, p, self._run_id) for i, p in enumerate(procs)]
        self._workers += new
        self._size = len(self._workers)
        await self._everyone(new, _INIT, [self._init] * count)
        self.raise_if_lost()
        log.info("run %s: %d agent workers started (pids %s), %d in all", self._run_id, count,
                 ", ".join(str(w.proc.pid) for w in new), self._size)

    async def _everyone(self, workers: list[_Worker], kind: int, payloads: list[object]) -> list[object]:
        await asyncio.gather(*(w.send(kind, p) for w, p in zip(workers, payloads)))
        return list(await asyncio.gather(*(w.reply() for w in workers)))

    async def warm_up(self, numbers: range) -> WarmUp:
        """The warm-up requests, split across the workers (each primes its own connections)."""
        counts = apportion(len(numbers), [1] * self._size)
        firsts = [sum(counts[:w]) for w in range(self._size)]
        outcomes = await self._everyone(self._workers, _WARMUP,
                                        [numbers[f:f + n] for f, n in zip(firsts, counts)])
        self.raise_if_lost()  # past it, every reply is its worker's WarmUp
        return sum(cast("list[WarmUp]", outcomes), WarmUp())

    async def run_step(self, spec: StepSpec, step: int, repetition: int, seed: int, prompt_base: int,
                       done: Done) -> list[ShareReport]:
        """Send the step from the workers, all starting at one instant; each finished record goes to `done`
        as its worker's frame arrives. A worker that died is accounted for (see the module docstring)."""
        self.raise_if_lost()
        shares = split_step(spec, step, repetition, seed, prompt_base, self._size)
        workers = self._workers[:len(shares)]
        for worker, share in zip(workers, shares):
            worker.begin(share, done)
        start_ns = perf_counter_ns() + START_LEAD_NS
        replies = await self._everyone(workers, _STEP, [(share, start_ns) for share in shares])
        return [reply if isinstance(reply, ShareReport) else worker.account_for_loss()
                for worker, reply in zip(workers, replies)]

    def raise_if_lost(self) -> None:
        lost = [w.lost for w in self._workers if w.lost]
        if lost:
            raise WorkerCrashed("; ".join(lost) + ". Its unfinished requests are recorded as errors "
                                f"({ErrorClass.WORKER_CRASHED}) and the run stops. Check the agent's memory limit "
                                "(an OOM kill shows as signal 9) and the log above, or rerun with fewer workers")

    async def close(self) -> None:
        await asyncio.gather(*(w.stop() for w in self._workers))


# --- the worker's side ---------------------------------------------------------------------------------
class _Outbox:
    """Finished records on their way to the parent: kept as objects on the hot path, serialised and written
    every FLUSH_S in one frame to a non-blocking transport."""

    def __init__(self, transport: asyncio.WriteTransport, sender: Sender) -> None:
        self._transport = transport
        self._sender = sender
        self._pending: list[pb.RequestRecord] = []

    def add(self, record: pb.RequestRecord) -> None:
        self._pending.append(record)

    def flush(self) -> None:
        """Write pending records, with the sender's next request number (what a crash would lose), even none."""
        parts = [self._sender.next_number.to_bytes(8, "big")]
        for record in self._pending:
            data = record.SerializeToString()
            parts.append(len(data).to_bytes(4, "big"))
            parts.append(data)
        self._pending = []
        self._transport.write(_frame(_RECORDS, b"".join(parts)))

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self.flush()

    async def run(self, share: Share, start_ns: int) -> ShareReport:
        ticks = asyncio.create_task(self._ticks())
        try:
            report = await self._sender.run(share, start_ns, self.add)
        finally:
            ticks.cancel()
        self.flush()
        return report


async def _serve(commands_fd: int, frames_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(commands_fd, "rb", 0))
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(frames_fd, "wb", 0))

    def answer(kind: int, payload: object) -> None:
        transport.write(_frame(kind, pickle.dumps(payload)))

    _, payload = await _read_frame(reader)
    plan, model, base_url, prompts, run_id = pickle.loads(payload)
    sender = Sender(plan, model, base_url, prompts, run_id)
    sender.start()
    outbox = _Outbox(transport, sender)
    answer(_READY, None)
    try:
        while True:
            try:
                kind, payload = await _read_frame(reader)
            except asyncio.IncompleteReadError:
                return  # the parent closed the pipe: the run is over
            if kind == _WARMUP:
                answer(_DONE, await sender.warm_up(pickle.loads(payload)))
            elif kind == _STEP:
                share, start_ns = pickle.loads(payload)
                answer(_DONE, await outbox.run(share, start_ns))
    finally:
        sender.close()


def main() -> None:
    """`python -m siliconbench.agent.workers`: commands on stdin, frames on stdout (started by `WorkerPool`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent ends the workers
    frames_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the frame stream
    try:
        import uvloop
    except ImportError:  # uvloop is a declared dependency except on Windows
        asyncio.run(_serve(0, frames_fd))
        return
    uvloop.run(_serve(0, frames_fd))


if __name__ == "__main__":
    main()

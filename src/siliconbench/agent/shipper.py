"""Ships records and samples to the collector: what the run produces goes in, and leaves the agent only
once the collector has stored it.

The shipper is four parts, each in its own module, wired here:

    add(item), add_samples -> Batcher (agent/batcher.py: the open batch, sealed by size or age,
    numbered and written to the disk spool by the spool thread) -> Spool (agent/spool.py) -> Uplink
    (agent/uplink.py: the gRPC stream, back-off, offer and grant, replies) -> collector;
    refused or oversized batches -> Refusals (agent/refusals.py: split in halves, then quarantine).

A batch leaves the spool only when the collector acknowledges it. A step's last records are sealed with
its StepEvent.

The spool is bounded: while it is full, `wait_for_room()` blocks, and the load generator awaits it
before each request (in its own process) and between steps, so a long outage pauses the benchmark instead
of dropping data. The disk is part of that promise: while it refuses writes (full, read-only, quota) the
batches sealed meanwhile are held in memory (counted against the spool's bound, past which device samples
are dropped and counted: the only data the agent ever drops), `wait_for_room()` blocks too and
`disk_fault` says why, once in the log; every `max_age_s` the held batches are written again (or,
with none held, a probe), and the load resumes when the disk takes them, or as soon as the collector
has acknowledged every held batch (memory is free again; the next batches are held until acknowledged).

What a kill can lose: a step's last records are sealed with its StepEvent, and SIGTERM/SIGINT seal
and drain (agent/app.py); SIGKILL loses the records not yet sealed, at most `max_age_s` (0.25 s) of
finished requests, plus the batches held in memory while the disk refused writes. Files are not
fsynced (agent/spool.py): a node's power loss can lose what the page cache held.

Off the stamping loop: in single-process mode the shipper shares its event loop with the load generator's
read callbacks, so nothing heavy may run there: items are encoded once as they are added, and all file
work runs on the spool thread (agent/batcher.py says what each costs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc
from google.protobuf.message import Message

from siliconbench.agent.batcher import METRICS_TAG, REQUESTS_TAG, RUNS_TAG, SAMPLES_TAG, STEPS_TAG, Batcher
from siliconbench.agent.errors import DeliveryIncomplete
from siliconbench.agent.refusals import Refusals
from siliconbench.agent.load.sink import Item
from siliconbench.agent.spool import Entry, Spool
from siliconbench.agent.uplink import Uplink
from siliconbench.core.settings import BearerToken
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

PROBE_READINGS_METHOD = "/siliconbench.telemetry.v1.Control/ProbeReadings"
_TAG_OF = {pb.RunEvent: RUNS_TAG, pb.StepEvent: STEPS_TAG, pb.RequestRecord: REQUESTS_TAG,
           pb.ServerMetric: METRICS_TAG}  # the load's items (agent/load/sink.py)


class Shipper:
    def __init__(self, address: str, hello: pb.Hello, spool: Spool, *, max_items: int = 2000,
                 max_age_s: float = 0.25, token: str | BearerToken | None = None,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self._address = address
        self._agent_id = hello.agent_id  # the collector stores this agent's rows under it
        self.spool = spool
        self._max_age_s = max_age_s
        self._requests_of: dict[int, int] = {}  # seq -> request records in it, for batches of this process
        self._batcher = Batcher(spool, hello.agent_id, max_items, self._on_queued)
        self._refusals = Refusals(self._batcher, self._requests_of, self._changed)
        self._uplink = Uplink(address, hello, self._batcher, self._refusals, self._on_ack, token=token,
                              credentials=credentials)
        self._drained = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: list[asyncio.Task] = []
        self.served = 0                       # request records added
        self.stored = 0                       # ... acknowledged by the collector
        self.samples_dropped = 0              # device samples dropped while that held memory at its bound
        self._update_events()

    # -- producers -------------------------------------------------------------------------
    def add(self, item: Item) -> None:
        """One item of the load into the open batch; a step's event seals it, and with it the step's last
        records, at once (see the module docstring)."""
        tag = _TAG_OF[type(item)]
        if tag is REQUESTS_TAG:
            self.served += 1
        self._add(tag, item)
        if tag is STEPS_TAG:
            self.seal()

    def add_samples(self, samples: list[pb.DeviceSample]) -> None:
        """Device samples go on while the load pauses; past the spool's bound with the disk refusing writes
        they would grow memory without end, so they are dropped then (counted, said once)."""
        if self.disk_fault is not None and self._batcher.unacked_bytes >= self.spool.max_bytes:
            if not self.samples_dropped:
                log.error("%s and the %.0f MiB held in memory reach the spool's bound: device samples are dropped "
                          "until the disk takes writes again", self.disk_fault, self._batcher.unacked_bytes / 2**20)
            self.samples_dropped += len(samples)
            return
        for sample in samples:
            self._add(SAMPLES_TAG, sample)

    def send_progress(self, progress: pb.RunProgress) -> None:
        """Tell the collector where a fleet run stands (not spooled: agent/uplink.py)."""
        self._uplink.send_progress(progress)

    def take_commands(self, handler: Callable[[pb.Command], None]) -> None:
        """Hand the collector's fleet commands to `handler`; from now on a stream stays open even with
        nothing to send, so the commands reach this agent."""
        self._uplink.on_command = handler
        self._uplink.new.set()

    def send_ack(self, command_id: int) -> None:
        """Acknowledge a fleet command (not spooled: agent/uplink.py)."""
        self._uplink.send_ack(command_id)

    def _add(self, key: bytes, item: Message) -> None:
        self._batcher.add(key, item)
        self._update_events()

    def seal(self) -> None:
        """Close the open batch and hand it to the spool thread (no-op when nothing is buffered). It is
        in the spool, and on its way to the collector, once that thread has written it (`flush`)."""
        self._batcher.seal()
        self._update_events()

    async def flush(self) -> None:
        """Seal what is buffered and return once every sealed batch is in the spool."""
        self.seal()
        await self._batcher.stored.wait()

    async def probe_readings(self, request: pb.ProbeReadingsRequest, timeout_s: float) -> pb.ProbeReadingsReply:
        """A search probe's readings from the collector's store (Control.ProbeReadings) for this agent's rows,
        once everything buffered is on its way there; grpc.aio.AioRpcError when the collector cannot say."""
        await self.flush()
        request.agent_id = self._agent_id
        return await self._uplink.call(PROBE_READINGS_METHOD, request, pb.ProbeReadingsReply, timeout_s)

    # -- what the load generator and the operator see ----------------------------------------
    @property
    def on_command(self) -> Callable[[pb.Command], None] | None:
        """Fleet runs: what to do with each command from the collector."""
        return self._uplink.on_command

    @on_command.setter
    def on_command(self, handler: Callable[[pb.Command], None] | None) -> None:
        self._uplink.on_command = handler

    @property
    def disk_fault(self) -> str | None:
        """Why the spool's disk refuses writes, while it does."""
        return self._batcher.disk_fault

    @property
    def set_aside(self) -> int:
        """Records (of any kind) the collector refused, kept in quarantine."""
        return self._refusals.set_aside

    @property
    def requests_set_aside(self) -> int:
        return self._refusals.requests_set_aside

    @property
    def pending(self) -> int:
        """Batches sealed and not yet acknowledged."""
        return len(self.spool.entries) + self._batcher.unstored

    def _full(self) -> bool:
        """The spool at its bound, or batches held in memory because the disk refused them (the pause lifts
        once the collector acknowledged them, even while the disk still refuses writes)."""
        return self._batcher.unacked_bytes >= self.spool.max_bytes or (self.disk_fault is not None and self._batcher.held() > 0)

    def pause_reason(self) -> str | None:
        """Why the load waits before its next request, for the progress line; None while it does not."""
        if self.disk_fault is not None and self._batcher.held():
            return f"load paused: {self.disk_fault}"
        if self._full():
            return f"load paused: the spool is full ({self._batcher.unacked_bytes / 2**20:.0f} MiB unacknowledged)"
        return None

    async def wait_for_room(self) -> None:
        """Return at once while the spool has room; while it is full, wait for acknowledgements.
        The load generator awaits this between steps."""
        if not self._room.is_set():
            await self._room.wait()

    def delivery(self) -> str:
        """One line on the request records of this process: served, stored, set aside, still in the spool."""
        return (f"{self.served} requests served, {self.stored} stored, {self.requests_set_aside} set aside, "
                f"{self.served - self.stored - self.requests_set_aside} still in the spool")

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._batcher.start()
        self._tasks = [asyncio.create_task(self._sealer()), asyncio.create_task(self._uplink.run())]

    async def close(self, timeout_s: float = 30.0) -> None:
        """Seal what is buffered, then wait up to `timeout_s` for the collector to acknowledge
        everything. What is still unacknowledged then stays in the spool for the next start. Raises
        DeliveryIncomplete, with `delivery()` in its message, when anything was set aside or is undelivered."""
        self.seal()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise DeliveryIncomplete(
                f"{self.delivery()}: {self.pending} batches ({self._batcher.unacked_bytes / 2**20:.1f} MiB) were not "
                f"acknowledged by the collector at {self._address} within {timeout_s:.0f} s; they stay in the spool "
                f"{self.spool.directory} and are delivered when the agent next starts with it"
            ) from None
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._batcher.close()
            self.spool.close()
        if self.set_aside:
            raise DeliveryIncomplete(
                f"{self.delivery()}: the collector refused {self.set_aside} records; they are kept in "
                f"{self.spool.directory / 'quarantine'} and the log says why")
        log.info("%s", self.delivery())

    async def _sealer(self) -> None:
        while True:
            await asyncio.sleep(self._max_age_s)
            self.seal()
            if self.disk_fault is not None and await self._batcher.retry_disk():
                self._update_events()

    # -- events between the parts ------------------------------------------------------------
    def _on_queued(self, entry: Entry, requests: int) -> None:
        self._requests_of[entry.seq] = requests
        self._changed()

    def _on_ack(self, seq: int) -> None:
        self.stored += self._requests_of.pop(seq, 0)
        self.spool.remove(seq)
        self._update_events()

    def _changed(self) -> None:
        """The spool's queue changed: something new to send, and maybe room again."""
        self._update_events()
        self._uplink.new.set()

    def _update_events(self) -> None:
        if not self._full():
            if not self._room.is_set() and self.disk_fault is not None:
                log.warning("%s, but the collector acknowledged every batch held in memory: the load resumes "
                            "(new batches are held in memory until acknowledged)", self.disk_fault)
            elif not self._room.is_set():
                log.info("spool %s takes batches again: the load resumes", self.spool.directory)
            self._room.set()
        else:
            if self._room.is_set() and self.disk_fault is None:
                log.warning("spool %s is full (%.0f MiB, %d batches unacknowledged by %s): new requests wait "
                            "until the collector catches up; nothing is dropped", self.spool.directory,
                            self._batcher.unacked_bytes / 2**20, self.pending, self._address)
            self._room.clear()
        if not self.spool.entries and not self._batcher.items and not self._batcher.unstored:
            self._drained.set()
        else:
            self._drained.clear()

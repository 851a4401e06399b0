"""Ships records and samples to the collector over one long-lived gRPC stream.

Items are gathered into batches (sealed by size or age). Sealing gives a batch the spool's next
sequence number and a globally unique `batch_id` `<agent>/<boot>/<seq>` (the store's dedup key),
and writes it to the disk spool (agent/spool.py) before anything else happens to it. A batch
leaves the spool only when the collector acknowledges it. After a broken stream the shipper
reconnects with exponential back-off and jitter and resends every spooled batch in order — also
those a previous agent process left behind — so nothing is lost and, since the bytes (and so the
batch_id) of a replay are the ones first sent, nothing is stored twice. A stream the collector ends
cleanly (it does so at its maximum stream age, to spread agents over replicas) is reopened at once
on a new connection; the back-off restarts from its first step after any stream that was acknowledged.

The spool is bounded: while it is full, `wait_for_room()` blocks, and the load generator awaits it
between steps, so a long outage pauses the benchmark instead of dropping data.

Off the stamping loop: in single-process mode the shipper shares its event loop with the load generator's
read callbacks, so nothing heavy may run there. Each item is encoded once as it is added (2.1 us for a
64-chunk request record, where appending it to a `Batch` message cost 3.2 us and sealing 2,000 of them
then took 4-18 ms of serialization and writing in one block; sealing now takes 0.06 ms). A batch is those encodings concatenated: a
protobuf message is the concatenation of its fields, a repeated field's elements in order, so the bytes
parse as the `Batch` built field by field. Numbering, joining and writing a sealed batch, and reading one
back to send it, run on one spool thread (FIFO, so files appear in sequence order) whose work is mostly
in calls that release the GIL (write, crc32, read). A batch is queued for sending only once it is in the
spool, and counts against the spool's bound from the moment it is sealed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import grpc
from google.protobuf.message import Message

from siliconbench.agent.errors import DeliveryIncomplete, SpoolCorrupt
from siliconbench.agent.spool import Entry, Spool
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STREAM_METHOD = "/siliconbench.telemetry.v1.Telemetry/Stream"
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(message: type[Message], field: str, wire_type: int) -> bytes:
    return _varint(message.DESCRIPTOR.fields_by_name[field].number << 3 | wire_type)


def _delimited(tag: bytes, data: bytes) -> bytes:
    """One length-delimited field (a message or a string) in protobuf's wire encoding."""
    return tag + _varint(len(data)) + data


_BATCH_TAG = _tag(pb.AgentMessage, "batch", 2)
_SEQ_TAG = _tag(pb.Batch, "seq", 0)
_BATCH_ID_TAG = _tag(pb.Batch, "batch_id", 2)
_RUNS_TAG, _STEPS_TAG, _REQUESTS_TAG, _SAMPLES_TAG, _METRICS_TAG = (
    _tag(pb.Batch, name, 2) for name in ("runs", "steps", "requests", "samples", "server_metrics"))


class Shipper:
    def __init__(self, address: str, hello: pb.Hello, spool: Spool, *, max_items: int = 2000,
                 max_age_s: float = 0.25, token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self._address = address
        self._hello_bytes = pb.AgentMessage(hello=hello).SerializeToString()
        self._agent_id = hello.agent_id
        self.spool = spool
        self._max_items = max_items
        self._max_age_s = max_age_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._credentials = credentials
        self._boot = uuid.uuid4().hex[:12]   # with the spool's never-reused seq: batch ids are unique
        self._parts: list[bytes] = [b""]     # the open batch, encoded field by field; [0]: its seq and id
        self._items = 0
        self._open_bytes = 0
        self._io = ThreadPoolExecutor(1, thread_name_prefix="spool")  # see the module docstring
        self._unstored = 0                   # batches sealed and not yet in the spool
        self._unstored_bytes = 0
        self._stored = asyncio.Event()       # every sealed batch is in the spool
        self._new = asyncio.Event()
        self._acked_on_stream = False  # the current stream acknowledged a batch: the collector was working
        self._drained = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: list[asyncio.Task] = []
        self.rejected = 0
        self.on_command: Callable[[pb.Command], None] | None = None  # fleet runs: commands from the collector
        self._progress: dict[str, tuple[int, bytes]] = {}  # run id -> (version, latest RunProgress message)
        self._progress_version = 0
        self._update_events()
        if token and credentials is None:
            log.warning("the agent token goes to %s without TLS; set --tls-ca to encrypt it", address)

    # -- producers -------------------------------------------------------------------------
    def add_run(self, event: pb.RunEvent) -> None:
        self._add(_RUNS_TAG, event)

    def add_step(self, event: pb.StepEvent) -> None:
        self._add(_STEPS_TAG, event)

    def add_request(self, record: pb.RequestRecord) -> None:
        self._add(_REQUESTS_TAG, record)

    def add_samples(self, samples: list[pb.DeviceSample]) -> None:
        for sample in samples:
            self._add(_SAMPLES_TAG, sample)

    def add_server_metrics(self, metrics: list[pb.ServerMetric]) -> None:
        for metric in metrics:
            self._add(_METRICS_TAG, metric)

    def send_progress(self, progress: pb.RunProgress) -> None:
        """Tell the collector where a fleet run stands. Not spooled: only the latest per run matters,
        and it is sent again on every new stream."""
        self._progress_version += 1
        self._progress[progress.run_id] = (self._progress_version,
                                           pb.AgentMessage(progress=progress).SerializeToString())
        self._new.set()

    def _add(self, tag: bytes, item: Message) -> None:
        field = _delimited(tag, item.SerializeToString())
        self._parts.append(field)
        self._open_bytes += len(field)
        self._items += 1
        if self._items >= self._max_items:
            self.seal()

    def seal(self) -> None:
        """Close the open batch and hand it to the spool thread (no-op when nothing is buffered). It is
        in the spool, and on its way to the collector, once that thread has written it (`flush`)."""
        if not self._items:
            return
        parts, size = self._parts, self._open_bytes
        self._parts, self._items, self._open_bytes = [b""], 0, 0
        self._unstored += 1
        self._unstored_bytes += size
        stored = asyncio.wrap_future(self._io.submit(self._store, parts))
        stored.add_done_callback(partial(self._on_stored, size))
        if self._full() and self._room.is_set():
            log.warning("spool %s is full (%.0f MiB, %d batches unacknowledged by %s): new load steps wait "
                        "until the collector catches up; nothing is dropped", self.spool.directory,
                        self._bytes() / 2**20, self.pending, self._address)
        self._update_events()

    def _store(self, parts: list[bytes]) -> Entry:
        """On the spool thread: number the batch, join its fields and write it."""
        seq = self.spool.next_seq()
        batch_id = f"{self._agent_id}/{self._boot}/{seq}".encode()
        parts[0] = _SEQ_TAG + _varint(seq) + _delimited(_BATCH_ID_TAG, batch_id)
        return self.spool.write(seq, b"".join(parts))

    def _on_stored(self, size: int, stored: asyncio.Future) -> None:
        self.spool.add(stored.result())  # _store raises only on a bug; the loop's handler logs it
        self._unstored -= 1
        self._unstored_bytes -= size
        self._update_events()
        self._new.set()

    async def flush(self) -> None:
        """Seal what is buffered and return once every sealed batch is in the spool."""
        self.seal()
        await self._stored.wait()

    @property
    def pending(self) -> int:
        """Batches sealed and not yet acknowledged."""
        return len(self.spool.entries) + self._unstored

    def _bytes(self) -> int:
        return self.spool.bytes + self._unstored_bytes

    def _full(self) -> bool:
        return self._bytes() >= self.spool.max_bytes

    async def wait_for_room(self) -> None:
        """Return at once while the spool has room; while it is full, wait for acknowledgements.
        The load generator awaits this between steps."""
        if not self._room.is_set():
            await self._room.wait()
            log.info("spool %s has room again: resuming", self.spool.directory)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._io.submit(int)  # start the spool thread now: its start (0.2-2.5 ms) must not fall in a step
        self._tasks = [asyncio.create_task(self._sealer()), asyncio.create_task(self._connection())]

    async def close(self, timeout_s: float = 30.0) -> None:
        """Seal what is buffered, then wait up to `timeout_s` for the collector to acknowledge
        everything. What is still unacknowledged then stays in the spool for the next start."""
        self.seal()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise DeliveryIncomplete(
                f"{self.pending} batches ({self._bytes() / 2**20:.1f} MiB) were not acknowledged by the collector "
                f"at {self._address} within {timeout_s:.0f} s; they stay in the spool {self.spool.directory} and are "
                "delivered when the agent next starts with it"
            ) from None
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._io.shutdown()  # batches still being written reach the disk before the spool's lock goes
            self.spool.close()

    async def _sealer(self) -> None:
        while True:
            await asyncio.sleep(self._max_age_s)
            self.seal()

    async def _connection(self) -> None:
        backoff = FIRST_BACKOFF_S
        broken = False
        while True:
            if not self.spool.entries:
                await self._new.wait()  # connect only when there is something to send
            self._acked_on_stream = False
            try:
                await self._stream_once(replaying=broken)
                log.info("collector %s ended the stream (it spreads agents over its replicas); reconnecting, "
                         "%d batches to resend", self._address, self.pending)
                broken, backoff = True, FIRST_BACKOFF_S
                await asyncio.sleep(FIRST_BACKOFF_S * random.random())
            except grpc.aio.AioRpcError as exc:
                broken = True
                if self._acked_on_stream:
                    backoff = FIRST_BACKOFF_S  # that stream worked: this is a new outage, not the same one
                delay = backoff * (0.5 + random.random())
                log.warning("collector %s: %s (%s); %d batches (%.1f MiB) kept in the spool, retrying in %.1f s",
                            self._address, _explain(exc), exc.details(), self.pending, self.spool.bytes / 2**20, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _channel(self) -> grpc.aio.Channel:
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        if self._credentials is not None:
            return grpc.aio.secure_channel(self._address, self._credentials, options=options)
        return grpc.aio.insecure_channel(self._address, options=options)

    async def _stream_once(self, replaying: bool) -> None:
        async with self._channel() as channel:
            # requests go out as bytes: spooled batches are sent as stored, never re-encoded
            stream: grpc.aio.StreamStreamMultiCallable[bytes, pb.CollectorMessage] = channel.stream_stream(
                STREAM_METHOD, request_serializer=None, response_deserializer=pb.CollectorMessage.FromString)
            call = stream(metadata=self._metadata)
            await call.write(self._hello_bytes)
            writer = asyncio.create_task(self._write_pending(call, replaying))
            try:
                async for message in call:
                    self._on_reply(message)
                # the responses ended without an error status: the collector ended the stream on purpose
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _write_pending(self, call: grpc.aio.StreamStreamCall, replaying: bool) -> None:
        if replaying and self.spool.entries:
            log.info("collector %s: stream open again; replaying %d spooled batches in order",
                     self._address, self.pending)
        sent = 0  # highest seq written on this stream; a new stream resends everything spooled
        progress_sent = 0  # likewise for progress versions
        while True:
            self._new.clear()
            for version, message in sorted(self._progress.values()):
                if version > progress_sent:
                    await call.write(message)
                    progress_sent = version
            for entry in [e for s, e in self.spool.entries.items() if s > sent]:
                try:
                    message = await asyncio.wrap_future(self._io.submit(self._message, entry))
                except (SpoolCorrupt, OSError) as exc:
                    self.spool.quarantine(entry.seq, f"unreadable ({exc})")
                    self._update_events()
                    continue
                await call.write(message)
                sent = entry.seq
            await self._new.wait()

    def _message(self, entry: Entry) -> bytes:
        """On the spool thread: the AgentMessage{batch} of a spooled batch, framed without parsing it."""
        return _delimited(_BATCH_TAG, self.spool.read(entry))

    def _on_reply(self, message: pb.CollectorMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "ack":
            self._acked_on_stream = True
            self.spool.remove(message.ack.seq)
            self._update_events()
            return
        if kind != "error":
            if kind == "command" and self.on_command is not None:
                self.on_command(message.command)
            return
        error = message.error
        if error.code == pb.ERROR_CODE_INVALID:
            # The collector will never store it; keeping it in the queue would block shutdown forever.
            self.rejected += 1
            self.spool.quarantine(error.seq, f"rejected by the collector as invalid ({error.message})")
            self._update_events()
            return
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   details=f"collector could not store batch {error.seq}: {error.message}")

    def _update_events(self) -> None:
        if not self._full():
            self._room.set()
        else:
            self._room.clear()
        if not self._unstored:
            self._stored.set()
        else:
            self._stored.clear()
        if not self.spool.entries and not self._items and not self._unstored:
            self._drained.set()
        else:
            self._drained.clear()


def _explain(exc: grpc.aio.AioRpcError) -> str:
    code = exc.code()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "it refused this agent's token (check SILICONBENCH_AGENT_TOKEN against its tokens file)"
    if code == grpc.StatusCode.UNAVAILABLE:
        return "unreachable or not storing"
    return f"stream broke with {code.name}"

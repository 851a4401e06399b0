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

A collector that admits batches by credit (it says so when it accepts the stream; the shipper says in
its call metadata that it offers) is sent each batch only after it granted room for it: the shipper offers the batch (seq and size), waits for the grant,
then writes it, so a busy collector holds no batch it cannot yet decode, and the rest wait in the
spool. Progress reports still go out while a batch waits for its grant.

No batch can hold up the ones behind it. A sealed batch stays under the transport limit (`MAX_BATCH_BYTES`:
the open batch is sealed before an item would push it over). A batch the collector refuses as invalid, or
one too large to send (left by an older agent), is split in two halves, each a new spooled batch whose id
is the original's plus `.0`/`.1` (so a split repeated after a crash is stored once); halves are split
again until only the offending record is alone, and that one is set aside in the spool's quarantine with
the reason logged and counted (`set_aside`). A batch of 2,000 records with one bad record costs 11 splits
(23 sends, each half that holds no bad record stored at once), and 1,999 records are stored.

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
from siliconbench.core.limits import MAX_MESSAGE_BYTES
from siliconbench.core.wire import GRANTS_METADATA, OFFERS_METADATA, pb

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = MAX_MESSAGE_BYTES - 64 * 1024  # room for the seq, the batch id and the message framing
STREAM_METHOD = "/siliconbench.telemetry.v1.Telemetry/Stream"
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0
ACCEPT_WAIT_S = 2.0  # how long a new stream waits for the collector's accept before writing anyway


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
_LISTS = ("runs", "steps", "requests", "samples", "server_metrics")  # the repeated fields of a Batch
_ITEM_TAGS = tuple(_tag(pb.Batch, name, 2) for name in _LISTS)
_RUNS_TAG, _STEPS_TAG, _REQUESTS_TAG, _SAMPLES_TAG, _METRICS_TAG = _ITEM_TAGS


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
        self._metadata = (OFFERS_METADATA, *((("authorization", f"Bearer {token}"),) if token else ()))
        self._credentials = credentials
        self._boot = uuid.uuid4().hex[:12]   # with the spool's never-reused seq: batch ids are unique
        self._parts: list[bytes] = [b""]     # the open batch, encoded field by field; [0]: its seq and id
        self._items = 0
        self._open_bytes = 0
        self._open_requests = 0
        self._io = ThreadPoolExecutor(1, thread_name_prefix="spool")  # see the module docstring
        self._unstored = 0                   # batches sealed and not yet in the spool
        self._unstored_bytes = 0
        self._stored = asyncio.Event()       # every sealed batch is in the spool
        self._new = asyncio.Event()
        self._new_progress = asyncio.Event()
        self._grant: tuple[int, asyncio.Future] | None = None  # the offered batch's seq, and its grant to come
        self._acked_on_stream = False  # the current stream acknowledged a batch: the collector was working
        self._drained = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: list[asyncio.Task] = []
        self._splitting: set[int] = set()  # batches being split (see the module docstring)
        self._requests_of: dict[int, int] = {}  # seq -> request records in it, for batches of this process
        self.served = 0                       # request records added
        self.stored = 0                       # ... acknowledged by the collector
        self.set_aside = 0                    # records (of any kind) the collector refused, kept in quarantine
        self.requests_set_aside = 0
        self.disk_fault: str | None = None    # why the spool's disk refuses writes, while it does
        self.samples_dropped = 0              # device samples dropped while that held memory at its bound
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
        """The step's event, and with it the step's last records, sealed at once (see the module docstring)."""
        self._add(_STEPS_TAG, event)
        self.seal()

    def add_request(self, record: pb.RequestRecord) -> None:
        self._add(_REQUESTS_TAG, record)

    def add_samples(self, samples: list[pb.DeviceSample]) -> None:
        """Device samples go on while the load pauses; past the spool's bound with the disk refusing writes
        they would grow memory without end, so they are dropped then (counted, said once)."""
        if self.disk_fault is not None and self._bytes() >= self.spool.max_bytes:
            if not self.samples_dropped:
                log.error("%s and the %.0f MiB held in memory reach the spool's bound: device samples are dropped "
                          "until the disk takes writes again", self.disk_fault, self._bytes() / 2**20)
            self.samples_dropped += len(samples)
            return
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
        self._new_progress.set()

    def _add(self, tag: bytes, item: Message) -> None:
        field = _delimited(tag, item.SerializeToString())
        if self._items and self._open_bytes + len(field) > MAX_BATCH_BYTES:
            self.seal()  # an item too large on its own is sealed alone, then set aside when it is sent
        self._parts.append(field)
        self._open_bytes += len(field)
        self._items += 1
        if tag == _REQUESTS_TAG:
            self._open_requests += 1
            self.served += 1
        if self._items >= self._max_items:
            self.seal()

    def seal(self) -> None:
        """Close the open batch and hand it to the spool thread (no-op when nothing is buffered). It is
        in the spool, and on its way to the collector, once that thread has written it (`flush`)."""
        if not self._items:
            return
        parts, size, requests = self._parts, self._open_bytes, self._open_requests
        self._parts, self._items, self._open_bytes, self._open_requests = [b""], 0, 0, 0
        self._unstored += 1
        self._unstored_bytes += size
        stored = asyncio.wrap_future(self._io.submit(self._store, parts))
        stored.add_done_callback(partial(self._on_stored, size, requests))
        if self._bytes() >= self.spool.max_bytes and self._room.is_set():
            log.warning("spool %s is full (%.0f MiB, %d batches unacknowledged by %s): new requests wait "
                        "until the collector catches up; nothing is dropped", self.spool.directory,
                        self._bytes() / 2**20, self.pending, self._address)
        self._update_events()

    def _store(self, parts: list[bytes]) -> Entry:
        """On the spool thread: number the batch, join its fields and write it."""
        seq = self.spool.next_seq()
        batch_id = f"{self._agent_id}/{self._boot}/{seq}".encode()
        parts[0] = _SEQ_TAG + _varint(seq) + _delimited(_BATCH_ID_TAG, batch_id)
        return self.spool.write(seq, b"".join(parts))

    def _on_stored(self, size: int, requests: int, stored: asyncio.Future) -> None:
        entry = stored.result()  # _store raises only on a bug; the loop's handler logs it
        self._queue(entry)
        self._requests_of[entry.seq] = requests
        self._unstored -= 1
        self._unstored_bytes -= size
        self._update_events()
        self._new.set()

    def _queue(self, entry: Entry) -> None:
        """Queue a written batch; one the disk refused starts a disk fault (see the module docstring)."""
        self.spool.add(entry)
        if entry.data is not None and self.disk_fault is None:
            self.disk_fault = f"the spool {self.spool.directory} cannot write batch {entry.seq} ({entry.refused})"
            log.error("%s: the load pauses before its next request and resumes when the disk takes writes again; "
                      "the %d batches sealed meanwhile are held in memory", self.disk_fault, self._held())

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
        """The spool at its bound, or batches held in memory because the disk refused them (the pause lifts
        once the collector acknowledged them, even while the disk still refuses writes)."""
        return self._bytes() >= self.spool.max_bytes or (self.disk_fault is not None and self._held() > 0)

    def _held(self) -> int:
        return sum(e.data is not None for e in self.spool.entries.values())

    def pause_reason(self) -> str | None:
        """Why the load waits before its next request, for the progress line; None while it does not."""
        if self.disk_fault is not None and self._held():
            return f"load paused: {self.disk_fault}"
        if self._full():
            return f"load paused: the spool is full ({self._bytes() / 2**20:.0f} MiB unacknowledged)"
        return None

    async def wait_for_room(self) -> None:
        """Return at once while the spool has room; while it is full, wait for acknowledgements.
        The load generator awaits this between steps."""
        if not self._room.is_set():
            await self._room.wait()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._io.submit(int)  # start the spool thread now: its start (0.2-2.5 ms) must not fall in a step
        self._tasks = [asyncio.create_task(self._sealer()), asyncio.create_task(self._connection())]

    async def close(self, timeout_s: float = 30.0) -> None:
        """Seal what is buffered, then wait up to `timeout_s` for the collector to acknowledge
        everything. What is still unacknowledged then stays in the spool for the next start. Raises
        DeliveryIncomplete, with `delivery()` in its message, when anything was set aside or is undelivered."""
        self.seal()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise DeliveryIncomplete(
                f"{self.delivery()}: {self.pending} batches ({self._bytes() / 2**20:.1f} MiB) were not acknowledged by "
                f"the collector at {self._address} within {timeout_s:.0f} s; they stay in the spool "
                f"{self.spool.directory} and are delivered when the agent next starts with it"
            ) from None
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._io.shutdown()  # batches still being written reach the disk before the spool's lock goes
            self.spool.close()
        if self.set_aside:
            raise DeliveryIncomplete(
                f"{self.delivery()}: the collector refused {self.set_aside} records; they are kept in "
                f"{self.spool.directory / 'quarantine'} and the log says why")
        log.info("%s", self.delivery())

    def delivery(self) -> str:
        """One line on the request records of this process: served, stored, set aside, still in the spool."""
        return (f"{self.served} requests served, {self.stored} stored, {self.requests_set_aside} set aside, "
                f"{self.served - self.stored - self.requests_set_aside} still in the spool")

    async def _sealer(self) -> None:
        while True:
            await asyncio.sleep(self._max_age_s)
            self.seal()
            if self.disk_fault is not None:
                await self._retry_disk()

    async def _retry_disk(self) -> None:
        """Write the batches held in memory again (a probe when none is held); lift the fault once all are on disk."""
        held = [e for e in self.spool.entries.values() if e.data is not None]
        if await asyncio.wrap_future(self._io.submit(self._persist, held)):
            log.warning("%s before; the disk takes writes again: %d held batches written, the load resumes",
                        self.disk_fault, len(held))
            self.disk_fault = None
            self._update_events()

    def _persist(self, held: list[Entry]) -> bool:
        """On the spool thread."""
        return all(self.spool.persist(e) for e in held) if held else self.spool.writable()

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
            grants = await _accepted(call)
            await call.write(self._hello_bytes)
            writer = asyncio.create_task(self._write_pending(call, replaying, grants))
            try:
                async for message in call:
                    self._on_reply(message)
                # the responses ended without an error status: the collector ended the stream on purpose
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _write_pending(self, call: grpc.aio.StreamStreamCall, replaying: bool, grants: bool) -> None:
        if replaying and self.spool.entries:
            log.info("collector %s: stream open again; replaying %d spooled batches in order",
                     self._address, self.pending)
        sent = 0  # highest seq written on this stream; a new stream resends everything spooled
        progress_sent = 0  # likewise for progress versions
        while True:
            self._new.clear()
            progress_sent = await self._write_progress(call, progress_sent)
            for entry in [e for s, e in self.spool.entries.items() if s > sent and s not in self._splitting]:
                try:
                    message = await asyncio.wrap_future(self._io.submit(self._message, entry))
                except (SpoolCorrupt, OSError) as exc:
                    self.spool.quarantine(entry.seq, f"unreadable ({exc})")
                    self._update_events()
                    continue
                sent = entry.seq
                if len(message) > MAX_MESSAGE_BYTES:
                    self._split(entry.seq, f"it is {len(message)} bytes, over the {MAX_MESSAGE_BYTES} byte "
                                           "message limit")
                    continue
                if grants:
                    progress_sent = await self._offer(call, entry.seq, len(message), progress_sent)
                await call.write(message)
            await self._new.wait()

    async def _write_progress(self, call: grpc.aio.StreamStreamCall, sent: int) -> int:
        """Write the progress reports newer than version `sent`; returns the newest version written."""
        self._new_progress.clear()
        for version, message in sorted(self._progress.values()):
            if version > sent:
                await call.write(message)
                sent = version
        return sent

    async def _offer(self, call: grpc.aio.StreamStreamCall, seq: int, size: int, progress_sent: int) -> int:
        """Offer batch `seq` and return once the collector granted it, writing progress reports meanwhile."""
        granted = asyncio.get_running_loop().create_future()
        self._grant = (seq, granted)
        await call.write(pb.AgentMessage(offer=pb.Offer(seq=seq, bytes=size)).SerializeToString())
        while not granted.done():
            progress = asyncio.ensure_future(self._new_progress.wait())
            await asyncio.wait((granted, progress), return_when=asyncio.FIRST_COMPLETED)
            progress.cancel()
            progress_sent = await self._write_progress(call, progress_sent)
        return progress_sent

    def _message(self, entry: Entry) -> bytes:
        """On the spool thread: the AgentMessage{batch} of a spooled batch, framed without parsing it."""
        return _delimited(_BATCH_TAG, self.spool.read(entry))

    def _on_reply(self, message: pb.CollectorMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "grant":
            if self._grant is not None and self._grant[0] == message.grant.seq and not self._grant[1].done():
                self._grant[1].set_result(None)
            return
        if kind == "ack":
            self._acked_on_stream = True
            self.stored += self._requests_of.pop(message.ack.seq, 0)
            self.spool.remove(message.ack.seq)
            self._update_events()
            return
        if kind != "error":
            if kind == "command" and self.on_command is not None:
                self.on_command(message.command)
            return
        error = message.error
        if error.code == pb.ERROR_CODE_INVALID:
            # The collector will never store it as it is; keeping it in the queue would block shutdown forever.
            self._split(error.seq, f"the collector refused it as invalid ({error.message})")
            return
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   details=f"collector could not store batch {error.seq}: {error.message}")

    # -- batches that cannot be delivered as they are --------------------------------------------
    def _split(self, seq: int, why: str) -> None:
        """Take batch `seq` out of the way of those behind it: split it, or set its one record aside."""
        if seq in self._splitting or seq not in self.spool.entries:
            return  # being split already, or gone (a second refusal of a batch sent on two streams)
        self._splitting.add(seq)
        halves = asyncio.wrap_future(self._io.submit(self._halves, self.spool.entries[seq]))
        halves.add_done_callback(partial(self._on_split, seq, why))

    def _halves(self, entry: Entry) -> list[tuple[Entry, int]]:
        """On the spool thread: the batch's items written as two new batches, with their request counts;
        [] when it holds a single item."""
        batch = pb.Batch.FromString(self.spool.read(entry))
        items = [(tag, item) for tag, name in zip(_ITEM_TAGS, _LISTS) for item in getattr(batch, name)]
        if len(items) < 2:
            return []
        halves = []
        for k, part in enumerate((items[:len(items) // 2], items[len(items) // 2:])):
            seq = self.spool.next_seq()
            head = _SEQ_TAG + _varint(seq) + _delimited(_BATCH_ID_TAG, f"{batch.batch_id}.{k}".encode())
            body = b"".join(_delimited(tag, item.SerializeToString()) for tag, item in part)
            halves.append((self.spool.write(seq, head + body), sum(tag == _REQUESTS_TAG for tag, _ in part)))
        return halves

    def _on_split(self, seq: int, why: str, done: asyncio.Future) -> None:
        self._splitting.discard(seq)
        try:
            halves = done.result()
        except Exception as exc:  # SpoolCorrupt, OSError, protobuf's DecodeError: the file went bad
            self.spool.quarantine(seq, f"unreadable ({exc})")
            halves = None
        counted = seq in self._requests_of  # a batch of this process, not one a previous run left
        requests = self._requests_of.pop(seq, 0)
        if halves:
            for half, half_requests in halves:
                self._queue(half)
                if counted:
                    self._requests_of[half.seq] = half_requests
            self.spool.remove(seq)
            log.warning("batch %d split in two (%s); the halves are sent on their own", seq, why)
        elif halves is not None:
            self.set_aside += 1
            self.requests_set_aside += requests
            self.spool.quarantine(seq, f"set aside: {why}")
        self._update_events()
        self._new.set()

    def _update_events(self) -> None:
        if not self._full():
            if not self._room.is_set() and self.disk_fault is not None:
                log.warning("%s, but the collector acknowledged every batch held in memory: the load resumes "
                            "(new batches are held in memory until acknowledged)", self.disk_fault)
            elif not self._room.is_set():
                log.info("spool %s takes batches again: the load resumes", self.spool.directory)
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


async def _accepted(call: grpc.aio.StreamStreamCall) -> bool:
    """Wait until the collector has accepted the stream (it sends its initial metadata once the token
    passed), or refused it: then raise its status. Writing before that could race a refusal, and gRPC aio
    reports a write into an aborted call as INTERNAL, losing the reason (grpc/grpc#36066). A collector that
    sends no early metadata (one older than this handshake) is written to after ACCEPT_WAIT_S. Returns
    whether the collector admits batches by credit (offer, grant, batch)."""
    try:
        metadata = await asyncio.wait_for(asyncio.shield(call.initial_metadata()), ACCEPT_WAIT_S)
    except asyncio.TimeoutError:
        return False
    if call.done():  # refused, or ended before it began: writing now would raise, so say why and retry
        code = await call.code()
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE if code == grpc.StatusCode.OK else code,
                                   await call.initial_metadata(), await call.trailing_metadata(),
                                   details=await call.details() or "the collector ended the stream before it began")
    return GRANTS_METADATA in tuple(metadata)


def _explain(exc: grpc.aio.AioRpcError) -> str:
    code = exc.code()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "it refused this agent's token (check SILICONBENCH_AGENT_TOKEN against its tokens file)"
    if code == grpc.StatusCode.UNAVAILABLE:
        return "unreachable or not storing"
    return f"stream broke with {code.name}"

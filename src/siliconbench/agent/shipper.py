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
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable

import grpc

from siliconbench.agent.errors import DeliveryIncomplete
from siliconbench.agent.spool import Spool, SpoolCorrupt
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STREAM_METHOD = "/siliconbench.telemetry.v1.Telemetry/Stream"
_BATCH_TAG = b"\x12"  # AgentMessage.batch: field 2, length-delimited
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0


def _frame(batch_bytes: bytes) -> bytes:
    """AgentMessage{batch} from a serialized Batch without parsing it again."""
    n, prefix = len(batch_bytes), bytearray(_BATCH_TAG)
    while n > 0x7F:
        prefix.append((n & 0x7F) | 0x80)
        n >>= 7
    prefix.append(n)
    return bytes(prefix) + batch_bytes


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
        self._batch = pb.Batch()
        self._items = 0
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
        self._batch.runs.append(event)
        self._added(1)

    def add_step(self, event: pb.StepEvent) -> None:
        self._batch.steps.append(event)
        self._added(1)

    def add_request(self, record: pb.RequestRecord) -> None:
        self._batch.requests.append(record)
        self._added(1)

    def add_samples(self, samples: list[pb.DeviceSample]) -> None:
        self._batch.samples.extend(samples)
        self._added(len(samples))

    def add_server_metrics(self, metrics: list[pb.ServerMetric]) -> None:
        self._batch.server_metrics.extend(metrics)
        self._added(len(metrics))

    def send_progress(self, progress: pb.RunProgress) -> None:
        """Tell the collector where a fleet run stands. Not spooled: only the latest per run matters,
        and it is sent again on every new stream."""
        self._progress_version += 1
        self._progress[progress.run_id] = (self._progress_version,
                                           pb.AgentMessage(progress=progress).SerializeToString())
        self._new.set()

    def _added(self, n: int) -> None:
        self._items += n
        if self._items >= self._max_items:
            self.seal()

    def seal(self) -> None:
        """Write what is buffered to the spool as one batch (no-op when nothing is)."""
        if not self._items:
            return
        seq = self.spool.next_seq()
        batch = self._batch
        batch.seq = seq
        batch.batch_id = f"{self._agent_id}/{self._boot}/{seq}"
        self.spool.put(seq, batch.SerializeToString())
        self._batch = pb.Batch()
        self._items = 0
        if self.spool.full and self._room.is_set():
            log.warning("spool %s is full (%.0f MiB, %d batches unacknowledged by %s): new load steps wait "
                        "until the collector catches up; nothing is dropped", self.spool.directory,
                        self.spool.bytes / 2**20, len(self.spool.entries), self._address)
        self._update_events()
        self._new.set()

    @property
    def pending(self) -> int:
        """Batches sealed and not yet acknowledged."""
        return len(self.spool.entries)

    async def wait_for_room(self) -> None:
        """Return at once while the spool has room; while it is full, wait for acknowledgements.
        The load generator awaits this between steps."""
        if not self._room.is_set():
            await self._room.wait()
            log.info("spool %s has room again: resuming", self.spool.directory)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._sealer()), asyncio.create_task(self._connection())]

    async def close(self, timeout_s: float = 30.0) -> None:
        """Seal what is buffered, then wait up to `timeout_s` for the collector to acknowledge
        everything. What is still unacknowledged then stays in the spool for the next start."""
        self.seal()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise DeliveryIncomplete(
                f"{self.pending} batches ({self.spool.bytes / 2**20:.1f} MiB) were not acknowledged by the collector "
                f"at {self._address} within {timeout_s:.0f} s; they stay in the spool {self.spool.directory} and are "
                "delivered when the agent next starts with it"
            ) from None
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
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
            for seq in [s for s in self.spool.entries if s > sent]:
                try:
                    data = self.spool.read(seq)
                except (SpoolCorrupt, OSError) as exc:
                    self.spool.quarantine(seq, f"unreadable ({exc})")
                    self._update_events()
                    continue
                await call.write(_frame(data))
                sent = seq
            await self._new.wait()

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
        if not self.spool.full:
            self._room.set()
        else:
            self._room.clear()
        if not self.spool.entries and not self._items:
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

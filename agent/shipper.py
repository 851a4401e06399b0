"""Ships records and samples to the collector over one long-lived gRPC stream.

Items are gathered into batches (sealed by size or age); every sealed batch gets the next
sequence number and a globally unique `batch_id` (the store's dedup key) and stays in
`pending` until the collector acknowledges it. After a broken stream the shipper reconnects
with exponential back-off and jitter and resends every pending batch in order, so a replay
can never be counted twice (the collector deduplicates on batch_id) nor lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

import grpc

from agent.errors import DeliveryIncomplete
from siliconbench.telemetry.v1 import telemetry_pb2 as pb
from siliconbench.telemetry.v1 import telemetry_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class Shipper:
    def __init__(self, address: str, hello: pb.Hello, *, max_items: int = 2000, max_age_s: float = 0.25,
                 token: str | None = None) -> None:
        self._address = address
        self._hello = hello
        self._max_items = max_items
        self._max_age_s = max_age_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._boot = uuid.uuid4().hex[:12]   # distinguishes this process's batches from a restart's
        self._seq = 0
        self._batch = pb.Batch()
        self._items = 0
        self.pending: dict[int, pb.Batch] = {}
        self._new = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._tasks: list[asyncio.Task] = []
        self.rejected = 0

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

    def _added(self, n: int) -> None:
        self._items += n
        if self._items >= self._max_items:
            self._seal()

    def _seal(self) -> None:
        if not self._items:
            return
        self._seq += 1
        batch = self._batch
        batch.seq = self._seq
        batch.batch_id = f"{self._hello.agent_id}/{self._boot}/{self._seq}"
        self.pending[self._seq] = batch
        self._batch = pb.Batch()
        self._items = 0
        self._drained.clear()
        self._new.set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._sealer()), asyncio.create_task(self._connection())]

    async def close(self, timeout_s: float = 30.0) -> None:
        """Seal what is buffered and wait until the collector acknowledged everything."""
        self._seal()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise DeliveryIncomplete(
                f"{len(self.pending)} batches were not acknowledged by the collector at {self._address} "
                f"within {timeout_s:.0f} s; is it running and reachable?"
            ) from None
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sealer(self) -> None:
        while True:
            await asyncio.sleep(self._max_age_s)
            self._seal()

    async def _connection(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._stream_once()
                backoff = 0.2
            except grpc.aio.AioRpcError as exc:
                log.warning("collector %s: stream broke (%s: %s); %d batches pending, retrying in %.1f s",
                            self._address, exc.code().name, exc.details(), len(self.pending), backoff)
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 10.0)

    async def _stream_once(self) -> None:
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        async with grpc.aio.insecure_channel(self._address, options=options) as channel:
            call = pb_grpc.TelemetryStub(channel).Stream(metadata=self._metadata)
            await call.write(pb.AgentMessage(hello=self._hello))
            writer = asyncio.create_task(self._write_pending(call))
            try:
                async for message in call:
                    self._on_reply(message)
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _write_pending(self, call: grpc.aio.StreamStreamCall) -> None:
        sent = 0  # highest seq written on this stream; a new stream resends everything pending
        while True:
            self._new.clear()
            for seq in sorted(s for s in self.pending if s > sent):
                await call.write(pb.AgentMessage(batch=self.pending[seq]))
                sent = seq
            await self._new.wait()

    def _on_reply(self, message: pb.CollectorMessage) -> None:
        if message.HasField("ack"):
            self._forget(message.ack.seq)
            return
        error = message.error
        if error.code == pb.ERROR_CODE_INVALID:
            # The collector will never store it; keeping it would block shutdown forever.
            log.error("collector rejected batch %d as invalid and it is dropped: %s", error.seq, error.message)
            self.rejected += 1
            self._forget(error.seq)
        else:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details=f"collector could not store batch {error.seq}: {error.message}")

    def _forget(self, seq: int) -> None:
        self.pending.pop(seq, None)
        if not self.pending and not self._items:
            self._drained.set()

"""The gRPC Telemetry service: a thin adapter from the wire to the store.

Per agent stream: a Hello first, then batches. Each batch is checked (collector/ingest.py),
inserted table by table on a bounded pool of store threads, and acknowledged only after
every insert returned. A replay carries the same batch_id, which is the insert's
deduplication token, so storing it again is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
from clickhouse_connect.driver.exceptions import ClickHouseError

from collector.errors import InvalidBatch, StoreUnavailable
from collector.ingest import check_hello, hello_row, rows_of
from collector.store import Store
from siliconbench.telemetry.v1 import telemetry_pb2 as pb
from siliconbench.telemetry.v1 import telemetry_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class TelemetryService(pb_grpc.TelemetryServicer):
    def __init__(self, store: Store, store_threads: int = 4) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=store_threads, thread_name_prefix="store")
        self.batches_stored = 0

    async def Stream(self, request_iterator, context: grpc.aio.ServicerContext):  # noqa: N802 (gRPC's name)
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        if not first.HasField("hello"):
            yield _error(0, pb.ERROR_CODE_PROTOCOL, "the first message of a stream must be Hello")
            return
        hello = first.hello
        try:
            check_hello(hello)
            await self._run(self._store.insert, "nodes", [hello_row(hello)], f"hello/{uuid.uuid4()}")
        except InvalidBatch as exc:
            yield _error(0, pb.ERROR_CODE_INVALID, str(exc))
            return
        except (StoreUnavailable, ClickHouseError, OSError) as exc:
            log.error("agent %s: cannot record its Hello: %s", hello.agent_id, exc)
            yield _error(0, pb.ERROR_CODE_UNAVAILABLE, "store unavailable")
            return
        agent = hello.agent_id
        log.info("agent %s connected (node %s, %s)", agent, hello.node_name, hello.instance_type or "instance type unknown")
        async for message in request_iterator:
            if not message.HasField("batch"):
                yield _error(0, pb.ERROR_CODE_PROTOCOL, "only Batch messages may follow Hello")
                continue
            yield await self._store_batch(agent, message.batch)
        log.info("agent %s: stream closed", agent)

    async def _store_batch(self, agent: str, batch: pb.Batch) -> pb.CollectorMessage:
        try:
            tables = rows_of(batch, agent)
        except InvalidBatch as exc:
            log.warning("agent %s: batch %d rejected: %s", agent, batch.seq, exc)
            return _error(batch.seq, pb.ERROR_CODE_INVALID, str(exc))
        try:
            for table, rows in tables.items():
                if rows:
                    await self._run(self._store.insert, table, rows, batch.batch_id)
        except (StoreUnavailable, ClickHouseError, OSError) as exc:
            log.error("agent %s: batch %d not stored, the agent will resend it: %s", agent, batch.seq, exc)
            return _error(batch.seq, pb.ERROR_CODE_UNAVAILABLE, "store unavailable")
        self.batches_stored += 1
        return pb.CollectorMessage(ack=pb.Ack(seq=batch.seq))

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _error(seq: int, code: int, message: str) -> pb.CollectorMessage:
    return pb.CollectorMessage(error=pb.Error(seq=seq, code=code, message=message))

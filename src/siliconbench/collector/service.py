"""The gRPC Telemetry service: a thin adapter from the wire to the store.

Per agent stream: the bearer token is checked before anything is read, then a Hello, then
batches; the credential again before each message and every RECHECK_S (collector/grants.py), so a
revoked or expired one ends the stream. Each batch is parsed, checked and converted to column tables (collector/ingest.py) on a
bounded pool of threads; an invalid one is refused alone, there. The rest go to the group inserter
(collector/group_insert.py), which writes the batches of all streams that arrive together with one
insert per table from a bounded number of writer threads, however many agents are connected, and
leaves out batches a table already holds (replays). A batch is acknowledged only after every insert
that contains it returned. A stream holds at most two batches (one being parsed, one being stored),
so a slow or failing store stops the acks and gRPC flow control pushes back to the agents, which
keep spooling. Across streams, batches hold their wire size from one global budget, shared in turn
between agents, from before they are read until they are stored (collector/budget.py): an agent offers
each batch and sends it once granted, and a stream's next message is read only once what it may bring
is covered, so what the collector holds does not grow with the number of agents sending at once, and a
stream waiting for its grant holds nothing.
With a maximum stream age, a stream past it stops reading, acknowledges what it took and ends with OK: the agent reconnects (a new connection, so possibly another replica) and resends
the rest. Cutting connections instead (gRPC's max connection age) could cut one while its batch was
being inserted, and its replay to another replica could then be stored twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.message import DecodeError

from siliconbench.collector.grants import Revoked, StreamGrant, run_ids
from siliconbench.collector.budget import Admission, ByteBudget, FlowViolation, error_reply as _error
from siliconbench.collector.errors import CollectorError, InvalidBatch, NotAuthenticated, StoreFailed, first_line
from siliconbench.collector.fleet import Fleet
from siliconbench.collector.group_insert import GroupInserter, ReadyBatch
from siliconbench.collector.kept import Keeper
from siliconbench.collector.identity import Authenticator
from siliconbench.collector.ingest import check_hello, hello_row, tables_of
from siliconbench.collector.store import Store
from siliconbench.core.wire import GRANTS_METADATA, OFFERS_METADATA, pb

log = logging.getLogger(__name__)

SERVICE_NAME = "siliconbench.telemetry.v1.Telemetry"
# Wire bytes of batches received, decoded or being stored at once, across all streams (collector/budget.py):
# about two 10.9 MiB batches, the measured peaks are in collector/budget.py.
DEFAULT_BYTES_IN_FLIGHT = 24 * 2**20
# An open stream's credential is checked again before each message it sends, and at least this often
# while it sends none: a token removed from the tokens file (re-read when it changes) or expired ends
# its streams within this time.
RECHECK_S = 1.0
# Concurrent RPCs the server takes (agent streams and control calls): each open stream holds a few hundred
# KiB at most (collector/budget.py), so this bounds the collector's memory whatever the number of clients.
DEFAULT_MAX_STREAMS = 1024


class TelemetryService:
    def __init__(self, store: Store, store_threads: int = 4, tokens: Authenticator | None = None,
                 max_stream_age_s: float = 0.0, max_bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT, *,
                 keep_steps: bool = True) -> None:
        self._store = store
        self.budget = ByteBudget(max_bytes_in_flight)
        self._tokens = tokens
        self._max_stream_age_s = max_stream_age_s
        # Parsing and checking (CPU) on one pool; inserts, merged across streams, on the inserter's
        # writers. Embedded chDB spreads one insert over its own threads and shares the host's cores
        # with the parsing: one writer gave the best throughput and ack latency there (bench/ingest.py).
        self._pool = ThreadPoolExecutor(max_workers=store_threads, thread_name_prefix="store")
        self.keeper = Keeper(store) if keep_steps else None  # None: reports compute every step (collector/kept.py)
        self.inserter = GroupInserter(store, writers=1 if store.location.embedded else store_threads, keeper=self.keeper)
        self.fleet = Fleet(store, self._run)
        self.run_in_store = self._run
        self._draining = asyncio.Event()
        self.batches_stored = 0
        self.batches_rejected = 0

    def drain(self) -> None:
        """End every stream as at its maximum age: each stops reading, acknowledges what it took and
        ends with OK, so a stopping server waits for the batches in flight, not for its whole grace."""
        self._draining.set()

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's handler. Requests arrive as bytes: a malformed message then gets a typed
        PROTOCOL error on its stream instead of breaking it inside gRPC."""
        method: grpc.RpcMethodHandler[bytes, pb.CollectorMessage] = grpc.stream_stream_rpc_method_handler(
            self.Stream, request_deserializer=None, response_serializer=pb.CollectorMessage.SerializeToString)
        return grpc.method_handlers_generic_handler(SERVICE_NAME, {"Stream": method})

    async def Stream(self, request_iterator, context: grpc.aio.ServicerContext):  # gRPC's method name
        metadata = context.invocation_metadata()
        try:
            credential = None if self._tokens is None else self._tokens.check(metadata)
        except NotAuthenticated as exc:
            log.warning("stream from %s refused: %s", context.peer(), exc)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        # Accepted: say so before reading. The agent waits for this before it writes, so a refusal above
        # reaches it as its status instead of a write racing the abort (gRPC aio then reports INTERNAL and
        # loses the reason, grpc/grpc#36066). The metadata says that batches are offered before they are sent.
        await context.send_initial_metadata((GRANTS_METADATA,))
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        hello = _parse_hello(first)
        if hello is None:
            yield _error(0, pb.ERROR_CODE_PROTOCOL, "the first message of a stream must be a valid Hello")
            return
        try:
            check_hello(hello)
        except InvalidBatch as exc:
            yield _error(0, pb.ERROR_CODE_INVALID, str(exc))
            return
        if credential is not None and (why := credential.refusal(hello.agent_id, hello.node_name)) is not None:
            log.warning("stream from %s refused: it claims agent %r; %s", context.peer(), hello.agent_id[:80], why)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{why}: present this agent's own token")
        try:
            await self._run(self._store.insert, "nodes", [hello_row(hello)], f"hello/{uuid.uuid4()}")
        except CollectorError as exc:  # the store maps its drivers' errors (store.store_error)
            log.error("agent %s: cannot record its Hello (%s: %s); refusing the stream until the store is back",
                      hello.agent_id, type(exc).__name__, first_line(exc))
            yield _error(0, pb.ERROR_CODE_UNAVAILABLE, "store unavailable")
            return
        agent = hello.agent_id
        log.info("agent %s connected from %s (node %s, %s)", agent, context.peer(), hello.node_name,
                 hello.instance_type or "instance type unknown")
        # Replies to batches and the fleet's commands share the response stream: both go through `out`.
        out: asyncio.Queue = asyncio.Queue()
        link = self.fleet.attach(hello)
        grant = None if self._tokens is None else StreamGrant(self._tokens, metadata, hello, self._store)
        offers = OFFERS_METADATA in tuple(context.invocation_metadata() or ())
        reader = asyncio.create_task(self._read(agent, request_iterator, out, offers, grant))
        forwarder = asyncio.create_task(_forward(link.commands, out))
        watcher = asyncio.create_task(_watch(grant, out))
        try:
            while (reply := await out.get()) is not None:
                if isinstance(reply, Revoked):
                    raise reply
                yield reply
            await reader  # re-raises what ended the stream abnormally
        except Revoked as exc:
            log.warning("agent %s: stream ended: its credential no longer lets it write (%s)", agent, exc)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"credential no longer accepted: {exc}")
        finally:
            self.fleet.detach(link)
            for task in (reader, forwarder, watcher):
                task.cancel()
            await asyncio.gather(reader, forwarder, watcher, return_exceptions=True)
        log.info("agent %s: stream closed", agent)

    async def _read(self, agent: str, request_iterator, out: asyncio.Queue, offers: bool,
                    grant: StreamGrant | None = None) -> None:
        """Parses the next message while the previous batch is being stored, never more (so a slow
        store slows the acks: backpressure); reads a message only once the budget covers it, charges it
        as it arrives (collector/budget.py); replies go to `out`, then a None for the end. With a
        grant: raises Revoked before taking a message once the credential is revoked, and refuses a
        batch or progress report for a run the agent does not belong to."""
        storing: asyncio.Task | None = None
        admission = Admission(self.budget, agent, offers)
        messages = aiter(request_iterator)
        ends_at = (time.monotonic() + self._max_stream_age_s * random.uniform(0.9, 1.1)
                   if self._max_stream_age_s > 0 else None)
        try:
            while (raw := await self._next_message(agent, messages, ends_at, admission)) is not None:
                if grant is not None and (why := grant.revoked()) is not None:
                    raise Revoked(why)
                try:
                    cost = admission.charge(raw)
                except FlowViolation as exc:
                    log.warning("agent %s: %s; ending its stream", agent, exc)
                    out.put_nowait(_error(0, pb.ERROR_CODE_PROTOCOL, str(exc)))
                    break
                try:
                    item = await self._parse(agent, raw)
                    if grant is not None:
                        item = await self._in_runs(agent, grant, item)
                except BaseException:
                    admission.release(cost)
                    raise
                del raw  # decoded now: the wire copy need not live on while the batch is stored
                if isinstance(item, ReadyBatch):
                    if storing is not None:
                        await storing
                    storing = asyncio.create_task(self._store_batch(agent, item, out))
                    # returned however the task ends, even cancelled before it ran (a closed stream)
                    storing.add_done_callback(functools.partial(_give_back, admission, cost))
                    continue
                admission.release(cost)
                if isinstance(item, pb.Offer):
                    admission.offer(item, out.put_nowait)  # granted once it fits; reading goes on meanwhile
                elif isinstance(item, pb.RunProgress):
                    if (renewal := await self.fleet.on_progress(agent, item)) is not None:
                        out.put_nowait(pb.CollectorMessage(command=renewal))
                elif isinstance(item, pb.CommandAck):
                    self.fleet.acknowledged(agent, item)
                elif item is not None:  # None: a progress report refused (logged), no reply
                    out.put_nowait(item)
            if admission.ending is not None:
                log.warning("agent %s: %s", agent, admission.ending.error.message)
                out.put_nowait(admission.ending)
            if storing is not None:
                await storing
        finally:
            admission.close()
            if storing is not None:
                storing.cancel()  # the stream is gone; a group write that holds the batch goes on
            out.put_nowait(None)

    async def _in_runs(self, agent: str, grant: StreamGrant, item):
        """`item`, or what replaces it when it writes into a run the agent does not belong to: the error
        to reply for a batch (the agent sets it aside), None for a progress report (dropped)."""
        if not isinstance(item, ReadyBatch | pb.RunProgress):
            return item
        why = await self._run(grant.run_refusal, run_ids(item) if isinstance(item, ReadyBatch) else {item.run_id})
        if why is None:
            return item
        log.warning("agent %s: %s; refused", agent, why)
        if isinstance(item, pb.RunProgress):
            return None
        self.batches_rejected += 1
        return _error(item.seq, pb.ERROR_CODE_INVALID, f"batch {item.seq} rejected: {why}")

    async def _next_message(self, agent: str, messages, ends_at: float | None, admission: Admission) -> bytes | None:
        """The stream's next message, read once the budget covers it; None at its end, once it is past its
        age, once the collector drains (it is stopping), or once its admission ends it. Ending there (not by
        cutting the connection) means every batch this stream took is stored and acknowledged first, and
        what the agent sent meanwhile stays in its spool: the agent resends it on its next stream, maybe to
        another replica, and it is stored once."""
        if self._draining.is_set():
            return None

        async def covered() -> bytes | None:
            await admission.before_read()
            return await anext(messages, None)

        message = asyncio.ensure_future(covered())
        draining = asyncio.ensure_future(self._draining.wait())
        ended = asyncio.ensure_future(admission.ended.wait())
        try:
            done, _ = await asyncio.wait((message, draining, ended), return_when=asyncio.FIRST_COMPLETED,
                                         timeout=None if ends_at is None else max(0.0, ends_at - time.monotonic()))
        except asyncio.CancelledError:  # the stream is ending (revoked, closed): its pending read goes too
            message.cancel()
            raise
        finally:
            draining.cancel()
            ended.cancel()
        if message in done:
            return message.result()
        message.cancel()
        if draining in done:
            log.info("agent %s: collector stopping; ending the stream after its last ack", agent)
        elif ended in done:
            if admission.ending is None:
                log.info("agent %s: stream idle while holding room others wait for; ending it after its last ack",
                         agent)
        else:
            log.info("agent %s: stream reached its age limit (about %.0f s); ending it after its last ack so the "
                     "agent reconnects, maybe to another replica", agent, self._max_stream_age_s)
        return None

    async def _parse(self, agent: str, raw: bytes) -> (ReadyBatch | pb.RunProgress | pb.Offer | pb.CommandAck
                                                        | pb.CollectorMessage):
        """The checked batch (or progress report, or offer), or the typed error to reply."""
        try:
            return await self._run(self.parse, agent, raw)
        except InvalidBatch as exc:
            self.batches_rejected += 1
            log.warning("agent %s: %s", agent, exc)
            return _error(exc.seq, exc.code, str(exc))

    async def _store_batch(self, agent: str, batch: ReadyBatch, out: asyncio.Queue) -> None:
        """Reply with the Ack once every insert holding the batch returned, or with the error."""
        try:
            await self.inserter.store(batch)
        except StoreFailed as exc:
            log.error("agent %s: %s; not acknowledged, the agent keeps it and resends it", agent, exc)
            out.put_nowait(_error(exc.seq, pb.ERROR_CODE_UNAVAILABLE, "store unavailable"))
            return
        self.batches_stored += 1
        out.put_nowait(pb.CollectorMessage(ack=pb.Ack(seq=batch.seq)))

    @staticmethod
    def parse(agent: str, raw: bytes) -> ReadyBatch | pb.RunProgress | pb.Offer | pb.CommandAck:
        """On a pool thread: parse, check and convert one message; a RunProgress (not acknowledged, for
        the fleet), a CommandAck or an Offer is returned as is. Raises InvalidBatch with the code and seq to reply."""
        message = pb.AgentMessage()
        try:
            message.ParseFromString(raw)
        except DecodeError:
            raise InvalidBatch(f"a message of {len(raw)} bytes is not an AgentMessage", code=pb.ERROR_CODE_PROTOCOL) from None
        kind = message.WhichOneof("kind")
        if kind == "progress":
            return message.progress
        if kind == "offer":
            return message.offer
        if kind == "command_ack":
            return message.command_ack
        if kind != "batch":
            raise InvalidBatch("only Offer, Batch, RunProgress and CommandAck messages may follow Hello", code=pb.ERROR_CODE_PROTOCOL)
        batch = message.batch
        try:
            tables = tables_of(batch, agent)
        except InvalidBatch as exc:
            raise InvalidBatch(f"batch {batch.seq} rejected: {exc}", seq=batch.seq) from None
        return ReadyBatch(agent, batch.seq, batch.batch_id, tables)

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self.inserter.close()
        if self.keeper is not None:
            self.keeper.close()
        self._pool.shutdown(wait=True)


async def _watch(grant: StreamGrant | None, out: asyncio.Queue) -> None:
    """Check the stream's credential every RECHECK_S while it is open (a stream sending nothing is not
    checked by its reader); once revoked, end the stream through `out`."""
    while grant is not None:
        if (why := grant.revoked()) is not None:
            out.put_nowait(Revoked(why))
            return
        await asyncio.sleep(RECHECK_S)


def _give_back(admission: Admission, cost: int, _task: asyncio.Task) -> None:
    admission.release(cost)


async def _forward(commands: asyncio.Queue, out: asyncio.Queue) -> None:
    while True:
        out.put_nowait(pb.CollectorMessage(command=await commands.get()))


def _parse_hello(raw: bytes) -> pb.Hello | None:
    message = pb.AgentMessage()
    try:
        message.ParseFromString(raw)
    except DecodeError:
        return None
    return message.hello if message.WhichOneof("kind") == "hello" else None



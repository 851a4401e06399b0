"""The gRPC stream to the collector: connect, resend the spool in order, offer and wait for grants, replies.

After a broken stream the uplink reconnects with exponential back-off and jitter (core/backoff.py) and
resends every spooled batch in order — also those a previous agent process left behind — so nothing is
lost and, since the bytes (and so the batch_id) of a replay are the ones first sent, nothing is stored
twice. A stream the collector ends cleanly (it does so at its maximum stream age, to spread agents over
replicas) is reopened at once on a new connection; the back-off restarts from its first step after any
stream that was acknowledged.

A collector that admits batches by credit (it says so when it accepts the stream; the uplink says in its
call metadata that it offers) is sent each batch only after it granted room for it: the uplink offers
the batch (seq and size), waits for the grant, then writes it, so a busy collector holds no batch it
cannot yet decode, and the rest wait in the spool. Progress reports still go out while a batch waits
for its grant. Spooled batches are read back on the spool thread and sent as stored, never re-encoded.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from siliconbench.agent.batcher import Batcher
from siliconbench.agent.errors import SpoolCorrupt
from siliconbench.agent.refusals import Refusals
from siliconbench.agent.spool import Entry
from siliconbench.core.backoff import Backoff
from siliconbench.core.framing import BATCH_TAG, delimited
from siliconbench.core.limits import MAX_MESSAGE_BYTES
from siliconbench.core.settings import BearerToken
from siliconbench.core.wire import GRANTS_METADATA, OFFERS_METADATA, pb

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Message)

STREAM_METHOD = "/siliconbench.telemetry.v1.Telemetry/Stream"
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 10.0
ACCEPT_WAIT_S = 2.0  # how long a new stream waits for the collector's accept before writing anyway
CONNECT_WAIT_S = 1.0  # how long a unary call (`call`) waits for a connection


class Uplink:
    """Delivers the spool's batches and the latest progress reports; `on_ack(seq)` runs per acknowledged
    batch, `on_command` per fleet command."""

    def __init__(self, address: str, hello: pb.Hello, batcher: Batcher, refusals: Refusals,
                 on_ack: Callable[[int], None], *, token: str | BearerToken | None = None,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self._address = address
        self._hello_bytes = pb.AgentMessage(hello=hello).SerializeToString()
        self._batcher = batcher
        self._spool = batcher.spool
        self._refusals = refusals
        self._on_ack = on_ack
        self._token = token if isinstance(token, BearerToken) else BearerToken(token)  # re-read for each stream
        self._credentials = credentials
        self.new = asyncio.Event()            # something new to send: a batch or a progress report
        self._new_progress = asyncio.Event()
        self._grant: tuple[int, asyncio.Future] | None = None  # the offered batch's seq, and its grant to come
        self._acked_on_stream = False  # the current stream acknowledged a batch: the collector was working
        self._progress: dict[str, tuple[int, bytes]] = {}  # run id -> (version, latest RunProgress message)
        self._progress_version = 0
        self._acks: list[bytes] = []  # CommandAcks to write (the collector sends a command again if one is lost)
        self._reachable = asyncio.Event()  # a unary call reached the collector: the back-off ends early
        self.on_command: Callable[[pb.Command], None] | None = None
        if token and credentials is None:
            log.warning("the agent token goes to %s without TLS; set --tls-ca to encrypt it", address)

    def send_progress(self, progress: pb.RunProgress) -> None:
        """Tell the collector where a fleet run stands. Not spooled: only the latest per run matters,
        and it is sent again on every new stream."""
        self._progress_version += 1
        self._progress[progress.run_id] = (self._progress_version,
                                           pb.AgentMessage(progress=progress).SerializeToString())
        self.new.set()
        self._new_progress.set()

    def send_ack(self, command_id: int) -> None:
        """Acknowledge a fleet command. Not spooled: the collector keeps the command and sends it again on
        the next stream until an ack arrives."""
        self._acks.append(pb.AgentMessage(command_ack=pb.CommandAck(id=command_id)).SerializeToString())
        self.new.set()
        self._new_progress.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        backoff = Backoff(FIRST_BACKOFF_S, MAX_BACKOFF_S, jitter=0.5)
        broken = False
        while True:
            if not self._spool.entries and self.on_command is None:
                await self.new.wait()  # connect only when there is something to send (or fleet commands to hear)
            self._acked_on_stream = False
            self._reachable.clear()  # from here on, a unary call that reaches the collector cuts a back-off short
            try:
                await self._stream_once(replaying=broken)
                log.info("collector %s ended the stream (it spreads agents over its replicas); reconnecting, "
                         "%d batches to resend", self._address, len(self._spool.entries))
                broken = True
                backoff.reset()
                await asyncio.sleep(FIRST_BACKOFF_S * random.random())
            except grpc.aio.AioRpcError as exc:
                broken = True
                if self._acked_on_stream:
                    backoff.reset()  # that stream worked: this is a new outage, not the same one
                delay = backoff.next()
                log.warning("collector %s: %s (%s); %d batches (%.1f MiB) kept in the spool, retrying in %.1f s",
                            self._address, _explain(exc), exc.details(), len(self._spool.entries),
                            self._spool.bytes / 2**20, delay)
                await self._back_off(delay)

    async def _back_off(self, delay_s: float) -> None:
        """Wait `delay_s` before reconnecting, or less once a unary call found the collector answering (since
        the broken stream was opened)."""
        try:
            await asyncio.wait_for(self._reachable.wait(), delay_s)
            log.info("collector %s answers again: reconnecting before the back-off's end", self._address)
        except TimeoutError:
            pass

    def _channel(self) -> grpc.aio.Channel:
        """A channel with a connection of its own: in gRPC's process-wide pool, a new channel could share the
        broken stream's subchannel, still waiting out gRPC's own reconnect back-off after the collector is back."""
        options = [("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.use_local_subchannel_pool", 1)]
        if self._credentials is not None:
            return grpc.aio.secure_channel(self._address, self._credentials, options=options)
        return grpc.aio.insecure_channel(self._address, options=options)

    async def call(self, method: str, request: Message, reply: type[R], timeout_s: float) -> R:
        """One unary call to the collector (`method`: /package.Service/Method) with this agent's address,
        credentials and token; grpc.aio.AioRpcError when it fails (UNAVAILABLE: no connection within
        CONNECT_WAIT_S). A connection made tells a stream waiting out its back-off to reconnect now."""
        async with self._channel() as channel:
            wait_s = min(CONNECT_WAIT_S, timeout_s)
            try:
                await asyncio.wait_for(channel.channel_ready(), wait_s)
            except TimeoutError:
                raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                           f"no connection to {self._address} within {wait_s:g} s") from None
            self._reachable.set()
            call = channel.unary_unary(method, request_serializer=type(request).SerializeToString,
                                       response_deserializer=reply.FromString)
            return await call(request, timeout=timeout_s, metadata=self._token.metadata())

    async def _stream_once(self, replaying: bool) -> None:
        async with self._channel() as channel:
            # requests go out as bytes: spooled batches are sent as stored, never re-encoded
            stream: grpc.aio.StreamStreamMultiCallable[bytes, pb.CollectorMessage] = channel.stream_stream(
                STREAM_METHOD, request_serializer=None, response_deserializer=pb.CollectorMessage.FromString)
            call = stream(metadata=(OFFERS_METADATA, *self._token.metadata()))
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
        if replaying and self._spool.entries:
            log.info("collector %s: stream open again; replaying %d spooled batches in order",
                     self._address, len(self._spool.entries))
        sent = 0  # highest seq written on this stream; a new stream resends everything spooled
        progress_sent = 0  # likewise for progress versions
        while True:
            self.new.clear()
            progress_sent = await self._write_progress(call, progress_sent)
            splitting = self._refusals.splitting
            for entry in [e for s, e in self._spool.entries.items() if s > sent and s not in splitting]:
                try:
                    message = await self._batcher.on_spool_thread(self._message, entry)
                except (SpoolCorrupt, OSError) as exc:
                    self._refusals.quarantine(entry.seq, f"unreadable ({exc})")
                    continue
                sent = entry.seq
                if len(message) > MAX_MESSAGE_BYTES:
                    self._refusals.split(entry.seq, f"it is {len(message)} bytes, over the {MAX_MESSAGE_BYTES} byte "
                                                    "message limit")
                    continue
                if grants:
                    progress_sent = await self._offer(call, entry.seq, len(message), progress_sent)
                await call.write(message)
            await self.new.wait()

    async def _write_progress(self, call: grpc.aio.StreamStreamCall, sent: int) -> int:
        """Write the command acks and the progress reports newer than version `sent`; returns the newest
        version written."""
        self._new_progress.clear()
        while self._acks:
            await call.write(self._acks.pop(0))
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
        return delimited(BATCH_TAG, self._spool.read(entry))

    def _on_reply(self, message: pb.CollectorMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "grant":
            if self._grant is not None and self._grant[0] == message.grant.seq and not self._grant[1].done():
                self._grant[1].set_result(None)
            return
        if kind == "ack":
            self._acked_on_stream = True
            self._on_ack(message.ack.seq)
            return
        if kind != "error":
            if kind == "command" and self.on_command is not None:
                self.on_command(message.command)
            return
        error = message.error
        if error.code == pb.ERROR_CODE_INVALID:
            # The collector will never store it as it is; keeping it in the queue would block shutdown forever.
            self._refusals.split(error.seq, f"the collector refused it as invalid ({error.message})")
            return
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   details=f"collector could not store batch {error.seq}: {error.message}")


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

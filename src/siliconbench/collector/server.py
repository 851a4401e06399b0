"""Runs the collector's gRPC server: the Telemetry service plus the standard health service."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from siliconbench.collector import digests
from siliconbench.collector.control import ControlService
from siliconbench.collector.identity import Authenticator
from siliconbench.collector.service import DEFAULT_BYTES_IN_FLIGHT, DEFAULT_MAX_STREAMS, SERVICE_NAME, TelemetryService
from siliconbench.core.limits import MAX_MESSAGE_BYTES
from siliconbench.core.rpc import pb_grpc
from siliconbench.collector.store import Store

log = logging.getLogger(__name__)

# A stream that is not being read holds its HTTP/2 window in gRPC's buffers: without bandwidth probing
# that stays at 64 KiB, whatever the link (collector/budget.py states the bound it enters).
_GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.http2.bdp_probe", 0)]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    max_stream_age_s: float = 0.0       # > 0: streams end (cleanly) at about this age; agents reconnect and spread
    store_threads: int = 4              # inserts in flight toward ClickHouse, whatever the number of agents
    tokens: Authenticator | None = None  # None: any agent may write (local use only)
    credentials: grpc.ServerCredentials | None = None  # None: plaintext
    max_bytes_in_flight: int = DEFAULT_BYTES_IN_FLIGHT  # batches decoded or being stored, all streams together
    max_streams: int = DEFAULT_MAX_STREAMS  # concurrent RPCs; more are refused (RESOURCE_EXHAUSTED)
    keep_steps: bool = True             # keep each step's results once it is over and complete (collector/kept.py)


async def build_server(store: Store, listen: str, options: ServerOptions = ServerOptions()
                       ) -> tuple[grpc.aio.Server, TelemetryService, int]:
    """Create and start the server; returns it, its service and the bound port."""
    server = grpc.aio.server(options=_GRPC_OPTIONS, maximum_concurrent_rpcs=options.max_streams)
    service = TelemetryService(store, options.store_threads, options.tokens, options.max_stream_age_s,
                               options.max_bytes_in_flight, keep_steps=options.keep_steps)
    server.add_generic_rpc_handlers((service.handler(),))
    pb_grpc.add_ControlServicer_to_server(ControlService(service.fleet, store, service.run_in_store, options.tokens,
                                                         service.inserter.written), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if options.credentials is not None:
        port = server.add_secure_port(listen, options.credentials)
    else:
        port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}: address in use or invalid")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, service, port


async def serve(store: Store, listen: str, options: ServerOptions = ServerOptions(), grace_s: float = 10.0) -> None:
    """Repair what a crash left (collector/digests.py, collector/kept.py), serve until SIGTERM/SIGINT, then stop accepting and
    finish in-flight batches. Once streams are accepted, logs "collector listening on HOST:PORT": with port 0
    in `listen`, the port the kernel picked."""
    await asyncio.to_thread(digests.repair, store)
    server, service, port = await build_server(store, listen, options)
    if service.keeper is not None:
        service.keeper.catch_up()  # steps a crash or an older collector left unkept, kept while serving
    else:
        log.info("step results are not kept (--no-keep-steps): reports compute every step from its rows")
    bound = f"{listen.rpartition(':')[0]}:{port}"
    log.info("collector listening on %s (%s, %s), store %s", bound,
             "TLS" if options.credentials else "plaintext",
             options.tokens.shown if options.tokens else "no agent token required",
             store.location.shown)
    if options.tokens is None:
        log.warning("no SILICONBENCH_AGENT_TOKENS_FILE: any client that reaches %s can write into the store", listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("collector stopping: finishing in-flight batches (up to %.0f s)", grace_s)
    stopping = asyncio.create_task(server.stop(grace_s))  # refuses new streams first ...
    service.drain()                                       # ... then ends the open ones after their acks
    await stopping
    service.close()
    log.info("collector stopped; %d batches stored, %d rejected", service.batches_stored, service.batches_rejected)

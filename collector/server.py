"""Runs the collector's gRPC server: the Telemetry service plus the standard health service."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collector.service import TelemetryService
from collector.store import Store
from siliconbench.telemetry.v1 import telemetry_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SERVICE_NAME = "siliconbench.telemetry.v1.Telemetry"


async def build_server(store: Store, listen: str, max_connection_age_s: float = 0) -> tuple[grpc.aio.Server, TelemetryService, int]:
    """Create and start the server; returns it, its service and the bound port."""
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    if max_connection_age_s > 0:  # agents reconnect now and then, so they spread over replicas
        options += [("grpc.max_connection_age_ms", int(max_connection_age_s * 1000)),
                    ("grpc.max_connection_age_grace_ms", 30_000)]
    server = grpc.aio.server(options=options)
    service = TelemetryService(store)
    pb_grpc.add_TelemetryServicer_to_server(service, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}: address in use or invalid")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, service, port


async def serve(store: Store, listen: str, max_connection_age_s: float = 0, grace_s: float = 10.0) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting and finish in-flight batches."""
    server, service, port = await build_server(store, listen, max_connection_age_s)
    log.info("collector listening on %s (port %d), store %s", listen, port, store.location.shown)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("collector stopping: finishing in-flight batches (up to %.0f s)", grace_s)
    await server.stop(grace_s)
    service.close()
    log.info("collector stopped; %d batches stored", service.batches_stored)

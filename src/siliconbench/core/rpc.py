"""The gRPC side of the contract: service stubs and servicers (the TLS credentials a client builds:
siliconbench.core.settings.ClientTls)."""

from __future__ import annotations

from siliconbench.telemetry.v1 import telemetry_pb2_grpc as pb_grpc

__all__ = ["pb_grpc"]

"""The gRPC side of the contract: service stubs and servicers, and the TLS credentials both sides build."""

from __future__ import annotations

from pathlib import Path

import grpc

from siliconbench.core.errors import ConfigError
from siliconbench.telemetry.v1 import telemetry_pb2_grpc as pb_grpc

__all__ = ["pb_grpc", "tls_credentials"]


def tls_credentials(ca_file: Path | None, cert_file: Path | None = None,
                    key_file: Path | None = None) -> grpc.ChannelCredentials:
    """Channel credentials from PEM files: the CA that signed the collector's certificate (None: the
    system's roots) and, for mTLS, the client's certificate and key."""
    if (cert_file is None) != (key_file is None):
        raise ConfigError("--tls-cert and --tls-key go together (mTLS needs both)")
    try:
        ca = ca_file.read_bytes() if ca_file else None
        cert = cert_file.read_bytes() if cert_file else None
        key = key_file.read_bytes() if key_file else None
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

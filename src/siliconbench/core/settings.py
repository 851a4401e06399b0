"""The environment both sides read: how to reach a collector (TLS files and the agent's bearer token).

    SILICONBENCH_TLS_CA        PEM CA of the collector's certificate: connect with TLS
    SILICONBENCH_TLS_CERT      PEM client certificate for mTLS (with SILICONBENCH_TLS_KEY)
    SILICONBENCH_TLS_KEY       PEM private key of SILICONBENCH_TLS_CERT
    SILICONBENCH_AGENT_TOKEN   bearer token presented to the collector

The agent takes them as the fallbacks of its --tls-* and --token flags; `siliconbench-collector run`
reads them here, so an operator's shell configured for the agent drives the fleet commands too. Each
package's own variables live in its settings module (siliconbench/agent/settings.py,
siliconbench/collector/settings.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError, model_validator
from pydantic.dataclasses import dataclass

from siliconbench.core.config import STRICT, config_error, invalid
from siliconbench.core.errors import ConfigError

if TYPE_CHECKING:  # grpc loads only where a channel is built: the report side reads these settings without it
    import grpc

PREFIX = "SILICONBENCH_"
TLS_CA = PREFIX + "TLS_CA"
TLS_CERT = PREFIX + "TLS_CERT"
TLS_KEY = PREFIX + "TLS_KEY"
AGENT_TOKEN = PREFIX + "AGENT_TOKEN"


def check_tls_pair(cert: Path | None, key: Path | None) -> None:
    """The rule of every TLS certificate, a client's or a server's: it comes with its private key. Raised
    from a model's own check (siliconbench.core.config.invalid)."""
    if (cert is None) != (key is None):
        raise invalid(f"--tls-cert and --tls-key ({TLS_CERT}/_KEY) go together: a certificate needs its key")


@dataclass(frozen=True, slots=True, config=STRICT)
class ClientTls:
    """How a client reaches the collector: plaintext when no file is given, TLS with `ca` (None: the
    system's roots), mTLS with `cert` and `key` as well."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> ClientTls:
        check_tls_pair(self.cert, self.key)
        return self

    @property
    def enabled(self) -> bool:
        return any((self.ca, self.cert, self.key))

    def credentials(self) -> grpc.ChannelCredentials | None:
        """The channel credentials from the PEM files (read now), or None for plaintext."""
        if not self.enabled:
            return None
        try:
            ca, cert, key = (path.read_bytes() if path else None for path in (self.ca, self.cert, self.key))
        except OSError as exc:
            raise ConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
        import grpc  # only where a channel is built

        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def client_tls(environ: Mapping[str, str] = os.environ) -> ClientTls:
    """ClientTls from SILICONBENCH_TLS_CA/_CERT/_KEY (empty counts as unset)."""
    files = {name: Path(environ[var]) if environ.get(var) else None
             for name, var in (("ca", TLS_CA), ("cert", TLS_CERT), ("key", TLS_KEY))}
    try:
        return ClientTls(**files)
    except ValidationError as exc:
        raise config_error(exc, "environment") from None


def agent_token(environ: Mapping[str, str] = os.environ) -> str | None:
    """The bearer token from SILICONBENCH_AGENT_TOKEN; None when unset or empty."""
    return environ.get(AGENT_TOKEN) or None

"""The environment both sides read: how to reach a collector (TLS files and the agent's bearer token).

    SILICONBENCH_TLS_CA        PEM CA of the collector's certificate: connect with TLS
    SILICONBENCH_TLS_CERT      PEM client certificate for mTLS (with SILICONBENCH_TLS_KEY)
    SILICONBENCH_TLS_KEY       PEM private key of SILICONBENCH_TLS_CERT
    SILICONBENCH_AGENT_TOKEN   bearer token presented to the collector
    SILICONBENCH_AGENT_TOKEN_FILE  a file holding it, re-read for each stream (a projected
                               service-account token the kubelet rotates)

The agent takes them as the fallbacks of its --tls-* and --token flags; `siliconbench-collector run`
reads them here, so an operator's shell configured for the agent drives the fleet commands too. Each
package's own variables live in its settings module (siliconbench/agent/settings.py,
siliconbench/collector/settings.py).
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

PREFIX = "SILICONBENCH_"
TLS_CA = PREFIX + "TLS_CA"
TLS_CERT = PREFIX + "TLS_CERT"
TLS_KEY = PREFIX + "TLS_KEY"
AGENT_TOKEN = PREFIX + "AGENT_TOKEN"
AGENT_TOKEN_FILE = PREFIX + "AGENT_TOKEN_FILE"


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


class BearerToken:
    """The token a client presents: a fixed value, or a file read again whenever it changed (a Kubernetes
    projected service-account token, which the kubelet replaces before it expires). `metadata()` is
    asked for each new stream, so a reconnect presents the current token."""

    def __init__(self, value: str | None = None, path: Path | None = None) -> None:
        self._value, self.path = value, path
        self._version: tuple[int, int, int] | None = None
        if path is not None:
            try:
                self._read(path)
            except OSError as exc:
                raise ConfigError(f"cannot read the token file {path} ({AGENT_TOKEN_FILE}): {exc.strerror}") from None
            if not self._value:
                raise ConfigError(f"the token file {path} ({AGENT_TOKEN_FILE}) is empty")

    def __bool__(self) -> bool:
        return bool(self._value)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata that carries the current token; none without a token."""
        if self.path is not None:
            try:
                self._read(self.path)
            except OSError as exc:  # between two kubelet writes, or gone: the last token read may still hold
                log.warning("cannot re-read the token file %s (%s); presenting the token read before",
                            self.path, exc.strerror)
        return (("authorization", f"Bearer {self._value}"),) if self._value else ()

    def _read(self, path: Path) -> None:
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if version != self._version:
            text = path.read_text().strip()
            if text:  # a file caught empty mid-rotation keeps the token read before
                self._value, self._version = text, version

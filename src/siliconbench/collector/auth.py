"""Who may write: bearer tokens from a file (a mounted Kubernetes Secret), and TLS/mTLS from files.

Tokens are compared in constant time against every accepted token, and no token — right or
wrong — ever reaches a log line or an error message. The tokens file is re-read when it changes,
so a rotated Secret takes effect without a restart.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path

import grpc

from siliconbench.collector.errors import CollectorError

log = logging.getLogger(__name__)

_PREFIX = "bearer "


class AuthConfigError(CollectorError):
    """The tokens file or a TLS file cannot be used."""


class TokenFile:
    """The accepted agent tokens: one per line; blank lines and lines starting with # are ignored."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._version: tuple[int, int, int] | None = None  # (mtime, size, inode) of the file last read
        self._tokens: list[bytes] = []
        self._reload()
        if not self._tokens:
            raise AuthConfigError(f"the tokens file {self.path} holds no token; write one token per line "
                                  "(or unset SILICONBENCH_AGENT_TOKENS_FILE to accept any agent)")

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path)
            # mtime alone misses a rewrite within one file-system timestamp tick (a few ms)
            version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if version == self._version:
                return
            lines = self.path.read_text().splitlines()
        except OSError as exc:
            if self._version is None:
                raise AuthConfigError(f"cannot read the tokens file {self.path}: {exc.strerror}") from None
            log.error("cannot re-read the tokens file %s (%s); keeping the %d tokens read before",
                      self.path, exc.strerror, len(self._tokens))
            return
        self._tokens = [line.strip().encode() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        self._version = version
        log.info("accepting %d agent tokens from %s", len(self._tokens), self.path)

    def accepts(self, metadata) -> bool:
        """True when the call's `authorization: Bearer <token>` is one of the accepted tokens."""
        self._reload()
        offered = b""
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                if text[: len(_PREFIX)].lower() == _PREFIX:
                    offered = text[len(_PREFIX):].strip().encode()
        ok = False
        for token in self._tokens:  # no early exit: the time taken does not depend on which token matched
            ok |= hmac.compare_digest(offered, token)
        return ok and bool(offered)


def server_credentials(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> grpc.ServerCredentials:
    """TLS for the collector's port; with a client CA, agents must present a certificate it signed (mTLS)."""
    try:
        cert, key = Path(cert_file).read_bytes(), Path(key_file).read_bytes()
        client_ca = Path(client_ca_file).read_bytes() if client_ca_file else None
    except OSError as exc:
        raise AuthConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)

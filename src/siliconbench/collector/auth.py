"""Who may write, and as whom: bearer tokens from a file (a mounted Kubernetes Secret), each bound to
an agent id or granting the operator role, and TLS/mTLS from files.

Tokens are compared in constant time against every accepted token, and no token — right or
wrong — ever reaches a log line or an error message. The tokens file is re-read when it changes,
so a rotated Secret takes effect without a restart.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from siliconbench.collector.errors import AuthConfigError

log = logging.getLogger(__name__)

_PREFIX = "bearer "


@dataclass(frozen=True, slots=True)
class Credential:
    """What a token grants: writing as one agent id (or any, for an unbound token), or operating."""

    operator: bool = False         # may start and cancel fleet runs; writes no telemetry
    agent_id: str | None = None    # an agent token bound to this id; None: any id (an unbound token)

    def may_write_as(self, agent_id: str) -> bool:
        return not self.operator and self.agent_id in (None, agent_id)


class TokenFile:
    """The accepted tokens and what each grants, one per line; blank lines and lines starting with
    # are ignored:

        TOKEN agent=ID     an agent token: it may write only as agent ID (Hello.agent_id)
        TOKEN operator     an operator token: `run start|cancel` (and status); it writes no telemetry
        TOKEN              an unbound agent token: it may write as any agent id (one shared token for a
                           whole fleet, as before roles existed); it cannot start or cancel runs

    A node's token bound to its agent id means a stolen or shared agent token cannot forge another
    node's rows or fleet membership; the operator token stays with whoever starts runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._version: tuple[int, int, int] | None = None  # (mtime, size, inode) of the file last read
        self._grants: list[tuple[bytes, Credential]] = []
        self._reload()
        if not self._grants:
            raise AuthConfigError(f"the tokens file {self.path} holds no token; write one token per line "
                                  "(or unset SILICONBENCH_AGENT_TOKENS_FILE to accept any agent)")

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path)
            # mtime alone misses a rewrite within one file-system timestamp tick (a few ms)
            version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if version == self._version:
                return
            grants = _parse(self.path.read_text().splitlines(), self.path)
        except (OSError, AuthConfigError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            if self._version is None:
                raise AuthConfigError(f"cannot read the tokens file {self.path}: {why}") from None
            log.error("cannot re-read the tokens file %s (%s); keeping the %d tokens read before",
                      self.path, why, len(self._grants))
            return
        self._grants = grants
        self._version = version
        operators = sum(c.operator for _, c in grants)
        unbound = sum(1 for _, c in grants if not c.operator and c.agent_id is None)
        log.info("accepting %d tokens from %s (%d operator, %d bound to an agent id, %d unbound)", len(grants),
                 self.path, operators, len(grants) - unbound - operators, unbound)
        if unbound:
            log.warning("%d token(s) in %s are bound to no agent id: an agent holding one may write as any agent; "
                        "write `TOKEN agent=ID` to bind each node's token", unbound, self.path)

    def credential(self, metadata) -> Credential | None:
        """What the call's `authorization: Bearer <token>` grants; None when it is no accepted token."""
        self._reload()
        offered = b""
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                if text[: len(_PREFIX)].lower() == _PREFIX:
                    offered = text[len(_PREFIX):].strip().encode()
        found = None
        for token, granted in self._grants:  # no early exit: the time taken does not depend on which token matched
            if hmac.compare_digest(offered, token) and found is None:
                found = granted
        return found if offered else None


def _parse(lines: list[str], path: Path) -> list[tuple[bytes, Credential]]:
    grants = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) == 1:
            grants.append((fields[0].encode(), Credential()))
        elif len(fields) == 2 and fields[1] == "operator":
            grants.append((fields[0].encode(), Credential(operator=True)))
        elif len(fields) == 2 and fields[1].startswith("agent=") and len(fields[1]) > len("agent="):
            grants.append((fields[0].encode(), Credential(agent_id=fields[1][len("agent="):])))
        else:  # never echo the line: it holds a token
            raise AuthConfigError(f"line {number} of {path} is not `TOKEN`, `TOKEN agent=ID` or `TOKEN operator`")
    return grants


def server_credentials(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> grpc.ServerCredentials:
    """TLS for the collector's port; with a client CA, agents must present a certificate it signed (mTLS)."""
    try:
        cert, key = Path(cert_file).read_bytes(), Path(key_file).read_bytes()
        client_ca = Path(client_ca_file).read_bytes() if client_ca_file else None
    except OSError as exc:
        raise AuthConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)

"""Who may write, and as whom: bearer tokens from a file (a mounted Kubernetes Secret), each bound to
an agent id or granting the operator role, and TLS/mTLS from files. (Agents on Kubernetes prove
their node with a projected service-account token instead: collector/projected.py, collector/identity.py.)

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

from siliconbench.collector.errors import AuthConfigError, NotAuthenticated

log = logging.getLogger(__name__)

_PREFIX = "bearer "


WRONG_TOKEN = "missing or wrong bearer token: set SILICONBENCH_AGENT_TOKEN to a token from the collector's tokens file"


@dataclass(frozen=True, slots=True)
class Credential:
    """What a credential grants: writing as one agent id (or, for an unbound token, as any id no token is
    bound to), or operating."""

    operator: bool = False         # may start and cancel fleet runs; writes no telemetry
    agent_id: str | None = None    # bound to this agent id (a `TOKEN agent=ID` line, or a token's node); None: unbound
    node: str | None = None        # the node the platform vouches for (a service-account token): Hello.node_name too
    reserved: frozenset[str] = frozenset()  # unbound: the ids bound to tokens of their own, which it may not take
    writes: bool = True            # False: an unbound token while agents prove their node with the platform's token

    def refusal(self, agent_id: str, node_name: str) -> str | None:
        """Why this credential may not write as `agent_id` on `node_name` (one line), or None."""
        if self.operator:
            return "an operator token writes no telemetry"
        if not self.writes:
            return ("a token bound to no agent id writes nothing while agents prove their node with a "
                    "service-account token")
        if self.agent_id is not None and agent_id != self.agent_id:
            return f"this token may write only as agent {self.agent_id!r}, not {agent_id[:80]!r}"
        if self.node is not None and node_name != self.node:
            return f"this token was issued on node {self.node!r}, not {node_name[:80]!r}"
        if self.agent_id is None and agent_id in self.reserved:
            return f"agent {agent_id[:80]!r} has a token of its own; a token bound to no agent id may not write as it"
        return None


class TokenFile:
    """The accepted tokens and what each grants, one per line; blank lines and lines starting with
    # are ignored:

        TOKEN agent=ID     an agent token: it may write only as agent ID (Hello.agent_id)
        TOKEN operator     an operator token: `run start|cancel` (and status); it writes no telemetry
        TOKEN              an unbound agent token: it may write as any agent id that no line binds (one
                           shared token for a whole fleet, for local use); it cannot start or cancel runs

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
            log.warning("%d token(s) in %s are bound to no agent id: an agent holding one may write as any agent id "
                        "no line binds; "
                        "write `TOKEN agent=ID` to bind each node's token", unbound, self.path)

    @property
    def shown(self) -> str:
        return f"agent tokens from {self.path}"

    def credential(self, metadata) -> Credential | None:
        """What the call's `authorization: Bearer <token>` grants; None when it is no accepted token."""
        return self.granted(bearer(metadata))

    def check(self, metadata) -> Credential:
        """What the call's token grants; raises NotAuthenticated when it is no accepted token."""
        found = self.credential(metadata)
        if found is None:
            raise NotAuthenticated(WRONG_TOKEN)
        return found

    def granted(self, offered: bytes) -> Credential | None:
        """What `offered` grants, re-reading the file if it changed; None when it is no accepted token."""
        self._reload()
        found = None
        for token, granted in self._grants:  # no early exit: the time taken does not depend on which token matched
            if hmac.compare_digest(offered, token) and found is None:
                found = granted
        return found if offered else None


def bearer(metadata) -> bytes:
    """The token of the call's `authorization: Bearer <token>` header; empty when there is none."""
    offered = b""
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            if text[: len(_PREFIX)].lower() == _PREFIX:
                offered = text[len(_PREFIX):].strip().encode()
    return offered


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
    bound = frozenset(c.agent_id for _, c in grants if c.agent_id is not None)
    return [(token, Credential(reserved=bound) if not c.operator and c.agent_id is None else c) for token, c in grants]


def server_credentials(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> grpc.ServerCredentials:
    """TLS for the collector's port; with a client CA, agents must present a certificate it signed (mTLS)."""
    try:
        cert, key = Path(cert_file).read_bytes(), Path(key_file).read_bytes()
        client_ca = Path(client_ca_file).read_bytes() if client_ca_file else None
    except OSError as exc:
        raise AuthConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)

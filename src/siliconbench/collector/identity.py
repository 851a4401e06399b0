"""Who is calling: the one place the collector turns a call's bearer token into a Credential.

A token from the tokens file (collector/auth.py) grants what its line says. When the collector also
verifies the platform's service-account tokens (collector/projected.py), any other token is one of
those and binds the agent to the node it was issued on; a shared (unbound) token from the file then
writes nothing, so no secret but a node's own token writes as that node. Operator tokens still come
from the file.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from siliconbench.collector.auth import WRONG_TOKEN, Credential, TokenFile, bearer
from siliconbench.collector.errors import NotAuthenticated
from siliconbench.collector.projected import ProjectedTokens


class Authenticator(Protocol):
    @property
    def shown(self) -> str:
        """What is checked, for the log (never a secret)."""

    def check(self, metadata) -> Credential:
        """What the call's credential grants; raises NotAuthenticated (one line) when nothing."""

    def credential(self, metadata) -> Credential | None:
        """What the call's credential grants; None when nothing."""


class Identities:
    """Static tokens (operators; agents off Kubernetes) and service-account tokens together."""

    def __init__(self, tokens: TokenFile | None, projected: ProjectedTokens) -> None:
        self.tokens, self.projected = tokens, projected

    @property
    def shown(self) -> str:
        also = f", and tokens from {self.tokens.path}" if self.tokens is not None else ""
        return (f"service-account tokens of {self.projected.subject} for audience {self.projected.audience!r} "
                f"from {self.projected.issuer}{also}")

    def check(self, metadata) -> Credential:
        offered = bearer(metadata)
        if not offered:
            raise NotAuthenticated(WRONG_TOKEN)
        found = self.tokens.granted(offered) if self.tokens is not None else None
        if found is not None:
            return dataclasses.replace(found, writes=False) if found.agent_id is None and not found.operator else found
        if offered.count(b".") != 2:  # no JWT either: a static token that no line of the file holds
            raise NotAuthenticated("missing or wrong bearer token: agents present their service-account token "
                                   "(SILICONBENCH_AGENT_TOKEN_FILE), operators a token from the collector's tokens file")
        node = self.projected.node_of(offered.decode(errors="replace"))
        return Credential(agent_id=node, node=node)

    def credential(self, metadata) -> Credential | None:
        try:
            return self.check(metadata)
        except NotAuthenticated:
            return None

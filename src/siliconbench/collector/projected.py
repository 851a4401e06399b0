"""Agents' identity from the platform: a Kubernetes projected service-account token, verified against
the cluster's OIDC keys.

Each agent pod mounts a token the kubelet issues for it alone (a projected volume with this collector's
audience; it is rotated before it expires and the agent re-reads it for every stream). Its claims say
which pod, service account and node it was issued to:

    {"iss": "https://oidc.eks.REGION.amazonaws.com/id/ID", "aud": ["siliconbench"], "exp": ..., "iat": ...,
     "nbf": ..., "sub": "system:serviceaccount:NS:SA",
     "kubernetes.io": {"namespace": "NS", "node": {"name": "ip-10-0-1-2...", "uid": "..."},
                       "pod": {"name": "...", "uid": "..."}, "serviceaccount": {"name": "SA", "uid": "..."}}}

The collector checks the signature (RS256 or ES256) with the cluster's keys (its JWKS: a file, e.g. a
ConfigMap of `kubectl get --raw /openid/v1/jwks`, re-read when it changes; or the issuer's URL), the
issuer, the audience, the expiry and the service account, and the agent may then write only as the
token's node (`kubernetes.io.node.name`, present in projected tokens since Kubernetes 1.30). A secret
that leaks from one node therefore writes as that node at most, and only until it expires.

(TokenReview, the alternative, asks the API server to verify each token; it needs RBAC for the collector
and a round trip per stream, and gives the same claims.)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import jwt

from siliconbench.collector.errors import AuthConfigError, NotAuthenticated

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "ES256"]
LEEWAY_S = 30  # clock skew between the API server and the collector

class ProjectedTokens:
    """Verifies projected service-account tokens: `jwks` is a JWKS file or an https URL of one."""

    def __init__(self, jwks: str, issuer: str, audience: str, service_account: str) -> None:
        namespace, _, name = service_account.partition(":")
        if not namespace or not name:
            raise AuthConfigError(f"the agents' service account {service_account!r} is not NAMESPACE:NAME")
        self.subject = f"system:serviceaccount:{namespace}:{name}"
        self.issuer, self.audience, self.jwks = issuer, audience, jwks
        # fetched on first use and at most hourly, or at once for a key id not seen (the cluster rotated its key)
        self._url_keys = (jwt.PyJWKClient(jwks, lifespan=3600, timeout=5) if jwks.startswith("https://") else None)
        self._file_version: tuple[int, int] | None = None
        self._file_keys: jwt.PyJWKSet | None = None
        if self._url_keys is None:
            self._reload()

    def node_of(self, token: str) -> str:
        """The node a valid token was issued to; raises NotAuthenticated saying why it is not valid."""
        try:
            key = self._key(token)
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY_S, options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("the service-account token has expired: mount a projected token (the kubelet "
                                   "rotates it) and let the agent re-read it") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated(f"the service-account token is not for audience {self.audience!r}: set the "
                                   "projected volume's audience to it") from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated(f"the service-account token was not issued by {self.issuer!r} (the cluster's "
                                   "OIDC issuer the collector trusts)") from None
        except jwt.InvalidSignatureError:
            raise NotAuthenticated("the service-account token's signature does not verify with the cluster's keys "
                                   f"({self.jwks})") from None
        except (jwt.PyJWTError, ValueError) as exc:
            raise NotAuthenticated(f"the service-account token is not valid: {_first_line(exc)}") from None
        if claims["sub"] != self.subject:
            raise NotAuthenticated(f"the token is for {str(claims['sub'])[:120]!r}, not the agents' service account "
                                   f"{self.subject!r}")
        kubernetes = claims.get("kubernetes.io")
        node = kubernetes.get("node") if isinstance(kubernetes, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get("name"), str) or not node["name"]:
            raise NotAuthenticated("the service-account token names no node: project it from a pod on Kubernetes "
                                   "1.30 or newer (node claims in projected tokens)")
        return str(node["name"])

    def _key(self, token: str) -> jwt.PyJWK:
        if self._url_keys is not None:
            return self._url_keys.get_signing_key_from_jwt(token)
        self._reload()
        assert self._file_keys is not None
        kid = jwt.get_unverified_header(token).get("kid")
        keys = self._file_keys.keys
        for key in keys:
            if key.key_id == kid or (kid is None and len(keys) == 1):
                return key
        raise NotAuthenticated(f"the service-account token's key {str(kid)[:80]!r} is not among the cluster's keys "
                               f"({self.jwks}); refresh the JWKS if the cluster rotated its signing key")

    def _reload(self) -> None:
        """Read the JWKS file when it changed (a ConfigMap update); keep the keys read before if it breaks."""
        try:
            stat = os.stat(self.jwks)
            if (stat.st_mtime_ns, stat.st_size) == self._file_version:
                return
            keys = jwt.PyJWKSet.from_dict(json.loads(Path(self.jwks).read_text()))
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            if self._file_keys is None:
                raise AuthConfigError(f"cannot read the cluster's keys (JWKS) from {self.jwks}: "
                                     f"{_first_line(exc)}") from None
            log.error("cannot re-read the JWKS %s (%s); keeping the keys read before", self.jwks, _first_line(exc))
            return
        self._file_keys, self._file_version = keys, (stat.st_mtime_ns, stat.st_size)


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__

"""The collector's environment, named here and nowhere else.

Variables that a flag falls back to (typer reads them; siliconbench/collector/options.py declares the flags):

    SILICONBENCH_STORE                --store             every command that opens the store
    SILICONBENCH_CLICKHOUSE_PASSWORD  --password
    SILICONBENCH_LISTEN               serve --listen
    SILICONBENCH_MAX_STREAM_AGE_S     serve --max-stream-age-s
    SILICONBENCH_AGENT_TOKENS_FILE    serve --agent-tokens-file
    SILICONBENCH_AGENT_JWKS           serve --agent-jwks (the cluster's keys: service-account tokens)
    SILICONBENCH_AGENT_TOKEN_ISSUER   serve --agent-token-issuer
    SILICONBENCH_AGENT_TOKEN_AUDIENCE serve --agent-token-audience
    SILICONBENCH_AGENT_SERVICE_ACCOUNT serve --agent-service-account
    SILICONBENCH_TLS_CERT, _TLS_KEY   serve --tls-cert, --tls-key (the server's own certificate)
    SILICONBENCH_TLS_CLIENT_CA        serve --tls-client-ca
    SILICONBENCH_STORE_THREADS        serve --store-threads
    SILICONBENCH_COLLECTOR            run start|agents|status|cancel --collector

Read directly by `run start|agents|status|cancel`: SILICONBENCH_OPERATOR_TOKEN (`operator_token`; starting
and cancelling runs needs a token the tokens file grants `operator`), and, as the agent reads them
(siliconbench/core/settings.py), SILICONBENCH_AGENT_TOKEN and SILICONBENCH_TLS_CA/_CERT/_KEY.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from siliconbench.core.settings import PREFIX, TLS_CERT, TLS_KEY, agent_token, client_tls

__all__ = ["AGENT_JWKS", "AGENT_SERVICE_ACCOUNT", "AGENT_TOKENS_FILE", "AGENT_TOKEN_AUDIENCE", "AGENT_TOKEN_ISSUER", "CLICKHOUSE_PASSWORD", "COLLECTOR", "LISTEN", "MAX_STREAM_AGE_S", "OPERATOR_TOKEN",
           "STORE", "STORE_THREADS", "TLS_CERT", "TLS_CLIENT_CA", "TLS_KEY", "agent_token", "client_tls",
           "operator_token"]

STORE = PREFIX + "STORE"
CLICKHOUSE_PASSWORD = PREFIX + "CLICKHOUSE_PASSWORD"
LISTEN = PREFIX + "LISTEN"
MAX_STREAM_AGE_S = PREFIX + "MAX_STREAM_AGE_S"
AGENT_TOKENS_FILE = PREFIX + "AGENT_TOKENS_FILE"
AGENT_JWKS = PREFIX + "AGENT_JWKS"
AGENT_TOKEN_ISSUER = PREFIX + "AGENT_TOKEN_ISSUER"
AGENT_TOKEN_AUDIENCE = PREFIX + "AGENT_TOKEN_AUDIENCE"
AGENT_SERVICE_ACCOUNT = PREFIX + "AGENT_SERVICE_ACCOUNT"
TLS_CLIENT_CA = PREFIX + "TLS_CLIENT_CA"
STORE_THREADS = PREFIX + "STORE_THREADS"
COLLECTOR = PREFIX + "COLLECTOR"
OPERATOR_TOKEN = PREFIX + "OPERATOR_TOKEN"


def operator_token(environ: Mapping[str, str] = os.environ) -> str | None:
    """The bearer token for `run ...`: SILICONBENCH_OPERATOR_TOKEN, else SILICONBENCH_AGENT_TOKEN (which
    the collector accepts for status and agents only); None when neither is set."""
    return environ.get(OPERATOR_TOKEN) or agent_token(environ)

"""`serve` as one function: a validated ServeConfig in, the gRPC server running until stopped (and, on an
embedded store, other processes' read commands answered: collector/reads.py; with --http, the pages:
collector/web.py)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable

from siliconbench.collector.auth import TokenFile, server_credentials
from siliconbench.collector.identity import Authenticator, Identities
from siliconbench.collector.options import ServeConfig
from siliconbench.collector.prices import ensure_prices
from siliconbench.collector.reads import ReadService, run_captured, serving_reads
from siliconbench.collector.projected import ProjectedTokens
from siliconbench.collector.server import ServerOptions, serve
from siliconbench.collector.store import Store
from siliconbench.collector.web import page_tls, serving_pages


def server_options(config: ServeConfig) -> ServerOptions:
    """The server's runtime options: the token file and the cluster's keys to watch and the TLS
    credentials, read now so a missing file is reported before the port opens."""
    credentials = (server_credentials(config.tls_cert, config.tls_key, config.tls_client_ca)
                   if config.tls_cert and config.tls_key else None)
    return ServerOptions(max_stream_age_s=config.max_stream_age_s, store_threads=config.store_threads,
                         max_bytes_in_flight=config.max_bytes_in_flight_mib * 2**20,
                         max_streams=config.max_streams, tokens=authenticator(config), credentials=credentials,
                         keep_steps=config.keep_steps)


def authenticator(config: ServeConfig) -> Authenticator | None:
    """Who may call: the tokens file, service-account tokens checked with the cluster's keys, or both
    (operators' tokens come from the file); None when neither is configured."""
    tokens = TokenFile(config.agent_tokens_file) if config.agent_tokens_file else None
    if config.agent_jwks is None:
        return tokens
    assert config.agent_token_issuer is not None and config.agent_service_account is not None  # ServeConfig checks
    return Identities(tokens, ProjectedTokens(config.agent_jwks, config.agent_token_issuer,
                                              config.agent_token_audience, config.agent_service_account))


def run_collector(config: ServeConfig, read_command: Callable[[list[str]], None] | None = None) -> None:
    """Open the store (loading the shipped prices into an empty price table: reports only read them)
    and serve agents on `config.listen` until SIGTERM/SIGINT. `read_command(argv)` runs one read command
    as the command line does (the CLI passes its own main: same code, same output) for other processes
    while this one holds the embedded store (collector/reads.py)."""
    options = server_options(config)
    tls = page_tls(config.tls_cert, config.tls_key, config.tls_client_ca) if config.http is not None else None
    store = Store.open(config.store, config.password)
    ensure_prices(store)
    asyncio.run(_serve(store, config, options, read_command, tls))


async def _serve(store: Store, config: ServeConfig, options: ServerOptions,
                 read_command: Callable[[list[str]], None] | None, tls: ssl.SSLContext | None) -> None:
    """`serve`; on an embedded store (which it holds) the read commands of others (collector/reads.py); with
    --http, the pages (collector/web.py). Both run read commands through one service, one at a time."""
    async with contextlib.AsyncExitStack() as stack:
        if read_command is not None:
            service = ReadService(store.location, lambda argv: run_captured(read_command, argv))
            if store.location.embedded and store.location.dsn != "chdb://memory":
                await stack.enter_async_context(serving_reads(service, store.location))
            if config.http is not None:
                await stack.enter_async_context(serving_pages(store, service, config.http, options.tokens, tls))
        await serve(store, config.listen, options)

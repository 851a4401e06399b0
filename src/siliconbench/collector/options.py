"""The collector's command-line options, declared once and validated into models.

`ServeConfig` is what `serve` runs with: its flags are made from its fields (`serve_flags`), so each
default is written once. `ReportOptions` is what `report` and `compare` share (their flags are declared
once, in `REPORT_FLAGS`, and reach each command as one object through `report_flags`). `demo`'s plan
flags apply to `DEMO_PLAN`. Store flags (`StoreOpt`, `PasswordOpt`) are shared by every command that
opens the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from siliconbench.collector import settings
from siliconbench.core.cli import flag, model_builder, model_flags, with_flags
from siliconbench.core.listen import is_loopback, split_address
from siliconbench.core.config import STRICT, Bool, Int, NonNegativeFloat, Str, flag_error, invalid
from siliconbench.core.plan import Plan, parse_concurrency, with_overrides
from siliconbench.core.settings import check_tls_pair

DEFAULT_STORE = "chdb://./siliconbench-data"
StoreOpt = Annotated[str, typer.Option(envvar=settings.STORE, help="chdb://PATH (embedded) or http(s)://user:pass@host:8123/db.")]
PasswordOpt = Annotated[Optional[str], typer.Option(envvar=settings.CLICKHOUSE_PASSWORD, help="Overrides the password in --store. \\[default: the one in --store]", show_default=False)]
RunOpt = Annotated[Optional[list[str]], typer.Option("--run", help="Run id (repeatable; see `runs list`). \\[default: every run]", show_default=False)]
ScenarioOpt = Annotated[Optional[list[str]], typer.Option("--scenario", help="Scenario label, e.g. A (repeatable): all its runs. \\[default: every scenario]", show_default=False)]


@dataclass(frozen=True, slots=True, config=STRICT)
class ServeConfig:
    """How `serve` listens, authenticates agents and writes to the store."""

    listen: Annotated[Str, Field(description="gRPC address to listen on (port 0: any free port, logged).")] = "0.0.0.0:50051"
    store: Str = DEFAULT_STORE
    password: Str | None = None
    max_stream_age_s: Annotated[NonNegativeFloat, Field(description="End each agent's stream at about this age (±10 %), after acknowledging what it took, so agents reconnect and spread over replicas (0: never).")] = 0.0
    agent_tokens_file: Annotated[Path | None, Field(description="Accepted agent bearer tokens, one per line (re-read on change). Unset: any agent may write.")] = None
    agent_jwks: Annotated[Str | None, Field(description="The cluster's service-account signing keys (a JWKS file, re-read on change, or an https URL): agents present their pod's projected token and write as its node.")] = None
    agent_token_issuer: Annotated[Str | None, Field(description="The cluster's OIDC issuer URL (service-account tokens' iss).")] = None
    agent_token_audience: Annotated[Str, Field(description="Audience of the agents' projected tokens.")] = "siliconbench"
    agent_service_account: Annotated[Str | None, Field(description="NAMESPACE:NAME of the agents' service account.")] = None
    tls_cert: Annotated[Path | None, Field(description="PEM certificate (chain) to serve TLS with.")] = None
    tls_key: Annotated[Path | None, Field(description="PEM private key of --tls-cert.")] = None
    tls_client_ca: Annotated[Path | None, Field(description="PEM CA: agents must present a certificate it signed (mTLS).")] = None
    store_threads: Annotated[Int, Field(ge=1, description="Inserts in flight toward ClickHouse at most, whatever the number of agents.")] = 4
    max_bytes_in_flight_mib: Annotated[Int, Field(ge=1, description="Wire MiB of agent batches decoded or being stored at once, all streams together; more waits (backpressure).")] = 24
    max_streams: Annotated[Int, Field(ge=1, description="Concurrent RPCs (agent streams and control calls) at most; more are refused with RESOURCE_EXHAUSTED. Bounds memory with --max-bytes-in-flight-mib (docs/deploy.md).")] = 1024
    keep_steps: Annotated[Bool, Field(description="Keep each step's results once it is over and its rows are complete, so reports read them instead of computing them from every row. --no-keep-steps: reports compute every step (to measure what keeping costs ingest).")] = True
    http: Annotated[Str | None, Field(description="Also serve read-only pages at HOST:PORT: the runs, a live view of each run, every report in HTML. Beyond loopback they ask for an operator token of --agent-tokens-file; TLS with --tls-cert/--tls-key. \\[default: no pages]")] = None

    @model_validator(mode="after")
    def _tls(self) -> ServeConfig:
        check_tls_pair(self.tls_cert, self.tls_key)
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise invalid("--tls-client-ca (mTLS) needs --tls-cert and --tls-key as well")
        if self.agent_jwks is not None and (self.agent_token_issuer is None or self.agent_service_account is None):
            raise invalid(f"--agent-jwks needs --agent-token-issuer ({settings.AGENT_TOKEN_ISSUER}) and "
                          f"--agent-service-account ({settings.AGENT_SERVICE_ACCOUNT}) as well")
        if self.http is not None and split_address(self.http, "--http")[1] == split_address(self.listen, "--listen")[1] != 0:
            raise invalid(f"--http {self.http} and --listen {self.listen} need ports of their own")
        if self.http is not None and not is_loopback(split_address(self.http, "--http")[0]) and not self.agent_tokens_file:
            raise invalid(f"--http {self.http} listens beyond loopback: it needs --agent-tokens-file with a "
                          "`TOKEN operator` line (the pages ask for that token), or a loopback address such as "
                          "127.0.0.1:8080")
        return self


serve_config = model_builder(ServeConfig)  # `serve`'s flags as a ServeConfig; every bad flag named at once
serve_flags = with_flags("config", model_flags(ServeConfig, given={"store": StoreOpt, "password": PasswordOpt},
                                               envvars={"listen": settings.LISTEN, "max_stream_age_s": settings.MAX_STREAM_AGE_S,
                                                        "agent_tokens_file": settings.AGENT_TOKENS_FILE,
                                                        "agent_jwks": settings.AGENT_JWKS,
                                                        "agent_token_issuer": settings.AGENT_TOKEN_ISSUER,
                                                        "agent_token_audience": settings.AGENT_TOKEN_AUDIENCE,
                                                        "agent_service_account": settings.AGENT_SERVICE_ACCOUNT,
                                                        "tls_cert": settings.TLS_CERT, "tls_key": settings.TLS_KEY,
                                                        "tls_client_ca": settings.TLS_CLIENT_CA,
                                                        "store_threads": settings.STORE_THREADS}),
                         serve_config)


@dataclass(frozen=True, slots=True, config=STRICT)
class ReportOptions:
    """What to report on (runs and scenarios; none: all), how (format, SLOs, baseline, prices) and where
    (a file, or standard output)."""

    store: Str = DEFAULT_STORE
    password: Str | None = None
    runs: tuple[Str, ...] = ()
    scenarios: tuple[Str, ...] = ()
    slo: tuple[Str, ...] = ()                 # KEY=MS, parsed by core/slo.py (rollups.parse_slo)
    fmt: Str = "markdown"                     # checked by the renderers (which know the formats)
    output: Path | None = None
    baseline: Str | None = None
    price_region: Str = "us-east-1"
    price_kind: Str = "on_demand"
    cost: Bool = True
    allow_mixed_workloads: Bool = False       # compute 'vs baseline' across different workloads too
    search: Str | None = None                 # one search's answer and evidence instead (reports/search.py)


REPORT_FLAGS = [
    flag("run", RunOpt, None),
    flag("scenario", ScenarioOpt, None),
    flag("slo", Annotated[Optional[list[str]], typer.Option("--slo", help="Goodput SLO, KEY=MS with KEY ttft_ms, ttfa_ms (time to first answer token), itl_ms (a request's mean gap), tpot_ms or e2e_ms (repeatable or comma-separated); default: the SLO the agent's run --slo stored with the run.", show_default=False)], None),
    flag("fmt", Annotated[str, typer.Option("--format", "-f", help="markdown, csv, json or html.")], "markdown"),
    flag("output", Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of standard output. \\[default: standard output]", show_default=False)], None),
    flag("baseline", Annotated[Optional[str], typer.Option(help="Scenario label or run id that 'vs baseline' compares with (default: the first).", show_default=False)], None),
    flag("price_region", Annotated[str, typer.Option("--price-region", help="Region of the prices used for cost.")], "us-east-1"),
    flag("price_kind", Annotated[str, typer.Option("--price-kind", help="Price kind: on_demand, spot, capacity_block, savings_plan, custom (or a qualified kind in the table).")], "on_demand"),
    flag("allow_mixed_workloads", Annotated[bool, typer.Option("--allow-mixed-workloads", help="Compute 'vs baseline' even for runs whose workload (endpoint, prompt/output tokens, prompts) differs from the baseline's.")], False),
    flag("search", Annotated[Optional[str], typer.Option("--search", help="Report one search (`siliconbench-agent search`; its id is its run's): the answer, the method and every probe's bounds.", show_default=False)], None),
    flag("no_cost", Annotated[bool, typer.Option("--no-cost", help="Leave out the cost table (no price needed).")], False),
    flag("store", StoreOpt, DEFAULT_STORE),
    flag("password", PasswordOpt, None),
]


def report_options(*, run: list[str] | None, scenario: list[str] | None, slo: list[str] | None, no_cost: bool,
                   **flags: Any) -> ReportOptions:
    """`report`'s and `compare`'s flags as ReportOptions; every bad flag named at once."""
    try:
        return ReportOptions(runs=tuple(run or ()), scenarios=tuple(scenario or ()), slo=tuple(slo or ()),
                             cost=not no_cost, **flags)
    except ValidationError as exc:
        raise flag_error(exc) from None


report_flags = with_flags("options", REPORT_FLAGS, report_options)


DEMO_PLAN = Plan(concurrency=(1, 4, 8), requests_per_step=24, output_tokens=64, repetitions=1)  # short and small
DEMO_FLAGS = [
    flag("concurrency", Annotated[str, typer.Option(help="Concurrency steps, comma-separated.")],
         ",".join(map(str, DEMO_PLAN.concurrency))),
    *model_flags(Plan, only=("requests_per_step", "input_tokens", "output_tokens"), defaults=DEMO_PLAN,
                 help={"requests_per_step": "Requests per step.", "input_tokens": "Prompt length in tokens.",
                       "output_tokens": "Output length in tokens."}),
]


def demo_plan(*, concurrency: str, **fields: Any) -> Plan:
    """`demo`'s plan flags over DEMO_PLAN, validated (every bad flag named at once)."""
    return with_overrides(DEMO_PLAN, concurrency=parse_concurrency(concurrency), **fields)


demo_flags = with_flags("plan", DEMO_FLAGS, demo_plan)

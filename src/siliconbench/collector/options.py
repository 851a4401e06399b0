"""The collector's command-line options, declared once and validated into models.

`ServeConfig` is what `serve` runs with; `ReportOptions` what `report` and `compare` share (their
flags are declared once, in `REPORT_FLAGS`, and reach each command as one object through
`report_flags`). Store flags (`StoreOpt`, `PasswordOpt`) are shared by every command that opens the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from siliconbench.collector import settings
from siliconbench.core.cli import flag, with_flags
from siliconbench.core.config import STRICT, Bool, Int, NonNegativeFloat, Str, flag_error, invalid

DEFAULT_STORE = "chdb://./siliconbench-data"
StoreOpt = Annotated[str, typer.Option(envvar=settings.STORE, help="chdb://PATH (embedded) or http(s)://user:pass@host:8123/db.")]
PasswordOpt = Annotated[Optional[str], typer.Option(envvar=settings.CLICKHOUSE_PASSWORD, help="Overrides the password in --store. \\[default: the one in --store]", show_default=False)]
RunOpt = Annotated[Optional[list[str]], typer.Option("--run", help="Run id (repeatable; see `runs list`). \\[default: every run]", show_default=False)]
ScenarioOpt = Annotated[Optional[list[str]], typer.Option("--scenario", help="Scenario label, e.g. A (repeatable): all its runs. \\[default: every scenario]", show_default=False)]


@dataclass(frozen=True, slots=True, config=STRICT)
class ServeConfig:
    """How `serve` listens, authenticates agents and writes to the store."""

    listen: Str = "0.0.0.0:50051"
    store: Str = DEFAULT_STORE
    password: Str | None = None
    max_stream_age_s: NonNegativeFloat = 0.0      # 0: streams never end on their own
    agent_tokens_file: Path | None = None         # None: any agent may write
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None             # agents must present a certificate it signed (mTLS)
    store_threads: Annotated[Int, Field(ge=1)] = 4
    max_bytes_in_flight_mib: Annotated[Int, Field(ge=1)] = 24  # batches decoded or stored at once (collector/budget.py)
    max_streams: Annotated[Int, Field(ge=1)] = 1024  # concurrent RPCs at most (collector/budget.py: the memory bound)

    @model_validator(mode="after")
    def _tls(self) -> ServeConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise invalid(f"--tls-cert and --tls-key ({settings.TLS_CERT}/_KEY) go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise invalid("--tls-client-ca (mTLS) needs --tls-cert and --tls-key as well")
        return self


def serve_config(**flags: Any) -> ServeConfig:
    """`serve`'s flags as a ServeConfig; every bad flag named at once."""
    try:
        return ServeConfig(**flags)
    except ValidationError as exc:
        raise flag_error(exc) from None


@dataclass(frozen=True, slots=True, config=STRICT)
class ReportOptions:
    """What to report on (runs and scenarios; none: all), how (format, SLOs, baseline, prices) and where
    (a file, or standard output)."""

    store: Str = DEFAULT_STORE
    password: Str | None = None
    runs: tuple[Str, ...] = ()
    scenarios: tuple[Str, ...] = ()
    slo: tuple[Str, ...] = ()                 # METRIC=MS, parsed by the rollups (which know the metrics)
    fmt: Str = "markdown"                     # checked by the renderers (which know the formats)
    output: Path | None = None
    baseline: Str | None = None
    price_region: Str = "us-east-1"
    price_kind: Str = "on_demand"
    cost: Bool = True
    allow_mixed_workloads: Bool = False       # compute 'vs baseline' across different workloads too


REPORT_FLAGS = [
    flag("run", RunOpt, None),
    flag("scenario", ScenarioOpt, None),
    flag("slo", Annotated[Optional[list[str]], typer.Option("--slo", help="Goodput SLO, METRIC=MS with METRIC ttft_ms, tpot_ms or e2e_ms (repeatable).", show_default=False)], None),
    flag("fmt", Annotated[str, typer.Option("--format", "-f", help="markdown, csv, json or html.")], "markdown"),
    flag("output", Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of standard output. \\[default: standard output]", show_default=False)], None),
    flag("baseline", Annotated[Optional[str], typer.Option(help="Scenario label or run id that 'vs baseline' compares with (default: the first).", show_default=False)], None),
    flag("price_region", Annotated[str, typer.Option("--price-region", help="Region of the prices used for cost.")], "us-east-1"),
    flag("price_kind", Annotated[str, typer.Option("--price-kind", help="Price kind: on_demand, spot, capacity_block, savings_plan, custom (or a qualified kind in the table).")], "on_demand"),
    flag("allow_mixed_workloads", Annotated[bool, typer.Option("--allow-mixed-workloads", help="Compute 'vs baseline' even for runs whose workload (endpoint, prompt/output tokens, prompts) differs from the baseline's.")], False),
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

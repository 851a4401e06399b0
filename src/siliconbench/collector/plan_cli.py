"""`siliconbench-collector plan`: the cheapest fleet for a target load, from the stored searches
(siliconbench.collector.plan)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from siliconbench.collector.errors import InvalidOption
from siliconbench.collector.options import DEFAULT_STORE, PasswordOpt, StoreOpt
from siliconbench.collector.plan.demand import (Load, Workload, load_of_run, parse_load, workload_of_flags,
                                                workload_of_run)
from siliconbench.collector.plan.pricing import PriceBook, prices_from_file, prices_from_store
from siliconbench.collector.plan.rank import PlanRequest, build_plan
from siliconbench.collector.plan.output import FORMATS, render_plan
from siliconbench.collector.reads import served
from siliconbench.collector.run_cli import CollectorOpt, parse_selector
from siliconbench.collector.store import Store
from siliconbench.core.cli import given_args
from siliconbench.core.slo import parse_slos


def _load(store: Store, load: str | None, load_from_run: str | None) -> Load:
    if (load is None) == (load_from_run is None):
        raise InvalidOption("give the target load: --load '40 req/s' (or 'N tok/s'), or --load-from-run RUN")
    return parse_load(load) if load is not None else load_of_run(store, str(load_from_run))


def _workload(store: Store, input_tokens: int | None, output_tokens: int | None, workload_of: str | None,
              load_from_run: str | None) -> Workload:
    tokens = (input_tokens, output_tokens)
    if workload_of is not None:
        if tokens != (None, None):
            raise InvalidOption("give either --workload-of RUN or --input-tokens/--output-tokens, not both")
        return workload_of_run(store, workload_of)
    if None not in tokens:
        return workload_of_flags(int(input_tokens or 0), int(output_tokens or 0))
    if tokens == (None, None) and load_from_run is not None:
        return workload_of_run(store, load_from_run, "--load-from-run")
    raise InvalidOption("give the workload: --input-tokens N --output-tokens M (both), or --workload-of RUN")


def _candidates(values: list[str] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for v in values or () for t in v.split(",") if t.strip()))


Emit = Callable[[str, Optional[Path], str], None]


def add_plan_command(app: typer.Typer, emit: Emit) -> None:
    """Add `plan` to `app`; `emit` writes its text (to -o, else standard output, as every report)."""
    app.command("plan")(served(_command(emit)))


def _command(emit: Emit) -> Callable[..., None]:
    def plan(
        slo: Annotated[str, typer.Option(help="The SLOs the fleet must meet, as for `siliconbench-agent search`, e.g. 'ttft_p99_ms<=800,itl_p99_ms<=60'.")],
        load: Annotated[Optional[str], typer.Option(help="Target load: 'N req/s' or 'N tok/s' (output tokens).", show_default=False)] = None,
        load_from_run: Annotated[Optional[str], typer.Option(help="Target load: the peak minute of this stored run's arrivals (and its workload, unless given).", show_default=False)] = None,
        input_tokens: Annotated[Optional[int], typer.Option(help="Workload: prompt tokens per request.", show_default=False)] = None,
        output_tokens: Annotated[Optional[int], typer.Option(help="Workload: output tokens per request.", show_default=False)] = None,
        workload_of: Annotated[Optional[str], typer.Option(help="Workload: the requests of this stored run (endpoint, lengths, prompt source).", show_default=False)] = None,
        candidates: Annotated[Optional[list[str]], typer.Option("--candidates", help="Instance types to compare, comma-separated or repeated. \\[default: every type with a stored search]", show_default=False)] = None,
        headroom: Annotated[float, typer.Option(help="Share of capacity kept free: nodes = ceil(load × (1 + headroom) / capacity).")] = 0.2,
        prices: Annotated[Optional[Path], typer.Option("--prices", help="Price CSV (`prices import` format). \\[default: the store's price table]", show_default=False)] = None,
        price_region: Annotated[str, typer.Option(help="Region of the prices.")] = "us-east-1",
        price_kind: Annotated[str, typer.Option(help="Price kind: on_demand, spot, capacity_block, savings_plan, custom (or a qualified kind).")] = "on_demand",
        allow_other_workload: Annotated[bool, typer.Option("--allow-other-workload", help="Where no search of this workload exists, borrow a search of another workload (warned in every format).")] = False,
        fmt: Annotated[str, typer.Option("--format", "-f", help="markdown, csv, json or html.")] = "markdown",
        output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of standard output.", show_default=False)] = None,
        store: StoreOpt = DEFAULT_STORE,
        password: PasswordOpt = None,
        validate: Annotated[bool, typer.Option("--validate", help="Replay the load on the first choice's fleet as a fleet run (agents connected to --collector), then `check-slo` it in --format (markdown, csv or json): exit 0 when every node held every SLO, 10 when any broke one.")] = False,
        collector: CollectorOpt = "127.0.0.1:50051",
        validate_s: Annotated[float, typer.Option(help="--validate: how long each node sends its share of the load.")] = 60.0,
        wait_s: Annotated[float, typer.Option(help="--validate: how long to wait for the fleet's agents to connect.")] = 0.0,
        selector: Annotated[Optional[list[str]], typer.Option(help="--validate: KEY=VALUE narrowing the nodes of the chosen instance type, as for `run start`; repeatable.", show_default=False)] = None,
        plan_out: Annotated[Optional[Path], typer.Option(help="--validate: also write the replay's plan file here (for `run start --plan`).", show_default=False)] = None,
    ) -> None:
        """The cheapest fleet for a target load within SLOs, from measured capacity (`siliconbench-agent search`)
        and dated prices: nodes, fleet $/hour and $/1M output tokens per candidate, cheapest first, with the
        arithmetic and the evidence. Example: plan --load '40 req/s' --slo 'ttft_p99_ms<=800,itl_p99_ms<=60'
        --input-tokens 512 --output-tokens 128"""
        if validate:
            from siliconbench.collector.validate import Replay, validate_plan

            replay = Replay(collector, validate_s, wait_s, parse_selector(selector or [], None), plan_out)
            validate_plan(given_args(), store, password, replay, fmt, output)
        if fmt.lower() not in FORMATS:
            raise InvalidOption(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
        parse_slos(slo)
        opened = Store.open_existing(store, password)
        book: PriceBook = (prices_from_file(prices, price_region, price_kind) if prices is not None
                           else prices_from_store(opened, price_region, price_kind))
        request = PlanRequest(_load(opened, load, load_from_run),
                              _workload(opened, input_tokens, output_tokens, workload_of, load_from_run), slo, book,
                              _candidates(candidates), headroom, allow_other_workload)
        emit(render_plan(build_plan(opened, request), fmt), output, fmt)

    return plan

"""`siliconbench-collector`: receive agents' data into ClickHouse, and report on it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from siliconbench.collector.options import (
    DEFAULT_STORE,
    PasswordOpt,
    ReportOptions,
    RunOpt,
    ScenarioOpt,
    StoreOpt,
    ServeConfig,
    demo_flags,
    report_flags,
    serve_flags,
)
from siliconbench.collector.plan_cli import add_plan_command
from siliconbench.collector.reads import served
from siliconbench.collector.reporting import render_report
from siliconbench.collector.reports.terminal import emit
from siliconbench.collector.run_cli import run_app
from siliconbench.collector.store import Store
from siliconbench.core.cli import fail as _fail
from siliconbench.core.cli import main as run_program
from siliconbench.core.cli import program_options, setup_logging
from siliconbench.core.errors import ExitCode
from siliconbench.core.plan import Plan
from siliconbench.core.listen import ensure_can_listen, split_address

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.callback()(program_options)


@app.command()
@serve_flags
def serve(config: ServeConfig) -> None:
    """Receive agents' streams and store them; ack each batch only after ClickHouse stored it."""
    from siliconbench.collector.serving import run_collector

    setup_logging()
    ensure_can_listen(*split_address(config.listen, "--listen"), "--listen")
    if config.http is not None:
        ensure_can_listen(*split_address(config.http, "--http"), "--http")
    run_collector(config, read_command=lambda argv: run_program(app, argv))


def _report(options: ReportOptions) -> None:
    text = render_report(options)
    emit(text, options.output, options.fmt)


@app.command()
@served
@report_flags
def report(options: ReportOptions) -> None:
    """Report TTFT, ITL, throughput, concurrency scaling, $/1M tokens and devices for runs (default: all),
    with formulas and consistency warnings. Example: report --scenario A --scenario B --slo ttft_ms=500"""
    _report(options)


@app.command()
@served
@report_flags
def compare(options: ReportOptions) -> None:
    """Compare two or more runs (--run) or scenarios (--scenario) side by side, each against the baseline."""
    if len(options.runs) + len(options.scenarios) < 2:
        raise _fail("compare needs at least two --run or --scenario values (use `report` for one)")
    _report(options)


runs_app = typer.Typer(help="The runs in the store.", add_completion=False, invoke_without_command=True)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
@served
def runs(ctx: typer.Context, store: StoreOpt = DEFAULT_STORE, password: PasswordOpt = None) -> None:
    """List the runs in the store, newest first (same as `runs list`)."""
    if ctx.invoked_subcommand is None:
        _list_runs(store, password)


@runs_app.command("list")
@served
def runs_list(store: StoreOpt = DEFAULT_STORE, password: PasswordOpt = None) -> None:
    """List the runs in the store, newest first: id, start, scenario, model, target, nodes."""
    _list_runs(store, password)


def _list_runs(store: str, password: str | None) -> None:
    from siliconbench.collector.rollups import list_runs

    rows = list_runs(Store.open_existing(store, password))
    if not rows:
        typer.echo(f"no runs in {store} yet; `siliconbench-collector demo --store {store}` makes one", err=True)
    for run_id, started, scenario, model, simulated, nodes, target, state in rows:
        typer.echo(f"{run_id}  {started:%Y-%m-%d %H:%M:%S}  {state}  scenario={scenario or '-'}  {model}  {target}"
                   f"{'  SIMULATED' if simulated else ''}  nodes={nodes}")


@app.command()
@served
def export(
    table: Annotated[str, typer.Option(help="requests, steps, runs, nodes, device_samples, server_metrics, search_probes, searches or prices.")] = "requests",
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv, parquet, or trace (one run's arrivals as a siliconbench trace, JSON Lines, for `siliconbench-agent run --trace FILE --trace-format siliconbench`).")] = "csv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: standard output; parquet needs a file).", show_default=False)] = None,
    run: RunOpt = None,
    scenario: ScenarioOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
) -> None:
    """Export raw rows of one table (filtered by runs or scenarios) as CSV or Parquet, streamed from ClickHouse."""
    from siliconbench.collector.export import export_rows

    export_rows(Store.open_existing(store, password), table, fmt, output, runs=tuple(run or ()),
                scenarios=tuple(scenario or ()))


prices_app = typer.Typer(help="The price table used for $/1M tokens.", add_completion=False, no_args_is_help=True)
app.add_typer(prices_app, name="prices")


@prices_app.command("import")
def prices_import(
    file: Annotated[Path, typer.Argument(help="CSV: instance_type,region,kind,usd_per_hour,currency,as_of,source[,confidence,...]")],
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
) -> None:
    """Load prices from a CSV file (rows with the same type, region, kind and date replace older ones)."""
    from siliconbench.collector.prices import ensure_prices, import_csv

    opened = Store.open(store, password)
    ensure_prices(opened)  # the shipped defaults first: the file's rows then replace theirs
    count = import_csv(opened, file)
    typer.echo(f"imported {count} prices from {file}")


@prices_app.command("list")
def prices_list(store: StoreOpt = DEFAULT_STORE, password: PasswordOpt = None) -> None:
    """Print the price table. Reads only: `serve` and `prices import` load the shipped default into an empty table."""
    from siliconbench.collector.prices import list_prices

    rows = list_prices(Store.open_existing(store, password))
    if not rows:
        typer.echo("the price table is empty: `serve` or `prices import FILE` loads the shipped default prices",
                   err=True)
    typer.echo("instance_type\tregion\tkind\tusd_per_hour\tcurrency\tas_of\tconfidence\tsource")
    for row in rows:
        typer.echo("\t".join(str(v) for v in row))


@app.command()
@served
def sql(
    query: Annotated[str, typer.Argument(help="A SELECT; write tables as siliconbench.requests etc.")],
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
    write: Annotated[bool, typer.Option("--write", help="Allow statements that change data or tables "
                                        "(read-only without it).")] = False,
) -> None:
    """Run a SQL query against the store (read-only unless --write) and print tab-separated rows with a header."""
    from siliconbench.collector.adhoc import run_query

    result = run_query(Store.open_existing(store, password), query, write)
    typer.echo("\t".join(result.columns))
    for row in result.rows:
        typer.echo("\t".join(str(v) for v in row))


@app.command()
@demo_flags
def demo(
    plan: Plan,
    store: StoreOpt = DEFAULT_STORE,
    target: Annotated[Optional[str], typer.Option(help="A real vLLM base URL; default: start the simulator.", show_default=False)] = None,
    instance_type: Annotated[Optional[str], typer.Option(help="Instance type the run is stored under, so the cost table prices it, e.g. p5.48xlarge. \\[default: detected on this machine, else none]", show_default=False)] = None,
    ttft_ms: Annotated[Optional[float], typer.Option(help="Simulator: time to first token (ms). \\[default: the simulator's, `siliconbench-agent sim --help`]", show_default=False)] = None,
    itl_ms: Annotated[Optional[float], typer.Option(help="Simulator: inter-token latency (ms). \\[default: the simulator's]", show_default=False)] = None,
    sample_interval_s: Annotated[Optional[float], typer.Option(help="Agent: device/host sampling interval in seconds (0.1-60). \\[default: the agent's, `siliconbench-agent run --help`]", show_default=False)] = None,
) -> None:
    """Run a complete local benchmark: collector on embedded chDB, a target, the agent, the report."""
    from siliconbench.collector.demo import run_demo, stored_requests

    setup_logging()
    agent_args = given_flags(instance_type=instance_type, sample_interval_s=sample_interval_s)
    sim_args = given_flags(ttft_ms=ttft_ms, itl_ms=itl_ms)
    run_id = run_demo(store, target, plan, agent_args, sim_args)
    emit(render_report(ReportOptions(store=store, runs=(run_id,))), None)
    stored, where = stored_requests(store, run_id)
    me = typed_name("siliconbench-collector")
    typer.echo(f"{stored} request rows stored for run {run_id} in {where}. Next:\n"
               f"  {me} report --run {run_id} --format html -o report.html --store {store}\n"
               f"  {me} sql \"SELECT count() FROM siliconbench.requests\" --store {store}")


def given_flags(**values: object) -> list[str]:
    """The values given (not None) as a child command's flags: `--itl-ms 10.0`."""
    return [part for name, value in values.items() if value is not None
            for part in (f"--{name.replace('_', '-')}", str(value))]


def typed_name(program: str) -> str:
    """`program` as the user can type it in this shell: its bare name when PATH finds this installation's
    copy, else its path (`.venv/bin/...` right after `make demo`, before any activate)."""
    installed = Path(sys.executable).parent / program
    found = shutil.which(program)
    if found and Path(found).resolve() == installed.resolve():
        return program
    try:
        return str(installed.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(installed.absolute())


@app.command()
def health(address: Annotated[str, typer.Option(help="Collector gRPC address.")] = "127.0.0.1:50051") -> None:
    """Exit 0 when the collector at ADDRESS reports SERVING (for container health checks)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3).status
    except grpc.RpcError as exc:
        raise _fail(f"collector at {address} did not answer: {exc.code().name}", ExitCode.COLLECTOR) from None
    if status != health_pb2.HealthCheckResponse.SERVING:
        raise _fail(f"collector at {address} is {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}")
    typer.echo("SERVING")


@app.command("check-slo")
@served
def check_slo(
    run: Annotated[str, typer.Option("--run", help="Run id (a fleet run: every node is judged).")],
    slo: Annotated[str, typer.Option(help="SLOs every node must hold, e.g. 'ttft_p99_ms<=800,itl_p99_ms<=60'.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="markdown, csv or json.")] = "markdown",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: standard output).", show_default=False)] = None,
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
) -> None:
    """Judge each node of a run against SLOs: exact percentiles of its requests against each limit. Exit 0
    when every node held every SLO, 10 when any broke one."""
    from siliconbench.collector.reports.slo_check import render_slo_check
    from siliconbench.collector.slo_check import check_slo as judge
    from siliconbench.core.slo import parse_slos

    objectives = parse_slos(slo)
    checked = judge(Store.open_existing(store, password), run, objectives)
    emit(render_slo_check(checked, fmt), output, fmt)
    if not checked.held:
        raise typer.Exit(ExitCode.SLO_BROKEN)


app.add_typer(run_app, name="run")
add_plan_command(app, emit)


def main() -> None:
    run_program(app)

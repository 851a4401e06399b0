"""`siliconbench-collector`: receive agents' data into ClickHouse, and report on it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from siliconbench.collector import settings
from siliconbench.collector.errors import CollectorError
from siliconbench.collector.options import (
    DEFAULT_STORE,
    PasswordOpt,
    ReportOptions,
    RunOpt,
    ScenarioOpt,
    StoreOpt,
    report_flags,
    serve_config,
)
from siliconbench.collector.reporting import render_report
from siliconbench.collector.reports.terminal import for_stdout
from siliconbench.collector.run_cli import run_app
from siliconbench.collector.store import Store
from siliconbench.core.cli import fail as _fail
from siliconbench.core.cli import main as run_program
from siliconbench.core.cli import program_options, setup_logging
from siliconbench.core.errors import ExitCode, SiliconbenchError
from siliconbench.core.listen import ensure_can_listen, split_address

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.callback()(program_options)


@app.command()
def serve(
    listen: Annotated[str, typer.Option(envvar=settings.LISTEN, help="gRPC address to listen on.")] = "0.0.0.0:50051",
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
    max_stream_age_s: Annotated[float, typer.Option(envvar=settings.MAX_STREAM_AGE_S, help="End each agent's stream at about this age (±10 %), after acknowledging what it took, so agents reconnect and spread over replicas (0: never).")] = 0.0,
    agent_tokens_file: Annotated[Optional[Path], typer.Option(envvar=settings.AGENT_TOKENS_FILE, help="Accepted agent bearer tokens, one per line (re-read on change). Unset: any agent may write.", show_default=False)] = None,
    tls_cert: Annotated[Optional[Path], typer.Option(envvar=settings.TLS_CERT, help="PEM certificate (chain) to serve TLS with.", show_default=False)] = None,
    tls_key: Annotated[Optional[Path], typer.Option(envvar=settings.TLS_KEY, help="PEM private key of --tls-cert.", show_default=False)] = None,
    tls_client_ca: Annotated[Optional[Path], typer.Option(envvar=settings.TLS_CLIENT_CA, help="PEM CA: agents must present a certificate it signed (mTLS).", show_default=False)] = None,
    store_threads: Annotated[int, typer.Option(envvar=settings.STORE_THREADS, help="Inserts in flight toward ClickHouse at most, whatever the number of agents.")] = 4,
    max_bytes_in_flight_mib: Annotated[int, typer.Option(help="Wire MiB of agent batches decoded or being stored at once, all streams together; more waits (backpressure).")] = 24,
    max_streams: Annotated[int, typer.Option(help="Concurrent RPCs (agent streams and control calls) at most; more are refused with RESOURCE_EXHAUSTED. Bounds memory with --max-bytes-in-flight-mib (docs/deploy.md).")] = 1024,
) -> None:
    """Receive agents' streams and store them; ack each batch only after ClickHouse stored it."""
    from siliconbench.collector.serving import run_collector

    setup_logging()
    try:
        config = serve_config(listen=listen, store=store, password=password, max_stream_age_s=max_stream_age_s,
                              agent_tokens_file=agent_tokens_file, tls_cert=tls_cert, tls_key=tls_key,
                              tls_client_ca=tls_client_ca, store_threads=store_threads,
                              max_bytes_in_flight_mib=max_bytes_in_flight_mib, max_streams=max_streams)
        ensure_can_listen(*split_address(config.listen, "--listen"), "--listen")
        run_collector(config)
    except (SiliconbenchError, OSError) as exc:
        raise _fail(exc) from None


def _emit(text: str, output: Path | None, fmt: str = "markdown") -> None:
    """`text` to `output`, else to standard output: Markdown fitted to the terminal when that is one."""
    if output is None:
        typer.echo(for_stdout(text, fmt), nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror}") from None
    typer.echo(f"wrote {output}", err=True)


def _report(options: ReportOptions) -> None:
    try:
        text = render_report(options)
    except CollectorError as exc:
        raise _fail(exc) from None
    _emit(text, options.output, options.fmt)


@app.command()
@report_flags
def report(options: ReportOptions) -> None:
    """Report TTFT, ITL, throughput, concurrency scaling, $/1M tokens and devices for runs (default: all),
    with formulas and consistency warnings. Example: report --scenario A --scenario B --slo ttft_ms=500"""
    _report(options)


@app.command()
@report_flags
def compare(options: ReportOptions) -> None:
    """Compare two or more runs (--run) or scenarios (--scenario) side by side, each against the baseline."""
    if len(options.runs) + len(options.scenarios) < 2:
        raise _fail("compare needs at least two --run or --scenario values (use `report` for one)")
    _report(options)


runs_app = typer.Typer(help="The runs in the store.", add_completion=False, invoke_without_command=True)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs(ctx: typer.Context, store: StoreOpt = DEFAULT_STORE, password: PasswordOpt = None) -> None:
    """List the runs in the store, newest first (same as `runs list`)."""
    if ctx.invoked_subcommand is None:
        _list_runs(store, password)


@runs_app.command("list")
def runs_list(store: StoreOpt = DEFAULT_STORE, password: PasswordOpt = None) -> None:
    """List the runs in the store, newest first: id, start, scenario, model, target, nodes."""
    _list_runs(store, password)


def _list_runs(store: str, password: str | None) -> None:
    from siliconbench.collector.rollups import list_runs

    try:
        rows = list_runs(Store.open(store, password))
    except CollectorError as exc:
        raise _fail(exc) from None
    if not rows:
        typer.echo(f"no runs in {store} yet; `siliconbench-collector demo --store {store}` makes one", err=True)
    for run_id, started, scenario, model, simulated, nodes, target, state in rows:
        typer.echo(f"{run_id}  {started:%Y-%m-%d %H:%M:%S}  {state}  scenario={scenario or '-'}  {model}  {target}"
                   f"{'  SIMULATED' if simulated else ''}  nodes={nodes}")


@app.command()
def export(
    table: Annotated[str, typer.Option(help="requests, steps, runs, nodes, device_samples, server_metrics or prices.")] = "requests",
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or parquet.")] = "csv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: standard output; parquet needs a file).", show_default=False)] = None,
    run: RunOpt = None,
    scenario: ScenarioOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
) -> None:
    """Export raw rows of one table (filtered by runs or scenarios) as CSV or Parquet, streamed from ClickHouse."""
    from siliconbench.collector.export import export_rows

    try:
        export_rows(Store.open(store, password), table, fmt, output, runs=tuple(run or ()),
                    scenarios=tuple(scenario or ()))
    except CollectorError as exc:
        raise _fail(exc) from None


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

    try:
        opened = Store.open(store, password)
        ensure_prices(opened)  # the shipped defaults first: the file's rows then replace theirs
        count = import_csv(opened, file)
    except CollectorError as exc:
        raise _fail(exc) from None
    typer.echo(f"imported {count} prices from {file}")


@prices_app.command("list")
def prices_list(store: StoreOpt = DEFAULT_STORE, password: PasswordOpt = None) -> None:
    """Print the price table. Reads only: `serve` and `prices import` load the shipped default into an empty table."""
    from siliconbench.collector.prices import list_prices

    try:
        rows = list_prices(Store.open(store, password))
    except CollectorError as exc:
        raise _fail(exc) from None
    if not rows:
        typer.echo("the price table is empty: `serve` or `prices import FILE` loads the shipped default prices",
                   err=True)
    typer.echo("instance_type\tregion\tkind\tusd_per_hour\tcurrency\tas_of\tconfidence\tsource")
    for row in rows:
        typer.echo("\t".join(str(v) for v in row))


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A SELECT; write tables as siliconbench.requests etc.")],
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
    write: Annotated[bool, typer.Option("--write", help="Allow statements that change data or tables "
                                        "(read-only without it).")] = False,
) -> None:
    """Run a SQL query against the store (read-only unless --write) and print tab-separated rows with a header."""
    from siliconbench.collector.adhoc import run_query

    try:
        result = run_query(Store.open(store, password), query, write)
    except CollectorError as exc:
        raise _fail(exc) from None
    typer.echo("\t".join(result.columns))
    for row in result.rows:
        typer.echo("\t".join(str(v) for v in row))


@app.command()
def demo(
    store: StoreOpt = DEFAULT_STORE,
    target: Annotated[Optional[str], typer.Option(help="A real vLLM base URL; default: start the simulator.")] = None,
    concurrency: Annotated[str, typer.Option(help="Concurrency steps.")] = "1,4,8",
    requests_per_step: Annotated[int, typer.Option(help="Requests per step.")] = 24,
    input_tokens: Annotated[int, typer.Option(help="Prompt length in tokens.")] = 512,
    output_tokens: Annotated[int, typer.Option(help="Output length in tokens.")] = 64,
    instance_type: Annotated[str, typer.Option(help="Instance type the run is stored under, so the cost table prices it, e.g. p5.48xlarge. \\[default: detected on this machine, else none]")] = "",
    ttft_ms: Annotated[float, typer.Option(help="Simulator: time to first token (ms).")] = 50.0,
    itl_ms: Annotated[float, typer.Option(help="Simulator: inter-token latency (ms).")] = 10.0,
    sample_interval_s: Annotated[float, typer.Option(help="Agent: device/host sampling interval in seconds (0.1-60).")] = 1.0,
) -> None:
    """Run a complete local benchmark: collector on embedded chDB, a target, the agent, the report."""
    from siliconbench.collector.demo import run_demo

    setup_logging()
    agent_args = ["--concurrency", concurrency, "--requests-per-step", str(requests_per_step),
                  "--input-tokens", str(input_tokens), "--output-tokens", str(output_tokens),
                  "--repetitions", "1", "--sample-interval-s", str(sample_interval_s),
                  *(["--instance-type", instance_type] if instance_type else [])]
    sim_args = ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]
    try:
        run_id = run_demo(store, target, agent_args, sim_args)
        _emit(render_report(ReportOptions(store=store, runs=(run_id,))), None)
        opened = Store.open(store)
        stored = opened.query("SELECT count() FROM {db}.requests WHERE run_id = {r:String}", {"r": run_id}).result_rows[0][0]
    except CollectorError as exc:
        raise _fail(exc) from None
    me = typed_name("siliconbench-collector")
    typer.echo(f"{stored} request rows stored for run {run_id} in {opened.location.shown}. Next:\n"
               f"  {me} report --run {run_id} --format html -o report.html --store {store}\n"
               f"  {me} sql \"SELECT count() FROM siliconbench.requests\" --store {store}")


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


app.add_typer(run_app, name="run")


def main() -> None:
    run_program(app)

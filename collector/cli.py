"""`siliconbench-collector`: receive agents' data into ClickHouse, and report on it."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Optional

import typer

from collector.errors import CollectorError
from collector.store import Store

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

ENV = "SILICONBENCH_"
DEFAULT_STORE = "chdb://./siliconbench-data"
StoreOpt = Annotated[str, typer.Option(envvar=ENV + "STORE", help="chdb://PATH (embedded) or http(s)://user:pass@host:8123/db.")]
PasswordOpt = Annotated[Optional[str], typer.Option(envvar=ENV + "CLICKHOUSE_PASSWORD", help="Overrides the password in --store.", show_default=False)]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@app.command()
def serve(
    listen: Annotated[str, typer.Option(envvar=ENV + "LISTEN", help="gRPC address to listen on.")] = "0.0.0.0:50051",
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
    max_connection_age_s: Annotated[float, typer.Option(envvar=ENV + "GRPC_MAX_CONNECTION_AGE_S", help="Close agent connections after this age so they rebalance over replicas (0: never).")] = 0.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Receive agents' streams and store them; ack each batch only after ClickHouse stored it."""
    from collector.server import serve as serve_grpc

    _setup_logging(verbose)
    try:
        opened = Store.open(store, password)
        asyncio.run(serve_grpc(opened, listen, max_connection_age_s))
    except (CollectorError, OSError) as exc:
        raise _fail(exc) from None


@app.command()
def report(
    run: Annotated[str, typer.Option("--run", help="Run id (see `runs`).")],
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
) -> None:
    """Print a run's per-step TTFT, ITL, TPOT, E2E percentiles and throughput (Markdown)."""
    from collector.report import markdown
    from collector.rollups import run_info, step_rollups

    try:
        opened = Store.open(store, password)
        typer.echo(markdown(run_info(opened, run), step_rollups(opened, run)))
    except CollectorError as exc:
        raise _fail(exc) from None


@app.command()
def runs(store: StoreOpt = DEFAULT_STORE, password: PasswordOpt = None) -> None:
    """List the runs in the store, newest first."""
    try:
        opened = Store.open(store, password)
        rows = opened.query(
            "SELECT run_id, min(time), any(target_url), any(model), any(simulated), count(DISTINCT agent_id) "
            "FROM {db}.runs WHERE phase = 'start' GROUP BY run_id ORDER BY min(time) DESC").result_rows
    except CollectorError as exc:
        raise _fail(exc) from None
    for run_id, started, target, model, simulated, nodes in rows:
        typer.echo(f"{run_id}  {started:%Y-%m-%d %H:%M:%S}  {model}  {target}{'  SIMULATED' if simulated else ''}  nodes={nodes}")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A SELECT; write tables as siliconbench.requests etc.")],
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
) -> None:
    """Run a SQL query against the store and print tab-separated rows with a header."""
    try:
        opened = Store.open(store, password)
        result = opened.client().query(query)
    except CollectorError as exc:
        raise _fail(exc) from None
    except Exception as exc:  # ClickHouse's own message says what is wrong with the query
        raise _fail(str(exc).strip().splitlines()[0]) from None
    typer.echo("\t".join(result.column_names))
    for row in result.result_rows:
        typer.echo("\t".join(str(v) for v in row))


@app.command()
def demo(
    store: StoreOpt = DEFAULT_STORE,
    target: Annotated[Optional[str], typer.Option(help="A real vLLM base URL; default: start the simulator.")] = None,
    concurrency: Annotated[str, typer.Option(help="Concurrency steps.")] = "1,4,8",
    requests_per_step: Annotated[int, typer.Option(help="Requests per step.")] = 24,
    input_tokens: Annotated[int, typer.Option(help="Prompt length in tokens.")] = 512,
    output_tokens: Annotated[int, typer.Option(help="Output length in tokens.")] = 64,
    ttft_ms: Annotated[float, typer.Option(help="Simulator: time to first token (ms).")] = 50.0,
    itl_ms: Annotated[float, typer.Option(help="Simulator: inter-token latency (ms).")] = 10.0,
) -> None:
    """Run a complete local benchmark: collector on embedded chDB, a target, the agent, the report."""
    from collector.demo import run_demo
    from collector.report import markdown
    from collector.rollups import run_info, step_rollups

    _setup_logging(False)
    agent_args = ["--concurrency", concurrency, "--requests-per-step", str(requests_per_step),
                  "--input-tokens", str(input_tokens), "--output-tokens", str(output_tokens)]
    sim_args = ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms)]
    try:
        run_id = run_demo(store, target, agent_args, sim_args)
        opened = Store.open(store)
        typer.echo(markdown(run_info(opened, run_id), step_rollups(opened, run_id)))
        stored = opened.query("SELECT count() FROM {db}.requests WHERE run_id = {r:String}", {"r": run_id}).result_rows[0][0]
    except CollectorError as exc:
        raise _fail(exc) from None
    typer.echo(f"{stored} request rows stored for run {run_id} in {opened.location.shown}.\n"
               f"Query them: siliconbench-collector sql \"SELECT count() FROM siliconbench.requests\" --store {store}")


@app.command()
def health(address: Annotated[str, typer.Option(help="Collector gRPC address.")] = "127.0.0.1:50051") -> None:
    """Exit 0 when the collector at ADDRESS reports SERVING (for container health checks)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(address) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3).status
    except grpc.RpcError as exc:
        raise _fail(f"collector at {address} did not answer: {exc.code().name}") from None
    if status != health_pb2.HealthCheckResponse.SERVING:
        raise _fail(f"collector at {address} is {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}")
    typer.echo("SERVING")


def main() -> None:
    app()

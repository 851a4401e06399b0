"""`siliconbench-agent`: run benchmarks against the node's vLLM, or serve the simulator."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Optional

import aiohttp
import typer

from siliconbench.agent import settings
from siliconbench.agent.app import HEARTBEAT_FILE, node_devices, run_benchmark, run_daemon
from siliconbench.agent.app import event_loop_runner as _event_loop_runner
from siliconbench.agent.config import DEFAULT_SPOOL_DIR, AgentConfig, base_url
from siliconbench.agent.options import (InstanceOpt, NeuronMonitorOpt, SpoolOpt, node_flags, plan_flags,
                                        search_flags, search_plan_flags, sim_flags)
from siliconbench.agent.search.run import SearchRun, final_block, probe_line
from siliconbench.agent.search.run import as_json as answer_json
from siliconbench.core.search import SearchOptions, SearchPlan
from siliconbench.agent.sim.profile import SimProfile
from siliconbench.agent.target import TargetInfo, inspect_target
from siliconbench.core.cli import model_builder, program_options, setup_logging
from siliconbench.core.cli import main as run_program
from siliconbench.core.errors import ExitCode
from siliconbench.core.ids import new_run_id
from siliconbench.core.listen import ensure_can_listen
from siliconbench.core.slo import parse_slos
from siliconbench.core.plan import Plan, load_plan, with_overrides

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.callback()(program_options)


@app.command()
@node_flags
@plan_flags
def run(
    node: AgentConfig,
    plan: Plan,
    run_id: Annotated[Optional[str], typer.Option(help="Run id (default: generated).", show_default=False)] = None,
) -> None:
    """Run a benchmark plan against TARGET, timing every token, and stream the results to COLLECTOR.

    Prints the run id when the collector has acknowledged everything. Exit codes: 2 bad input, 4 target, 7 not
    everything stored (collector down, or records set aside), 8 the agent could not keep up on every core it may
    use (--workers auto), 130 interrupted (README, "When something goes wrong")."""
    setup_logging()
    labelled = with_overrides(plan, scenario=node.scenario or None)
    done_run = _event_loop_runner()(run_benchmark(node, labelled, run_id))
    typer.echo(done_run)


@app.command()
@node_flags
@search_plan_flags
@search_flags
def search(
    node: AgentConfig,
    plan: Plan,
    options: SearchOptions,
    slo: Annotated[str, typer.Option(help="The SLOs every probe must meet on its 95 % upper bound, e.g. 'ttft_p99_ms<=500,itl_p99_ms<=50,error_rate<=0.005' (ttft/itl/tpot/e2e at p50/p90/p95/p99, in ms; error_rate a share).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as one JSON object.")] = False,
    run_id: Annotated[Optional[str], typer.Option(help="Run (and search) id (default: generated).", show_default=False)] = None,
) -> None:
    """Find the largest concurrency (or rate) whose probes meet every SLO on their one-sided 95 % upper
    bounds: bracket by doubling, bisect to --tolerance, verify. Each probe is a step of one run sent to
    COLLECTOR; each probe's line goes to standard error, the answer to standard output.

    Exit codes: 0 an answer, 9 no load within the SLOs (not even --start), 2 bad input, 4 target, 7 not
    everything stored, 8 the agent itself could not keep up (not the server's capacity)."""
    setup_logging()
    objectives = parse_slos(slo)
    # the search stored with the run's plan (config_json), as a plan file's `search:` section says it
    searching = with_overrides(plan, scenario=node.scenario or None,
                               search=model_builder(SearchPlan)(slo=slo, **dataclasses.asdict(options)))
    search_id = run_id or new_run_id()
    search = SearchRun(objectives, options, searching, search_id,
                       on_probe=lambda probe: typer.echo(probe_line(options.control, probe), err=True))
    _event_loop_runner()(run_benchmark(node, searching, search_id, drive=search.drive, through=search.through))
    answer = search.answer
    assert answer is not None
    typer.echo(answer_json(answer, search_id) if as_json else final_block(answer))
    if answer.undecided_to is not None:
        raise typer.Exit(ExitCode.SEARCH_UNDECIDED)
    if answer.boundary is None:
        raise typer.Exit(ExitCode.NO_LOAD_WITHIN_SLO)


@app.command()
@node_flags
def daemon(
    node: AgentConfig,
    plan_file: Annotated[Optional[str], typer.Option(envvar=settings.PLAN_FILE, help="A plan (YAML/JSON of the run options) to run once at start.", show_default=False)] = None,
) -> None:
    """Run as the node's long-lived agent (the DaemonSet): sample and ship until SIGTERM, running PLAN_FILE once."""
    setup_logging()
    plan = load_plan(plan_file) if plan_file else None
    _event_loop_runner()(run_daemon(node, plan, node.spool_dir / HEARTBEAT_FILE))


@app.command()
def health(
    spool_dir: SpoolOpt = DEFAULT_SPOOL_DIR,
    max_age_s: Annotated[float, typer.Option(help="Oldest acceptable heartbeat, seconds.")] = 30.0,
) -> None:
    """Exit 0 when the daemon's heartbeat is fresh (for container health checks), 1 otherwise."""
    beat = spool_dir / HEARTBEAT_FILE
    try:
        age = time.time() - beat.stat().st_mtime
    except FileNotFoundError:
        typer.echo(f"unhealthy: no heartbeat at {beat} (is the daemon running with this --spool-dir?)", err=True)
        raise typer.Exit(1) from None
    if age > max_age_s:
        typer.echo(f"unhealthy: last heartbeat {age:.0f} s ago", err=True)
        raise typer.Exit(1)
    typer.echo(f"healthy: heartbeat {age:.0f} s ago")


@app.command()
def probe(
    target: Annotated[Optional[str], typer.Option(envvar=settings.TARGET, help="Also inspect this vLLM target.", show_default=False)] = None,
    instance_type: InstanceOpt = "",
    neuron_monitor: NeuronMonitorOpt = "neuron-monitor",
) -> None:
    """Print what this node has: accelerators, driver, instance type, and the target's version and model."""
    setup_logging()
    devices = node_devices(neuron_monitor)
    typer.echo(f"accelerators: {devices.count} x {devices.kind} {devices.model}".rstrip())
    typer.echo(f"driver: {devices.driver_version or 'unknown'}")
    typer.echo(f"instance type: {instance_type or devices.instance_type or 'unknown (set --instance-type)'}")
    if target:
        info = _event_loop_runner()(_inspect(target))
        typer.echo(f"target: {info.base_url} version {info.version or 'unknown'} model {info.model}"
                   f"{' (SIMULATED)' if info.simulated else ''}")


async def _inspect(target: str) -> TargetInfo:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        return await inspect_target(session, base_url(target), None)


@app.command()
@sim_flags
def sim(
    profile: SimProfile,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port, logged).")] = 8000,
    send_log: Annotated[Optional[Path], typer.Option(help="Write each request's chunk send times here (JSONL) on exit.")] = None,
) -> None:
    """Serve a vLLM-compatible SIMULATOR (runs against it are stored and reported as simulated)."""
    from siliconbench.agent.sim.sendlog import SendLog
    from siliconbench.agent.sim.server import serve

    setup_logging()
    log_to = SendLog() if send_log else None
    ensure_can_listen(host, port, "--port")
    try:
        _event_loop_runner()(serve(profile, host, port, send_log=log_to))
    except KeyboardInterrupt:
        pass
    if log_to is not None and send_log is not None:
        log_to.dump(send_log)


def main() -> None:
    run_program(app)

"""`siliconbench-agent`: run benchmarks against the node's vLLM, or serve the simulator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import aiohttp
import typer

from siliconbench.agent import settings
from siliconbench.agent.app import HEARTBEAT_FILE, node_devices, run_benchmark, run_daemon
from siliconbench.agent.app import event_loop_runner as _event_loop_runner
from siliconbench.agent.config import DEFAULT_SPOOL_DIR, AgentConfig, base_url
from siliconbench.agent.options import InstanceOpt, NeuronMonitorOpt, SpoolOpt, node_flags, plan_flags, sim_flags
from siliconbench.agent.sim.profile import SimProfile
from siliconbench.agent.target import TargetInfo, inspect_target
from siliconbench.core.cli import program_options, setup_logging
from siliconbench.core.cli import main as run_program
from siliconbench.core.listen import ensure_can_listen
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

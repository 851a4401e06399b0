"""`siliconbench-agent`: run benchmarks against the node's vLLM, or serve the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Annotated, Optional

import aiohttp
import typer

from siliconbench.agent.app import HEARTBEAT_FILE, AgentConfig, node_devices, run_benchmark, run_daemon
from siliconbench.agent.errors import ConfigError
from siliconbench.core.errors import SiliconbenchError
from siliconbench.core.plan import Plan, load_plan, parse_concurrency, parse_rates, parse_slo, with_overrides
from siliconbench.agent.target import TargetInfo, inspect_target

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

ENV = "SILICONBENCH_"


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _event_loop_runner():
    try:
        import uvloop
    except ImportError:  # uvloop is a declared dependency except on Windows
        return asyncio.run
    return uvloop.run


TargetOpt = Annotated[str, typer.Option(envvar=ENV + "TARGET", help="Base URL of the vLLM (OpenAI-compatible) server.")]
CollectorOpt = Annotated[str, typer.Option(envvar=ENV + "COLLECTOR", help="Collector gRPC address, HOST:PORT.")]
NodeOpt = Annotated[str, typer.Option(envvar=ENV + "NODE_NAME", help="Node name (default: host name); also the agent id.")]
InstanceOpt = Annotated[str, typer.Option(envvar=ENV + "INSTANCE_TYPE", help="Instance type, e.g. p5.48xlarge.")]
TokenOpt = Annotated[Optional[str], typer.Option(envvar=ENV + "AGENT_TOKEN", help="Bearer token for the collector.", show_default=False)]
IntervalOpt = Annotated[float, typer.Option(help="Device/host sampling interval in seconds (0.1-60).")]
SpoolOpt = Annotated[Path, typer.Option(envvar=ENV + "SPOOL_DIR", help="Directory for the agent's state (heartbeat; unacknowledged data).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]
DEFAULT_SPOOL = Path("./.siliconbench-agent")
SpoolMaxOpt = Annotated[int, typer.Option(envvar=ENV + "SPOOL_MAX_MB", help="Spool size (MiB) at which new load steps wait for the collector.")]
TlsCaOpt = Annotated[Optional[Path], typer.Option(envvar=ENV + "TLS_CA", help="PEM CA of the collector's certificate: connect with TLS.", show_default=False)]
TlsCertOpt = Annotated[Optional[Path], typer.Option(envvar=ENV + "TLS_CERT", help="PEM client certificate for mTLS (with --tls-key).", show_default=False)]
TlsKeyOpt = Annotated[Optional[Path], typer.Option(envvar=ENV + "TLS_KEY", help="PEM private key of --tls-cert.", show_default=False)]


def _delivery(config: AgentConfig, spool_dir: Path, spool_max_mb: int, tls_ca: Path | None, tls_cert: Path | None,
              tls_key: Path | None) -> AgentConfig:
    """The shipper's settings: where unacknowledged batches wait, and how to reach the collector."""
    if spool_max_mb < 1:
        raise ConfigError(f"--spool-max-mb must be at least 1, got {spool_max_mb}")
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key (SILICONBENCH_TLS_CERT/_KEY) go together")
    return dataclasses.replace(config, spool_dir=spool_dir, spool_max_bytes=spool_max_mb * 2**20, tls_ca=tls_ca,
                               tls_cert=tls_cert, tls_key=tls_key)


def _config(target: str, collector: str, node_name: str, instance_type: str, token: str | None,
            sample_interval_s: float, scenario: str | None) -> AgentConfig:
    if not 0.1 <= sample_interval_s <= 60:
        raise ConfigError(f"--sample-interval-s must be between 0.1 and 60, got {sample_interval_s}")
    return AgentConfig(target=target, collector=collector, node_name=node_name, instance_type=instance_type,
                       token=token, sample_interval_s=sample_interval_s, scenario=scenario or "")


@app.command()
def run(
    target: TargetOpt = "http://127.0.0.1:8000",
    collector: CollectorOpt = "127.0.0.1:50051",
    plan_file: Annotated[Optional[str], typer.Option("--plan", help="A plan file (YAML, JSON or TOML); the flags below override its values.")] = None,
    concurrency: Annotated[Optional[str], typer.Option(help="Closed-loop concurrency steps, comma-separated [default: 1,4,8,16,32]; '' for none.")] = None,
    rates: Annotated[Optional[str], typer.Option(help="Open-loop rate steps in requests/s, comma-separated (run after the concurrency steps).")] = None,
    arrival: Annotated[Optional[str], typer.Option(help="Open-loop arrivals: poisson or constant [default: poisson].")] = None,
    max_concurrency: Annotated[Optional[int], typer.Option(help="Open-loop cap on requests in flight (0: none).")] = None,
    requests_per_step: Annotated[Optional[int], typer.Option(help="Requests measured per step, warm-up excluded (0: bound by --duration-s only) [default: 32].")] = None,
    duration_s: Annotated[Optional[float], typer.Option(help="Step duration bound in seconds (0: bound by requests only).")] = None,
    input_tokens: Annotated[Optional[int], typer.Option(help="Exact prompt length in tokens, calibrated with the server's /tokenize [default: 512].")] = None,
    output_tokens: Annotated[Optional[int], typer.Option(help="Exact output length: max_tokens with ignore_eos [default: 128].")] = None,
    endpoint: Annotated[Optional[str], typer.Option(help="completions or chat [default: completions].")] = None,
    text_prompts: Annotated[bool, typer.Option("--text-prompts", help="completions: send calibrated text, not token ids.")] = False,
    dataset: Annotated[Optional[str], typer.Option(help="JSONL of prompts ({\"prompt\": ...} or {\"messages\": [...]}) instead of synthetic ones.")] = None,
    dataset_min_tokens: Annotated[Optional[int], typer.Option(help="Keep dataset prompts of at least this many tokens.")] = None,
    dataset_max_tokens: Annotated[Optional[int], typer.Option(help="Keep dataset prompts of at most this many tokens (0: any).")] = None,
    repetitions: Annotated[Optional[int], typer.Option(help="How often the whole sweep runs [default: 3].")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Processes that send the load, each step split across them (more than 1 when one core cannot keep up) [default: 1].")] = None,
    warmup_requests: Annotated[Optional[int], typer.Option(help="Requests sent first and excluded from results [default: 2].")] = None,
    request_timeout_s: Annotated[Optional[float], typer.Option(help="Per-request timeout in seconds [default: 300].")] = None,
    slo: Annotated[Optional[str], typer.Option(help="SLOs stored with the run, e.g. ttft_ms=500,tpot_ms=50.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Served model name (default: the server's first).")] = None,
    scenario: Annotated[Optional[str], typer.Option(envvar=ENV + "SCENARIO", help="Scenario label stored with the run, e.g. A.")] = None,
    node_name: NodeOpt = "",
    instance_type: InstanceOpt = "",
    token: TokenOpt = None,
    sample_interval_s: IntervalOpt = 1.0,
    run_id: Annotated[Optional[str], typer.Option(help="Run id (default: generated).")] = None,
    spool_dir: SpoolOpt = DEFAULT_SPOOL,
    spool_max_mb: SpoolMaxOpt = 512,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run a benchmark plan against TARGET, timing every token, and stream the results to COLLECTOR.

    Prints the run id when the collector has acknowledged everything. Exit code 2: bad input or target."""
    _setup_logging(verbose)
    try:
        base = load_plan(plan_file) if plan_file else Plan()
        plan = with_overrides(
            base,
            concurrency=parse_concurrency(concurrency) if concurrency is not None else None,
            rates=parse_rates(rates) if rates is not None else None,
            arrival=arrival, max_concurrency=max_concurrency, requests_per_step=requests_per_step,
            duration_s=duration_s, input_tokens=input_tokens, output_tokens=output_tokens, endpoint=endpoint,
            token_id_prompts=False if text_prompts else None, dataset=dataset,
            dataset_min_tokens=dataset_min_tokens, dataset_max_tokens=dataset_max_tokens,
            repetitions=repetitions, warmup_requests=warmup_requests, request_timeout_s=request_timeout_s,
            workers=workers,
            slo=parse_slo(slo) if slo is not None else None, model=model, scenario=scenario)
        config = _delivery(_config(target, collector, node_name, instance_type, token, sample_interval_s, scenario),
                           spool_dir, spool_max_mb, tls_ca, tls_cert, tls_key)
        done_run, _ = _event_loop_runner()(run_benchmark(config, plan, run_id))
    except SiliconbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(done_run)


@app.command()
def daemon(
    target: TargetOpt = "http://127.0.0.1:8000",
    collector: CollectorOpt = "127.0.0.1:50051",
    plan_file: Annotated[Optional[str], typer.Option(envvar=ENV + "PLAN_FILE", help="A plan (YAML/JSON of the run options) to run once at start.")] = None,
    scenario: Annotated[Optional[str], typer.Option(envvar=ENV + "SCENARIO", help="This node's scenario label (e.g. A), for fleet selectors and reports.")] = None,
    node_name: NodeOpt = "",
    instance_type: InstanceOpt = "",
    token: TokenOpt = None,
    sample_interval_s: IntervalOpt = 1.0,
    spool_dir: SpoolOpt = DEFAULT_SPOOL,
    spool_max_mb: SpoolMaxOpt = 512,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run as the node's long-lived agent (the DaemonSet): sample and ship until SIGTERM, running PLAN_FILE once."""
    _setup_logging(verbose)
    try:
        plan = load_plan(plan_file) if plan_file else None
        config = _delivery(_config(target, collector, node_name, instance_type, token, sample_interval_s, scenario),
                           spool_dir, spool_max_mb, tls_ca, tls_cert, tls_key)
        _event_loop_runner()(run_daemon(config, plan, spool_dir / HEARTBEAT_FILE))
    except SiliconbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def health(
    spool_dir: SpoolOpt = DEFAULT_SPOOL,
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
    target: Annotated[Optional[str], typer.Option(envvar=ENV + "TARGET", help="Also inspect this vLLM target.")] = None,
    instance_type: InstanceOpt = "",
) -> None:
    """Print what this node has: accelerators, driver, instance type, and the target's version and model."""
    _setup_logging(False)
    try:
        devices = node_devices()
        typer.echo(f"accelerators: {devices.count} x {devices.kind} {devices.model}".rstrip())
        typer.echo(f"driver: {devices.driver_version or 'unknown'}")
        typer.echo(f"instance type: {instance_type or devices.instance_type or 'unknown (set --instance-type)'}")
        if target:
            info = _event_loop_runner()(_inspect(target))
            typer.echo(f"target: {info.base_url} version {info.version or 'unknown'} model {info.model}"
                       f"{' (SIMULATED)' if info.simulated else ''}")
    except SiliconbenchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


async def _inspect(target: str) -> TargetInfo:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        return await inspect_target(session, target.rstrip("/"), None)


@app.command()
def sim(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: Annotated[str, typer.Option(help="Served model name.")] = "siliconbench/sim-llama",
    ttft_ms: Annotated[float, typer.Option(help="Base time to first token (ms).")] = 50.0,
    ttft_per_prompt_token_ms: Annotated[float, typer.Option(help="Prefill time added per prompt token (ms).")] = 0.0,
    itl_ms: Annotated[float, typer.Option(help="Gap between chunks at concurrency 1 (ms).")] = 10.0,
    tokens_per_chunk: Annotated[int, typer.Option(help="Tokens carried by each chunk.")] = 1,
    slowdown_per_stream: Annotated[float, typer.Option(help="Latency grows by this fraction per extra concurrent stream.")] = 0.0,
    ping_every_chunks: Annotated[int, typer.Option(help="Send an SSE ': ping' comment every N chunks (0: never).")] = 0,
    max_model_len: Annotated[int, typer.Option(help="Longest prompt + output the simulator accepts.")] = 8192,
    send_log: Annotated[Optional[Path], typer.Option(help="Write each request's chunk send times here (JSONL) on exit.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve a vLLM-compatible SIMULATOR (runs against it are stored and reported as simulated)."""
    from siliconbench.agent.sim.profile import SimProfile
    from siliconbench.agent.sim.sendlog import SendLog
    from siliconbench.agent.sim.server import serve

    _setup_logging(verbose)
    profile = SimProfile(model=model, ttft_ms=ttft_ms, ttft_per_prompt_token_ms=ttft_per_prompt_token_ms,
                         itl_ms=itl_ms, tokens_per_chunk=tokens_per_chunk, slowdown_per_stream=slowdown_per_stream,
                         ping_every_chunks=ping_every_chunks, max_model_len=max_model_len)
    try:
        profile.validate()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    log_to = SendLog() if send_log else None
    try:
        _event_loop_runner()(serve(profile, host, port, send_log=log_to))
    except KeyboardInterrupt:
        pass
    if log_to is not None and send_log is not None:
        log_to.dump(send_log)


def main() -> None:
    app()

"""The agent's command-line options, declared once and validated into models.

Groups of flags: the node's (`NODE_FLAGS`: target, collector, identity, sampling, spool, TLS),
shared by `run`, `search` and `daemon`, the plan's (`PLAN_FLAGS`), for `run` (and for `search` those of
them that do not pick loads: `SEARCH_PLAN_FLAGS`), the search's (from `SearchOptions`' fields), and the
simulator's profile, for `sim` (made from `SimProfile`'s fields). Each reaches its commands as
one validated object (siliconbench.core.cli.with_flags), so a command declares only its own flags.

Plan flags default to None, meaning "as the plan file says, else the plan's default"; their help
shows the plan's default, so `run --help` reads like the plan.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import TypeAdapter, ValidationError

from siliconbench.agent import settings
from siliconbench.core.search import SearchOptions
from siliconbench.core.sessions import SessionPlan, sessions_with
from siliconbench.agent.config import DEFAULT_SPOOL_DIR, DEFAULT_SPOOL_MB, AgentConfig
from siliconbench.agent.sim.profile import SimProfile
from siliconbench.core.cli import flag, model_builder, model_flags, with_flags
from siliconbench.core.config import config_error, flag_error
from siliconbench.core.trace import TracePlan
from siliconbench.core.plan import (DEFAULT_CONCURRENCY, Plan, load_plan, parse_concurrency, parse_rates, parse_slo,
                                    parse_workers, with_overrides)

TargetOpt = Annotated[str, typer.Option(envvar=settings.TARGET, help="Base URL of the vLLM (OpenAI-compatible) server.")]
InstanceOpt = Annotated[str, typer.Option(envvar=settings.INSTANCE_TYPE, help="Instance type, e.g. p5.48xlarge. \\[default: detected on the node, else unknown]")]
NeuronMonitorOpt = Annotated[str, typer.Option(envvar=settings.NEURON_MONITOR, help="The neuron-monitor binary: a name on PATH or a path (Neuron nodes).")]
SpoolOpt = Annotated[Path, typer.Option(envvar=settings.SPOOL_DIR, help="Directory for the agent's state (heartbeat; unacknowledged data).")]

NODE_FLAGS = [
    flag("target", TargetOpt, "http://127.0.0.1:8000"),
    flag("collector", Annotated[str, typer.Option(envvar=settings.COLLECTOR, help="Collector gRPC address, HOST:PORT.")], "127.0.0.1:50051"),
    flag("scenario", Annotated[Optional[str], typer.Option(envvar=settings.SCENARIO, help="This node's scenario label, e.g. A: stored with its runs, matched by fleet selectors.", show_default=False)], None),
    flag("node_name", Annotated[str, typer.Option(envvar=settings.NODE_NAME, help="Node name (default: host name); also the agent id.")], ""),
    flag("instance_type", InstanceOpt, ""),
    flag("token", Annotated[Optional[str], typer.Option(envvar=settings.AGENT_TOKEN, help="Bearer token for the collector.", show_default=False)], None),
    flag("token_file", Annotated[Optional[Path], typer.Option(envvar=settings.AGENT_TOKEN_FILE, help="File holding the bearer token, re-read for each stream (a projected service-account token the kubelet rotates).", show_default=False)], None),
    flag("sample_interval_s", Annotated[float, typer.Option(help="Device/host sampling interval in seconds (0.1-60).")], 1.0),
    flag("neuron_monitor", NeuronMonitorOpt, "neuron-monitor"),
    flag("spool_dir", SpoolOpt, DEFAULT_SPOOL_DIR),
    flag("spool_only", Annotated[bool, typer.Option("--spool-only", help="run: start without a reachable collector, keeping everything in the spool until one answers (default: the collector must answer within a few seconds before the first request).")], False),
    flag("spool_max_mb", Annotated[int, typer.Option(envvar=settings.SPOOL_MAX_MB, help="Spool size (MiB) at which new requests wait for the collector.")], DEFAULT_SPOOL_MB),
    flag("tls_ca", Annotated[Optional[Path], typer.Option(envvar=settings.TLS_CA, help="PEM CA of the collector's certificate: connect with TLS.", show_default=False)], None),
    flag("tls_cert", Annotated[Optional[Path], typer.Option(envvar=settings.TLS_CERT, help="PEM client certificate for mTLS (with --tls-key).", show_default=False)], None),
    flag("tls_key", Annotated[Optional[Path], typer.Option(envvar=settings.TLS_KEY, help="PEM private key of --tls-cert.", show_default=False)], None),
]


_AGENT_CONFIG = TypeAdapter(AgentConfig)


def agent_config(*, tls_ca: Path | None, tls_cert: Path | None, tls_key: Path | None, scenario: str | None,
                 **fields: Any) -> AgentConfig:
    """The node flags as a validated AgentConfig; every bad flag named at once."""
    values = {**fields, "scenario": scenario or "", "tls": {"ca": tls_ca, "cert": tls_cert, "key": tls_key}}
    try:  # from one mapping, so a TLS problem is reported together with the others
        return _AGENT_CONFIG.validate_python(values)
    except ValidationError as exc:
        raise flag_error(exc) from None


def _shown(value: Any) -> str:
    """A plan value in its flag's syntax: 1,4,8 for a tuple, ttft_ms=500 for a mapping, 300 for 300.0."""
    if isinstance(value, tuple):
        return ",".join(_shown(v) for v in value) or "none"
    if isinstance(value, dict):
        return ",".join(f"{k}={_shown(v)}" for k, v in value.items()) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


DEFAULT_PLAN = Plan()


def _planflag(name: str, kind: type, help: str) -> inspect.Parameter:
    """A flag that overrides plan field `name`; None (not given) keeps the plan file's value. Its help
    shows the plan's default (typer would show None)."""
    text = f"{help} \\[default: {_shown(getattr(DEFAULT_PLAN, name))}]"  # typer renders help as rich markup: \\[ is a literal [
    return flag(name, Annotated[Optional[kind], typer.Option(help=text, show_default=False)], None)


def _sessionflag(name: str, kind: type, help: str) -> inspect.Parameter:
    """A `--sessions-*` flag over the sessions field it names; None (not given) keeps the plan file's value."""
    text = f"{help} \\[default: {_shown(getattr(SessionPlan(), name.removeprefix('sessions_')))}]"
    return flag(name, Annotated[Optional[kind], typer.Option(help=text, show_default=False)], None)


# A sessions workload (siliconbench.core.sessions): any of these makes the run's steps sessions, on top of a plan
# file's sessions: section (a search's probes then count sessions: it searches session concurrency or rate).
SESSION_FLAGS = [
    _sessionflag("sessions_turns", int, "Sessions: turns per session (any --sessions-* flag runs sessions; give --endpoint chat)."),
    _sessionflag("sessions_think_time_s", float, "Sessions: seconds between an answer and the next turn."),
    _sessionflag("sessions_first_turn_tokens", int, "Sessions: the first user message's tokens (the server's /tokenize)."),
    _sessionflag("sessions_followup_tokens", int, "Sessions: each later user message's tokens."),
    _sessionflag("sessions_system_prompts", str, "Sessions: shared system prompts as TOKENS[:WEIGHT] groups, e.g. 512:3,128:1."),
    _sessionflag("sessions_echo_reasoning", bool, "Sessions: send each answer's reasoning back with it."),
]


PLAN_FLAGS = [
    flag("plan_file", Annotated[Optional[str], typer.Option("--plan", help="A plan file (YAML, JSON or TOML); the flags below override its values.", show_default=False)], None),
    _planflag("concurrency", str, "Closed-loop concurrency steps, comma-separated; '' for none."),
    _planflag("rates", str, "Open-loop rate steps in requests/s, comma-separated; without --concurrency (or a plan file's concurrency) only these run, else after the concurrency steps."),
    _planflag("arrival", str, "Open-loop arrivals: poisson or constant."),
    _planflag("max_concurrency", int, "Open-loop cap on requests in flight (0: none)."),
    _planflag("requests_per_step", int, "Requests measured per step, warm-up excluded (0: bound by --duration-s only)."),
    _planflag("duration_s", float, "Step duration bound in seconds (0: bound by requests only)."),
    _planflag("input_tokens", int, "Exact prompt length in tokens, calibrated with the server's /tokenize."),
    _planflag("output_tokens", int, "Exact output length: max_tokens with ignore_eos."),
    _planflag("endpoint", str, "completions or chat."),
    _planflag("seed", int, "Seed of Poisson arrivals and of the synthetic prompts' openings (with --shared-prompts, the same seed sends the same prompts)."),
    _planflag("shared_prompts", bool, "Send the same synthetic prompts (token ids, text or chat) in every run with the same --seed (measures the prefix cache); default: unique per run and request. Dataset prompts are always sent as they are."),
    flag("text_prompts", Annotated[bool, typer.Option("--text-prompts", help="completions: send calibrated text, not token ids.")], False),
    _planflag("dataset", str, "JSONL of prompts ({\"prompt\": ...} or {\"messages\": [...]}) instead of synthetic ones, sent as they are in every run."),
    _planflag("dataset_min_tokens", int, "Keep dataset prompts of at least this many tokens."),
    _planflag("dataset_max_tokens", int, "Keep dataset prompts of at most this many tokens (0: any)."),
    _planflag("repetitions", int, "How often the whole sweep runs."),
    _planflag("workers", str, "Processes that send the load, each step split across them. auto: one per 64 streams of the largest step, at most one per usable core (CPU affinity and cgroup CPU limit); grown for the next steps when a sending process passes 50% of a core; the run stops (exit 8) after a step that saturated a process (90% of a core) with every usable core sending. A number N: N processes, saturated steps flagged and the run goes on."),
    _planflag("warmup_requests", int, "Requests sent first and excluded from results."),
    _planflag("request_timeout_s", float, "Per-request timeout in seconds."),
    _planflag("slo", str, "Goodput SLOs, the report's default: ttft/ttfa/itl/tpot/e2e_ms, e.g. ttft_ms=500,itl_ms=50."),
    flag("model", Annotated[Optional[str], typer.Option(help="Served model name (default: the server's first).", show_default=False)], None),
    *SESSION_FLAGS,
]

_TRACE_OPT = {  # flag -> (type, help); a plan file's `trace:` keys without the prefix (siliconbench.core.trace)
    "trace": (str, "Replay this trace file's arrivals, lengths and shared prefixes instead of the steps."),
    "trace_format": (str, "The trace's format: mooncake, azure, burstgpt or siliconbench."),
    "trace_time_scale": (float, "Stretch the trace's clock by this factor (0.5: the same arrivals in half the time). [default: 1]"),
    "trace_rate_scale": (float, "Multiply the trace's offered rate by this factor. [default: 1]"),
    "trace_window": (str, "Replay only START:END seconds of the trace (from its first arrival)."),
    "trace_bad_lines": (str, "Malformed trace lines: skip, refuse, or auto (refuse over 1 %). [default: auto]"),
    "trace_block_size": (int, "Tokens behind each of the trace's hash ids. [default: 512]"),
    "trace_part": (str, "NODE/NODES: this node's part of the trace, sessions kept together."),
}
TRACE_FLAGS = [flag(name, Annotated[Optional[kind], typer.Option(help=text.replace("[", "\\["), show_default=False)], None)
               for name, (kind, text) in _TRACE_OPT.items()]


def trace_from_flags(plan: Plan, given: dict[str, Any]) -> Plan:
    """`plan` with the trace flags that were given over its `trace:` section (--trace and --trace-format
    start one); validated, problems named by flag."""
    values = {name.removeprefix("trace_") if name != "trace" else "file": value
              for name, value in given.items() if value is not None}
    if not values:
        return plan
    section = dataclasses.asdict(plan.trace) if plan.trace is not None else {}
    try:
        return with_overrides(plan, trace=TracePlan(**{**section, **values}))
    except ValidationError as exc:
        raise config_error(exc, "--trace options (a plan's trace: keys)") from None


def plan_from_flags(*, plan_file: str | None, concurrency: str | None, rates: str | None, slo: str | None,
                    workers: str | None, text_prompts: bool, **fields: Any) -> Plan:
    """The plan file (or the default plan) with the plan flags that were given applied, validated."""
    base = load_plan(plan_file) if plan_file else Plan()
    session_fields = {f.name: fields.pop(f.name, None) for f in SESSION_FLAGS}
    fields["sessions"] = sessions_with(base.sessions, **{k.removeprefix("sessions_"): v
                                                         for k, v in session_fields.items()})
    base = trace_from_flags(base, {name: fields.pop(name) for name in _TRACE_OPT if name in fields})
    if concurrency is None and rates is not None and base.concurrency == DEFAULT_CONCURRENCY:
        concurrency = ""  # --rates alone runs only the rate steps (siliconbench.core.plan)
    return with_overrides(
        base,
        concurrency=parse_concurrency(concurrency) if concurrency is not None else None,
        rates=parse_rates(rates) if rates is not None else None,
        slo=parse_slo(slo) if slo is not None else None,
        workers=parse_workers(workers) if workers is not None else None,
        token_id_prompts=False if text_prompts else None,
        **fields)


# `search` sends the plan's requests (lengths, endpoint, prompts, workers...) at the loads it picks itself
_SEARCH_CHOOSES = ("concurrency", "rates", "requests_per_step", "duration_s", "repetitions", "slo")
SEARCH_PLAN_FLAGS = [f for f in PLAN_FLAGS if f.name not in _SEARCH_CHOOSES]


def search_plan_from_flags(**fields: Any) -> Plan:
    """The plan flags of `search` (its loads are the search's own) as a plan of one repetition."""
    plan = plan_from_flags(concurrency=None, rates=None, slo=None, **fields)
    return with_overrides(plan, repetitions=1)


node_flags = with_flags("node", NODE_FLAGS, agent_config)
plan_flags = with_flags("plan", PLAN_FLAGS + TRACE_FLAGS, plan_from_flags)
search_plan_flags = with_flags("plan", SEARCH_PLAN_FLAGS, search_plan_from_flags)
_CONTROL = Annotated[str, typer.Option(help="What the search varies: concurrency (streams in flight, closed loop) or rate (offered requests/s, open loop with the plan's --arrival).")]
search_flags = with_flags("options", model_flags(SearchOptions, only=("control", "start", "max", "tolerance"),
                                                 given={"control": _CONTROL}),
                          model_builder(SearchOptions))
sim_flags = with_flags("profile", model_flags(SimProfile), model_builder(SimProfile))

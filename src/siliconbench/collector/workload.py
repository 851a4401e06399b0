"""The workload a run measured, read back from the plan the agent stored with it (runs.config_json),
and whether two runs measured the same one.

Two runs measure the same workload when they send the same requests: endpoint, prompt and output
lengths, prompt source (synthetic token ids or text, unique per run or shared; or a dataset with its
length bounds, whose prompts every run sends as they are).
The step list, repetitions and warm-up are stated but may differ: reports compare runs point by point,
and a point missing from one run is simply not compared. A 64-token run against a 128-token run is
not a comparison of hardware (the issue's "+4 %"), so `vs baseline` is withheld across workloads
unless asked for (`--allow-mixed-workloads`).
"""

from __future__ import annotations

import json

from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import Plan, plan_from_mapping


def plan_of(config_json: str) -> Plan | None:
    """The plan a run stored; None when it stored none, or one this version cannot read."""
    try:
        data = json.loads(config_json or "{}")
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data:
        return None
    try:
        return plan_from_mapping(data, "stored plan")
    except ConfigError:
        return None


def _prompts(plan: Plan) -> str:
    """Where the prompts came from, and whether another run sent the same ones (a second run over the same
    prompts may be served from vLLM's prefix cache)."""
    if plan.trace is not None:  # each request's own lengths, from the trace
        trace = plan.trace
        window = f", window {trace.window} s" if trace.window else ""
        return (f"trace {trace.file} ({trace.format}, time x{trace.time_scale:g}, rate x{trace.rate_scale:g}"
                f"{window}), each request's own lengths")
    if plan.dataset:
        bounds = f" ({plan.dataset_min_tokens}–{plan.dataset_max_tokens or '∞'} tokens)"
        return (f"dataset {plan.dataset}{bounds if plan.dataset_min_tokens or plan.dataset_max_tokens else ''}, "
                "sent as is (the same in every run)")
    kind = "synthetic token ids" if plan.endpoint == "completions" and plan.token_id_prompts else "synthetic text"
    return kind + (f", shared by runs of seed {plan.seed}" if plan.shared_prompts else ", unique per run")


def requests_shape(plan: Plan) -> dict[str, object]:
    """What makes two runs' requests the same (module docstring)."""
    if plan.sessions is not None:  # conversations: their shape in place of one prompt's
        return {"endpoint": plan.endpoint, "prompt tokens": None, "output tokens": plan.output_tokens,
                "prompts": "sessions: " + plan.sessions.describe()}
    traced = plan.trace is not None
    return {"endpoint": plan.endpoint, "prompt tokens": None if plan.dataset or traced else plan.input_tokens,
            "output tokens": None if traced else plan.output_tokens, "prompts": _prompts(plan)}


def describe(plan: Plan | None) -> str:
    """One line: 'completions, prompt tokens 512, output tokens 128, prompts synthetic token ids'."""
    if plan is None:
        return "not recorded"
    return ", ".join(f"{name} {value}" if name != "endpoint" else str(value)
                     for name, value in requests_shape(plan).items() if value is not None)


def steps_text(plan: Plan) -> str:
    """'concurrency=1 ×32 req; poisson rate=4/s 30 s', one entry per step of a repetition."""
    out = []
    unit = "sessions" if plan.sessions is not None else "req"  # a sessions plan's steps count sessions
    for spec in plan.step_specs():
        bounds = [f"×{spec.requests} {unit}" if spec.requests else "", f"{spec.duration_s:g} s" if spec.duration_s else ""]
        out.append(" ".join([spec.label(), *filter(None, bounds)]))
    return "; ".join(out)


def differences(plan: Plan | None, base: Plan | None) -> list[str]:
    """How `plan`'s requests differ from `base`'s, in words ('output tokens 128 vs 64'); empty when
    they are the same, or when either run stored no plan (nothing to compare)."""
    if plan is None or base is None:
        return []
    mine, theirs = requests_shape(plan), requests_shape(base)
    return [f"{name} {mine[name]} vs {theirs[name]}" for name in mine if mine[name] != theirs[name]]

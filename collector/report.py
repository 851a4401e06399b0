"""Renders rollups for people: a Markdown report of one run."""

from __future__ import annotations

import math

from collector.rollups import QUANTILES, RunInfo, StepRollup


def _fmt(values: tuple[float, ...]) -> str:
    return " / ".join("–" if v is None or math.isnan(v) else f"{v:.1f}" for v in values)


def markdown(info: RunInfo, steps: list[StepRollup]) -> str:
    q = "/".join(f"p{round(x * 100)}" for x in QUANTILES)
    target_kind = "**SIMULATED target** (siliconbench simulator)" if info.simulated else "real target"
    lines = [
        f"# siliconbench run {info.run_id}",
        "",
        f"- target: {info.target_url} — {target_kind}, version {info.target_version or 'unknown'}",
        f"- model: {info.model}; node: {info.agent_id}; scenario: {info.scenario or '–'}; started {info.started} UTC",
        "",
        f"| step | conc | rep | requests | errors | TTFT ms {q} | ITL ms {q} | ITL/token ms {q} | TPOT ms {q} "
        f"| E2E ms {q} | output tok/s |",
        "|---:|---:|---:|---:|---:|---|---|---|---|---|---:|",
    ]
    for s in steps:
        lines.append(
            f"| {s.step} | {s.concurrency} | {s.repetition} | {s.requests} | {s.errors} | {_fmt(s.ttft_ms)} | "
            f"{_fmt(s.itl_ms)} | {_fmt(s.itl_per_token_ms)} | {_fmt(s.tpot_ms)} | {_fmt(s.e2e_ms)} | "
            f"{s.output_tokens_per_s:,.1f} |"
        )
    lines += [
        "",
        "Formulas: TTFT = send → first content-bearing chunk; ITL = gap between consecutive content chunks; "
        "ITL/token = gap ÷ tokens in the chunk; TPOT = (E2E − TTFT) ÷ (output tokens − 1); "
        "output tok/s = Σ output tokens (server usage) ÷ (last request end − first request start). "
        "Percentiles over successful requests, computed in ClickHouse.",
    ]
    return "\n".join(lines) + "\n"

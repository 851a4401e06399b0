"""The report's prose: how each figure is defined, stated once for every format's definitions list
and table captions."""

from __future__ import annotations

from siliconbench.collector.prices import FORMULA as COST_FORMULA

STEADY_TEXT = ("steady output tok/s is over the step's steady part, from the first instant all its streams were "
               "in flight to the last (closed loop; its ramp and drain left out): output tokens whose chunks "
               "arrived in it ÷ its length.")

PERCENTILE_METHOD = ("exact: the value at 0-based rank ⌊q·n⌋ of the n sorted values, no interpolation, no "
                     "sampling (ClickHouse quantileExact; the agent's console and the fleet report use the same)")

DEFINITIONS = (
    f"Percentiles (TTFT, ITL, TPOT, E2E; p50/p90/p95/p99): {PERCENTILE_METHOD}.",
    "TTFT: send → first content-bearing chunk (a role-only chunk does not count).",
    "chunk-ITL: gap between consecutive content-bearing chunks; ITL/token: that gap ÷ the tokens the chunk carried.",
    "TPOT: (E2E − TTFT) ÷ (output tokens − 1) per request with more than one output token.",
    "E2E: send → last byte of the stream.",
    "Throughput: output tokens ÷ step wall time (first request start → last request end, warm-up excluded); "
    "total tok/s adds prompt tokens; req/s counts successful requests. The agent's console states the same "
    "figure for each step.",
    f"Steady throughput (closed loop): {STEADY_TEXT} Little's law (as steady output tok/s against concurrency "
    "÷ mean E2E × output tokens per request), the token bound and the concurrency-1 bound check the steady "
    "figure where the steady part spans at least two mean E2Es (a shorter one is a single round, which reads "
    "low), the whole-step figures otherwise; peak, goodput and cost use the whole-step figures.",
    "Goodput: the same, counting only requests that met every SLO given (TPOT of a one-token request counts as 0).",
    f"Cost: {COST_FORMULA}, for a named throughput (peak of the sweep, or goodput under SLO).",
    "Energy per token: device energy over the step ÷ output tokens of the step. The energy comes from the NVML "
    "energy counter read at the step's start and end, else from mean power × step time; Neuron devices report no "
    "power, so no "
    "energy is stated for them (each table names the method used).",
    "Repetitions: every figure is the median of the repetitions of its step; ranges show min–max.",
    "Workload: the plan each agent stored with its run (endpoint, prompt and output tokens, prompt source, "
    "steps, warm-up, repetitions); 'vs baseline' is computed only between runs that sent the same requests, "
    "unless --allow-mixed-workloads.",
    "Sweep point: (mode, concurrency, rate) as the agent's steps table states it — 'concurrency 8' (closed loop: "
    "8 requests always in flight), 'poisson 4 req/s' (open loop, no cap), 'constant 8 req/s, cap 16'. Only "
    "repetitions of the same point are summarised together.",
    "Checks per mode: Little's law compares req/s with concurrency ÷ mean E2E (closed loop), the offered rate "
    "(open loop), or the lower of the offered rate and cap ÷ mean E2E (capped); the token bound uses the "
    "concurrency (closed) or the measured mean in flight (open).",
    "Step verdicts: client-limited when the client's dispatch delay (scheduled → sent) has p99 ≥ 5 ms and ≥ 2% "
    "of a request's time (closed loop: median E2E; open loop: the arrival interval), or a sending process used "
    "≥ 90% of a core: the load was not the one asked for. Node busy when the agent's event loop ran late (p99 ≥ "
    "5 ms) while it sent on time: the node's CPU, the server's and the agent's are named; the figures stand.",
)

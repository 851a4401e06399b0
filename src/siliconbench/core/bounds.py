"""How much a plan may ask for: one bound for every number and list of a plan (siliconbench.core.plan), each
with its reason. A value past its bound is refused when the plan is built (file, flags or code), named by its
key path and the bound, before any request: unbounded, `rates: [1e9]` grew the agent by 40 MB/s,
`requests_per_step: 1e12` and `duration_s: 1e12` made steps that never end, and a 5 MB plan was read whole.

The bounds catch typos and absurd plans; none of them limits a measurement anyone runs. (What the store takes
of one value is core/limits.py; the two meet at MAX_CONFIG_CHARS, the plan stored with its run.)
"""

from __future__ import annotations

from siliconbench.core.limits import MAX_CONFIG_CHARS, MAX_ID_CHARS, MAX_TEXT_CHARS

# vLLM schedules at most max_num_seqs streams at once (default 256, rarely set above 2,048); past that,
# requests only queue. And each request in flight holds one socket from the ~28k ephemeral ports Linux gives
# one source address toward one target, so 10,000 leaves ample room for both.
MAX_CONCURRENCY = 10_000
# Load processes beyond the node's cores only contend; the largest instances have 192 vCPUs.
MAX_WORKERS = 256
# Prompt and output lengths: the longest context any served model offers today is about 1M tokens.
MAX_TOKENS = 1 << 20
# Open-loop requests/s. One agent sends ~400,000 content chunks/s at its ceiling (README), a few thousand
# short requests/s; past that a rate only queues requests inside the agent (at 1e9/s it grew 40 MB/s).
MAX_RATE_RPS = 10_000.0
# Requests in one step (requests_per_step, a step's `requests`, warm-up): a million is hours of load at
# the rates vLLM serves, and the step keeps a few figures of every request in memory for its summary.
MAX_REQUESTS = 1_000_000
# A step's duration bound: a day. Reports compare steps; a step longer than a day is a typo.
MAX_DURATION_S = 86_400.0
# One request's timeout: an hour, enough for MAX_TOKENS output tokens at ~300 tokens/s.
MAX_REQUEST_TIMEOUT_S = 3_600.0
# Repetitions of the whole sweep: each repeats every step; 100 already gives tight confidence intervals.
MAX_REPETITIONS = 1_000
# Steps in one sweep (concurrency, rates or explicit steps): the plan is stored with its run as JSON of at
# most MAX_CONFIG_CHARS characters, ~60 a step.
MAX_STEPS = 1_000
# SLO thresholds in milliseconds: a day; a longer one is a typo (seconds given as ms twice over).
MAX_SLO_MS = 86_400_000.0
# The Poisson seed: any 64-bit value.
MAX_SEED = (1 << 63) - 1
# Names stored with the run (scenario, model) take what the store takes of a label; a dataset path, of text.
MAX_NAME_CHARS = MAX_ID_CHARS
# Served models one plan spreads its requests over (a base model and its LoRA adapters): vLLM serves a
# few dozen adapters at most (--max-loras); each name is a row group in every per-model report table.
MAX_MODELS = 256
MAX_PATH_CHARS = MAX_TEXT_CHARS
# The plan as JSON, stored with its run: the store refuses a longer one (and the batch holding it).
MAX_PLAN_JSON_CHARS = MAX_CONFIG_CHARS
# A plan file is read whole before it is parsed: a plan is a few hundred bytes, its JSON at most 64 KiB;
# 1 MiB leaves room for any comments and keeps a stray multi-megabyte file from the YAML parser.
MAX_PLAN_FILE_BYTES = 1 << 20
# JSON values (scalars, lists and mappings, nested ones counted) in `extra`: request fields are a handful.
# Counted as the values are walked, so a YAML alias bomb is refused before it is expanded.
MAX_EXTRA_VALUES = 1_000
# Sessions (siliconbench.core.sessions): turns of one session; each resends the whole history, so a
# session's last turn is the longest request, and the plan's check refuses one past the context anyway.
MAX_TURNS = 10_000
# Think time between turns: an hour; a longer one is a typo (ms given as s).
MAX_THINK_S = 3_600.0
# System-prompt groups: each is one shared prompt calibrated before the run.
MAX_SYSTEM_PROMPTS = 256
# Agent graphs (sessions.agent): nodes after a session's plain turns, and sub-agents one node starts at once.
MAX_AGENT_NODES = 64
MAX_SUBAGENTS = 64

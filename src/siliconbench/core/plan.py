"""The benchmark plan: what the load generator runs. Validated when built, before any request:
strict types (`repetitions: 2.5` and `input_tokens: "512"` are refused), unknown keys refused with a
"did you mean", every value bounded (siliconbench.core.bounds, with the reasons), request fields in `extra`
that would break the measurement refused (siliconbench.core.extra), and every problem reported at once
with its key path and bound (`steps.2.rate: must be less than or equal to 10000, ...`); see
siliconbench.core.config.

A plan is a YAML, JSON or TOML mapping of `Plan`'s fields. Steps come either from the shorthands
(`concurrency: [1, 4, 8]` closed-loop steps, then `rates: [2, 4]` open-loop steps with `arrival` and
`max_concurrency`, each bounded by `requests_per_step` and/or `duration_s`) or from an explicit list:

    steps:
      - {concurrency: 8, requests: 64}                   # closed loop: 8 requests always in flight
      - {rate: 4, arrival: poisson, duration_s: 30}      # open loop: Poisson arrivals at 4 requests/s
      - {rate: 8, arrival: constant, max_concurrency: 16, requests: 200}

The default concurrency steps (1, 4, 8, 16, 32) stand in only for a plan that asks for no load of its
own: a plan (file, code or flags) that gives `rates` without `concurrency` runs only the rate steps
(`siliconbench-agent run --rates 4,8` sends no closed-loop step); give both to run both, concurrency
steps first.

Every step runs `repetitions` times (the whole list, in order, per repetition). `workers: N` sends each
step's load from N processes (see siliconbench.agent.workers); the steps mean the same load whatever N is.
`workers: auto` (the default) lets the agent size them to the load and its cores (siliconbench.agent.sizing).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from bisect import bisect_right
from dataclasses import asdict, replace
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Field, ValidationError, WrapValidator, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs, PydanticCustomError

from siliconbench.core.config import (
    STRICT,
    Bool,
    Int,
    NonNegativeFloat,
    PositiveFloat,
    Str,
    config_error,
    flag_error,
    invalid,
)
from siliconbench.core.bounds import (MAX_CONCURRENCY, MAX_DURATION_S, MAX_MODELS, MAX_NAME_CHARS, MAX_PATH_CHARS,
                                      MAX_PLAN_FILE_BYTES, MAX_PLAN_JSON_CHARS, MAX_RATE_RPS, MAX_REPETITIONS,
                                      MAX_REQUEST_TIMEOUT_S, MAX_REQUESTS, MAX_SEED, MAX_SLO_MS, MAX_STEPS,
                                      MAX_TOKENS, MAX_WORKERS)
from siliconbench.core.errors import ConfigError
from siliconbench.core.files import read_capped
from siliconbench.core.extra import RequestExtra, json_values
from siliconbench.core.search import SearchPlan
from siliconbench.core.sessions import SessionPlan
from siliconbench.core.slo import parse_goodput_slo
from siliconbench.core.trace import TracePlan

ARRIVALS = ("poisson", "constant")
SLO_KEYS = ("ttft_ms", "ttfa_ms", "tpot_ms", "itl_ms", "e2e_ms")  # ttfa: time to first answer token

DEFAULT_CONCURRENCY = (1, 4, 8, 16, 32)
STEP_KEYS = ("concurrency", "rate", "arrival", "max_concurrency", "requests", "duration_s")

Concurrency = Annotated[Int, Field(ge=0, le=MAX_CONCURRENCY)]
Rate = Annotated[NonNegativeFloat, Field(le=MAX_RATE_RPS)]
Requests = Annotated[Int, Field(ge=0, le=MAX_REQUESTS)]
Duration = Annotated[NonNegativeFloat, Field(le=MAX_DURATION_S)]
Name = Annotated[Str, Field(max_length=MAX_NAME_CHARS)]


def _one_workers_problem(value: Any, handler: Any) -> Any:
    """One problem for a bad `workers` (pydantic would report one per member of the union)."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError("workers", "must be auto or a number of processes from 1 to {most}",
                                  {"most": MAX_WORKERS}) from None


Workers = Annotated[Annotated[Int, Field(ge=1, le=MAX_WORKERS)] | Literal["auto"], WrapValidator(_one_workers_problem)]
Tokens = Annotated[Int, Field(ge=1, le=MAX_TOKENS)]
TokenBound = Annotated[Int, Field(ge=0, le=MAX_TOKENS)]


@dataclass(frozen=True, slots=True, config=STRICT)
class StepSpec:
    """One load step. Closed loop (`mode == "closed"`): `concurrency` requests always in flight.
    Open loop (`poisson`/`constant`): requests scheduled at `rate_rps`, at most `concurrency` in flight
    (0: no cap). Bounded by `requests` and/or `duration_s` (0: no bound of that kind); a step bounded by
    duration sends no new request after it, and waits for those in flight.

    Built by position in code (`StepSpec("closed", 8, 0.0, 64, 0.0)`); a plan file writes it as
    `to_mapping` does (`rate`, `arrival`, `max_concurrency`), which `_from_file_keys` translates."""

    mode: Annotated[Literal["closed", "poisson", "constant", "trace"], Field(alias="arrival")] = "closed"
    concurrency: Concurrency = 1
    rate_rps: Annotated[Rate, Field(alias="rate")] = 0.0
    requests: Requests = 0
    duration_s: Duration = 0.0

    @model_validator(mode="before")
    @classmethod
    def _from_file_keys(cls, data: Any) -> Any:
        """A plan file's step mapping -> the fields: an open-loop step is one with `rate`; its
        `max_concurrency` is the field `concurrency`, its `arrival` defaults to poisson."""
        if isinstance(data, ArgsKwargs) or not isinstance(data, dict):
            return data  # built in code, by position or field name
        unknown = sorted(set(data) - set(STEP_KEYS))
        if unknown:
            raise invalid(f"unknown keys {unknown}; a step takes {list(STEP_KEYS)}")
        entry = dict(data)
        if "rate" not in entry:
            if "arrival" in entry or "max_concurrency" in entry:
                raise invalid("arrival and max_concurrency belong to open-loop steps (give rate)")
            return entry
        if "concurrency" in entry:
            raise invalid("an open-loop step takes max_concurrency, not concurrency")
        entry.setdefault("arrival", "poisson")
        entry["concurrency"] = entry.pop("max_concurrency", 0)
        return entry

    @model_validator(mode="after")
    def _consistent(self) -> StepSpec:
        if self.open_loop and not self.rate_rps > 0:
            raise invalid("an open-loop step needs rate > 0 requests/s")
        if not self.open_loop and self.concurrency < 1:
            raise invalid(f"concurrency must be >= 1, got {self.concurrency}")
        if not self.open_loop and self.rate_rps:
            raise invalid("a closed-loop step has no rate (give arrival poisson or constant)")
        if not self.requests and not self.duration_s:
            raise invalid("bound the step by requests and/or duration_s")
        return self

    @property
    def open_loop(self) -> bool:
        return self.mode != "closed"

    def label(self) -> str:
        if not self.open_loop:
            return f"concurrency={self.concurrency}"
        if self.mode == "trace":
            return f"trace {self.requests} requests, {self.rate_rps:.4g}/s offered"
        cap = f" cap={self.concurrency}" if self.concurrency else ""
        return f"{self.mode} rate={self.rate_rps:g}/s{cap}"

    def to_mapping(self) -> dict:
        """The step as a plan file writes it."""
        bounds = {k: v for k, v in (("requests", self.requests), ("duration_s", self.duration_s)) if v}
        if not self.open_loop:
            return {"concurrency": self.concurrency, **bounds}
        return {"rate": self.rate_rps, "arrival": self.mode, "max_concurrency": self.concurrency, **bounds}


@dataclass(frozen=True, slots=True, config=STRICT)
class ModelMix:
    """Requests spread over several served models (e.g. a base model and its LoRA adapters, as GET
    /v1/models names them): each request goes to one name drawn by `weights` (relative, one per name), or
    by Zipf popularity (the i-th name's weight 1 / i^zipf), else evenly. A plan writes it as

        models: {names: [llama, sql-lora, chat-lora], zipf: 1.0}

    The draw is a hash of the seed, the step and the request's number, so every run with the same seed
    sends each request to the same model, however many processes send the load."""

    names: Annotated[tuple[Name, ...], Field(min_length=1, max_length=MAX_MODELS)]
    weights: Annotated[tuple[PositiveFloat, ...], Field(max_length=MAX_MODELS)] = ()
    zipf: Annotated[NonNegativeFloat, Field(le=100)] = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> ModelMix:
        if len(set(self.names)) != len(self.names):
            raise invalid("each served model is named once")
        if self.weights and len(self.weights) != len(self.names):
            raise invalid(f"weights gives {len(self.weights)} weights for {len(self.names)} names: one per name")
        if self.weights and self.zipf:
            raise invalid("give weights or zipf, not both")
        return self

    def shares(self) -> list[float]:
        """Each name's share of the requests, in order; they sum to 1."""
        weights = self.weights or tuple(1 / (i + 1) ** self.zipf for i in range(len(self.names)))
        total = sum(weights)
        return [w / total for w in weights]

    def pick(self, seed: int, step: int, number: int) -> str:
        """The model request `number` of `step` goes to."""
        digest = hashlib.blake2b(f"{seed}/{step}/{number}".encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / 2**64
        edges = list(itertools.accumulate(self.shares()))
        return self.names[min(bisect_right(edges, draw), len(self.names) - 1)]


@dataclass(frozen=True, slots=True, config=STRICT)
class Plan:
    """A validated plan: constructing one (from a file, flags or code) checks every field and
    raises pydantic's ValidationError; `plan_from_mapping`, `load_plan` and `with_overrides` turn
    that into one ConfigError naming every bad key."""

    # bounds: siliconbench.core.bounds
    concurrency: Annotated[tuple[Annotated[Concurrency, Field(ge=1)], ...], Field(max_length=MAX_STEPS)] = \
        DEFAULT_CONCURRENCY  # () with rates alone
    rates: Annotated[tuple[Annotated[Rate, Field(gt=0)], ...], Field(max_length=MAX_STEPS)] = ()
    arrival: Literal["poisson", "constant"] = "poisson"
    max_concurrency: Concurrency = 0    # cap for the `rates` steps; 0: none
    requests_per_step: Requests = 32    # 0: bound steps by duration_s only
    duration_s: Duration = 0.0          # 0: bound steps by requests_per_step only
    steps: Annotated[tuple[StepSpec, ...], Field(max_length=MAX_STEPS)] = ()  # explicit steps; replace the above
    input_tokens: Tokens = 512
    output_tokens: Tokens = 128
    endpoint: Literal["completions", "chat"] = "completions"
    token_id_prompts: Bool = True       # completions: send prompts as token ids (exact length, no text round trip)
    # synthetic prompts (token ids, text, chat) are unique per run and request (no prefix-cache hit by
    # accident); true: every run with the same seed sends the same prompts (shared-prefix and cache
    # workloads). A dataset's prompts are sent as they are, the same in every run.
    shared_prompts: Bool = False
    dataset: Annotated[Str, Field(max_length=MAX_PATH_CHARS)] | None = None  # JSONL of prompts instead of synthetic ones
    dataset_min_tokens: TokenBound = 0
    dataset_max_tokens: TokenBound = 0  # 0: no upper bound
    repetitions: Annotated[Int, Field(ge=1, le=MAX_REPETITIONS)] = 3
    warmup_requests: Requests = 2
    request_timeout_s: Annotated[PositiveFloat, Field(le=MAX_REQUEST_TIMEOUT_S)] = 300.0
    # e.g. {ttft_ms: 500, tpot_ms: 50}; stored with the run
    slo: dict[Literal["ttft_ms", "ttfa_ms", "tpot_ms", "itl_ms", "e2e_ms"], Annotated[PositiveFloat, Field(le=MAX_SLO_MS)]] = \
        Field(default_factory=dict)
    seed: Annotated[Int, Field(ge=-MAX_SEED - 1, le=MAX_SEED)] = 0  # Poisson arrivals; the same seed, the same schedule
    # processes that send the load (1: the agent's own; more: siliconbench.agent.workers; auto: sized to the
    # load and the cores, siliconbench.agent.sizing)
    workers: Workers = "auto"
    scenario: Name = ""
    model: Name | None = None
    models: ModelMix | None = None      # requests spread over several served models (model then only calibrates)
    # merged into every request body; what it may set: siliconbench.core.extra
    extra: Annotated[RequestExtra, AfterValidator(json_values)] = Field(default_factory=RequestExtra)
    # search for the largest load within these SLOs instead of running the steps (siliconbench.core.search):
    # what `siliconbench-agent search` runs, and what a fleet run's nodes run at once
    search: SearchPlan | None = None
    # multi-turn sessions instead of single requests: the steps then count sessions (siliconbench.core.sessions)
    sessions: SessionPlan | None = None
    # replay a trace's arrivals, lengths and shared prefixes instead of the steps (siliconbench.core.trace)
    trace: TracePlan | None = None

    @model_validator(mode="before")
    @classmethod
    def _rates_alone(cls, data: Any) -> Any:
        """`rates` without `concurrency`: only the rate steps (the module's rule)."""
        if isinstance(data, ArgsKwargs) and not data.args and data.kwargs:
            kwargs = data.kwargs
            if kwargs.get("rates") and "concurrency" not in kwargs:
                return ArgsKwargs((), {**kwargs, "concurrency": ()})
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        problems = []
        if self.dataset_max_tokens and self.dataset_max_tokens < self.dataset_min_tokens:
            problems.append("dataset_max_tokens must be >= dataset_min_tokens (or 0: no upper bound)")
        if not self.steps and not (self.concurrency or self.rates):
            problems.append("the plan has no steps: give concurrency, rates or steps")
        elif not self.steps and not self.requests_per_step and not self.duration_s:
            problems.append("bound the steps by requests_per_step and/or duration_s")
        if self.sessions is not None:
            problems += _session_problems(self)
        stored = 0 if problems else len(self.to_json())
        if stored > MAX_PLAN_JSON_CHARS:
            problems.append(f"the plan is {stored} characters as JSON; a run stores at most {MAX_PLAN_JSON_CHARS} "
                            "(fewer steps, a shorter extra)")
        problems += self._trace_problems()
        if problems:
            raise invalid("; ".join(problems))
        return self

    def _trace_problems(self) -> list[str]:
        """A trace replays token-id prompts on completions as its own one step per repetition (the agent
        writes that step once it has read the trace); `arrival: trace` steps need a trace."""
        traced = any(spec.mode == "trace" for spec in self.steps)
        if self.trace is None:
            return ["arrival trace belongs to a plan with a trace: section"] if traced else []
        return [problem for bad, problem in (
            (bool(self.steps) and not (traced and len(self.steps) == 1), "a trace plan's step is the trace itself: give no steps"),
            (self.endpoint != "completions" or not self.token_id_prompts or bool(self.dataset),
             "a trace replays token-id prompts on completions (no chat, text prompts or dataset)"),
            (self.search is not None, "give a trace or a search, not both"),
            (self.workers not in (1, "auto"), "a trace is replayed by one process (workers: 1 or auto)")) if bad]

    def step_specs(self) -> list[StepSpec]:
        """The steps of one repetition, in order."""
        if self.steps:
            return list(self.steps)
        if self.trace is not None:
            return []  # the agent writes the trace's step once it has read the trace
        requests, duration_s = self.requests_per_step, self.duration_s
        closed = [StepSpec(mode="closed", concurrency=c, requests=requests, duration_s=duration_s)
                  for c in self.concurrency]
        opened = [StepSpec(mode=self.arrival, concurrency=self.max_concurrency, rate_rps=r, requests=requests,
                           duration_s=duration_s) for r in self.rates]
        return closed + opened

    @property
    def mixed_models(self) -> tuple[str, ...]:
        """The served models the requests are spread over (none: every request to `model`)."""
        return self.models.names if self.models is not None else ()

    @property
    def total_steps(self) -> int:
        """The steps of the whole run: every step of one repetition (rate and explicit steps too; a trace's
        one, before the agent has written it), repeated."""
        return (1 if self.trace is not None else len(self.step_specs())) * self.repetitions

    def to_json(self) -> str:
        """The plan as JSON in the plan-file format (`plan_from_mapping` reads it back)."""
        data = asdict(self)
        data["steps"] = [spec.to_mapping() for spec in self.steps]
        return json.dumps(data, sort_keys=True)


def _session_problems(plan: Plan) -> list[str]:
    """What a plan with `sessions:` may not ask for besides."""
    return [problem for bad, problem in (
        (plan.endpoint != "chat", "sessions send conversations: give endpoint chat"),
        (plan.workers not in ("auto", 1), "sessions are sent from the agent's own process: give workers 1 or auto"),
        (bool(plan.dataset) or plan.models is not None,
         "sessions make their own messages for one model: drop dataset and models")) if bad]


PLAN_KEYS = tuple(Plan.__dataclass_fields__) + STEP_KEYS  # for "did you mean" on a misspelt key


def plan_from_mapping(data: dict, source: str) -> Plan:
    """A validated Plan from a mapping of its fields (keys may use '-' for '_'); every problem at
    once in one ConfigError that starts with `source`."""
    fields = {str(k).replace("-", "_"): v for k, v in data.items()}
    try:
        return Plan(**fields)
    except ValidationError as exc:
        raise config_error(exc, source, PLAN_KEYS) from None


def load_plan(path: str) -> Plan:
    """A plan from a YAML/JSON file, or TOML when the name ends in .toml (e.g. from a ConfigMap)."""
    raw = read_capped(path, MAX_PLAN_FILE_BYTES, "plan file", "a plan is a few hundred bytes (is it the right file?)")
    try:
        data = tomllib.loads(raw.decode()) if path.endswith(".toml") else (yaml.safe_load(raw) or {})
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"plan file {path} is not valid {'TOML' if path.endswith('.toml') else 'YAML/JSON'}: "
                          f"{exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"plan file {path} must hold a mapping of plan fields")
    return plan_from_mapping(data, f"plan file {path}")


def with_overrides(plan: Plan, **changes: Any) -> Plan:
    """`plan` with the given fields replaced (None values are ignored), validated; problems are
    named by the flag that gave the value (`--repetitions`)."""
    given = {k: v for k, v in changes.items() if v is not None}
    try:
        return replace(plan, **given)
    except ValidationError as exc:
        raise flag_error(exc) from None


def parse_concurrency(text: str) -> tuple[int, ...]:
    """'1,4,8' -> (1, 4, 8); a clear ConfigError for anything else. '' -> () (no closed-loop steps)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--concurrency takes comma-separated integers such as 1,4,8; got {text!r}") from None
    return values


def parse_workers(text: str) -> int | str:
    """'auto' -> 'auto', '4' -> 4; anything else is left for the plan's check to name."""
    text = text.strip()
    return int(text) if text.isdigit() else text


def parse_rates(text: str) -> tuple[float, ...]:
    """'0.5,2,4' -> (0.5, 2.0, 4.0) requests/s."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--rates takes comma-separated numbers such as 0.5,2,4; got {text!r}") from None


def parse_slo(text: str) -> dict:
    """'ttft_ms=500,tpot_ms=50' -> {'ttft_ms': 500.0, 'tpot_ms': 50.0} (core/slo.py's goodput keys)."""
    return parse_goodput_slo([text])

"""The benchmark plan: what the load generator runs. Validated once, before any request.

A plan is a YAML, JSON or TOML mapping of `Plan`'s fields. Steps come either from the shorthands
(`concurrency: [1, 4, 8]` closed-loop steps, then `rates: [2, 4]` open-loop steps with `arrival` and
`max_concurrency`, each bounded by `requests_per_step` and/or `duration_s`) or from an explicit list:

    steps:
      - {concurrency: 8, requests: 64}                   # closed loop: 8 requests always in flight
      - {rate: 4, arrival: poisson, duration_s: 30}      # open loop: Poisson arrivals at 4 requests/s
      - {rate: 8, arrival: constant, max_concurrency: 16, requests: 200}

Every step runs `repetitions` times (the whole list, in order, per repetition). `workers: N` sends each
step's load from N processes (see siliconbench.agent.workers); the steps mean the same load whatever N is.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import yaml

from siliconbench.core.errors import ConfigError

ENDPOINTS = ("completions", "chat")  # /v1/completions, /v1/chat/completions
ARRIVALS = ("poisson", "constant")
SLO_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One load step. Closed loop (`mode == "closed"`): `concurrency` requests always in flight.
    Open loop (`poisson`/`constant`): requests scheduled at `rate_rps`, at most `concurrency` in flight
    (0: no cap). Bounded by `requests` and/or `duration_s` (0: no bound of that kind); a step bounded by
    duration sends no new request after it, and waits for those in flight."""

    mode: str = "closed"
    concurrency: int = 1
    rate_rps: float = 0.0
    requests: int = 0
    duration_s: float = 0.0

    @property
    def open_loop(self) -> bool:
        return self.mode != "closed"

    def label(self) -> str:
        if not self.open_loop:
            return f"concurrency={self.concurrency}"
        cap = f" cap={self.concurrency}" if self.concurrency else ""
        return f"{self.mode} rate={self.rate_rps:g}/s{cap}"

    def to_mapping(self) -> dict:
        """The step as a plan file writes it."""
        bounds = {k: v for k, v in (("requests", self.requests), ("duration_s", self.duration_s)) if v}
        if not self.open_loop:
            return {"concurrency": self.concurrency, **bounds}
        return {"rate": self.rate_rps, "arrival": self.mode, "max_concurrency": self.concurrency, **bounds}

    def validate(self, where: str) -> "StepSpec":
        if self.mode not in ("closed", *ARRIVALS):
            raise ConfigError(f"{where}: mode must be closed, poisson or constant, got {self.mode!r}")
        if self.open_loop:
            if not self.rate_rps > 0:
                raise ConfigError(f"{where}: an open-loop step needs rate > 0 requests/s, got {self.rate_rps}")
            if self.concurrency < 0:
                raise ConfigError(f"{where}: max_concurrency must be >= 0 (0: no cap), got {self.concurrency}")
        elif self.concurrency < 1:
            raise ConfigError(f"{where}: concurrency must be >= 1, got {self.concurrency}")
        if self.requests < 0 or self.duration_s < 0:
            raise ConfigError(f"{where}: requests and duration_s must be >= 0")
        if not self.requests and not self.duration_s:
            raise ConfigError(f"{where}: bound the step by requests and/or duration_s")
        return self


@dataclass(frozen=True, slots=True)
class Plan:
    concurrency: tuple[int, ...] = (1, 4, 8, 16, 32)
    rates: tuple[float, ...] = ()
    arrival: str = "poisson"
    max_concurrency: int = 0          # cap for the `rates` steps; 0: none
    requests_per_step: int = 32       # 0: bound steps by duration_s only
    duration_s: float = 0.0           # 0: bound steps by requests_per_step only
    steps: tuple[StepSpec, ...] = ()  # explicit steps; replace the shorthands above
    input_tokens: int = 512
    output_tokens: int = 128
    endpoint: str = "completions"
    token_id_prompts: bool = True     # completions: send prompts as token ids (exact length, no text round trip)
    dataset: str | None = None        # JSONL of prompts instead of synthetic ones
    dataset_min_tokens: int = 0
    dataset_max_tokens: int = 0       # 0: no upper bound
    repetitions: int = 3
    warmup_requests: int = 2
    request_timeout_s: float = 300.0
    slo: dict = field(default_factory=dict)  # e.g. {ttft_ms: 500, tpot_ms: 50}; stored with the run
    seed: int = 0                     # Poisson arrivals; the same seed gives the same schedule
    workers: int = 1                  # processes that send the load (1: the agent's own; more: siliconbench.agent.workers)
    scenario: str = ""
    model: str | None = None
    extra: dict = field(default_factory=dict)  # merged into every request body

    def validate(self) -> "Plan":
        """Return self, or raise ConfigError naming the first bad value."""
        if any(c < 1 for c in self.concurrency):
            raise ConfigError(f"concurrency must be a list of integers >= 1, got {list(self.concurrency)}")
        if any(not r > 0 for r in self.rates):
            raise ConfigError(f"rates must be a list of numbers > 0 (requests/s), got {list(self.rates)}")
        if self.arrival not in ARRIVALS:
            raise ConfigError(f"arrival must be one of {ARRIVALS}, got {self.arrival!r}")
        for name in ("input_tokens", "output_tokens", "repetitions", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_requests", "max_concurrency", "requests_per_step", "dataset_min_tokens",
                     "dataset_max_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.duration_s < 0:
            raise ConfigError(f"duration-s must be >= 0, got {self.duration_s}")
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint must be one of {ENDPOINTS}, got {self.endpoint!r}")
        if self.request_timeout_s <= 0:
            raise ConfigError(f"request-timeout-s must be > 0, got {self.request_timeout_s}")
        unknown_slo = sorted(set(self.slo) - set(SLO_KEYS))
        if unknown_slo:
            raise ConfigError(f"slo: unknown keys {unknown_slo}; known keys are {list(SLO_KEYS)}")
        if any(not isinstance(v, (int, float)) or v <= 0 for v in self.slo.values()):
            raise ConfigError(f"slo values must be numbers > 0 (milliseconds), got {self.slo}")
        if self.dataset_max_tokens and self.dataset_max_tokens < self.dataset_min_tokens:
            raise ConfigError("dataset-max-tokens must be >= dataset-min-tokens")
        specs = self.step_specs()
        if not specs:
            raise ConfigError("the plan has no steps: give concurrency, rates or steps")
        for i, spec in enumerate(specs):
            spec.validate(f"step {i} ({spec.label()})")
        return self

    def step_specs(self) -> list[StepSpec]:
        """The steps of one repetition, in order."""
        if self.steps:
            return list(self.steps)
        closed = [StepSpec("closed", c, 0.0, self.requests_per_step, self.duration_s) for c in self.concurrency]
        opened = [StepSpec(self.arrival, self.max_concurrency, r, self.requests_per_step, self.duration_s)
                  for r in self.rates]
        return closed + opened

    def to_json(self) -> str:
        """The plan as JSON in the plan-file format (`plan_from_mapping` reads it back)."""
        data = asdict(self)
        data["steps"] = [spec.to_mapping() for spec in self.steps]
        return json.dumps(data, sort_keys=True)


def _step_from_mapping(data: object, where: str) -> StepSpec:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a step is a mapping such as {{concurrency: 8, requests: 64}}")
    known = {"concurrency", "rate", "arrival", "max_concurrency", "requests", "duration_s"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
    try:
        if "rate" in data:
            if "concurrency" in data:
                raise ConfigError(f"{where}: an open-loop step takes max_concurrency, not concurrency")
            spec = StepSpec(mode=str(data.get("arrival", "poisson")), concurrency=int(data.get("max_concurrency", 0)),
                            rate_rps=float(data["rate"]), requests=int(data.get("requests", 0)),
                            duration_s=float(data.get("duration_s", 0)))
        else:
            if "arrival" in data or "max_concurrency" in data:
                raise ConfigError(f"{where}: arrival and max_concurrency belong to open-loop steps (give rate)")
            spec = StepSpec(mode="closed", concurrency=int(data.get("concurrency", 1)),
                            requests=int(data.get("requests", 0)), duration_s=float(data.get("duration_s", 0)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return spec.validate(where)


def plan_from_mapping(data: dict, source: str) -> Plan:
    """A validated Plan from a mapping of its fields (keys may use '-' for '_')."""
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    known = {f.name for f in fields(Plan)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; known keys are {sorted(known)}")
    for key in ("concurrency", "rates"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    if "steps" in data:
        if not isinstance(data["steps"], list):
            raise ConfigError(f"{source}: steps must be a list of step mappings")
        data["steps"] = tuple(_step_from_mapping(s, f"{source}: steps[{i}]") for i, s in enumerate(data["steps"]))
    for key in ("slo", "extra"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{source}: {key} must be a mapping")
    try:
        return Plan(**data).validate()
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_plan(path: str) -> Plan:
    """A plan from a YAML/JSON file, or TOML when the name ends in .toml (e.g. from a ConfigMap)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read plan file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode()) if path.endswith(".toml") else (yaml.safe_load(raw) or {})
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"plan file {path} is not valid {'TOML' if path.endswith('.toml') else 'YAML/JSON'}: "
                          f"{exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"plan file {path} must hold a mapping of plan fields")
    return plan_from_mapping(data, f"plan file {path}")


def with_overrides(plan: Plan, **changes: Any) -> Plan:
    """`plan` with the given fields replaced (None values are ignored), validated."""
    given = {k: v for k, v in changes.items() if v is not None}
    try:
        return replace(plan, **given).validate()
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def parse_concurrency(text: str) -> tuple[int, ...]:
    """'1,4,8' -> (1, 4, 8); a clear ConfigError for anything else. '' -> () (no closed-loop steps)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--concurrency takes comma-separated integers such as 1,4,8; got {text!r}") from None
    return values


def parse_rates(text: str) -> tuple[float, ...]:
    """'0.5,2,4' -> (0.5, 2.0, 4.0) requests/s."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--rates takes comma-separated numbers such as 0.5,2,4; got {text!r}") from None


def parse_slo(text: str) -> dict:
    """'ttft_ms=500,tpot_ms=50' -> {'ttft_ms': 500.0, 'tpot_ms': 50.0}."""
    slo = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            slo[key.strip().replace("-", "_")] = float(value)
        except ValueError:
            raise ConfigError(f"--slo takes key=ms pairs such as ttft_ms=500,tpot_ms=50; got {text!r}") from None
    return slo

"""The benchmark plan: what the load generator runs. Validated once, before any request."""

from __future__ import annotations

import json

import yaml
from dataclasses import asdict, dataclass, field

from agent.errors import ConfigError

ENDPOINTS = ("completions",)  # chat prompts of an exact length come with the load-generator issue


@dataclass(frozen=True, slots=True)
class Plan:
    concurrency: tuple[int, ...] = (1, 4, 8, 16, 32)
    requests_per_step: int = 32
    input_tokens: int = 512
    output_tokens: int = 128
    endpoint: str = "completions"
    repetitions: int = 1
    warmup_requests: int = 2
    request_timeout_s: float = 300.0
    scenario: str = ""
    model: str | None = None
    extra: dict = field(default_factory=dict)

    def validate(self) -> "Plan":
        """Return self, or raise ConfigError naming the first bad value."""
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise ConfigError(f"concurrency must be a list of integers >= 1, got {list(self.concurrency)}")
        for name in ("requests_per_step", "input_tokens", "output_tokens", "repetitions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.warmup_requests < 0:
            raise ConfigError(f"warmup-requests must be >= 0, got {self.warmup_requests}")
        if self.endpoint not in ENDPOINTS:
            raise ConfigError(f"endpoint must be one of {ENDPOINTS}, got {self.endpoint!r}")
        if self.request_timeout_s <= 0:
            raise ConfigError(f"request-timeout-s must be > 0, got {self.request_timeout_s}")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def load_plan(path: str) -> Plan:
    """A plan from a YAML or JSON file whose keys are Plan's fields (e.g. from a ConfigMap)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read plan file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"plan file {path} is not valid YAML/JSON: {exc}") from None
    return plan_from_mapping(data, f"plan file {path}")


def plan_from_mapping(data: object, source: str) -> Plan:
    """A validated Plan from a mapping of its fields (a plan file, or a fleet run's plan JSON)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping of plan fields")
    known = set(Plan.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; known keys are {sorted(known)}")
    data = dict(data)
    if isinstance(data.get("concurrency"), list):
        data["concurrency"] = tuple(data["concurrency"])
    try:
        return Plan(**data).validate()
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def parse_concurrency(text: str) -> tuple[int, ...]:
    """'1,4,8' -> (1, 4, 8); a clear ConfigError for anything else."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--concurrency takes comma-separated integers such as 1,4,8; got {text!r}") from None
    if not values:
        raise ConfigError("--concurrency is empty; give e.g. 1,4,8")
    return values

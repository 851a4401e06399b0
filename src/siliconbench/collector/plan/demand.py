"""What a plan is for: the target load (`--load "40 req/s"`, `--load "5000 tok/s"` or the peak minute of a
stored run's arrivals) and the workload it is made of (`--input-tokens/--output-tokens`, or a stored run's
own requests: `--workload-of RUN`).

A search answers for the workload only when it sent the same requests (collector/workload.py): with
the token flags, the same prompt and output lengths; with `--workload-of`, also the same endpoint and
prompt source.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from siliconbench.collector.errors import InvalidOption, RunNotFound
from siliconbench.collector.store import Store
from siliconbench.collector.workload import plan_of, requests_shape
from siliconbench.core.plan import Plan, plan_from_mapping

REQ, TOK = "req/s", "tok/s"
_UNITS = {"req/s": REQ, "rps": REQ, "requests/s": REQ, "tok/s": TOK, "tokens/s": TOK, "tps": TOK}
_LOAD = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z/]+)\s*", re.IGNORECASE)
_FLAG_KEYS = ("prompt tokens", "output tokens")  # what the token flags state of a workload


@dataclass(frozen=True, slots=True)
class Load:
    """The target: `value` requests/s or output tokens/s (`unit`), and where it came from."""

    value: float
    unit: str
    source: str

    def show(self) -> str:
        return f"{self.value:,.4g} {self.unit}"


def parse_load(text: str) -> Load:
    """'40 req/s' or '5000 tok/s' (also rps, tps, requests/s, tokens/s); InvalidOption otherwise."""
    match = _LOAD.fullmatch(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise InvalidOption(f"--load {text!r}: write a number and a unit, e.g. '40 req/s' or '5000 tok/s'")
    value = float(match.group(1))
    if not (value > 0 and math.isfinite(value)):
        raise InvalidOption(f"--load {text!r}: the load must be a positive number")
    return Load(value, unit, f"--load {text.strip()}")


PEAK_SQL = """
SELECT toStartOfMinute(start_time) AS minute, count() AS arrivals,
       (SELECT dateDiff('millisecond', min(start_time), max(start_time)) / 1000 FROM {db}.requests
        WHERE run_id = {run:String}) AS span_s
FROM {db}.requests WHERE run_id = {run:String}
GROUP BY minute ORDER BY arrivals DESC, minute LIMIT 1
"""


def load_of_run(store: Store, run_id: str) -> Load:
    """The peak minute of the run's arrivals in requests/s (a run shorter than a minute: its mean rate)."""
    rows = store.query(PEAK_SQL, {"run": run_id}).result_rows
    if not rows:
        raise RunNotFound(f"--load-from-run: no requests of run {run_id!r} in the store (see `runs list`)")
    minute, arrivals, span_s = rows[0]
    if span_s < 60:
        if span_s <= 0 or arrivals < 2:
            raise InvalidOption(f"--load-from-run {run_id}: {arrivals} request(s) in no time give no rate; "
                                "give --load instead")
        return Load((arrivals - 1) / span_s, REQ, f"run {run_id}: {arrivals} arrivals over {span_s:.1f} s "
                                                  "(shorter than a minute: its mean rate)")
    return Load(arrivals / 60, REQ, f"run {run_id}: peak minute {minute:%Y-%m-%d %H:%M} UTC, {arrivals} arrivals")


@dataclass(frozen=True, slots=True)
class Workload:
    """The requests the load is made of: `plan` holds their shape; `keys` are the parts of it a search must
    share (module docstring)."""

    plan: Plan
    keys: tuple[str, ...]
    source: str

    @property
    def output_tokens(self) -> int:
        return self.plan.output_tokens

    def differences(self, other: Plan | None) -> list[str]:
        """How a search's stored plan differs in what matters here ('output tokens 64 vs 128'); a search
        that stored no readable plan differs in everything."""
        if other is None:
            return ["its workload is not recorded"]
        theirs, mine = requests_shape(other), requests_shape(self.plan)
        return [f"{key} {theirs[key]} vs {mine[key]}" for key in self.keys if theirs[key] != mine[key]]

    def describe(self) -> str:
        shape = requests_shape(self.plan)
        return ", ".join(f"{key} {shape[key]}" for key in self.keys if shape[key] is not None) + f" ({self.source})"

    def search_flags(self) -> list[str]:
        """The `siliconbench-agent search` flags that send these requests."""
        p = self.plan
        flags = [f"--output-tokens {p.output_tokens}"]
        if p.dataset:
            flags.insert(0, f"--dataset {p.dataset}")
        else:
            flags.insert(0, f"--input-tokens {p.input_tokens}")
        if "endpoint" in self.keys and p.endpoint != "completions":
            flags.append(f"--endpoint {p.endpoint}")
        if "prompts" in self.keys and p.endpoint == "completions" and not p.token_id_prompts and not p.dataset:
            flags.append("--text-prompts")
        if "prompts" in self.keys and p.shared_prompts and not p.dataset:
            flags.append(f"--shared-prompts --seed {p.seed}")
        return flags


def workload_of_flags(input_tokens: int, output_tokens: int) -> Workload:
    plan = plan_from_mapping({"input_tokens": input_tokens, "output_tokens": output_tokens},
                             "--input-tokens/--output-tokens")
    return Workload(plan, _FLAG_KEYS, f"--input-tokens {input_tokens} --output-tokens {output_tokens}")


RUN_PLAN_SQL = "SELECT config_json FROM {db}.runs WHERE run_id = {run:String} AND phase = 'start' LIMIT 1"


def workload_of_run(store: Store, run_id: str, flag: str = "--workload-of") -> Workload:
    rows = store.query(RUN_PLAN_SQL, {"run": run_id}).result_rows
    if not rows:
        raise RunNotFound(f"{flag}: no run {run_id!r} in the store (see `runs list`)")
    plan = plan_of(rows[0][0])
    if plan is None:
        raise InvalidOption(f"{flag} {run_id}: the run stored no plan this version can read; "
                            "give --input-tokens and --output-tokens instead")
    return Workload(plan, tuple(requests_shape(plan)), f"the requests of run {run_id}")

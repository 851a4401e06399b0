"""`plan --validate`: replay the planned load on the planned fleet, then judge every node against the SLOs.

A plan's node count assumes capacity scales linearly with nodes, from searches of single nodes. The replay
tests that: the load the plan was made for (`--load`, in requests/s) is spread evenly over the chosen node
count of the chosen instance type, each node sending its share as Poisson arrivals for `--validate-s`
seconds, as one fleet run through the collector (`run start`'s machinery: every node starts at once). The
requests are the chosen search's own workload (the plan it stored: endpoint, prompt and output lengths,
prompts, model), so the replay sends what the capacity was measured with. Then `check-slo` judges each
node (collector/slo_check.py): exit 0 when every node held every SLO, 10 when any broke one.

The plan and the check are read commands: while the collector serves an embedded store they run in it
(collector/reads.py), so they run here as child commands of this program, which forwards them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import typer

from siliconbench.collector import settings
from siliconbench.collector.errors import CollectorError, InvalidOption
from siliconbench.collector.fleet import STATE_NAMES
from siliconbench.collector.run_cli import start_fleet_run, watch_run
from siliconbench.collector.reports.slo_check import FORMATS as CHECK_FORMATS
from siliconbench.collector.workload import plan_of
from siliconbench.core.errors import ExitCode
from siliconbench.core.plan import Plan, with_overrides
from siliconbench.core.wire import pb

START_DELAY_S = 3.0  # from the start command to the fleet's shared start
STATUS_INTERVAL_S = 1.0
VALIDATE_FLAGS = {"--validate": 0, "--collector": 1, "--wait-s": 1, "--validate-s": 1, "--selector": 1,
                  "--plan-out": 1, "--format": 1, "-f": 1, "--output": 1, "-o": 1}  # flag -> values it takes


class RunUnfinished(CollectorError):
    """The replay run ended other than finished (cancelled, or a node failed)."""

    exit_code = ExitCode.RUN_UNFINISHED


@dataclass(frozen=True, slots=True)
class Chosen:
    """The plan's recommendation: `nodes` of `instance_type`, whose capacity the search `search_id` measured."""

    instance_type: str
    nodes: int
    search_id: str
    load: dict  # the plan's `load`: value, unit (req/s or tok/s), output_tps
    simulated: bool

    def load_rps(self, workload: Plan) -> float:
        """The target load in requests/s of `workload` (a load in tokens/s: over its output tokens)."""
        return float(self.load["value"]) if self.load["unit"] == "req/s" else \
            float(self.load["output_tps"]) / workload.output_tokens


def child_args(argv: list[str]) -> list[str]:
    """The `plan ...` command line without the flags of the replay and of its output (the plan itself runs
    as a child, in JSON)."""
    out: list[str] = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.partition("=")[0]
        if name in VALIDATE_FLAGS:
            skip = 0 if "=" in arg else VALIDATE_FLAGS[name]
            continue
        out.append(arg)
    return out


@dataclass(frozen=True, slots=True)
class Children:
    """Read commands of `siliconbench-collector` on one store, each as a child process (a collector serving
    the store answers it); the store's password through the environment, never on a command line."""

    store: str
    password: str | None

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        env = {**os.environ, **({settings.CLICKHOUSE_PASSWORD: self.password} if self.password else {})}
        done = subprocess.run([sys.executable, "-m", "siliconbench.collector", *argv, "--store", self.store],
                              capture_output=True, text=True, env=env)
        return done.returncode, done.stdout, done.stderr

    def json(self, argv: list[str], what: str) -> dict:
        code, out, err = self.run(argv)
        if code != 0:
            lines = err.strip().splitlines()
            failed = CollectorError(f"{what} failed: {lines[-1].removeprefix('error: ') if lines else f'exit {code}'}")
            failed.exit_code = ExitCode(code) if code in set(ExitCode) else ExitCode.INTERNAL
            raise failed
        return dict(json.loads(out))


def chosen(children: Children, plan_argv: list[str]) -> Chosen:
    """The plan's first choice, from `plan --format json`; InvalidOption when it has none."""
    answer = children.json([*plan_argv, "--format", "json"], "the plan")
    if not answer.get("choices"):
        missing = ", ".join(m.get("instance_type", "?") for m in answer.get("missing", []))
        raise InvalidOption("the plan has no choice to validate: no candidate has a search for this workload and "
                            f"these SLOs{f' (missing: {missing})' if missing else ''}")
    first = answer["choices"][0]
    return Chosen(first["instance_type"], int(first["nodes"]), first["search_id"], answer["load"],
                  bool(first["simulated"]))


def search_workload(children: Children, search_id: str) -> Plan:
    """The plan the search stored with its run: the workload its capacity was measured with."""
    quoted = search_id.replace("\\", "\\\\").replace("'", "\\'")
    code, out, err = children.run(["sql", f"SELECT config_json FROM siliconbench.runs WHERE run_id = '{quoted}' "
                                          "AND phase = 'start' LIMIT 1"])
    lines = out.splitlines()
    workload = plan_of(lines[1]) if code == 0 and len(lines) > 1 else None
    if workload is None:
        raise InvalidOption(f"search {search_id} stored no plan this version can read, so its workload cannot be "
                            f"replayed{': ' + err.strip() if err.strip() else ''}")
    return workload


def replay_plan(workload: Plan, load_rps: float, nodes: int, seconds: float) -> Plan:
    """`workload`'s requests, `load_rps / nodes` a second per node (Poisson), one step of `seconds`, once."""
    steps = with_overrides(workload, concurrency=(), rates=(load_rps / nodes,), arrival="poisson", max_concurrency=0,
                           steps=(), requests_per_step=0, duration_s=seconds, repetitions=1, slo={})
    return dataclasses.replace(steps, search=None)  # with_overrides keeps a field given None


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of `flag` in `argv` (`--slo X` or `--slo=X`; the last one given), None without one."""
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]
    values += [arg.partition("=")[2] for arg in argv if arg.startswith(flag + "=")]
    return values[-1] if values else None


@dataclass(frozen=True, slots=True)
class Replay:
    """How the plan is replayed: where, for how long, and what to write."""

    collector: str
    seconds: float
    wait_s: float
    selector: dict[str, str]
    plan_out: Path | None


def start_replay(children: Children, plan_argv: list[str], replay: Replay) -> str:
    """Plan, then start the replay of its first choice as a fleet run and wait for it to end; its run id
    (a run that did not finish: RunUnfinished)."""
    choice = chosen(children, plan_argv)
    workload = search_workload(children, choice.search_id)
    rps = choice.load_rps(workload)
    plan = replay_plan(workload, rps, choice.nodes, replay.seconds)
    if replay.plan_out is not None:
        try:
            replay.plan_out.write_text(plan.to_json() + "\n", encoding="utf-8")
        except OSError as exc:
            raise InvalidOption(f"cannot write --plan-out {replay.plan_out}: {exc.strerror}") from None
    typer.echo(f"replaying {rps:,.4g} req/s on {choice.nodes} x {choice.instance_type}"
               f"{' (SIMULATED evidence)' if choice.simulated else ''}: {rps / choice.nodes:,.4g} req/s "
               f"per node, Poisson, {replay.seconds:g} s, the workload of search {choice.search_id}", err=True)
    selector = {"instance-type": choice.instance_type, **replay.selector}
    run_id = start_fleet_run(plan, selector, replay.collector, choice.nodes, replay.wait_s, START_DELAY_S,
                             exactly=True)
    state = watch_run(replay.collector, run_id, STATUS_INTERVAL_S, lambda text: typer.echo(text, err=True))
    if state != pb.RUN_STATE_FINISHED:
        raise RunUnfinished(f"the replay run {run_id} ended {STATE_NAMES.get(state, 'unknown')}, so it shows "
                            f"nothing about the plan; see `run status --run {run_id}` for which node and why")
    return run_id


def validate_plan(plan_argv: list[str], store: str, password: str | None, replay: Replay, fmt: str,
                  output: Path | None) -> NoReturn:
    """`plan --validate`: replay, then `check-slo` on the replay in `fmt` (to `output`); exits with
    check-slo's code (0 held, 10 broken)."""
    if fmt.lower() not in CHECK_FORMATS:
        raise InvalidOption(f"plan --validate writes check-slo's verdict: --format {fmt!r} is not one of "
                            f"{', '.join(CHECK_FORMATS)}")
    slo = flag_value(plan_argv, "--slo")
    if slo is None:
        raise InvalidOption("plan --validate needs --slo: the SLOs every node of the replay must hold")
    children = Children(store, password)
    run_id = start_replay(children, child_args(plan_argv), replay)
    code, out, err = children.run(["check-slo", "--run", run_id, "--slo", slo, "--format", fmt,
                                   *(["--output", str(output.absolute())] if output else [])])
    sys.stdout.write(out)
    sys.stderr.write(err)
    raise typer.Exit(code)

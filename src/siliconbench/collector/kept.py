"""Step results kept: each step's figures computed once from its rows, when they are complete, and stored.

Reports used to recompute every step's exact percentiles, steady state, goodput and distributions from
every gap at every read: a report's cost followed what the store held. Now, once a step is over (its
`steps` row is stored, or its run ended) and its rows are complete (its digest counts exactly its rows:
collector/digests.py), its figures are computed once by the SQL that computes them on the fly
(collector/step_sql.py: percentiles, steady state, dispatch, goodput under the run's own SLO,
distribution states; per served model: answers) and stored in `kept_steps` and `kept_answers`
(schema.KEPT_STEPS). The views read them where they hold and compute the rest from the rows, saying which
(`kept`): a step kept before a late batch came reads as computed until it is kept again.

Who keeps: the collector's `Keeper`, told of every stored batch's steps (collector/group_insert.py), keeps
the steps that became due within `linger_s`; at start it catches up, on its thread while the collector
serves, with every step a crash or an older collector left unkept (`keep_due` over the whole store).

Idempotent, with no lock, in one collector or across replicas on one store: a kept row carries
`step_rows`, the number of rows it was computed from, as its ReplacingMergeTree version. Rows only grow
(a replay is never stored twice), so the row computed from the most rows is the newest truth, and FINAL
keeps it whichever keeper wrote last; two keepers computing from the same rows write the same figures
(exact, from the same rows). A keeper that dies between its two inserts leaves the other table's row
short; the next `keep_due` finds it. On a ClickHouse server the same SQL runs: FINAL merges at read
(no OPTIMIZE, no mutation), and the INSERT ... SELECT reads the rows the server has committed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from siliconbench.collector.errors import CollectorError, first_line
from siliconbench.collector.device_views import counted_samples, keep_select, keep_timeline_select
from siliconbench.collector.answer_views import keep_models_select
from siliconbench.collector.schema import (KEPT_ANSWERS, KEPT_DEVICES, KEPT_MODELS, KEPT_NODES, KEPT_STEPS,
                                           KEPT_TIMELINES)
from siliconbench.collector.step_sql import answers_select, steps_select
from siliconbench.collector.store import Store
from siliconbench.core.backoff import Backoff
from siliconbench.collector.workload import plan_of
from siliconbench.core.slo import GOODPUT_KEYS

log = logging.getLogger(__name__)

StepKey = tuple[str, str, int]  # run_id, agent_id, step
Node = tuple[str, str]  # run_id, agent_id

_STEPS_PARAM = "{steps:Array(Tuple(String, String, UInt32))}"
_IN_STEPS = f"(run_id, toString(agent_id), step) IN {_STEPS_PARAM}"
_SOURCE = f"(SELECT * FROM {{db}}.requests WHERE {_IN_STEPS})"

# The steps (of `where`) that are over and complete, and whose kept rows are missing or computed from other
# rows than they now have.
_DUE = """
SELECT d.run_id, d.agent_id, d.step
FROM (SELECT run_id, toString(agent_id) AS agent_id, step, sum(requests) AS digested FROM {{db}}.request_digests FINAL
      WHERE {where} GROUP BY run_id, agent_id, step) AS d
INNER JOIN (SELECT run_id, toString(agent_id) AS agent_id, step, count() AS stored FROM {{db}}.requests
            WHERE {where} GROUP BY run_id, agent_id, step) AS r USING (run_id, agent_id, step)
LEFT JOIN (SELECT DISTINCT run_id, toString(agent_id) AS agent_id, step, 1 AS over FROM {{db}}.steps WHERE {where})
    AS s USING (run_id, agent_id, step)
LEFT JOIN (SELECT run_id, toString(agent_id) AS agent_id, 1 AS ended FROM {{db}}.runs
           WHERE phase = 'end' AND {runs_where} GROUP BY run_id, agent_id) AS e USING (run_id, agent_id)
LEFT JOIN (SELECT run_id, toString(agent_id) AS agent_id, step, max(step_rows) AS kept FROM {{db}}.kept_steps
           WHERE {where} GROUP BY run_id, agent_id, step) AS k USING (run_id, agent_id, step)
LEFT JOIN (SELECT run_id, toString(agent_id) AS agent_id, step, max(step_rows) AS kept FROM {{db}}.kept_answers
           WHERE {where} GROUP BY run_id, agent_id, step) AS a USING (run_id, agent_id, step)
WHERE r.stored = d.digested AND (s.over = 1 OR e.ended = 1) AND (k.kept != d.digested OR a.kept != d.digested)
ORDER BY d.run_id, d.agent_id, d.step
SETTINGS join_use_nulls = 0
"""

# The nodes (of ended runs) whose device figures are missing or were computed from other samples than they have.
# A node's kept rows are whole once its timeline row is stored: keep_nodes writes it last, one per node with samples.
_NODES_DUE = f"""
SELECT c.run_id, toString(c.agent_id)
FROM ({counted_samples("{where} AND (run_id, agent_id) IN (SELECT run_id, agent_id FROM {db}.runs WHERE phase = 'end')")}) AS c
LEFT JOIN (SELECT run_id, agent_id, max(run_samples) AS kept FROM {{db}}.kept_timelines
           WHERE {{where}} GROUP BY run_id, agent_id) AS t USING (run_id, agent_id)
WHERE t.kept != c.run_samples
ORDER BY c.run_id, c.agent_id
SETTINGS join_use_nulls = 0
"""
_IN_NODES = "(run_id, toString(agent_id)) IN {nodes:Array(Tuple(String, String))}"
# The nodes (of ended runs) whose models' first requests are missing or were computed from other rows.
_MODELS_DUE = """
SELECT c.run_id, c.agent_id
FROM (SELECT run_id, toString(agent_id) AS agent_id, sum(requests) AS run_rows FROM {db}.request_digests FINAL
      WHERE {where} AND (run_id, agent_id) IN (SELECT run_id, agent_id FROM {db}.runs WHERE phase = 'end')
      GROUP BY run_id, agent_id) AS c
LEFT JOIN (SELECT run_id, toString(agent_id) AS agent_id, max(run_rows) AS kept FROM {db}.kept_models
           WHERE {where} GROUP BY run_id, agent_id) AS k USING (run_id, agent_id)
WHERE k.kept != c.run_rows
ORDER BY c.run_id, c.agent_id
SETTINGS join_use_nulls = 0
"""

_RUN_SLO = """SELECT run_id, any(config_json) FROM {db}.runs
WHERE phase = 'start' AND has({runs:Array(String)}, run_id) GROUP BY run_id"""


@dataclass(frozen=True, slots=True)
class Kept:
    steps: int       # steps whose results were computed and stored
    seconds: float   # how long it took
    nodes: int = 0   # nodes of ended runs whose device figures were computed and stored


def due(store: Store, steps: Iterable[StepKey] | None = None, runs: Iterable[str] = ()) -> list[StepKey]:
    """The steps whose results are due (over, complete, not kept as they are): of `steps` and every step of
    `runs`; steps None: of the whole store."""
    if steps is None:
        sql, params = _DUE.format(where="1", runs_where="1"), {}
    else:
        wanted, whole = sorted(set(steps)), sorted(set(runs))
        if not wanted and not whole:
            return []
        runs_where = "has({runs:Array(String)}, run_id)"
        sql = _DUE.format(where=f"({_IN_STEPS} OR has({{whole:Array(String)}}, run_id))", runs_where=runs_where)
        params = {"steps": wanted, "whole": whole, "runs": sorted({run for run, _, _ in wanted} | set(whole))}
    return [(run, agent, int(step)) for run, agent, step in store.query(sql, params).result_rows]


def run_slos(store: Store, runs: Iterable[str]) -> dict[str, dict[str, float]]:
    """run id -> the SLO its plan stated, as goodput's bound parameters (inf where none)."""
    out: dict[str, dict[str, float]] = {}
    for run_id, config_json in store.query(_RUN_SLO, {"runs": sorted(set(runs))}).result_rows:
        plan = plan_of(config_json)
        stated = {str(key): float(value) for key, value in (plan.slo.items() if plan is not None and plan.slo else ())}
        out[run_id] = {key: stated.get(key, math.inf) for key in GOODPUT_KEYS}
    return out


def keep(store: Store, steps: Iterable[StepKey]) -> Kept:
    """Compute and store the results of `steps` from their rows (both tables), whatever they held before."""
    t0 = time.perf_counter()
    wanted = sorted(set(steps))
    slos = run_slos(store, {run for run, _, _ in wanted})
    no_slo = {key: math.inf for key in GOODPUT_KEYS}
    by_slo: dict[tuple[float, ...], list[StepKey]] = {}
    for key in wanted:
        slo = slos.get(key[0], no_slo)
        by_slo.setdefault(tuple(slo[k] for k in GOODPUT_KEYS), []).append(key)
    for slo_values, keys in by_slo.items():
        params = {"steps": keys, **dict(zip(GOODPUT_KEYS, slo_values))}
        # One after the other on the keeper's thread, not on the store's readers: the keeper holds Store.writing,
        # and a report's long reads there would hold ingest up behind it.
        store.command(f"INSERT INTO {{db}}.kept_steps ({', '.join(KEPT_STEPS.names)}) {steps_select(_SOURCE)}",
                      params)
        store.command(f"INSERT INTO {{db}}.kept_answers ({', '.join(KEPT_ANSWERS.names)}) {answers_select(_SOURCE)}",
                      {"steps": keys})
    return Kept(len(wanted), time.perf_counter() - t0)


def nodes_due(store: Store, runs: Iterable[str] | None = None, due_sql: str = _NODES_DUE) -> list[tuple[str, str]]:
    """(run, agent) of ended runs (of `runs`; None: all) whose device figures (`due_sql` _MODELS_DUE: models'
    first requests) are not kept as their samples (rows) are."""
    if runs is None:
        sql, params = due_sql.replace("{where}", "1"), {}
    else:
        if not (wanted := sorted(set(runs))):
            return []
        sql, params = due_sql.replace("{where}", "run_id IN {runs:Array(String)}"), {"runs": wanted}
    return [(run, agent) for run, agent in store.query(sql, params).result_rows]


def keep_nodes(store: Store, nodes: list[tuple[str, str]]) -> None:
    """Compute and store the device and node figures of every step of `nodes` ((run, agent)) from their samples,
    and their timelines, last: a node's rows are whole once its timeline row is stored."""
    for table in (KEPT_DEVICES, KEPT_NODES):
        store.command(f"INSERT INTO {{db}}.{table.name} ({', '.join(table.names)}) {keep_select(table, _IN_NODES)}",
                      {"nodes": nodes})
    store.command(f"INSERT INTO {{db}}.kept_timelines ({', '.join(KEPT_TIMELINES.names)}) "
                  f"{keep_timeline_select(_IN_NODES)}", {"nodes": nodes})


def keep_due(store: Store, steps: Iterable[StepKey] | None = None, runs: Iterable[str] = ()) -> Kept:
    """Keep what is due: the steps (of `steps` and `runs`; steps None: the whole store) and the device figures of
    the ended runs among them; returns what was kept."""
    t0 = time.perf_counter()
    found = due(store, steps, runs)
    if found:
        keep(store, found)
    touched = None if steps is None else {run for run, _, _ in found} | set(runs)
    if nodes := nodes_due(store, touched):
        keep_nodes(store, nodes)
    if models := nodes_due(store, touched, _MODELS_DUE):
        store.command(f"INSERT INTO {{db}}.kept_models ({', '.join(KEPT_MODELS.names)}) {keep_models_select(_IN_NODES)}",
                      {"nodes": models})
    return Kept(len(found), time.perf_counter() - t0, len(nodes))


# A failed pass is tried again after this, doubling up to RETRY_MAX_S while it fails (or at the next notice).
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 60.0


class Keeper:
    """Keeps steps as their batches are stored: `notify` with a stored batch's steps; a thread keeps the
    due ones at most `linger_s` later, all that arrived meanwhile together. A store error is logged and
    the steps retried with the next notice or after a back-off, whichever comes first (reports compute what
    is not kept, so nothing reads short)."""

    def __init__(self, store: Store, linger_s: float = 0.05) -> None:
        self._store = store
        self._linger_s = linger_s
        self._retry = Backoff(RETRY_FIRST_S, RETRY_MAX_S)
        self._retry_in: float | None = None  # seconds until a failed pass is tried again (None: none failed)
        self._pending: set[StepKey] = set()
        self._runs: set[str] = set()
        self._whole = False  # catch_up(): keep whatever the whole store holds unkept
        self._over: set[StepKey] = set()  # steps this process saw end (a late request batch makes one due again)
        self._ended: set[Node] = set()    # nodes whose run this process saw end
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self.steps_kept = 0
        self.last = Kept(0, 0.0)
        self._thread = threading.Thread(target=self._run, name="keeper", daemon=True)
        self._thread.start()

    def notify(self, rows: Iterable[StepKey], over: Iterable[StepKey] = (), ended: Iterable[Node] = (),
               sampled: Iterable[Node] = ()) -> None:
        """What a stored group held: steps with request rows, steps whose `steps` row (the step is over), nodes
        whose run end, nodes with device samples. Request rows make a step due only once it is over (a late
        batch); samples, only once the node's run ended (a late replay): a step still running costs nothing."""
        with self._lock:
            self._over.update(over)
            self._ended.update(ended)
            self._pending.update(over)
            self._pending.update(k for k in rows if k in self._over or (k[0], k[1]) in self._ended)
            self._runs.update(run for run, _ in ended)
            self._runs.update(run for run, agent in sampled if (run, agent) in self._ended)
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._retry_in)
            # close() ends the linger at once, for one last pass over what is pending
            closing = self._closing.wait(self._linger_s)
            with self._lock:
                self._wake.clear()
                steps, self._pending = self._pending, set()
                runs, self._runs = self._runs, set()
                whole, self._whole = self._whole, False
            kept_all = self._keep(None, set()) if whole else True
            if steps or runs:
                kept_all = self._keep(steps, runs) and kept_all
            if kept_all:
                self._retry.reset()
                self._retry_in = None
            else:
                self._retry_in = self._retry.next()
            if closing:
                return

    def catch_up(self) -> None:
        """Keep, on the keeper's thread, whatever the store holds unkept: what a crash, an older collector or one
        started with --no-keep-steps left (the collector serves meanwhile; reports compute what is not kept)."""
        with self._lock:
            self._whole = True
        self._wake.set()

    def _keep(self, steps: set[StepKey] | None, runs: set[str]) -> bool:
        """One pass; False (and the steps pending again) when it failed."""
        try:
            with self._store.writing:  # never beside an ingest insert (Store.writing)
                self.last = keep_due(self._store, steps, runs)
            self.steps_kept += self.last.steps
            if self.last.steps or self.last.nodes:
                log.debug("keeper: kept %d step(s) and %d node(s) in %.3f s", self.last.steps, self.last.nodes,
                          self.last.seconds)
            if steps is None and (self.last.steps or self.last.nodes):
                log.info("kept the results of %d step(s) and %d node(s) the store held unkept, in %.1f s",
                         self.last.steps, self.last.nodes, self.last.seconds)
            return True
        except CollectorError as exc:
            log.warning("keeping the results of %s failed (%s); they are computed from their rows until the next "
                        "try", _what(steps), first_line(exc))
        except Exception:  # a bug: said in full, and the keeper goes on (what is not kept is computed)
            log.exception("keeping the results of %s failed", _what(steps))
        with self._lock:
            if steps is None:
                self._whole = True
            else:
                self._pending.update(steps)
            self._runs.update(runs)
        return False

    def close(self) -> None:
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout=30)
        if self.steps_kept:
            log.info("keeper: results of %d step(s) kept", self.steps_kept)


def _what(steps: set[StepKey] | None) -> str:
    return "the steps the store holds unkept" if steps is None else f"{len(steps)} step(s)"

"""Where a run stands, as every report and `runs list` head it.

A fleet run's state comes from its members' progress (collector/runs.py: planned, running, finished,
cancelled, failed). A run started with `siliconbench-agent run` has no members, so its state comes from
its start and end events (RunEvent.outcome): running (a node has not sent its end), complete,
interrupted (stopped by the user or a signal), aborted (the agent gave up: the reason), or incomplete
(ended, but fewer request records stored than the agent made: some were set aside or not delivered).
Across nodes the worst state wins, in that order reversed: running, aborted, interrupted, incomplete.
An end event from an agent that predates outcomes reads as complete.
"""

from __future__ import annotations

from dataclasses import dataclass

from siliconbench.collector.errors import RunNotFound
from siliconbench.collector.runs import FINISHED, NodeState, node_states, run_state
from siliconbench.collector.store import Store

STANDALONE_STATE_SQL = """
SELECT countIf(phase = 'start') AS started, countIf(phase = 'end') AS ended,
    groupArrayIf((outcome, outcome_detail), phase = 'end') AS outcomes, sumIf(requests_sent, phase = 'end') AS sent,
    (SELECT count() FROM {db}.requests WHERE run_id = {run:String}) AS stored
FROM {db}.runs WHERE run_id = {run:String}
"""

COMPLETE, INTERRUPTED, ABORTED, INCOMPLETE = "complete", "interrupted", "aborted", "incomplete"
FINISHED_STATES = (FINISHED, COMPLETE)  # fleet and standalone words for "ran to its end, all stored"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    state: str          # planned, running, finished, cancelled, failed
    nodes: list[NodeState]
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def describe(self) -> str:
        """'complete (10 of 10 steps finished, 320 request records kept)', or the state alone."""
        return f"{self.state} ({self.detail})" if self.detail else self.state


def lifecycle(store: Store, run_id: str) -> Lifecycle:
    """A run's state: from its fleet members' progress, or, for a run started on one node with
    `siliconbench-agent run`, from its start and end events; RunNotFound when it has neither."""
    nodes = node_states(store, run_id)
    if nodes:
        return Lifecycle(run_state(nodes), nodes)
    started, ended, outcomes, sent, stored = store.query(STANDALONE_STATE_SQL, {"run": run_id}).result_rows[0]
    if not started:
        raise RunNotFound(f"no run {run_id!r} in {store.location.shown}; `siliconbench-collector runs list` lists them")
    if ended < started:
        return Lifecycle("running", [], f"{started - ended} of {started} nodes have not sent the run's end")
    return _ended(outcomes, sent, stored)


def _ended(outcomes: list[tuple[str, str]], sent: int, stored: int) -> Lifecycle:
    for state in (ABORTED, INTERRUPTED):
        details = [detail for outcome, detail in outcomes if outcome == state]
        if details:
            return Lifecycle(state, [], "; ".join(details))
    if sent and stored < sent:
        return Lifecycle(INCOMPLETE, [], f"{stored} of {sent} request records stored: the rest were set aside or "
                                         "not delivered (see the agent's log and spool)")
    details = [detail for outcome, detail in outcomes if detail]
    return Lifecycle(COMPLETE, [], "; ".join(details))

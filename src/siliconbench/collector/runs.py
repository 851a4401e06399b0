"""Fleet runs as the store holds them: who is a member, what each said last, and the run's state.

Plain data for every reader (`run status` through the control service, `collector/lifecycle.py` and
the reports): `NodeState` per node of a run and the run's state, both as words. The collector records
the members when it starts a run (`run_nodes`, role `member`, or `late` for a matching agent that
connected after the start) and every `RunProgress` an agent sends (`run_progress`); the states here
are derived from those rows, so they hold across collector replicas and restarts. No gRPC here: the
control service (collector/control.py) converts to wire messages at its edge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from siliconbench.collector.schema import RUN_NODES, RUN_PROGRESS
from siliconbench.collector.store import Store

PLANNED, RUNNING, FINISHED, CANCELLED, FAILED = "planned", "running", "finished", "cancelled", "failed"
STATES = (PLANNED, RUNNING, FINISHED, CANCELLED, FAILED)  # the run_progress.state enum, in its order
TERMINAL = frozenset({FINISHED, CANCELLED, FAILED})
UNKNOWN = "unknown"  # a run with no member (only late joiners)
MEMBER, LATE = "member", "late"  # run_nodes.role
LATE_DETAIL = "joined after the start; not part of this run"
# A member that has said nothing this long after the shared start is reported as not started.
START_GRACE_NS = 30 * 10**9
# A running member sends progress every 5 s (siliconbench.agent.fleet.HEARTBEAT_S); one silent this long has dropped
# out (down, or cut off from every collector). Its next word, even much later, restores its real state.
SILENT_GRACE_NS = 30 * 10**9


@dataclass(frozen=True, slots=True)
class NodeState:
    """One node of a fleet run with its latest word (`state` one of STATES; `role` MEMBER or LATE)."""

    agent_id: str
    node_name: str
    instance_type: str
    scenario: str
    role: str
    state: str
    step: int = 0
    steps_total: int = 0
    requests_done: int = 0
    output_tokens_per_s: float = 0.0
    errors: int = 0
    detail: str = ""
    last_word_ns: int = 0  # when it last reported progress; 0: never

    @property
    def member(self) -> bool:
        return self.role == MEMBER


NODE_STATUS_SQL = """
SELECT n.agent_id, n.node_name, n.instance_type, n.scenario, n.start_at,
       p.state, p.step, p.steps_total, p.requests_done, p.output_tokens_per_s, p.errors, p.detail, p.last_word,
       n.role
FROM (SELECT * FROM {db}.run_nodes FINAL WHERE run_id = {r:String}) AS n
LEFT JOIN (
    SELECT agent_id, argMax(state, time) AS state, argMax(step, time) AS step, argMax(steps_total, time) AS steps_total,
           argMax(requests_done, time) AS requests_done, argMax(output_tokens_per_s, time) AS output_tokens_per_s,
           argMax(errors, time) AS errors, argMax(detail, time) AS detail, max(time) AS last_word
    FROM {db}.run_progress WHERE run_id = {r:String} GROUP BY agent_id
) AS p ON p.agent_id = n.agent_id
ORDER BY n.role, n.scenario, n.agent_id
SETTINGS join_use_nulls = 1
"""


def node_states(store: Store, run_id: str) -> list[NodeState]:
    """Each node of a fleet run with its latest progress (none: not a fleet run). Members silent past a
    grace are failed: not started by the shared start time + START_GRACE_NS, or running with no word for
    SILENT_GRACE_NS. Late joiners are listed as cancelled, with LATE_DETAIL."""
    now = time.time_ns()
    out = []
    for (agent_id, node, itype, scenario, start_at, state, step, total, done, tps, errors, detail, last_word,
         role) in store.query(NODE_STATUS_SQL, {"r": run_id}).result_rows:
        state = state or PLANNED
        last_ns = _ns(last_word) if last_word is not None else 0
        if role == LATE:
            state, detail = CANCELLED, LATE_DETAIL
        elif state == PLANNED and now > _ns(start_at) + START_GRACE_NS:
            state, detail = FAILED, "never started (agent disconnected or busy?)"
        elif state == RUNNING and now > last_ns + SILENT_GRACE_NS:
            state = FAILED
            detail = (f"dropped out: no word since {time.strftime('%H:%M:%S', time.gmtime(last_ns / 1e9))} UTC "
                      "(agent down, or cut off from the collector)")
        out.append(NodeState(agent_id=agent_id, node_name=node, instance_type=itype, scenario=scenario, role=role,
                             state=state, step=step or 0, steps_total=total or 0, requests_done=done or 0,
                             output_tokens_per_s=tps or 0.0, errors=errors or 0, detail=detail or "",
                             last_word_ns=last_ns))
    return out


def run_state(nodes: list[NodeState]) -> str:
    """A fleet run's state from its members' states (late joiners do not count)."""
    states = {n.state for n in nodes if n.member}
    if not states:
        return UNKNOWN
    for state in (RUNNING, PLANNED):
        if state in states:
            return state
    if states == {FINISHED}:
        return FINISHED
    return CANCELLED if CANCELLED in states else FAILED


def members(store: Store, run_id: str) -> list[str]:
    """The agent ids of a run's members (late joiners left out), from the store every replica shares."""
    rows = store.query("SELECT agent_id FROM {db}.run_nodes FINAL WHERE run_id = {r:String} AND role = 'member'",
                       {"r": run_id}).result_rows
    return [r[0] for r in rows]


class Node(Protocol):
    """What a run_nodes row says of an agent (an agent's Hello has these)."""

    @property
    def agent_id(self) -> str: ...
    @property
    def node_name(self) -> str: ...
    @property
    def instance_type(self) -> str: ...
    @property
    def scenario(self) -> str: ...


def node_rows(run_id: str, nodes: Sequence[Node], role: str, plan_json: str, selector: dict[str, str],
              start_at: int) -> list[list]:
    now = time.time_ns()
    return [RUN_NODES.row(run_id=run_id, agent_id=n.agent_id, node_name=n.node_name, instance_type=n.instance_type,
                          scenario=n.scenario, role=role, plan_json=plan_json,
                          selector=json.dumps(selector, sort_keys=True), start_at=start_at, created=now)
            for n in nodes]


def progress_row(run_id: str, agent_id: str, state: str, *, step: int = 0, steps_total: int = 0,
                 requests_done: int = 0, output_tokens_per_s: float = 0.0, errors: int = 0, detail: str = "",
                 time_ns: int = 0) -> list:
    return RUN_PROGRESS.row(run_id=run_id[:256], agent_id=agent_id, state=state, step=step, steps_total=steps_total,
                            requests_done=requests_done, output_tokens_per_s=output_tokens_per_s, errors=errors,
                            detail=detail[:2000], time=time_ns or time.time_ns())


def _ns(value) -> int:
    return int(value.timestamp() * 1e9) if hasattr(value, "timestamp") else int(value)

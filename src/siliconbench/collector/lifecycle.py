"""Where a run stands (planned, running, finished, cancelled, failed), as every report heads it.

A fleet run's state comes from its members' progress (collector/fleet.py); a run started on one node
with `siliconbench-agent run` has no members, so its state comes from its start and end events.
"""

from __future__ import annotations

from dataclasses import dataclass

from siliconbench.collector.errors import RunNotFound
from siliconbench.collector.fleet import STATE_NAMES, node_statuses, run_state
from siliconbench.collector.store import Store
from siliconbench.core.wire import pb

STANDALONE_STATE_SQL = """
SELECT countIf(phase = 'start') AS started, countIf(phase = 'end') AS ended
FROM {db}.runs WHERE run_id = {run:String}
"""


@dataclass(frozen=True, slots=True)
class Lifecycle:
    state: str          # planned, running, finished, cancelled, failed
    nodes: list[pb.NodeStatus]
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.state == "finished"


def lifecycle(store: Store, run_id: str) -> Lifecycle:
    """A run's state: from its fleet members' progress, or, for a run started on one node with
    `siliconbench-agent run`, from its start and end events; RunNotFound when it has neither."""
    nodes = node_statuses(store, run_id, lambda _agent: False)
    if nodes:
        return Lifecycle(STATE_NAMES.get(run_state(nodes), "unknown"), nodes)
    started, ended = store.query(STANDALONE_STATE_SQL, {"run": run_id}).result_rows[0]
    if not started:
        raise RunNotFound(f"no run {run_id!r} in {store.location.shown}; `siliconbench-collector runs list` lists them")
    if ended >= started:
        return Lifecycle("finished", [])
    return Lifecycle("running", [], f"{started - ended} of {started} nodes have not sent the run's end")

"""What one authenticated stream may write, checked while it is open: as its agent only while its
credential still says so (collector/identity.py), and only into runs its agent belongs to.

An agent belongs to a fleet run when the collector listed it as a member at the start (`run_nodes`,
written before any member is told to start), and to any other run that no other agent has written
(its own runs: run ids are random, the first writer owns one). A run id is looked up once per stream;
the lookup is one query (`run_writers`) over the two tables that say who is in a run.
"""

from __future__ import annotations

from siliconbench.collector.errors import NotAuthenticated
from siliconbench.collector.group_insert import ReadyBatch
from siliconbench.collector.identity import Authenticator
from siliconbench.collector.store import Store
from siliconbench.core.wire import pb

MAX_RUNS_LISTED = 3  # agents named in a refusal


class Revoked(Exception):
    """A stream's credential no longer lets it write: the reason, in one line."""


class StreamGrant:
    def __init__(self, authenticator: Authenticator, metadata, hello: pb.Hello, store: Store) -> None:
        self._authenticator, self._metadata, self._hello, self._store = authenticator, metadata, hello, store
        self._runs: set[str] = set()  # run ids this stream may write into, once looked up

    def revoked(self) -> str | None:
        """Why the credential no longer lets the stream write as its agent (removed from the tokens file,
        expired, bound elsewhere), or None while it does."""
        try:
            credential = self._authenticator.check(self._metadata)
        except NotAuthenticated as exc:
            return str(exc)
        return credential.refusal(self._hello.agent_id, self._hello.node_name)

    def run_refusal(self, run_ids: set[str]) -> str | None:
        """Why the agent may not write into one of `run_ids` (one line), or None. Blocking: a store query
        for each run id not looked up before on this stream."""
        agent = self._hello.agent_id
        for run_id in sorted(run_ids - self._runs - {""}):
            members, writers = run_writers(self._store, run_id)
            if members and agent not in members:
                return f"agent {agent!r} is not a member of fleet run {run_id!r}"
            others = sorted(set(writers) - {agent})
            if not members and others:
                return (f"run {run_id!r} belongs to agent {', '.join(map(repr, others[:MAX_RUNS_LISTED]))}; an agent "
                        "writes only into its own runs and the fleet runs it is a member of")
            self._runs.add(run_id)
        return None


def run_ids(batch: ReadyBatch) -> set[str]:
    """The run ids a checked batch writes into."""
    return {value for table in batch.tables.values() for value in table.column("run_id").unique().to_pylist()}


def run_writers(store: Store, run_id: str) -> tuple[list[str], list[str]]:
    """The run's fleet members (none: not a fleet run) and the agents that have written its run events."""
    row = store.query(
        "SELECT (SELECT groupArray(agent_id) FROM {db}.run_nodes FINAL WHERE run_id = {r:String} AND role = 'member'), "
        "(SELECT groupUniqArray(agent_id) FROM {db}.runs WHERE run_id = {r:String})", {"r": run_id}).result_rows[0]
    return list(row[0]), list(row[1])

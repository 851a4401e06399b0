"""The collector as control plane for fleet runs.

`Fleet` knows the agents connected to this collector (each Telemetry stream attaches one
`AgentLink`, whose `commands` queue the stream forwards to its agent). For `siliconbench-collector
run start|cancel` (collector/control.py) it picks the connected agents that match the selector,
records the run's members in ClickHouse (`run_nodes`), and sends each a StartCommand with one
shared start time. Agents report `RunProgress`, stored in `run_progress`, so status and lifecycle
come from the store and hold across collector replicas and restarts (collector/runs.py reads them).

Delivery: streams end at their maximum age and agents reconnect, so commands are kept per agent id
until the agent acknowledges them and are sent again on its next stream (collector/commands.py); an
agent whose stream ended less than RECONNECT_GRACE_S ago still counts as connected, so a start does
not miss it between two streams. A cancel is queued for every member the store lists, connected or
not.

Lease: a StartCommand carries `lease_s`; the collector renews it in reply to each progress report of a
run it has not seen cancelled, and a member that hears no renewal for that long stops its load by
itself (agent/fleet.py). A member cut off from every collector, or one whose cancel is lost, so stops
within a lease.

Several replicas: the CLI sends the same StartRun (same run id and start time) and CancelRun to every
replica; each starts the matching agents it holds (or held a moment ago) and queues the cancel for
every member. Pending commands live in the replica's memory: an agent that moves to another replica
gets that replica's copy of the cancel (it queued one too), and the replica it left stops renewing
its lease; a start queued on a replica the agent left reaches it only if it comes back within the
start grace (else `run status` shows it never started, with the start unacknowledged). A restarted
replica has lost its pending commands and its cancelled runs: run `run cancel` again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from siliconbench.collector import runs
from siliconbench.collector.commands import PENDING_TTL_NS, Outbox
from siliconbench.collector.store import Store
from siliconbench.core.errors import ConfigError
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

SELECTOR_KEYS = {
    "instance-type": lambda h: h.instance_type,
    "node": lambda h: h.node_name,
    "agent": lambda h: h.agent_id,
    "scenario": lambda h: h.scenario,
    "accelerator": lambda h: h.accelerator_kind,
}
# RunProgress.state as the store and the readers name it (collector/runs.py).
STATE_NAMES = {pb.RUN_STATE_PLANNED: runs.PLANNED, pb.RUN_STATE_RUNNING: runs.RUNNING,
               pb.RUN_STATE_FINISHED: runs.FINISHED, pb.RUN_STATE_CANCELLED: runs.CANCELLED,
               pb.RUN_STATE_FAILED: runs.FAILED}
# A run none of whose members has said anything this long (after its start) leaves memory: a member that died
# without a final word would otherwise keep it there forever. Its record stays in the store, status reads it.
FORGET_SILENT_RUN_NS = 600 * 10**9
# A member stops its load by itself when this long passes without a renewal; it sends progress every
# HEARTBEAT_S (5 s, agent/fleet.py), or a third of its lease if that is shorter, and each is renewed.
LEASE_S = 30.0
# An agent whose stream ended this recently is still selected: it is reconnecting (a stream past its
# maximum age, a replica going away), and its start waits for it in the outbox.
RECONNECT_GRACE_S = 10.0
# An agent sends the latest progress of each of its runs again on every new stream; the time of the last one stored
# per (agent, run), for this many pairs, lets a repeat pass without another row.
REMEMBERED_PROGRESS = 10_000


@dataclass
class AgentLink:
    hello: pb.Hello
    commands: asyncio.Queue = field(default_factory=asyncio.Queue)


@dataclass
class ActiveRun:
    """A run this collector started, kept in memory until every member has ended it."""

    selector: dict[str, str]
    start_at: int
    members: frozenset[str]
    running: set[str]  # members that have not reported finished, cancelled or failed
    heard_ns: int = 0   # when a member last reported progress


def matches(hello: pb.Hello, selector: dict[str, str]) -> bool:
    return all(SELECTOR_KEYS[key](hello) == value for key, value in selector.items())


def check_selector(selector: dict[str, str]) -> None:
    unknown = sorted(set(selector) - set(SELECTOR_KEYS))
    if unknown:
        raise ConfigError(f"unknown selector keys {unknown}; use {sorted(SELECTOR_KEYS)}")


class Fleet:
    """Connected agents and the runs started through this collector."""

    def __init__(self, store: Store, run_in_store: Callable[..., Awaitable]) -> None:
        self._store = store
        self._run = run_in_store      # runs a blocking store call off the event loop
        self._links: dict[str, AgentLink] = {}
        self._left: dict[str, tuple[pb.Hello, float]] = {}  # agent id -> its Hello, when its stream ended
        self.outbox = Outbox()
        self._cancelled: dict[str, int] = {}  # run id -> when it was cancelled here: its leases are not renewed
        self.lease_s = LEASE_S
        self._active: dict[str, ActiveRun] = {}
        self._stored: OrderedDict[tuple[str, str], int] = OrderedDict()  # (agent, run) -> time of its last progress
        self._writes: set[asyncio.Task] = set()  # late-joiner records in flight (held so they are not collected)

    def attach(self, hello: pb.Hello) -> AgentLink:
        """Link a (re)connected agent. A member that reconnects (a stream past its maximum age, a
        network cut) stays a member with its state; only a matching agent that was not a member
        when the run started is recorded as a late joiner, and only if the store, which every
        replica shares, does not list it as a member either (it may have started through another)."""
        link = AgentLink(hello)
        self._links[hello.agent_id] = link
        self._left.pop(hello.agent_id, None)
        for command in self.outbox.due(hello.agent_id):
            link.commands.put_nowait(command)
        self._forget_silent()
        for run_id, run in self._active.items():
            if hello.agent_id not in run.members and matches(hello, run.selector) and time.time_ns() > run.start_at:
                task = asyncio.get_running_loop().create_task(self._record_late(run_id, hello, run))
                self._writes.add(task)
                task.add_done_callback(self._writes.discard)
        return link

    async def _record_late(self, run_id: str, hello: pb.Hello, run: ActiveRun) -> None:
        if hello.agent_id in await self._run(runs.members, self._store, run_id):
            return
        log.info("agent %s joined after run %s started; it is not part of that run", hello.agent_id, run_id)
        await self._record_members(run_id, [hello], runs.LATE, "", run.selector, run.start_at)

    def detach(self, link: AgentLink) -> None:
        if self._links.get(link.hello.agent_id) is link:
            del self._links[link.hello.agent_id]
            self._left[link.hello.agent_id] = (link.hello, time.monotonic())

    def connected(self, agent_id: str) -> bool:
        return agent_id in self._links

    def acknowledged(self, agent_id: str, ack: pb.CommandAck) -> None:
        self.outbox.acknowledged(agent_id, ack.id)

    async def on_progress(self, agent_id: str, progress: pb.RunProgress) -> pb.Command | None:
        """Store the progress; returns the lease renewal to send back while the run goes on."""
        state = STATE_NAMES.get(progress.state)
        if state is None or not progress.run_id:
            log.warning("agent %s sent progress without run id or state; ignored", agent_id)
            return None
        key = (agent_id, progress.run_id)
        if not progress.time_unix_ns or self._stored.get(key) != progress.time_unix_ns:  # not a repeat of the last
            await self._record_progress(agent_id, progress, state)
            self._stored[key] = progress.time_unix_ns
            self._stored.move_to_end(key)
            while len(self._stored) > REMEMBERED_PROGRESS:
                self._stored.popitem(last=False)
        if state in runs.TERMINAL or progress.run_id in self._cancelled:
            return None
        return pb.Command(renew=pb.LeaseRenewal(run_id=progress.run_id, lease_s=self.lease_s))

    async def _record_progress(self, agent_id: str, progress: pb.RunProgress, state: str) -> None:
        if state in runs.TERMINAL:
            log.info("agent %s: run %s %s%s", agent_id, progress.run_id, state,
                     f" ({progress.detail})" if progress.detail else "")
            self._ended(progress.run_id, agent_id)
        elif (run := self._active.get(progress.run_id)) is not None:
            run.heard_ns = time.time_ns()
        row = runs.progress_row(
            progress.run_id, agent_id, state, step=progress.step, steps_total=progress.steps_total,
            requests_done=progress.requests_done,
            output_tokens_per_s=progress.output_tokens_per_s if math.isfinite(progress.output_tokens_per_s) else 0.0,
            errors=progress.errors, detail=progress.detail, time_ns=progress.time_unix_ns)
        await self._run(self._store.insert, "run_progress", [row], "")

    def matching(self, selector: dict[str, str]) -> list[pb.Hello]:
        """The agents connected now, or reconnecting (their stream ended within RECONNECT_GRACE_S), that match."""
        now = time.monotonic()
        for agent_id in [a for a, (_, left) in self._left.items() if now - left > RECONNECT_GRACE_S]:
            del self._left[agent_id]
        hellos = [link.hello for link in self._links.values()] + [hello for hello, _ in self._left.values()]
        return [hello for hello in hellos if matches(hello, selector)]

    def _send(self, agent_id: str, command: pb.Command, expires_ns: int) -> None:
        """Queue a start or cancel for the agent until it acknowledges it; on its stream now if it has one."""
        command = self.outbox.put(agent_id, command, expires_ns)
        if (link := self._links.get(agent_id)) is not None:
            link.commands.put_nowait(command)

    def unacknowledged(self, agent_id: str, run_id: str) -> list[str]:
        return self.outbox.unacknowledged(agent_id, run_id)

    async def start(self, plan_json: str, selector: dict[str, str], run_id: str, start_at: int) -> list[str]:
        self._forget_silent()
        hellos = self.matching(selector)
        if not hellos:
            return []
        agents = [hello.agent_id for hello in hellos]
        await self._record_members(run_id, hellos, runs.MEMBER, plan_json, selector, start_at)
        await self._run(self._store.insert, "run_progress",
                        [runs.progress_row(run_id, agent_id, runs.PLANNED) for agent_id in agents], "")
        for agent_id in agents:  # a start past the start grace is useless: `run status` says it never started
            self._send(agent_id, pb.Command(start=pb.StartCommand(run_id=run_id, plan_json=plan_json,
                                                                  start_at_unix_ns=start_at, lease_s=self.lease_s)),
                       expires_ns=start_at + runs.START_GRACE_NS)
        self._active[run_id] = ActiveRun(selector, start_at, frozenset(agents), set(agents))
        log.info("run %s: started on %d agents (%s), start at %s", run_id, len(agents), ", ".join(agents),
                 time.strftime("%H:%M:%S", time.gmtime(start_at / 1e9)))
        return agents

    async def cancel(self, run_id: str) -> int:
        """Queue the cancel for every member (connected or not), stop renewing the run's leases, and
        never send its starts still pending; returns the number of members."""
        members = await self._run(runs.members, self._store, run_id)
        now = time.time_ns()
        self._cancelled[run_id] = now
        self.outbox.withdraw_starts(run_id)
        for agent_id in members:
            self._send(agent_id, pb.Command(cancel=pb.CancelCommand(run_id=run_id)), expires_ns=now + PENDING_TTL_NS)
        self._active.pop(run_id, None)
        log.info("run %s: cancel queued for %d members (%d connected here)", run_id, len(members),
                 sum(agent_id in self._links for agent_id in members))
        return len(members)

    def _ended(self, run_id: str, agent_id: str) -> None:
        """A member ended the run; once all have, the run leaves memory (its record stays in the store)."""
        run = self._active.get(run_id)
        if run is None:
            return
        run.running.discard(agent_id)
        if not run.running:
            del self._active[run_id]
            log.info("run %s: every member has ended it", run_id)

    def active(self) -> list[str]:
        """The runs this collector started that some member has not ended yet (and has spoken of lately)."""
        self._forget_silent()
        return list(self._active)

    def _forget_silent(self) -> None:
        """Let go of the runs silent past FORGET_SILENT_RUN_NS, and of cancels older than PENDING_TTL_NS (at
        every attach, start and listing, so the runs held are at most those started or heard of within that time)."""
        now = time.time_ns()
        for run_id in [r for r, cancelled in self._cancelled.items() if now - cancelled > PENDING_TTL_NS]:
            del self._cancelled[run_id]
        for run_id, run in list(self._active.items()):
            if now - max(run.start_at, run.heard_ns) > FORGET_SILENT_RUN_NS:
                del self._active[run_id]
                log.warning("run %s: no word from %s for %.0f s; forgotten here (its record stays in the store)",
                            run_id, ", ".join(sorted(run.running)), FORGET_SILENT_RUN_NS / 1e9)

    async def _record_members(self, run_id: str, hellos: list[pb.Hello], role: str, plan_json: str,
                              selector: dict[str, str], start_at: int) -> None:
        rows = runs.node_rows(run_id, hellos, role, plan_json, selector, start_at)
        await self._run(self._store.insert, "run_nodes", rows, "")

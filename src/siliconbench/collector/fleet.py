"""The collector as control plane for fleet runs.

`Fleet` knows the agents connected to this collector (each Telemetry stream attaches one
`AgentLink`, whose `commands` queue the stream forwards to its agent). For `siliconbench-collector
run start|cancel` (collector/control.py) it picks the connected agents that match the selector, records the run's members in ClickHouse
(`run_nodes`), and sends each a StartCommand with one shared start time. Agents report
`RunProgress`, stored in `run_progress`, so status and lifecycle come from the store and
hold across collector replicas and restarts (collector/runs.py reads them; collector/control.py is
the gRPC service in front of this registry). With several replicas, the CLI sends the same
StartRun (same run id and start time) to every replica; each starts the agents it holds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from siliconbench.collector import runs
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
        self._active: dict[str, ActiveRun] = {}
        self._writes: set[asyncio.Task] = set()  # late-joiner records in flight (held so they are not collected)

    def attach(self, hello: pb.Hello) -> AgentLink:
        """Link a (re)connected agent. A member that reconnects (a stream past its maximum age, a
        network cut) stays a member with its state; only a matching agent that was not a member
        when the run started is recorded as a late joiner, and only if the store, which every
        replica shares, does not list it as a member either (it may have started through another)."""
        link = AgentLink(hello)
        self._links[hello.agent_id] = link
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

    def connected(self, agent_id: str) -> bool:
        return agent_id in self._links

    async def on_progress(self, agent_id: str, progress: pb.RunProgress) -> None:
        state = STATE_NAMES.get(progress.state)
        if state is None or not progress.run_id:
            log.warning("agent %s sent progress without run id or state; ignored", agent_id)
            return
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

    def matching(self, selector: dict[str, str]) -> list[AgentLink]:
        return [link for link in self._links.values() if matches(link.hello, selector)]

    async def start(self, plan_json: str, selector: dict[str, str], run_id: str, start_at: int) -> list[str]:
        self._forget_silent()
        links = self.matching(selector)
        if not links:
            return []
        await self._record_members(run_id, [link.hello for link in links], runs.MEMBER, plan_json, selector, start_at)
        for link in links:
            await self._run(self._store.insert, "run_progress", [runs.progress_row(run_id, link.hello.agent_id, runs.PLANNED)], "")
            link.commands.put_nowait(pb.Command(start=pb.StartCommand(run_id=run_id, plan_json=plan_json,
                                                                      start_at_unix_ns=start_at)))
        members = frozenset(link.hello.agent_id for link in links)
        self._active[run_id] = ActiveRun(selector, start_at, members, set(members))
        log.info("run %s: started on %d agents (%s), start at %s", run_id, len(links),
                 ", ".join(link.hello.agent_id for link in links), time.strftime("%H:%M:%S", time.gmtime(start_at / 1e9)))
        return [link.hello.agent_id for link in links]

    async def cancel(self, run_id: str) -> int:
        members = await self._run(runs.members, self._store, run_id)
        sent = 0
        for agent_id in members:
            link = self._links.get(agent_id)
            if link is not None:
                link.commands.put_nowait(pb.Command(cancel=pb.CancelCommand(run_id=run_id)))
                sent += 1
        self._active.pop(run_id, None)
        log.info("run %s: cancel sent to %d agents", run_id, sent)
        return sent

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
        """Let go of the runs silent past FORGET_SILENT_RUN_NS (at every attach, start and listing, so the
        runs held are at most those started or heard of within that time)."""
        now = time.time_ns()
        for run_id, run in list(self._active.items()):
            if now - max(run.start_at, run.heard_ns) > FORGET_SILENT_RUN_NS:
                del self._active[run_id]
                log.warning("run %s: no word from %s for %.0f s; forgotten here (its record stays in the store)",
                            run_id, ", ".join(sorted(run.running)), FORGET_SILENT_RUN_NS / 1e9)

    async def _record_members(self, run_id: str, hellos: list[pb.Hello], role: str, plan_json: str,
                              selector: dict[str, str], start_at: int) -> None:
        rows = runs.node_rows(run_id, hellos, role, plan_json, selector, start_at)
        await self._run(self._store.insert, "run_nodes", rows, "")

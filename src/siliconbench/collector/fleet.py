"""The collector as control plane for fleet runs.

`Fleet` knows the agents connected to this collector (each Telemetry stream attaches one
`AgentLink`, whose `commands` queue the stream forwards to its agent). `ControlService`
answers `siliconbench-collector run start|status|cancel`: it validates the plan, picks the
connected agents that match the selector, records the run's members in ClickHouse
(`run_nodes`), and sends each a StartCommand with one shared start time. Agents report
`RunProgress`, stored in `run_progress`, so status and lifecycle come from the store and
hold across collector replicas and restarts. With several replicas, the CLI sends the same
StartRun (same run id and start time) to every replica; each starts the agents it holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from siliconbench.core.datasets import check_fleet_dataset
from siliconbench.core.errors import ConfigError
from siliconbench.core.ids import new_run_id
from siliconbench.core.plan import plan_from_mapping
from siliconbench.collector.identity import Authenticator
from siliconbench.collector.schema import RUN_NODES, RUN_PROGRESS
from siliconbench.core.limits import MAX_ID_CHARS
from siliconbench.collector.store import Store
from siliconbench.core.wire import pb
from siliconbench.core.rpc import pb_grpc

log = logging.getLogger(__name__)

SELECTOR_KEYS = {
    "instance-type": lambda h: h.instance_type,
    "node": lambda h: h.node_name,
    "agent": lambda h: h.agent_id,
    "scenario": lambda h: h.scenario,
    "accelerator": lambda h: h.accelerator_kind,
}
STATE_NAMES = {pb.RUN_STATE_PLANNED: "planned", pb.RUN_STATE_RUNNING: "running", pb.RUN_STATE_FINISHED: "finished",
               pb.RUN_STATE_CANCELLED: "cancelled", pb.RUN_STATE_FAILED: "failed"}
STATE_OF_NAME = {name: state for state, name in STATE_NAMES.items()}
TERMINAL = {pb.RUN_STATE_FINISHED, pb.RUN_STATE_CANCELLED, pb.RUN_STATE_FAILED}
LATE = "joined after the start; not part of this run"
# A member that has said nothing this long after the shared start is reported as not started.
START_GRACE_NS = 30 * 10**9
# A running member sends progress every 5 s (siliconbench.agent.fleet.HEARTBEAT_S); one silent this long has dropped
# out (down, or cut off from every collector). Its next word, even much later, restores its real state.
SILENT_GRACE_NS = 30 * 10**9
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
        if hello.agent_id in await self._run(self.members, run_id):
            return
        log.info("agent %s joined after run %s started; it is not part of that run", hello.agent_id, run_id)
        await self._record_members(run_id, [hello], "late", "", run.selector, run.start_at)

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
        if progress.state in TERMINAL:
            log.info("agent %s: run %s %s%s", agent_id, progress.run_id, state,
                     f" ({progress.detail})" if progress.detail else "")
            self._ended(progress.run_id, agent_id)
        elif (run := self._active.get(progress.run_id)) is not None:
            run.heard_ns = time.time_ns()
        row = RUN_PROGRESS.row(
            run_id=progress.run_id[:256], agent_id=agent_id, state=state, step=progress.step,
            steps_total=progress.steps_total, requests_done=progress.requests_done,
            output_tokens_per_s=progress.output_tokens_per_s if math.isfinite(progress.output_tokens_per_s) else 0.0,
            errors=progress.errors, detail=progress.detail[:2000], time=progress.time_unix_ns or time.time_ns())
        await self._run(self._store.insert, "run_progress", [row], "")

    def matching(self, selector: dict[str, str]) -> list[AgentLink]:
        return [link for link in self._links.values() if matches(link.hello, selector)]

    async def start(self, plan_json: str, selector: dict[str, str], run_id: str, start_at: int) -> list[str]:
        self._forget_silent()
        links = self.matching(selector)
        if not links:
            return []
        await self._record_members(run_id, [link.hello for link in links], "member", plan_json, selector, start_at)
        for link in links:
            await self._run(self._store.insert, "run_progress", [_progress_row(run_id, link.hello.agent_id, "planned")], "")
            link.commands.put_nowait(pb.Command(start=pb.StartCommand(run_id=run_id, plan_json=plan_json,
                                                                      start_at_unix_ns=start_at)))
        members = frozenset(link.hello.agent_id for link in links)
        self._active[run_id] = ActiveRun(selector, start_at, members, set(members))
        log.info("run %s: started on %d agents (%s), start at %s", run_id, len(links),
                 ", ".join(link.hello.agent_id for link in links), time.strftime("%H:%M:%S", time.gmtime(start_at / 1e9)))
        return [link.hello.agent_id for link in links]

    async def cancel(self, run_id: str) -> int:
        members = await self._run(self.members, run_id)
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

    def members(self, run_id: str) -> list[str]:
        rows = self._store.query("SELECT agent_id FROM {db}.run_nodes FINAL WHERE run_id = {r:String} AND role = 'member'",
                                 {"r": run_id}).result_rows
        return [r[0] for r in rows]

    async def _record_members(self, run_id: str, hellos: list[pb.Hello], role: str, plan_json: str,
                              selector: dict[str, str], start_at: int) -> None:
        now = time.time_ns()
        rows = [RUN_NODES.row(run_id=run_id, agent_id=h.agent_id, node_name=h.node_name, instance_type=h.instance_type,
                              scenario=h.scenario, role=role, plan_json=plan_json,
                              selector=json.dumps(selector, sort_keys=True), start_at=start_at, created=now)
                for h in hellos]
        await self._run(self._store.insert, "run_nodes", rows, "")


def _progress_row(run_id: str, agent_id: str, state: str, detail: str = "") -> list:
    return RUN_PROGRESS.row(run_id=run_id, agent_id=agent_id, state=state, step=0, steps_total=0, requests_done=0,
                            output_tokens_per_s=0.0, errors=0, detail=detail, time=time.time_ns())


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


def node_statuses(store: Store, run_id: str, connected: Callable[[str], bool]) -> list[pb.NodeStatus]:
    """Each node of a fleet run with its latest progress. Members silent past a grace are failed: not
    started by the shared start time + START_GRACE_NS, or running with no word for SILENT_GRACE_NS."""
    now = time.time_ns()
    out = []
    for (agent_id, node, itype, scenario, start_at, state, step, total, done, tps, errors, detail, last_word,
         role) in store.query(NODE_STATUS_SQL, {"r": run_id}).result_rows:
        code = STATE_OF_NAME.get(state or "", pb.RUN_STATE_PLANNED)
        last_ns = _ns(last_word) if last_word is not None else 0
        if role == "late":
            code, detail = pb.RUN_STATE_CANCELLED, LATE
        elif code == pb.RUN_STATE_PLANNED and now > _ns(start_at) + START_GRACE_NS:
            code, detail = pb.RUN_STATE_FAILED, "never started (agent disconnected or busy?)"
        elif code == pb.RUN_STATE_RUNNING and now > last_ns + SILENT_GRACE_NS:
            code = pb.RUN_STATE_FAILED
            detail = (f"dropped out: no word since {time.strftime('%H:%M:%S', time.gmtime(last_ns / 1e9))} UTC "
                      "(agent down, or cut off from the collector)")
        progress = pb.RunProgress(run_id=run_id, state=code, step=step or 0, steps_total=total or 0,
                                  requests_done=done or 0, output_tokens_per_s=tps or 0.0, errors=errors or 0,
                                  detail=detail or "", time_unix_ns=last_ns)
        out.append(pb.NodeStatus(agent_id=agent_id, node_name=node, instance_type=itype, scenario=scenario,
                                 progress=progress, connected=connected(agent_id)))
    return out


def run_state(nodes: list[pb.NodeStatus]) -> pb.RunState:
    """A fleet run's state from its members' states (late joiners do not count)."""
    states = [n.progress.state for n in nodes if n.progress.detail != LATE]
    if not states:
        return pb.RUN_STATE_UNSPECIFIED
    if any(s == pb.RUN_STATE_RUNNING for s in states):
        return pb.RUN_STATE_RUNNING
    if any(s == pb.RUN_STATE_PLANNED for s in states):
        return pb.RUN_STATE_PLANNED
    if all(s == pb.RUN_STATE_FINISHED for s in states):
        return pb.RUN_STATE_FINISHED
    if any(s == pb.RUN_STATE_CANCELLED for s in states):
        return pb.RUN_STATE_CANCELLED
    return pb.RUN_STATE_FAILED


def _ns(value) -> int:
    return int(value.timestamp() * 1e9) if hasattr(value, "timestamp") else int(value)


class ControlService(pb_grpc.ControlServicer):
    """gRPC adapter for `siliconbench-collector run ...`."""

    def __init__(self, fleet: Fleet, store: Store, run_in_store: Callable[..., Awaitable],
                 tokens: Authenticator | None = None) -> None:
        self._fleet = fleet
        self._store = store
        self._run = run_in_store
        self._tokens = tokens

    async def _authorise(self, context: grpc.aio.ServicerContext, operator: bool = False) -> None:
        """Any accepted token may read (status, agents); starting and cancelling runs needs an operator's."""
        if self._tokens is None:
            return
        credential = self._tokens.credential(context.invocation_metadata())
        if credential is None:
            log.warning("control call from %s refused: missing or wrong bearer token", context.peer())
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or wrong bearer token: set SILICONBENCH_OPERATOR_TOKEN")
        elif operator and not credential.operator:
            log.warning("control call from %s refused: an agent token may not start or cancel runs", context.peer())
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                "starting and cancelling runs needs an operator token (a `TOKEN operator` line of the "
                                "collector's tokens file) in SILICONBENCH_OPERATOR_TOKEN; agent tokens cannot")

    async def StartRun(self, request: pb.StartRunRequest, context: grpc.aio.ServicerContext) -> pb.StartRunReply:
        await self._authorise(context, operator=True)
        selector = dict(request.selector)
        try:
            check_selector(selector)
            plan = plan_from_mapping(_plan_mapping(request.plan_json), "the plan")
            if plan.dataset is not None:
                check_fleet_dataset(plan.dataset)
            run_id = _run_id(request.run_id)
            start_at = _start_at(request)
        except (ConfigError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _one_line(exc))
        found = len(self._fleet.matching(selector))
        if found < request.min_agents:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"{found} connected agents match {selector or 'the empty selector'}, "
                                f"{request.min_agents} wanted")
        agents = await self._fleet.start(plan.to_json(), selector, run_id, start_at)
        return pb.StartRunReply(run_id=run_id, agents=agents, start_at_unix_ns=start_at)

    async def RunStatus(self, request: pb.RunStatusRequest, context: grpc.aio.ServicerContext) -> pb.RunStatusReply:
        await self._authorise(context)
        nodes = await self._run(node_statuses, self._store, request.run_id, self._fleet.connected)
        if not nodes:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no fleet run {request.run_id!r} on this collector's store")
        return pb.RunStatusReply(run_id=request.run_id, state=run_state(nodes), nodes=nodes)

    async def ListAgents(self, request: pb.ListAgentsRequest, context: grpc.aio.ServicerContext) -> pb.ListAgentsReply:
        await self._authorise(context)
        selector = dict(request.selector)
        try:
            check_selector(selector)
        except ConfigError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.ListAgentsReply(agents=[link.hello for link in self._fleet.matching(selector)])

    async def CancelRun(self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext) -> pb.CancelRunReply:
        await self._authorise(context, operator=True)
        if not request.run_id or len(request.run_id) > MAX_ID_CHARS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"a run id of 1 to {MAX_ID_CHARS} characters is needed; `run status` lists runs")
        if not await self._run(self._fleet.members, request.run_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no fleet run {request.run_id!r} on this collector's store")
        return pb.CancelRunReply(run_id=request.run_id, agents=await self._fleet.cancel(request.run_id))


# How far ahead a run may be scheduled: a shared start a day away is a mistake, not a plan.
MAX_START_DELAY_NS = 86_400 * 10**9


def _plan_mapping(plan_json: str) -> dict:
    try:
        plan = json.loads(plan_json or "{}")
    except ValueError as exc:
        raise ConfigError(f"the plan is not JSON: {exc}") from None
    if not isinstance(plan, dict):
        raise ConfigError(f"the plan must be a JSON object, not {type(plan).__name__}")
    return plan


def _run_id(wanted: str) -> str:
    if len(wanted) > MAX_ID_CHARS or not wanted.isprintable():
        raise ConfigError(f"run id {wanted[:40]!r}... must be at most {MAX_ID_CHARS} printable characters")
    return wanted or new_run_id()


def _start_at(request: pb.StartRunRequest) -> int:
    """The shared start time: the one asked for, or now plus the delay; within a day from now."""
    now = time.time_ns()
    if request.start_at_unix_ns:
        start_at = request.start_at_unix_ns
    elif math.isfinite(request.start_delay_s) and 0 <= request.start_delay_s <= MAX_START_DELAY_NS / 1e9:
        start_at = now + int(request.start_delay_s * 1e9)
    else:
        raise ConfigError(f"start delay {request.start_delay_s} s is not between 0 and {MAX_START_DELAY_NS // 10**9} s")
    if not now - MAX_START_DELAY_NS <= start_at <= now + MAX_START_DELAY_NS:
        raise ConfigError(f"start time {start_at} ns is more than a day from the collector's clock")
    return start_at


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:2000]

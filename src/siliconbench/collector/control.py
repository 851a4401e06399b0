"""The gRPC Control service: `siliconbench-collector run start|status|cancel|agents` against this collector.

A thin adapter: it checks the caller's token, validates the request and converts between wire messages
and the fleet registry (collector/fleet.py) and the run state read from the store (collector/runs.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable

import grpc

from siliconbench.collector import probe_readings, runs
from siliconbench.collector.errors import CollectorError, first_line
from siliconbench.collector.fleet import STATE_NAMES, Fleet, check_selector
from siliconbench.collector.identity import Authenticator
from siliconbench.collector.store import Store
from siliconbench.core.datasets import check_fleet_dataset
from siliconbench.core.errors import ConfigError
from siliconbench.core.ids import new_run_id
from siliconbench.core.limits import MAX_ID_CHARS
from siliconbench.core.plan import plan_from_mapping
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

STATE_CODES = {name: code for code, name in STATE_NAMES.items()}
TERMINAL = frozenset(STATE_CODES[name] for name in runs.TERMINAL)  # RunState codes of an ended run
# The member states that answer a command already: a member running or ended has its start, and an ended one needs
# no cancel (with several replicas, one the member left may hold a copy of either until it expires).
ANSWERED = {"start": frozenset({runs.RUNNING, runs.FINISHED, runs.CANCELLED}), "cancel": runs.TERMINAL}


def node_status(run_id: str, node: runs.NodeState, connected: bool, unacknowledged: list[str]) -> pb.NodeStatus:
    progress = pb.RunProgress(run_id=run_id, state=STATE_CODES[node.state], step=node.step, steps_total=node.steps_total,
                              requests_done=node.requests_done, output_tokens_per_s=node.output_tokens_per_s,
                              errors=node.errors, detail=node.detail, time_unix_ns=node.last_word_ns)
    return pb.NodeStatus(agent_id=node.agent_id, node_name=node.node_name, instance_type=node.instance_type,
                         scenario=node.scenario, progress=progress, connected=connected,
                         unacknowledged=unacknowledged)


class ControlService(pb_grpc.ControlServicer):
    """gRPC adapter for `siliconbench-collector run ...`."""

    def __init__(self, fleet: Fleet, store: Store, run_in_store: Callable[..., Awaitable],
                 tokens: Authenticator | None = None,
                 written: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """`written(timeout_s)` returns when this collector wrote its next group of batches, or after the
        timeout (collector/group_insert.py): what a probe's readings wait on between looks at the store."""
        self._fleet = fleet
        self._store = store
        self._run = run_in_store
        self._tokens = tokens
        self._written = written

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
            if plan.trace is not None:  # a trace is a dataset: read on the nodes, from their datasets directory
                check_fleet_dataset(plan.trace.file)
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
        nodes = await self._run(runs.node_states, self._store, request.run_id)
        if not nodes:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no fleet run {request.run_id!r} on this collector's store")
        return pb.RunStatusReply(
            run_id=request.run_id, state=STATE_CODES.get(runs.run_state(nodes), pb.RUN_STATE_UNSPECIFIED),
            nodes=[node_status(request.run_id, node, self._fleet.connected(node.agent_id), self._waiting(request.run_id, node))
                   for node in nodes])

    def _waiting(self, run_id: str, node: runs.NodeState) -> list[str]:
        """The node's unacknowledged commands that its state does not answer already (ANSWERED)."""
        return [kind for kind in self._fleet.unacknowledged(node.agent_id, run_id) if node.state not in ANSWERED[kind]]

    async def ListAgents(self, request: pb.ListAgentsRequest, context: grpc.aio.ServicerContext) -> pb.ListAgentsReply:
        await self._authorise(context)
        selector = dict(request.selector)
        try:
            check_selector(selector)
        except ConfigError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.ListAgentsReply(agents=self._fleet.matching(selector))

    async def CancelRun(self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext) -> pb.CancelRunReply:
        await self._authorise(context, operator=True)
        if not request.run_id or len(request.run_id) > MAX_ID_CHARS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"a run id of 1 to {MAX_ID_CHARS} characters is needed; `run status` lists runs")
        if not await self._run(runs.members, self._store, request.run_id):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no fleet run {request.run_id!r} on this collector's store")
        return pb.CancelRunReply(run_id=request.run_id, agents=await self._fleet.cancel(request.run_id))

    async def ProbeReadings(self, request: pb.ProbeReadingsRequest,
                            context: grpc.aio.ServicerContext) -> pb.ProbeReadingsReply:
        """A search probe's readings once the store holds its rows (collector/probe_readings.py)."""
        await self._authorise(context)
        try:
            query = probe_readings.Query.of(request)
        except ConfigError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _one_line(exc))
        try:
            return await self._probe_readings(query, context)
        except CollectorError as exc:  # the store failed: the agent judges on its own records meanwhile
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the collector's store: {first_line(exc)}")

    async def _probe_readings(self, query: probe_readings.Query,
                              context: grpc.aio.ServicerContext) -> pb.ProbeReadingsReply:
        started = time.monotonic()
        while True:
            try:
                missing = await self._run(probe_readings.missing, self._store, query)
            except ConfigError as exc:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, _one_line(exc))
            waited = time.monotonic() - started
            if not missing:
                break
            if waited >= query.wait_s:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                    f"{missing} of the probe's {sum(query.made)} request rows were not stored "
                                    f"{waited:.1f} s after it was asked")
            # the rows come with one of this collector's next writes (or another replica's: looked for anyway)
            await self._written(min(probe_readings.LOOK_EVERY_S, query.wait_s - waited))
        reply = await self._run(probe_readings.read, self._store, query)
        reply.stored_after_s = waited
        return reply


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

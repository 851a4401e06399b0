"""One benchmark run on this node: inspect the target, start sampling and shipping, run the
plan, then wait until the collector has acknowledged everything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp

from siliconbench.agent import __version__
from siliconbench.agent.config import AgentConfig
from siliconbench.agent.load.sink import RecordSink
from siliconbench.agent.load.send import tokens_asked
from siliconbench.agent.load.step import LoadGenerator
from siliconbench.agent.search.run import plan_search
from siliconbench.agent.load.tally import RunTally
from siliconbench.agent.reach import check_collector
from siliconbench.core.plan import Plan
from siliconbench.core.settings import BearerToken
from siliconbench.agent.fleet import FleetProgress, FleetRunner
from siliconbench.agent.errors import ConfigError, DeliveryIncomplete, RunInterrupted
from siliconbench.agent.samplers.base import DeviceInfo, SamplerUnavailable
from siliconbench.agent.samplers.detect import detect_samplers, probe_devices
from siliconbench.agent.samplers.runner import SamplerRunner
from siliconbench.agent.settings import prompt_cache_dir
from siliconbench.agent.shipper import Shipper
from siliconbench.agent.traces.replay import prepare_trace, start_fields
from siliconbench.agent.spool import Spool
from siliconbench.agent.target import (PromptBook, TargetInfo, calibrate_prompts, dataset_prompts, inspect_target,
                                      text_prompts)
from siliconbench.core.ids import new_run_id
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_FILE = "heartbeat"
SPOOL_SUBDIR = "batches"


def event_loop_runner():
    """What runs the agent's event loop: uvloop's, else asyncio's."""
    try:
        import uvloop
    except ImportError:  # uvloop is a declared dependency except on Windows
        return asyncio.run
    return uvloop.run


def hello(config: AgentConfig, devices: DeviceInfo) -> pb.Hello:
    return pb.Hello(agent_id=config.agent_id, node_name=config.node_name or socket.gethostname(),
                    instance_type=config.instance_type or devices.instance_type, accelerator_kind=devices.kind,
                    accelerator_count=devices.count, accelerator_model=devices.model,
                    driver_version=devices.driver_version, agent_version=__version__, scenario=config.scenario)


def node_devices(neuron_monitor: str) -> DeviceInfo:
    """The node's accelerators; a Neuron node without `neuron_monitor` is a configuration error."""
    try:
        return probe_devices(neuron_monitor)
    except SamplerUnavailable as exc:
        raise ConfigError(str(exc)) from None


class NodeSession:
    """The node's long-lived parts: the shipper's stream to the collector and the samplers."""

    def __init__(self, config: AgentConfig, devices: DeviceInfo) -> None:
        self.config = config
        identity = hello(config, devices)
        spool = Spool.open(config.spool_dir / SPOOL_SUBDIR, identity.agent_id, config.spool_max_bytes)
        self.shipper = Shipper(config.collector, identity, spool, token=BearerToken(config.token, config.token_file),
                               credentials=config.tls.credentials())
        self.runner = SamplerRunner(detect_samplers(config.sample_interval_s, config.neuron_monitor),
                                    config.sample_interval_s,
                                    asyncio.get_running_loop(), self.shipper.add_samples)

    @classmethod
    async def start(cls, config: AgentConfig) -> "NodeSession":
        session = cls(config, await asyncio.to_thread(node_devices, config.neuron_monitor))
        session.shipper.start()
        session.runner.start()
        return session

    async def close(self) -> None:
        """Stop sampling, then wait until the collector acknowledged everything."""
        await asyncio.to_thread(self.runner.stop)
        await self.shipper.close(self.config.ack_timeout_s)


def _ending(error: BaseException | None, tally: RunTally, plan: Plan) -> tuple[str, str]:
    """The run's outcome and its detail in words, from how run_plan's load ended."""
    done = f"{tally.steps} of {plan.total_steps} steps finished, {tally.requests} request records kept"
    if error is None:
        return "complete", done
    if isinstance(error, (asyncio.CancelledError, KeyboardInterrupt)):
        # a fleet run's cancel says who stopped it (agent/fleet.py: the collector, or the run's lease)
        why = error.args[0] if error.args and isinstance(error.args[0], str) else "stopped by the user or a signal"
        return "interrupted", f"{why} during step {tally.steps + 1}; {done}"
    return "aborted", f"{error}; {done}"


def end_event(run_id: str, error: BaseException | None, tally: RunTally, plan: Plan) -> pb.RunEvent:
    """The run's end: its outcome, and the request records it handed to the shipper (`requests_sent`: the
    collector compares it with what it stored)."""
    outcome, detail = _ending(error, tally, plan)
    return pb.RunEvent(run_id=run_id, phase=pb.PHASE_END, time_unix_ns=time.time_ns(), outcome=outcome,
                       outcome_detail=detail[:2000], requests_sent=tally.requests)


# drives a started run's load instead of its plan's steps (a search's probes): (generator, session, target)
Drive = Callable[[LoadGenerator, aiohttp.ClientSession, TargetInfo], Awaitable[None]]


async def run_plan(node: NodeSession, plan: Plan, run_id: str | None = None,
                   progress: FleetProgress | None = None, *, drive: Drive | None = None,
                   through: Callable[[RecordSink], RecordSink] | None = None) -> str:
    """Run `plan` against the node's target, its records to the node's shipper (by way of
    `through(shipper)`, when given); return the run id. A fleet run's `progress` reads the run's tally and
    reports each step's end. `drive` runs the load in place of the plan's steps; without one, a plan with
    a `search:` section runs that search (siliconbench.agent.search)."""
    run_id = run_id or new_run_id()
    if drive is None and plan.search is not None:  # a plan that searches (a fleet run's nodes)
        search = plan_search(plan, run_id)
        drive, through = search.drive, search.through
    shipper = node.shipper
    sink = through(shipper) if through is not None else shipper
    tally = progress.tally if progress is not None else RunTally()
    step_ended = progress.step_ended if progress is not None else _nothing
    timeout = aiohttp.ClientTimeout(total=plan.request_timeout_s, sock_connect=10)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        target = await inspect_target(session, node.config.target.rstrip("/"), plan.model, plan.mixed_models)
        traced: dict = {}
        prompts: PromptBook
        if plan.trace is not None:  # the trace's step and prompts, checked against the server
            plan, book = await prepare_trace(session, target, plan, prompt_key(plan, run_id))
            prompts, traced = book, start_fields(plan, book)
        else:
            target.check_fits(plan.input_tokens, tokens_asked(plan))
            prompts = await build_prompts(session, target, plan, run_id)
        log.info("run %s: target %s (%s%s), model %s", run_id, target.base_url, target.version or "unknown version",
                 ", SIMULATED" if target.simulated else "", target.model)
        node.runner.run_id = run_id
        node.runner.read_counters_now()
        sink.add(pb.RunEvent(run_id=run_id, phase=pb.PHASE_START, time_unix_ns=time.time_ns(),
                             target_url=target.base_url, model=target.model, simulated=target.simulated,
                             target_version=target.version, scenario=plan.scenario or node.config.scenario,
                             config_json=plan.to_json(), **traced))
        error: BaseException | None = None
        try:
            generator = LoadGenerator(plan, target, prompts, sink, run_id, tally=tally,
                                      on_step_boundary=node.runner.read_counters_now, on_step_end=step_ended)
            await (drive(generator, session, target) if drive is not None else generator.run(session))
        except BaseException as exc:
            error = exc
            raise
        finally:
            node.runner.read_counters_now()
            node.runner.run_id = ""
            sink.add(end_event(run_id, error, tally, plan))
    return run_id


def _nothing() -> None:
    pass


PROMPT_CACHE_DIR = prompt_cache_dir()
MAX_TEXT_PROMPTS = 4096  # distinct text/chat prompts per run; past this, prompts repeat (logged)


def prompt_key(plan: Plan, run_id: str) -> str:
    """What synthetic prompts are keyed by: the seed and the run (the seed alone with shared_prompts)."""
    return f"{plan.seed}/{'shared' if plan.shared_prompts else run_id}"


async def build_prompts(session: aiohttp.ClientSession, target: TargetInfo, plan: Plan, run_id: str = "") -> PromptBook:
    """The plan's prompts: a dataset (sent as it is), token-id prompts (completions), or calibrated
    text/chat prompts. Synthetic prompts are unique to the run (their openings keyed by the seed and the
    run id) unless the plan asks for `shared_prompts` (keyed by the seed alone: every such run sends the
    same ones)."""
    chat = plan.endpoint == "chat"
    if plan.sessions is not None:  # sessions make their own messages (agent/sessions)
        return PromptBook([], 0, [])
    if plan.dataset:
        return await dataset_prompts(session, target, plan.dataset, chat, plan.dataset_min_tokens,
                                     plan.dataset_max_tokens)
    key = prompt_key(plan, run_id)
    if not chat and plan.token_id_prompts:
        return (await calibrate_prompts(session, target, plan.input_tokens)).salted(key)
    specs = plan.step_specs()
    needed = plan.warmup_requests + plan.repetitions * sum(s.requests for s in specs)
    if any(not s.requests for s in specs) or needed > MAX_TEXT_PROMPTS:
        log.warning("up to %d distinct text prompts are made; later requests reuse them (prefix-cache hits "
                    "possible): bound steps by requests, or use token-id prompts on completions", MAX_TEXT_PROMPTS)
        needed = MAX_TEXT_PROMPTS
    return await text_prompts(session, target, plan.input_tokens, needed, chat, key, PROMPT_CACHE_DIR)


async def check_target(config: AgentConfig, plan: Plan) -> TargetInfo:
    """Fail fast, before anything is sampled or shipped, when the target cannot serve the plan."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        target = await inspect_target(session, config.target.rstrip("/"), plan.model, plan.mixed_models)
    target.check_fits(plan.input_tokens, tokens_asked(plan))
    return target


async def run_benchmark(config: AgentConfig, plan: Plan, run_id: str | None = None, *, drive: Drive | None = None,
                        through: Callable[[RecordSink], RecordSink] | None = None) -> str:
    """One run from start to full delivery: what `siliconbench-agent run` does. SIGTERM or SIGINT (Ctrl-C)
    stops the load; what was measured is sealed and delivered (up to ack_timeout_s, the rest stays in the
    spool) and RunInterrupted says what was kept. A second signal acts as usual. The collector must answer
    before the first request (within seconds), unless `spool_only`."""
    await check_target(config, plan)
    if not config.spool_only:  # else a run whose collector is down measures for minutes, then cannot deliver
        await check_collector(config.collector, config.tls.credentials())
    run_id = run_id or new_run_id()
    node = await NodeSession.start(config)
    with stop_on_signals(asyncio.current_task()):
        try:
            await run_plan(node, plan, run_id, drive=drive, through=through)
        except asyncio.CancelledError:
            await _close_quietly(node)
            raise RunInterrupted(f"run {run_id} interrupted: {node.shipper.delivery()}") from None
        except BaseException:
            await _close_quietly(node)  # the run's own error is the one to report
            raise
        try:
            await node.close()
        except DeliveryIncomplete as exc:
            raise DeliveryIncomplete(f"run {run_id}: {exc}") from None
        except asyncio.CancelledError:  # a signal while delivering: the rest stays in the spool
            raise RunInterrupted(f"run {run_id} interrupted while delivering: {node.shipper.delivery()}") from None
    return run_id


@contextlib.contextmanager
def stop_on_signals(task: asyncio.Task | None) -> Iterator[None]:
    """While in the block, the first SIGTERM or SIGINT cancels `task` and gives both signals back to their
    defaults (a second one acts as usual). Not in the main thread (signals cannot be caught there): nothing."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def restore() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    def stop() -> None:
        restore()
        log.warning("stopping: sealing and delivering what was measured (a second signal stops at once)")
        if task is not None:
            task.cancel()

    try:
        for sig in signals:
            loop.add_signal_handler(sig, stop)
    except (RuntimeError, ValueError):  # not the main thread
        restore()
    try:
        yield
    finally:
        restore()


async def _close_quietly(node: NodeSession) -> None:
    try:
        await node.close()
    except DeliveryIncomplete as exc:
        log.error("%s", exc)


async def run_daemon(config: AgentConfig, plan: Plan | None, heartbeat: Path) -> None:
    """The DaemonSet's mode: sample and ship until SIGTERM; run `plan` once at start if given.
    Touches `heartbeat` every few seconds for `siliconbench-agent health`."""
    node = await NodeSession.start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    beat = asyncio.create_task(_beat(heartbeat))
    fleet = FleetRunner(lambda fleet_plan, run_id, progress: run_plan(node, fleet_plan, run_id, progress),
                        node.shipper.send_progress, ack=node.shipper.send_ack)
    node.shipper.take_commands(fleet.on_command)
    try:
        if plan is not None:
            await wait_for_target(config.target, stop)
        if plan is not None and not stop.is_set():
            run_id = await run_plan(node, plan)
            log.info("run %s finished; sampling on until stopped", run_id)
        await stop.wait()
        log.info("stopping: delivering what is left")
    finally:
        beat.cancel()
        await fleet.close()
        await node.close()


async def wait_for_target(target: str, stop: asyncio.Event, every_s: float = 5.0) -> None:
    """Wait until the target's GET /health answers 200 (vLLM loads weights for many minutes), or `stop`."""
    url = target.rstrip("/") + "/health"
    waited = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=every_s)) as session:
        while not stop.is_set():
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
                    reason = f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = exc.__class__.__name__
            if waited % 60 < every_s:
                log.info("waiting for the target %s to be ready (%s); the plan starts when it answers", url, reason)
            try:
                await asyncio.wait_for(stop.wait(), every_s)
            except asyncio.TimeoutError:
                waited += every_s


async def _beat(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path.touch()
        await asyncio.sleep(HEARTBEAT_EVERY_S)

"""One benchmark run on this node: inspect the target, start sampling and shipping, run the
plan, then wait until the collector has acknowledged everything."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass

import aiohttp

from agent import __version__
from agent.loadgen import LoadGenerator, StepSummary, new_run_id
from agent.plan import Plan
from agent.errors import ConfigError
from agent.samplers.base import DeviceInfo, SamplerUnavailable
from agent.samplers.detect import detect_samplers, probe_devices
from agent.samplers.runner import SamplerRunner
from agent.shipper import Shipper
from agent.target import calibrate_prompts, inspect_target
from siliconbench.telemetry.v1 import telemetry_pb2 as pb

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    target: str
    collector: str
    node_name: str = ""
    instance_type: str = ""
    token: str | None = None
    sample_interval_s: float = 1.0
    ack_timeout_s: float = 60.0

    @property
    def agent_id(self) -> str:
        return self.node_name or socket.gethostname()


def hello(config: AgentConfig, devices: DeviceInfo) -> pb.Hello:
    return pb.Hello(agent_id=config.agent_id, node_name=config.node_name or socket.gethostname(),
                    instance_type=config.instance_type or devices.instance_type, accelerator_kind=devices.kind,
                    accelerator_count=devices.count, accelerator_model=devices.model,
                    driver_version=devices.driver_version, agent_version=__version__)


def node_devices() -> DeviceInfo:
    """The node's accelerators; a Neuron node without neuron-monitor is a configuration error."""
    try:
        return probe_devices()
    except SamplerUnavailable as exc:
        raise ConfigError(str(exc)) from None


async def run_benchmark(config: AgentConfig, plan: Plan, run_id: str | None = None) -> tuple[str, list[StepSummary]]:
    """Run `plan` against the target; return the run id and per-step summaries."""
    run_id = run_id or new_run_id()
    timeout = aiohttp.ClientTimeout(total=plan.request_timeout_s, sock_connect=10)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        target = await inspect_target(session, config.target.rstrip("/"), plan.model)
        prompts = await calibrate_prompts(session, target, plan.input_tokens)
        log.info("run %s: target %s (%s%s), model %s", run_id, target.base_url, target.version or "unknown version",
                 ", SIMULATED" if target.simulated else "", target.model)
        devices = await asyncio.to_thread(node_devices)
        shipper = Shipper(config.collector, hello(config, devices), token=config.token)
        shipper.start()
        runner = SamplerRunner(detect_samplers(config.sample_interval_s), config.sample_interval_s, asyncio.get_running_loop(), shipper.add_samples)
        runner.run_id = run_id
        runner.start()
        shipper.add_run(pb.RunEvent(run_id=run_id, phase=pb.PHASE_START, time_unix_ns=time.time_ns(),
                                    target_url=target.base_url, model=target.model, simulated=target.simulated,
                                    target_version=target.version, scenario=plan.scenario,
                                    config_json=plan.to_json()))
        try:
            summaries = await LoadGenerator(plan, target, prompts, shipper, run_id).run(session)
        finally:
            await asyncio.to_thread(runner.stop)
            shipper.add_run(pb.RunEvent(run_id=run_id, phase=pb.PHASE_END, time_unix_ns=time.time_ns()))
            await shipper.close(config.ack_timeout_s)
    return run_id, summaries

"""CPU cost of the agent's samplers: all of them polled at 1 Hz and 10 Hz.

Runs NVML (the C stub of libnvidia-ml.so.1 with 8 scripted GPUs, through the real pynvml), Neuron
(the fake neuron-monitor replaying the trn2.48xlarge report: 64 cores, 16 devices) and host, polls
them in a plain loop like the agent's runner, and prints the agent process's CPU time over wall
time as a percentage of one core. The fake neuron-monitor's own CPU is shown apart: it is a
separate process, as the real one is. Targets: < 1 % at 1 Hz, < 3 % at 10 Hz.

    .venv/bin/python bench/sampler_overhead.py [--seconds 10] [--gpus 8]

Caveat: a stub NVML call costs less than a real driver ioctl, so the NVML share is a lower bound.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from siliconbench.agent.samplers.base import Sampler  # noqa: E402
from siliconbench.agent.samplers.neuron import NeuronSampler  # noqa: E402
from siliconbench.agent.samplers.nvml import NvmlSampler  # noqa: E402
from tests.agent.samplers.conftest import FAKE_NEURON_MONITOR, TRN2_FIXTURE  # noqa: E402
from tests.agent.samplers.nvml_stub import build_stub, device, write_script  # noqa: E402

TARGETS = {1.0: 1.0, 10.0: 3.0}  # Hz -> max % of one core


@dataclass
class Result:
    hz: float
    seconds: float
    polls: int
    samples_per_poll: float
    poll_ms: float
    agent_pct: float
    monitor_pct: float


def load_stub(workdir: Path, gpus: int) -> None:
    lib = build_stub(workdir)
    script = workdir / "script"
    os.environ["NVML_STUB_SCRIPT"] = str(script)
    write_script(script, [device(i) for i in range(gpus)])
    ctypes.CDLL(str(lib))  # pynvml's CDLL("libnvidia-ml.so.1") now resolves to the stub


def make_samplers(interval_s: float) -> list[Sampler]:
    samplers: list[Sampler] = [NvmlSampler(), NeuronSampler(interval_s, str(FAKE_NEURON_MONITOR))]
    try:
        from siliconbench.agent.samplers.host import HostSampler

        samplers.append(HostSampler())
    except ImportError:
        print("(siliconbench.agent.samplers.host not available: host sampler left out)", file=sys.stderr)
    return samplers


def measure(hz: float, seconds: float) -> Result:
    interval = 1.0 / hz
    samplers = make_samplers(interval)
    for s in samplers:
        s.open()
    for s in samplers:  # warm-up poll: first NVML calls and the first neuron-monitor report
        s.sample()
    time.sleep(interval)
    t0, cpu0, kids0 = time.monotonic(), time.process_time(), _children_cpu()
    polls = samples = 0
    poll_time = 0.0
    deadline = t0
    while time.monotonic() - t0 < seconds:
        start = time.perf_counter()
        for s in samplers:
            samples += len(s.sample())
        poll_time += time.perf_counter() - start
        polls += 1
        deadline += interval
        time.sleep(max(0.0, deadline - time.monotonic()))
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    for s in samplers:
        s.close()  # reaps neuron-monitor, so its CPU shows in the children's times
    monitor_cpu = _children_cpu() - kids0
    return Result(hz, wall, polls, samples / polls, 1000 * poll_time / polls, 100 * cpu / wall, 100 * monitor_cpu / wall)


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per rate")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs the NVML stub reports")
    args = parser.parse_args()
    os.environ["FAKE_NEURON_FIXTURE"] = str(TRN2_FIXTURE)
    with tempfile.TemporaryDirectory(prefix="sampler-overhead-") as tmp:
        load_stub(Path(tmp), args.gpus)
        results = [measure(hz, args.seconds) for hz in TARGETS]
    print(f"samplers: nvml (stub, {args.gpus} GPUs), neuron (fake neuron-monitor, trn2.48xlarge report), host")
    print(f"{'rate':>6} {'wall s':>7} {'polls':>6} {'samples/poll':>13} {'poll ms':>8} "
          f"{'agent CPU %':>12} {'target %':>9} {'ok':>4} {'neuron-monitor CPU %':>21}")
    for r in results:
        target = TARGETS[r.hz]
        print(f"{r.hz:>4.0f}Hz {r.seconds:>7.1f} {r.polls:>6d} {r.samples_per_poll:>13.1f} {r.poll_ms:>8.2f} "
              f"{r.agent_pct:>12.2f} {'< ' + str(target):>9} {'yes' if r.agent_pct < target else 'NO':>4} "
              f"{r.monitor_pct:>21.2f}")
    print("agent CPU % = process CPU time / wall time, % of one core (all threads of this process).")


if __name__ == "__main__":
    main()

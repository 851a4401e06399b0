"""Runs NvmlSampler against the C stub in a fresh process, so that pynvml's process-wide library
handle never leaks between tests.

Usage: python -m tests.agent.samplers.nvml_driver LIB SCRIPT < steps.json, where LIB is the stub's
absolute path ("" to load none) and steps is a JSON list of [action, argument]:
  ["script", {"devices": [...], "driver": "...", "init_error": 0}]   rewrite the stub's script
  ["open", null] ["sample", null] ["counters", null] ["device_info", null] ["close", null] ["detect", null]
  ["probe", null]
Prints {"results": [...one per step...], "logs": [[level, logger, message], ...]} as JSON.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from tests.agent.samplers.nvml_stub import write_script


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[list[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append([record.levelname, record.name, record.getMessage()])


def main() -> None:
    lib, script = sys.argv[1], Path(sys.argv[2])
    os.environ["NVML_STUB_SCRIPT"] = str(script)
    steps = json.load(sys.stdin)
    handler = _Collect()
    logging.getLogger("siliconbench.agent").addHandler(handler)
    logging.getLogger("siliconbench.agent").setLevel(logging.DEBUG)
    if steps and steps[0][0] == "script":  # the stub reads its script at load time too
        write_script(script, **steps[0][1])
    if lib:
        ctypes.CDLL(lib)  # pynvml's later CDLL("libnvidia-ml.so.1") reuses this one (same soname)

    from siliconbench.agent.samplers import detect
    from siliconbench.agent.samplers.base import SamplerUnavailable
    from siliconbench.agent.samplers.nvml import NvmlSampler

    sampler = NvmlSampler()
    results: list[Any] = []
    for action, arg in steps:
        if action == "script":
            write_script(script, **arg)
            results.append(None)
        elif action == "open":
            try:
                sampler.open()
                results.append({"ok": True, "devices": [dataclasses.asdict(d) for d in sampler.devices]})
            except SamplerUnavailable as err:
                results.append({"unavailable": str(err)})
        elif action == "sample":
            results.append([dataclasses.asdict(s) for s in sampler.sample()])
        elif action == "counters":
            results.append([dataclasses.asdict(s) for s in sampler.counters()])
        elif action == "device_info":
            results.append(dataclasses.asdict(sampler.device_info()))
        elif action == "close":
            sampler.close()
            results.append(None)
        elif action == "detect":
            results.append([s.name for s in detect.detect_samplers(1.0, neuron_monitor="no-such-neuron-monitor")])
        elif action == "probe":
            results.append(dataclasses.asdict(detect.probe_devices(neuron_monitor="no-such-neuron-monitor")))
        else:
            raise SystemExit(f"unknown action {action!r}")
    json.dump({"results": results, "logs": handler.records}, sys.stdout)


if __name__ == "__main__":
    main()

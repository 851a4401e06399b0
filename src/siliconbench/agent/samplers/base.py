"""The one interface every telemetry source implements.

A sampler is polled on its own schedule by `SamplerRunner` (agent/samplers/runner.py), off the
load generator's event loop. Each poll returns zero or more `Sample`s, each stamped with UTC
wall-clock time so that it can be joined to the time span of a load step. At step boundaries the
runner reads only the cumulative counters (`counters()`): they can be read at any instant, while a
rate such as CPU % since the last poll would then cover a window of a few milliseconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one device (or the host) at one instant.

    `values` maps a metric name to its value; units are part of the name
    (`power_w`, `mem_used_bytes`, `gpu_util_pct`).
    """

    time_unix_ns: int
    source: str
    device: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What `probe` prints and what the agent's Hello carries about the accelerators."""

    kind: str  # "nvidia", "neuron" or "none"
    count: int
    model: str = ""
    driver_version: str = ""
    instance_type: str = ""


class SamplerUnavailable(Exception):
    """The telemetry source does not exist on this node (no driver, no binary); the message says why."""


@runtime_checkable
class Sampler(Protocol):
    """A telemetry source. `open` raises `SamplerUnavailable` when the source is absent."""

    name: str

    def open(self) -> None: ...

    def sample(self) -> list[Sample]: ...

    def counters(self) -> list[Sample]:
        """Only the cumulative counters (e.g. NVML's energy counter), read now; [] for a source without any.
        Called on the load generator's thread, possibly while `sample` runs on the runner's: a source
        with counters serialises the two (NVML: its lock) and stamps a reading when it reads it."""
        ...

    def close(self) -> None: ...


def now_unix_ns() -> int:
    """Wall-clock UTC time for stamping samples (durations use monotonic clocks elsewhere)."""
    return time.time_ns()

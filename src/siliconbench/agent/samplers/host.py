"""Host telemetry through psutil: CPU and memory of the node."""

from __future__ import annotations

import psutil

from siliconbench.agent.samplers.base import Sample, now_unix_ns


class HostSampler:
    name = "host"

    def open(self) -> None:
        psutil.cpu_percent(None)  # the first call only primes the counter

    def sample(self) -> list[Sample]:
        memory = psutil.virtual_memory()
        return [Sample(time_unix_ns=now_unix_ns(), source="host", device="host", values={
            "cpu_util_pct": psutil.cpu_percent(None),
            "mem_used_bytes": float(memory.total - memory.available),
            "mem_total_bytes": float(memory.total),
        })]

    def counters(self) -> list[Sample]:
        return []  # CPU % is a rate since the last poll: read on the schedule only

    def close(self) -> None:
        pass

"""Build and script the C stub of libnvidia-ml.so.1 (stub.c) that the real pynvml loads in tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

STUB_SOURCE = Path(__file__).with_name("stub.c")
LIB_NAME = "libnvidia-ml.so.1"

H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "gpu_util": 87,
    "mem_util": 41,
    "mem_total": 85_899_345_920,
    "mem_used": 76_235_669_504,
    "power_mw": 412_345,
    "temp_c": 58,
    "sm_clock": 1980,
    "mem_clock": 2619,
    "clocks_event_reasons": 0x4,
    "energy_mj": 9_876_543_210,
    "gpm": 1,
    "gpm_sm": 63.5,
    "gpm_tensor": 22.25,
    "gpm_dram": 71.0,
}


def build_stub(out_dir: Path, *, without_energy: bool = False) -> Path:
    """Compile stub.c into `out_dir/libnvidia-ml.so.1` and return its absolute path.

    `without_energy` leaves nvmlDeviceGetTotalEnergyConsumption out, as an old driver would.
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("gcc not found: the NVML stub is compiled at test time")
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / LIB_NAME
    cmd = [gcc, "-O2", "-Wall", "-shared", "-fPIC", f"-Wl,-soname,{LIB_NAME}", "-o", str(lib), str(STUB_SOURCE)]
    if without_energy:
        cmd.insert(1, "-DSTUB_NO_ENERGY")
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return lib.resolve()


def device(index: int, **overrides: object) -> dict[str, object]:
    """An H100-like scripted device; `overrides` replace any field (see stub.c for the keys)."""
    values: dict[str, object] = {**H100, "uuid": f"GPU-00000000-0000-0000-0000-{index:012d}"}
    values.update(overrides)
    return values


def write_script(
    path: Path,
    devices: Sequence[Mapping[str, object]],
    *,
    driver: str = "550.54.15",
    init_error: int = 0,
) -> None:
    """Atomically (re)write the stub's script; the stub picks the new values up on its next call."""
    lines = [f"count={len(devices)}", f"driver={driver}", f"init_error={init_error}"]
    for i, dev in enumerate(devices):
        for key, value in dev.items():
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            lines.append(f"{i}.{key}={value}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)

#!/usr/bin/env bash
# Builds the wheelhouse that scripts/device_check.sh installs from, offline, on a bare GPU machine
# (docs/device-check.md). The device machine has no network: everything the agent's sampler path,
# `siliconbench-agent probe` and the gpu-marked tests import must travel as wheels, inside the 64 MiB
# carry limit. Wheels are for that machine (CPython 3.12, x86-64 manylinux), not for this one.
#   usage: scripts/device_carry.sh [DIR]      (default: .device-carry; prints its size in MiB)
# Versions are the ones the project's own venv was tested with; the image's own copies of these packages
# may be older (the generated protobuf code refuses a runtime older than protobuf 7.35.1).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.device-carry}"
PYTHON="${PYTHON:-python3}"
LIMIT_MIB=64

# What `import siliconbench.agent.cli` and the sampler runner pull in (aiohttp, typer, grpc, protobuf,
# pyyaml, pynvml), psutil for the check's own CPU figures, pytest for the gpu tests, hatchling to
# install this tree (so `siliconbench-agent` is the real console script). uvloop is left out: the CLI
# falls back to asyncio without it.
REQUIREMENTS=(
    "nvidia-ml-py==13.615.71"
    "psutil==7.2.2"
    "protobuf==7.36.2"
    "grpcio==1.85.3"
    "grpcio-health-checking==1.85.1"
    "aiohttp==3.14.5"
    "typer==0.29.2"
    "pyyaml==6.0.4"
    "pytest==9.2.0"
    "pytest-timeout==2.4.0"
    "pytest-asyncio==1.5.0"
    "hatchling>=1.25"
)

rm -rf "$DIR"
mkdir -p "$DIR/wheels"
"$PYTHON" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d "$DIR/wheels" "${REQUIREMENTS[@]}" 2>&1 | { grep -v "is ignored: it is neither" || true; } >&2
printf '%s\n' "${REQUIREMENTS[@]}" >"$DIR/requirements.txt"
# The check installs exactly these top-level names; pip then resolves their needs from the wheelhouse alone.

# The load, prebuilt for Hopper in case the machine has no nvcc (the check builds it there when it can).
# Statically linked CUDA runtime: it needs only the driver there.
if command -v nvcc >/dev/null; then
    nvcc -O2 -gencode 'arch=compute_90,code=[sm_90,compute_90]' -o "$DIR/device_busy" scripts/device_busy.cu
else
    echo "no nvcc here: $DIR carries no prebuilt load (the check builds it where nvcc exists)" >&2
fi

size_kib=$(du -sk "$DIR" | cut -f1)
size_mib=$(awk -v k="$size_kib" 'BEGIN { printf "%.1f", k / 1024 }')
echo "$DIR: $(ls "$DIR/wheels" | wc -l) wheels, $size_mib MiB (carry limit $LIMIT_MIB MiB, with the working tree)"
if [ "$size_kib" -gt $((LIMIT_MIB * 1024)) ]; then
    echo "error: $DIR is over the $LIMIT_MIB MiB carry limit" >&2
    exit 1
fi

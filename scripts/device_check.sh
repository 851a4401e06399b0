#!/usr/bin/env bash
# The device check of issue 17: the agent's NVML path on a real NVIDIA GPU, in one short run on a bare
# machine without network (docs/device-check.md). Needs the wheelhouse from scripts/device_carry.sh,
# carried beside the tree. Writes into $OUT (at most 8 files):
#   check.log           everything this script printed
#   probe.txt           `siliconbench-agent probe`
#   pytest.log          the gpu-marked tests
#   samples-idle.jsonl  ~20 s of 10 Hz samples with the GPU idle (scripts/device_sample.py)
#   samples-load.jsonl  the same under load (scripts/device_busy.cu), when CUDA can build or run it
#   load.log            the load's own output
#   analysis.txt        scripts/device_analyse.py over the sample files
# Exit 0 when every step and every check passed; 1 otherwise, with a line saying which.
#   usage: OUT=DIR scripts/device_check.sh     (DEVICE_CHECK_SECONDS: seconds per phase, default 20)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
CARRY="${DEVICE_CARRY:-.device-carry}"
PHASE_S="${DEVICE_CHECK_SECONDS:-20}"
LOAD_LEAD_S=3  # the load runs this long before its samples start: NVML power on Hopper is a 1 s average

die() { echo "device check: $*" >&2; exit 1; }

# First, before anything slow: a driver. pynvml loads libnvidia-ml.so.1 exactly this way. A driver whose
# folder is mounted off the loader's path (containers mount /usr/local/nvidia) is put on it, and said so.
command -v "$PYTHON" >/dev/null || die "no $PYTHON on this machine (set PYTHON)"
nvml_loads() { "$PYTHON" -c 'import ctypes; ctypes.CDLL("libnvidia-ml.so.1")' 2>/dev/null; }
nvml_note=""
if ! nvml_loads; then
    for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64; do
        if [ -e "$dir/libnvidia-ml.so.1" ]; then
            export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            nvml_note="libnvidia-ml.so.1 is in $dir, off the loader's path: added to LD_LIBRARY_PATH"
            break
        fi
    done
    nvml_loads || die "no NVIDIA driver found (libnvidia-ml.so.1 does not load): run this on a GPU machine, see docs/device-check.md"
fi
[ -n "${OUT:-}" ] || die "OUT is not set: name the folder for the results (the device tool sets it)"
[ -f "$CARRY/requirements.txt" ] \
    || die "no wheelhouse at $CARRY: build it with scripts/device_carry.sh and carry it (docs/device-check.md)"

mkdir -p "$OUT"
exec > >(tee "$OUT/check.log") 2>&1
failures=()
step_failed() { failures+=("$1"); echo "FAILED: $1"; }

echo "== machine"
date -u +%FT%TZ
"$PYTHON" -V
[ -z "$nvml_note" ] || echo "NOTE: $nvml_note"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version,power.draw,clocks.sm,temperature.gpu \
    --format=csv

echo "== install from $CARRY (offline)"
SITE=$(mktemp -d /tmp/sb-site.XXXX)
SELF=$(mktemp -d /tmp/sb-self.XXXX)
"$PYTHON" -m pip install -q --no-index --find-links "$CARRY/wheels" --no-compile --no-cache-dir \
    --disable-pip-version-check --root-user-action=ignore --target "$SITE" -r "$CARRY/requirements.txt" \
    || die "installing the wheelhouse failed (above): rebuild it with scripts/device_carry.sh for Python 3.12"
export PYTHONPATH="$SITE"
# This tree as a real install, so `siliconbench-agent` is the console script pyproject.toml declares.
"$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir \
    --disable-pip-version-check --root-user-action=ignore --target "$SELF" . || die "installing this tree failed (above)"
export PYTHONPATH="$SELF:$SITE" PATH="$SELF/bin:$SITE/bin:$PATH" PYTHONUNBUFFERED=1

echo "== siliconbench-agent probe"
siliconbench-agent probe | tee "$OUT/probe.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || step_failed "siliconbench-agent probe exited non-zero"
grep -q "x nvidia" "$OUT/probe.txt" || step_failed "probe found no NVIDIA GPU"

echo "== gpu-marked tests"
mapfile -t gpu_tests < <(grep -rlE "pytest\.mark\.gpu|mark\.gpu\b" tests --include='test_*.py')
if [ ${#gpu_tests[@]} -eq 0 ]; then
    step_failed "no gpu-marked tests found under tests/"
else
    # --noconftest: the root conftest opens the collector's store, which is not installed here.
    "$PYTHON" -m pytest -p no:cacheprovider --noconftest -m gpu -rs -v "${gpu_tests[@]}" 2>&1 | tee "$OUT/pytest.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || step_failed "gpu tests failed or none ran (pytest.log)"
    grep -qE "[0-9]+ skipped" "$OUT/pytest.log" && step_failed "gpu tests were skipped: NVML did not start (pytest.log)"
fi

echo "== load: scripts/device_busy.cu"
load=""
if command -v nvcc >/dev/null; then
    nvcc -O2 -gencode 'arch=compute_90,code=[sm_90,compute_90]' -o /tmp/device_busy scripts/device_busy.cu \
        && load=/tmp/device_busy || step_failed "nvcc could not build scripts/device_busy.cu"
elif [ -x "$CARRY/device_busy" ]; then
    load="$CARRY/device_busy"
    echo "no nvcc here: using the load built by scripts/device_carry.sh"
fi
[ -n "$load" ] || echo "NOTE: no CUDA compiler and no carried load binary: idle phase only, no load phase"

echo "== idle: $PHASE_S s at 10 Hz"
"$PYTHON" scripts/device_sample.py --phase idle --seconds "$PHASE_S" --interval-s 0.1 --out "$OUT/samples-idle.jsonl" \
    || step_failed "sampling the idle GPU failed"
samples=("$OUT/samples-idle.jsonl")

if [ -n "$load" ]; then
    echo "== load: $PHASE_S s at 10 Hz, the load started $LOAD_LEAD_S s before"
    "$load" $((PHASE_S + LOAD_LEAD_S + 5)) >"$OUT/load.log" 2>&1 &
    load_pid=$!
    sleep "$LOAD_LEAD_S"
    if kill -0 "$load_pid" 2>/dev/null; then
        "$PYTHON" scripts/device_sample.py --phase load --seconds "$PHASE_S" --interval-s 0.1 \
            --out "$OUT/samples-load.jsonl" || step_failed "sampling the loaded GPU failed"
        kill -0 "$load_pid" 2>/dev/null || step_failed "the load ended before its samples did (load.log)"
        samples+=("$OUT/samples-load.jsonl")
    else
        step_failed "the load stopped before its samples began: no load phase (load.log)"
    fi
    wait "$load_pid" || step_failed "the load failed (load.log)"
    cat "$OUT/load.log"
fi

echo "== analysis"
"$PYTHON" scripts/device_analyse.py "${samples[@]}" | tee "$OUT/analysis.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || step_failed "the analysis found failed checks (analysis.txt)"

if [ ${#failures[@]} -gt 0 ]; then
    printf 'device check: %d step(s) failed:' "${#failures[@]}"
    printf ' %s;' "${failures[@]}"
    echo
    exit 1
fi
echo "device check: all steps passed"

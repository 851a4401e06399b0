#!/usr/bin/env bash
# Regenerates the Python code for proto/ with the pinned grpcio-tools (see pyproject's dev extra).
# Never edit the generated files by hand; CI runs this and fails when `git diff` shows a change.
set -euo pipefail
cd "$(dirname "$0")"
python -m grpc_tools.protoc -I. \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  siliconbench/telemetry/v1/telemetry.proto

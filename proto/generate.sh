#!/usr/bin/env bash
# Regenerates the Python bindings of proto/ with the pinned grpcio-tools (see pyproject's dev extra).
# proto/ is the source root of the contract (path = package); the bindings go to src/, where they import as
# `siliconbench.telemetry.v1`. Never edit the generated files by hand; CI runs this and fails when
# `git diff` shows a change.
set -euo pipefail
cd "$(dirname "$0")"
python -m grpc_tools.protoc -I. \
  --python_out=../src --pyi_out=../src --grpc_python_out=../src \
  siliconbench/telemetry/v1/telemetry.proto

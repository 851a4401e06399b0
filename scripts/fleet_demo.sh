#!/usr/bin/env bash
# A fleet run on loopback, as on EKS but local: one collector (embedded chDB), three agent daemons each
# beside its own simulator (profiles standing in for three instance types), one `run start`, live status,
# and the comparison report. Usage: scripts/fleet_demo.sh [WORKDIR]   (after `make demo` or `make test`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
STORE="chdb://$WORK/data"
PIDS=()
COLLECTOR_PID=""
stop() { for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done; for pid in "$@"; do wait "$pid" 2>/dev/null || true; done; }
trap 'stop "${PIDS[@]}" $COLLECTOR_PID' EXIT
port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

COLLECTOR="127.0.0.1:$(port)"
"$PY" -m siliconbench.collector serve --listen "$COLLECTOR" --store "$STORE" 2>"$WORK/collector.log" & COLLECTOR_PID=$!
for _ in $(seq 60); do "$PY" -m siliconbench.collector health --address "$COLLECTOR" >/dev/null 2>&1 && break; sleep 0.5; done
for spec in "node-a A p5.48xlarge 12 4" "node-b B p4d.24xlarge 28 9" "node-c C g6e.48xlarge 35 11"; do
    read -r node scenario itype ttft itl <<<"$spec"
    p=$(port)
    "$PY" -m siliconbench.agent sim --port "$p" --ttft-ms "$ttft" --itl-ms "$itl" 2>"$WORK/sim-$node.log" & PIDS+=($!)
    SILICONBENCH_NODE_NAME=$node SILICONBENCH_SCENARIO=$scenario SILICONBENCH_INSTANCE_TYPE=$itype \
        "$PY" -m siliconbench.agent daemon --target "http://127.0.0.1:$p" --collector "$COLLECTOR" --spool-dir "$WORK/$node" \
        2>"$WORK/agent-$node.log" & PIDS+=($!)
done
cat >"$WORK/plan.yaml" <<'PLAN'
concurrency: [1, 4, 8]
requests_per_step: 16
input_tokens: 128
output_tokens: 32
repetitions: 2
PLAN
echo "\$ siliconbench-collector run start --plan plan.yaml --min-agents 3 --wait-s 60"
RUN=$("$PY" -m siliconbench.collector run start --plan "$WORK/plan.yaml" --collector "$COLLECTOR" --min-agents 3 --wait-s 60)
echo "\$ siliconbench-collector run status --run $RUN --watch"
"$PY" -m siliconbench.collector run status --run "$RUN" --watch --collector "$COLLECTOR" | tail -n 6
stop "${PIDS[@]}"; PIDS=()          # agents deliver what is left, then the collector stops
stop "$COLLECTOR_PID"; COLLECTOR_PID=""
echo "\$ siliconbench-collector run report --run $RUN"
"$PY" -m siliconbench.collector run report --run "$RUN" --store "$STORE"
echo "(data and logs in $WORK)"

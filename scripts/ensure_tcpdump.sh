#!/usr/bin/env bash
# Installs Debian's tcpdump when it is missing: bench/loadgen_fidelity.py takes the truth of its timings from
# the loopback wire with it (kernel timestamps). Idempotent: does nothing when `tcpdump` is already on PATH.
# Without it (or without the right to capture) the bench prints why and leaves the wire columns out.
set -euo pipefail
if command -v tcpdump >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "tcpdump is missing and apt-get is not available: install tcpdump by hand (the bench's wire columns are left out without it)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends tcpdump >/dev/null
command -v tcpdump

"""The agent's environment, named here and nowhere else.

Variables that a flag falls back to (typer reads them; siliconbench/agent/options.py declares the flags):

    SILICONBENCH_TARGET           --target            SILICONBENCH_SPOOL_DIR       --spool-dir
    SILICONBENCH_COLLECTOR        --collector         SILICONBENCH_SPOOL_MAX_MB    --spool-max-mb
    SILICONBENCH_NODE_NAME        --node-name         SILICONBENCH_SCENARIO        --scenario
    SILICONBENCH_INSTANCE_TYPE    --instance-type     SILICONBENCH_PLAN_FILE       daemon --plan-file
    SILICONBENCH_NEURON_MONITOR   --neuron-monitor    SILICONBENCH_AGENT_TOKEN, _AGENT_TOKEN_FILE, SILICONBENCH_TLS_*  (core)

Read directly, with no flag:

    SILICONBENCH_CACHE_DIR        calibrated text prompts (default ~/.cache/siliconbench)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from siliconbench.core.settings import AGENT_TOKEN, AGENT_TOKEN_FILE, PREFIX, TLS_CA, TLS_CERT, TLS_KEY

__all__ = ["AGENT_TOKEN", "AGENT_TOKEN_FILE", "CACHE_DIR", "COLLECTOR", "INSTANCE_TYPE", "NEURON_MONITOR", "NODE_NAME", "PLAN_FILE",
           "SCENARIO", "SPOOL_DIR", "SPOOL_MAX_MB", "TARGET", "TLS_CA", "TLS_CERT", "TLS_KEY", "prompt_cache_dir"]

TARGET = PREFIX + "TARGET"
COLLECTOR = PREFIX + "COLLECTOR"
NODE_NAME = PREFIX + "NODE_NAME"
INSTANCE_TYPE = PREFIX + "INSTANCE_TYPE"
SPOOL_DIR = PREFIX + "SPOOL_DIR"
SPOOL_MAX_MB = PREFIX + "SPOOL_MAX_MB"
SCENARIO = PREFIX + "SCENARIO"
PLAN_FILE = PREFIX + "PLAN_FILE"
# Dockerfile.agent points it at the image's copy; the Neuron kustomization at a host mount.
NEURON_MONITOR = PREFIX + "NEURON_MONITOR"
CACHE_DIR = PREFIX + "CACHE_DIR"


def prompt_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where calibrated text prompts are cached across runs."""
    return Path(environ.get(CACHE_DIR) or Path.home() / ".cache" / "siliconbench")

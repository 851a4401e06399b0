"""The agent's validated options, shared by `run` and `daemon`: how this node reaches its target and
the collector, how it samples, and where unacknowledged data waits."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass

from siliconbench.core.config import STRICT, Float, Int, PositiveFloat, Str, invalid
from siliconbench.core.settings import AGENT_TOKEN, AGENT_TOKEN_FILE, ClientTls

DEFAULT_SPOOL_DIR = Path(".siliconbench-agent")
DEFAULT_SPOOL_MB = 512  # the spool's bound (agent/spool.py) unless --spool-max-mb says otherwise


@dataclass(frozen=True, slots=True, config=STRICT)
class AgentConfig:
    target: Str                                         # the vLLM base URL
    collector: Str                                      # HOST:PORT
    node_name: Str = ""                                 # default: the host name
    instance_type: Str = ""                             # default: what the samplers report
    token: Str | None = None                            # bearer token for the collector
    token_file: Path | None = None                      # ... or a file holding it, re-read for each stream
    # Below 0.1 s NVML's own averaging window dominates; above 60 s a step may see no sample at all.
    sample_interval_s: Annotated[Float, Field(ge=0.1, le=60)] = 1.0
    ack_timeout_s: PositiveFloat = 60.0
    scenario: Str = ""
    spool_dir: Path = DEFAULT_SPOOL_DIR                 # unacknowledged batches live in spool_dir/batches
    spool_max_mb: Annotated[Int, Field(ge=1)] = DEFAULT_SPOOL_MB  # new requests wait for the collector past it
    tls: ClientTls = ClientTls()                        # any file given: TLS toward the collector
    neuron_monitor: Str = "neuron-monitor"              # a name on PATH, or a path

    @model_validator(mode="after")
    def _one_token(self) -> AgentConfig:
        if self.token and self.token_file is not None:
            raise invalid(f"--token ({AGENT_TOKEN}) and --token-file ({AGENT_TOKEN_FILE}) exclude each other: "
                          "give one")
        return self

    @property
    def spool_max_bytes(self) -> int:
        return self.spool_max_mb * 2**20

    @property
    def agent_id(self) -> str:
        return self.node_name or socket.gethostname()

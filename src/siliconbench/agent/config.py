"""The agent's validated options, shared by `run` and `daemon`: how this node reaches its target and
the collector, how it samples, and where unacknowledged data waits."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from siliconbench.core.config import STRICT, Float, Int, PositiveFloat, Str, invalid
from siliconbench.core.settings import AGENT_TOKEN, AGENT_TOKEN_FILE, ClientTls

log = logging.getLogger(__name__)

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
    spool_only: bool = False                            # run without a collector: everything waits in the spool

    @field_validator("target")
    @classmethod
    def _base_url(cls, target: str) -> str:
        return base_url(target)

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


def base_url(target: str) -> str:
    """The server's base URL from a --target as users write it: without a trailing slash, and without the
    `/v1` that OpenAI clients are given (the agent adds /v1/... to each path itself; said in a log line)."""
    base = target.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
        log.warning("--target %s: using %s (the agent adds /v1/... to each request path itself)", target, base)
    return base

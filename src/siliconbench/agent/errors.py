"""The agent's errors. Each message names the thing that failed and what to do about it."""

from __future__ import annotations

from siliconbench.core.errors import ConfigError, ExitCode, SiliconbenchError

__all__ = ["AgentError", "ConfigError", "DeliveryIncomplete", "MalformedChunk", "ServerErrorEvent", "StreamFault",
           "TargetMisconfigured", "TargetUnreachable"]


class AgentError(SiliconbenchError):
    """Base class: a failure the agent reports to the user as one clear line."""


class TargetUnreachable(AgentError):
    """The vLLM target refuses the connection, or accepts it and does not answer in time."""

    exit_code = ExitCode.TARGET


class TargetMisconfigured(AgentError):
    """The target answers but cannot serve the benchmark (e.g. no such model)."""

    exit_code = ExitCode.TARGET


class DeliveryIncomplete(AgentError):
    """Data the collector has not acknowledged remains at exit."""

    exit_code = ExitCode.COLLECTOR


class StreamFault(Exception):
    """A request's stream broke a rule; `error_class` is the typed reason stored with the record."""

    error_class = "stream_error"


class MalformedChunk(StreamFault):
    error_class = "malformed_chunk"


class ServerErrorEvent(StreamFault):
    error_class = "server_error_event"

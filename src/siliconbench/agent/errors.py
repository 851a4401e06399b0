"""The agent's errors. Each message names the thing that failed and what to do about it."""

from __future__ import annotations

from siliconbench.core.errors import ConfigError, SiliconbenchError

__all__ = ["AgentError", "ConfigError", "DeliveryIncomplete", "MalformedChunk", "ServerErrorEvent", "StreamFault",
           "TargetMisconfigured", "TargetUnreachable"]


class AgentError(SiliconbenchError):
    """Base class: a failure the agent reports to the user as one clear line."""


class TargetUnreachable(AgentError):
    """The vLLM target does not answer."""


class TargetMisconfigured(AgentError):
    """The target answers but cannot serve the benchmark (e.g. no such model)."""


class DeliveryIncomplete(AgentError):
    """Data the collector has not acknowledged remains at exit."""


class StreamFault(Exception):
    """A request's stream broke a rule; `error_class` is the typed reason stored with the record."""

    error_class = "stream_error"


class MalformedChunk(StreamFault):
    error_class = "malformed_chunk"


class ServerErrorEvent(StreamFault):
    error_class = "server_error_event"

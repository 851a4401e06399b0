"""The agent's errors. Each message names the thing that failed and what to do about it.

Two families. An `AgentError` stops the command: the command line prints it as one line and exits
non-zero. A `StreamFault` ends one request: it never reaches the user as an error, it is stored with the
request's record as its `error_class` (siliconbench/core/outcomes.py) and the run goes on.

    SiliconbenchError (core)          the one class a command line catches
    ├── ConfigError (core)            a flag, plan, environment value or spool directory is unusable
    └── AgentError
        ├── TargetUnreachable         the vLLM target does not answer
        ├── TargetMisconfigured       it answers but cannot serve the benchmark (no such model, refuses warm-up)
        ├── StepFailed                every request of a step failed: the run stops with the server's message
        ├── CollectorUnreachable      the collector does not answer before the run starts
        ├── DeliveryIncomplete        records were set aside, or batches remain in the spool at exit
        ├── RunInterrupted            SIGTERM or SIGINT stopped a run; what was measured was delivered
        ├── AgentSaturated            workers auto: the agent cannot keep up on every core it may use
        └── WorkerCrashed             a worker process died; its unfinished requests are stored as errors

    StreamFault                       one request failed; `error_class` is what its record stores
    ├── ConnectFailed                 connect
    ├── RequestTimedOut               timeout
    ├── ConnectionReset               reset
    ├── ConnectionDropped             disconnected
    ├── HttpFault                     protocol_error
    ├── MalformedChunk                malformed_chunk
    ├── ServerErrorEvent              server_error_event
    └── StreamOverrun                 overrun

    SpoolCorrupt                      a spool file failed its checks: quarantined where it is found

Request failures that are not exceptions take their class in `load.send.send_request` (`http_status`,
`truncated`) and in `workers` (`worker_crashed`). Outside this tree, each caught where it is raised:
`samplers.base.SamplerUnavailable` (a sampler is left out of the run) and the simulator's own errors,
which become its HTTP responses.
"""

from __future__ import annotations

from siliconbench.core.errors import ConfigError, ExitCode, SiliconbenchError
from siliconbench.core.outcomes import ErrorClass

__all__ = ["AgentError", "AgentSaturated", "CollectorUnreachable", "ConfigError", "ConnectFailed", "ConnectionDropped", "ConnectionReset", "DeliveryIncomplete",
           "HttpFault", "MalformedChunk", "RequestTimedOut", "RunInterrupted", "ServerErrorEvent", "SpoolCorrupt", "StepFailed",
           "StreamFault", "StreamOverrun", "TargetMisconfigured", "TargetUnreachable", "WorkerCrashed"]


class AgentError(SiliconbenchError):
    """Base class: a failure the agent reports to the user as one clear line."""


class TargetUnreachable(AgentError):
    """The vLLM target refuses the connection, or accepts it and does not answer in time."""

    exit_code = ExitCode.TARGET


class TargetMisconfigured(AgentError):
    """The target answers but cannot serve the benchmark (e.g. no such model)."""

    exit_code = ExitCode.TARGET


class StepFailed(AgentError):
    """Every request of a step failed (its records and event are stored): the target serves none of the
    benchmark's requests, and the steps after it would fail the same way."""

    exit_code = ExitCode.TARGET


class CollectorUnreachable(AgentError):
    """The collector does not answer its health check before the run's first request."""

    exit_code = ExitCode.COLLECTOR


class DeliveryIncomplete(AgentError):
    """Data the collector has not acknowledged remains at exit."""

    exit_code = ExitCode.COLLECTOR


class RunInterrupted(AgentError):
    """SIGTERM or SIGINT stopped the run; the message says what was kept."""

    exit_code = ExitCode.INTERRUPTED


class AgentSaturated(AgentError):
    """`workers: auto`: a sending process saturated its core with every usable core sending (agent/sizing.py);
    `search`: a probe saw the agent itself limit the load (never the server's capacity)."""

    exit_code = ExitCode.AGENT_SATURATED


class WorkerCrashed(AgentError):
    """A worker process died; its unfinished requests were recorded as errors."""

    exit_code = ExitCode.INTERNAL


class StreamFault(Exception):
    """A request's stream broke a rule; `error_class` is the typed reason stored with the record."""

    error_class: ErrorClass


class ConnectFailed(StreamFault):
    error_class = ErrorClass.CONNECT


class RequestTimedOut(StreamFault):
    error_class = ErrorClass.TIMEOUT


class ConnectionReset(StreamFault):
    error_class = ErrorClass.RESET


class ConnectionDropped(StreamFault):
    """The server closed the connection before the response was complete."""

    error_class = ErrorClass.DISCONNECTED


class HttpFault(StreamFault):
    """The response broke HTTP/1.1 framing."""

    error_class = ErrorClass.PROTOCOL_ERROR


class MalformedChunk(StreamFault):
    error_class = ErrorClass.MALFORMED_CHUNK


class ServerErrorEvent(StreamFault):
    error_class = ErrorClass.SERVER_ERROR_EVENT


class StreamOverrun(StreamFault):
    """The stream delivered more than the request asked for (tokens, chunks or bytes)."""

    error_class = ErrorClass.OVERRUN


class SpoolCorrupt(Exception):
    """A spool file is truncated or does not match its checksum."""

"""How a request failed, as stored in `requests.error_class` ("" when it succeeded).

The values are stored data: reports group and filter on them, and a renamed value splits a node's history
in two. Add a value for a new kind of failure; never rename or reuse one. Every producer takes its value
from `ErrorClass`, so this is the one list of what a stored `error_class` can say.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorClass(StrEnum):
    # the connection
    CONNECT = "connect"                        # no connection to the target could be opened
    TIMEOUT = "timeout"                        # no complete response within request_timeout_s
    RESET = "reset"                            # the target reset the connection (TCP RST)
    DISCONNECTED = "disconnected"              # the target closed the connection before the response ended
    PROTOCOL_ERROR = "protocol_error"          # the response broke HTTP/1.1 framing
    # the response
    HTTP_STATUS = "http_status"                # the target answered with a status other than 200
    MALFORMED_CHUNK = "malformed_chunk"        # an SSE payload is not UTF-8 JSON shaped like a completion chunk
    SERVER_ERROR_EVENT = "server_error_event"  # the stream carried the server's `{"error": ...}` event
    TRUNCATED = "truncated"                    # the stream ended cleanly but without `data: [DONE]`
    OVERRUN = "overrun"                        # the stream went on past what was asked; the agent cut it there
    # the agent
    WORKER_CRASHED = "worker_crashed"          # the agent's worker process sending it died before it finished

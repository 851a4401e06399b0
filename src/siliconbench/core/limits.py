"""What the store accepts of one value: the limits of the wire contract, shared by both sides.

The collector refuses a batch holding a value outside these limits (collector/schema.py declares which
column takes which, collector/ingest.py enforces them over whole batches with numpy). The agent checks
every value it copies from the target (a response, /v1/models, /metrics) against the same limits where
the value enters, so that a hostile or broken server costs one request (stored as an error) or one
metric (dropped with a warning), never a batch of good records: a refused batch held 20 of 20 good
requests beside the one with `usage.prompt_tokens` = 20,000,000.

Text must also be encodable as UTF-8: protobuf refuses a Python string holding a lone surrogate
(`"\\ud800"`, which `json.loads` accepts), and a record that cannot be encoded would stop the run.
"""

from __future__ import annotations

import math

MAX_ID_CHARS = 256            # identifiers and labels: run/request ids, model, finish_reason, metric names
MAX_TEXT_CHARS = 4096         # free text: error messages, URLs, metric label sets
MAX_CONFIG_CHARS = 65536      # a run's plan as JSON
MAX_TOKENS = 10_000_000       # per request, per chunk: 10x the longest output a plan may ask for
MAX_CHUNKS = 1_000_000        # chunk offsets per request record
MAX_TOOL_CALLS = 128          # tool calls per streamed response (a higher tool_calls index is malformed)
MAX_ACCELERATORS = 1024
MAX_TURNS = 100_000           # turns of one session (stored turn index; a plan may ask for at most 10,000)

# One gRPC message between agent and collector, either way (both set it as gRPC's send and receive limit):
# a batch is sealed below it (agent/batcher.py), and an offer of more is refused (collector/budget.py).
MAX_MESSAGE_BYTES = 16 * 2**20


def text_fault(value: str, max_chars: int) -> str | None:
    """Why the store cannot take `value` as a text of at most `max_chars` characters; None when it can."""
    if len(value) > max_chars:
        return f"is {len(value)} characters long; the limit is {max_chars}"
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        return f"is not valid UTF-8 ({exc.reason} at character {exc.start})"
    return None


def number_fault(value: float) -> str | None:
    """Why the store cannot take `value` as a measured number (NaN and infinities); None when it can."""
    return None if math.isfinite(value) else f"is {value}; only finite numbers are stored"


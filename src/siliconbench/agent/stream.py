"""What one streamed completion says, event by event (DESIGN §3).

`StreamTimeline` receives each SSE data payload with the arrival offset of the read that
carried it, and keeps only what the record needs: the offset, token count and kind of every
content-bearing chunk, the first offset of each kind, the usage counts, the finish reason, the tool
calls' argument fragments, and whether `[DONE]` came. A chunk is content-bearing when it carries text,
reasoning or tool calls, or when the server's continuous usage says it carried tokens; a chat stream's
role-only first chunk and the final usage-only chunk are not.

Kinds (vLLM's reasoning parsers and tool-call parsers): an answer chunk carries `text` (completions)
or `delta.content`; a reasoning chunk `delta.reasoning_content` or, in newer vLLM, `delta.reasoning`;
a tool-call chunk `delta.tool_calls` (the first delta of a call has its id, type and function name, the
next ones fragments of its JSON arguments). A chunk with content is an answer chunk whatever else it
carries (its reasoning still counts as the first reasoning when none came before); one that carries
tokens but no text keeps the kind of the chunk before it. A model that reasons without streaming it shows
as no reasoning chunk and a first chunk that carries many tokens (collector/formulas.py).

Hot path: every payload is decoded by one typed msgspec decoder that materialises only the fields
timing needs (`_Chunk` below) and skips the rest unparsed. Measured with bench/stream_decode.py on a
311-byte vLLM chunk: 0.8-0.9 us a chunk for decode plus accounting, compact or spaced JSON alike, where
the byte search this replaced took 1.9-2.7 us on compact JSON and 5.0 us on spaced JSON (which it
handed to `json.loads`). Reading each chunk's kind kept that cost (interleaved A/B on one machine, min of
15 rounds: chat content 0.99 -> 1.03 us, reasoning 1.02 -> 1.04 us, role-only 0.96 -> 0.97 us); a tool-call
argument fragment, now decoded and kept for the end-of-stream JSON check, 1.11 -> 1.47 us. A payload that
is not JSON, not UTF-8 or not shaped like a completion chunk is a `MalformedChunk`; a top-level `"error"` is the server's mid-stream `ServerErrorEvent`.

Bounded at the source: a record holds at most `max_tokens + OUTPUT_SLACK` chunks, and a server that
reports (or sends) more tokens than that is cut off with a `StreamOverrun`, the chunks up to the bound
kept. vLLM never exceeds `max_tokens`; the slack tolerates a server that counts a stop token or splits
its last token. Without the bound, one stream that never stops made a record of millions of chunk
offsets, larger than a batch may be. `max_body_bytes` bounds the bytes that carry them (pings, events
that are not chunks) for the HTTP client, so no stream is read for ever.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from siliconbench.agent.errors import MalformedChunk, ServerErrorEvent, StreamOverrun
from siliconbench.core.limits import MAX_ID_CHARS, MAX_TOKENS, MAX_TOOL_CALLS

OUTPUT_SLACK = 16  # tokens, and chunks, a stream may deliver past max_tokens before it is cut off
BYTES_PER_CHUNK = 64 * 1024  # generous: a vLLM chunk is ~0.3 KiB, ~4 KiB with 20 logprobs
_DONE = b"[DONE]"


# Values copied into the record are checked as they are decoded, against what the store takes
# (core/limits.py): a prompt count past MAX_TOKENS or a finish_reason past MAX_ID_CHARS makes the chunk
# malformed (one request an error) instead of a batch the collector refuses; msgspec refuses lone
# surrogates itself. A completion count past the request's bound (never above MAX_TOKENS) is an overrun.
_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
_Completion = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]
_Id = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)]
_Index = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOOL_CALLS - 1)]

ANSWER, REASONING, TOOL_CALL = 0, 1, 2  # chunk kinds (RequestRecord.chunk_kinds)


class _PromptDetails(msgspec.Struct):
    cached_tokens: _Count | None = None  # prompt tokens the server's prefix cache gave


class _Usage(msgspec.Struct):
    prompt_tokens: _Count | None = None
    completion_tokens: _Completion | None = None
    prompt_tokens_details: _PromptDetails | None = None


class _Function(msgspec.Struct):
    arguments: str | None = None  # a fragment of the call's JSON arguments


class _ToolCall(msgspec.Struct):
    index: _Index = 0
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None   # vLLM's reasoning parsers until 0.10
    reasoning: str | None = None           # and since
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    text: str | None = None        # /v1/completions
    delta: _Delta | None = None    # /v1/chat/completions
    finish_reason: _Id | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: msgspec.Raw = msgspec.Raw()  # empty unless the key is present (any JSON value, null included)


_decode = msgspec.json.Decoder(_Chunk).decode


class StreamTimeline:
    __slots__ = (
        "offsets_ns", "tokens", "kinds", "first_ns", "prompt_tokens", "cached_tokens", "usage_tokens",
        "finish_reason", "done", "_cumulative", "_continuous", "_max_tokens", "_bound", "_tool_args",
    )

    def __init__(self, max_tokens: int) -> None:
        """`max_tokens`: the output length the request asked for."""
        self._max_tokens = max_tokens
        self._bound = min(max_tokens + OUTPUT_SLACK, MAX_TOKENS)
        self.offsets_ns: list[int] = []
        self.tokens: list[int] = []
        self.kinds: list[int] = []            # one per chunk: ANSWER, REASONING or TOOL_CALL
        self.first_ns = [-1, -1, -1]          # by kind: the first chunk's offset; -1: none came
        self.prompt_tokens = 0
        self.cached_tokens = -1               # usage.prompt_tokens_details.cached_tokens; -1: not said
        self.usage_tokens: int | None = None  # completion_tokens of the latest usage the server sent
        self.finish_reason = ""
        self.done = False
        self._cumulative = 0                  # completion tokens accounted to chunks so far
        self._continuous = False              # the server sends usage on content chunks
        self._tool_args: dict[int, list[str]] = {}  # tool call index -> its argument fragments

    def on_event(self, payload: bytes, offset_ns: int) -> None:
        """Account one SSE data payload that arrived `offset_ns` after the request was sent. Raises
        MalformedChunk, ServerErrorEvent or StreamOverrun."""
        if payload == _DONE:
            self.done = True
            return
        try:
            if not payload.isascii():
                payload.decode()  # JSON is UTF-8; msgspec checks only the strings it keeps
            chunk = _decode(payload)
            error = msgspec.json.decode(chunk.error) if chunk.error else None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # ValidationError is a DecodeError
            raise MalformedChunk(f"stream chunk is not a completion chunk ({exc}): {payload[:120]!r}") from None
        if chunk.error:
            raise ServerErrorEvent(_error_text(error))
        choices = chunk.choices
        usage = chunk.usage
        carried = 0
        if usage is not None:
            completion = usage.completion_tokens
            if completion is not None:
                if completion > self._bound:
                    raise self._overrun(f"the server reported {completion} completion tokens")
                previous = self.usage_tokens
                if previous is not None and completion < previous:  # the count is cumulative
                    raise MalformedChunk(f"usage went backwards: {previous} then {completion} completion tokens")
                self.usage_tokens = completion
                if choices:
                    self._continuous = True
                    carried = completion - self._cumulative
                    self._cumulative = completion
            if usage.prompt_tokens is not None:
                self.prompt_tokens = usage.prompt_tokens
            details = usage.prompt_tokens_details
            if details is not None and details.cached_tokens is not None:
                self.cached_tokens = details.cached_tokens
        if not choices:
            return
        choice = choices[0]
        if choice.finish_reason:
            self.finish_reason = choice.finish_reason
        kind = self._kind(choice, offset_ns)
        if kind < 0:
            if carried <= 0:
                return
            kind = self.kinds[-1] if self.kinds else ANSWER
        if len(self.offsets_ns) == self._bound:
            raise self._overrun(f"the server sent more than {self._bound} content chunks")
        self.offsets_ns.append(offset_ns)
        self.tokens.append(carried if self._continuous else 1)
        self.kinds.append(kind)
        if self.first_ns[kind] < 0:
            self.first_ns[kind] = offset_ns

    def _kind(self, choice: _Choice, offset_ns: int) -> int:
        """The chunk's kind, -1 when it carries no text; notes the reasoning an answer chunk also carries,
        and tool-call argument fragments, on the way."""
        if choice.text:
            return ANSWER
        delta = choice.delta
        if delta is None:
            return -1
        if delta.content:
            if (delta.reasoning_content or delta.reasoning) and self.first_ns[REASONING] < 0:
                self.first_ns[REASONING] = offset_ns
            return ANSWER
        if delta.reasoning_content or delta.reasoning:
            return REASONING
        if delta.tool_calls:
            for call in delta.tool_calls:
                fragments = self._tool_args.setdefault(call.index, [])
                if call.function is not None and call.function.arguments:
                    fragments.append(call.function.arguments)
            return TOOL_CALL
        return -1

    @property
    def tool_calls(self) -> int:
        return len(self._tool_args)

    def invalid_tool_calls(self) -> int:
        """The tool calls whose argument fragments, joined, are not JSON (read once the stream ended)."""
        return sum(1 for fragments in self._tool_args.values() if not _is_json("".join(fragments)))

    @property
    def max_body_bytes(self) -> int:
        """The most response bytes a stream of this many tokens may take (then it is an overrun)."""
        return self._bound * BYTES_PER_CHUNK + (1 << 20)

    def _overrun(self, what: str) -> StreamOverrun:
        return StreamOverrun(f"{what} for {self._max_tokens} tokens asked (slack {OUTPUT_SLACK}); the agent "
                             "stopped reading the stream there and kept the chunks before it")

    @property
    def tokens_counted(self) -> bool:
        """True when the server gave no usage and the output length is the agent's own count."""
        return self.usage_tokens is None

    @property
    def output_tokens(self) -> int:
        return len(self.tokens) if self.usage_tokens is None else self.usage_tokens


def _is_json(text: str) -> bool:
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError:
        return False
    return True


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error)[:500]

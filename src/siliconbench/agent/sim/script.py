"""What a simulated stream sends for each run of tokens: reasoning, answer text or a tool call, as vLLM's
reasoning and tool-call parsers stream them (chat only; a completions request has neither).

A response of `output_tokens` tokens starts with `reasoning_tokens` of reasoning (in the profile's field,
or in silence when it does not stream it: the tokens' time passes, nothing is sent, and the first chunk
after them carries their count in its usage), then the answer: text, or one call of the request's tool,
its first delta the call's id, type and function name, the next ones fragments of the JSON arguments
`{"text": "<the answer's text>"}` (left unclosed when the request asks `sim_tool_args_invalid`).
Chunks never straddle the end of the reasoning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from siliconbench.agent.sim.api import GenerationRequest
from siliconbench.agent.sim.events import ChatEvents, StreamEvents
from siliconbench.agent.sim.profile import SimProfile
from siliconbench.agent.sim.tokenizer import output_text

_ARGS_OPEN, _ARGS_CLOSE = '{"text": "', '"}'


def spans(gen: GenerationRequest, profile: SimProfile) -> Iterator[tuple[int, int]]:
    """(first token, one past the last) of each chunk, in order."""
    sent, total, per_chunk = 0, gen.output_tokens, profile.tokens_per_chunk
    while sent < total:
        end = gen.reasoning_tokens if sent < gen.reasoning_tokens else total
        upto = min(sent + per_chunk, end)
        yield sent, upto
        sent = upto


def finish_reason(gen: GenerationRequest) -> str:
    return "tool_calls" if gen.tool is not None else gen.finish_reason


def chunk(stream: StreamEvents, gen: GenerationRequest, profile: SimProfile, call_id: str, sent: int,
          upto: int) -> bytes | None:
    """The chunk carrying tokens [sent, upto); None for reasoning that is not streamed."""
    finish = finish_reason(gen) if upto == gen.output_tokens else None
    text = output_text(sent, upto)
    if sent >= gen.reasoning_tokens and gen.tool is None:
        return stream.content(text, upto, finish)
    assert isinstance(stream, ChatEvents)  # reasoning and tools come with chat requests only
    if sent < gen.reasoning_tokens:
        return stream.reasoning(profile.reasoning_field, text, upto, finish) if profile.reasoning_streamed else None
    if sent == gen.reasoning_tokens:  # the call's first delta: a call made in one chunk has no arguments: {}
        return stream.tool_call(call_id, gen.tool or "", upto, finish, "{}" if finish else None)
    fragment = json.dumps(text)[1:-1]  # the text as the inside of a JSON string
    if sent == gen.reasoning_tokens + profile.tokens_per_chunk:  # the chunk after the call's first delta
        fragment = _ARGS_OPEN + fragment
    if finish and not gen.tool_args_invalid:
        fragment += _ARGS_CLOSE
    return stream.tool_arguments(fragment, upto, finish)


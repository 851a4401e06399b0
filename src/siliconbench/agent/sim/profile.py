"""The simulator's timing and model settings (`SimProfile`), validated when built."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from siliconbench.core.config import STRICT, Bool, Int, NonNegativeFloat, Str


@dataclass(frozen=True, config=STRICT)
class SimProfile:
    """How the simulated server times its output.

    Chunk `i` (0-based) of a stream is due at
    `arrival + ttft + sum(itl * slowdown(t_j) for j < i)`, where
    `ttft = (ttft_ms + ttft_per_prompt_token_ms * prefilled_tokens) * slowdown(arrival)` (prefilled: the prompt
    less what the prefix cache gave) and
    `slowdown = 1 + slowdown_per_stream * (active_streams - 1)` with the active count taken when each gap
    starts. `ttft_ms == itl_ms == 0` streams as fast as the server can write (0 disables a delay).

    Capacity knee: with `slots > 0` at most `slots` requests generate at once; the others wait, first come
    first served (vLLM's `num_requests_waiting`), their wait counted in their TTFT. `steady_itl_ms` (every
    gap) and `steady_ttft_ms` (the mean) give the closed-loop figures in closed form, so a test knows the
    true SLO boundary.

    Building one checks every field at once (strict types, finite numbers >= 0) and raises pydantic's
    ValidationError naming each bad field; `siliconbench-agent sim` reports them as one line.
    """

    model: Annotated[Str, Field(pattern=r"\S", description="Served model name.")] = "siliconbench/sim-llama"
    ttft_ms: Annotated[NonNegativeFloat, Field(description="Base time to first token (ms).")] = 50.0
    ttft_per_prompt_token_ms: Annotated[NonNegativeFloat, Field(description="Prefill time added per prompt token (ms).")] = 0.0
    itl_ms: Annotated[NonNegativeFloat, Field(description="Gap between chunks at concurrency 1 (ms).")] = 10.0
    tokens_per_chunk: Annotated[Int, Field(ge=1, description="Tokens carried by each chunk.")] = 1
    slowdown_per_stream: Annotated[NonNegativeFloat, Field(description="Latency grows by this fraction per extra concurrent stream.")] = 0.0
    slots: Annotated[Int, Field(ge=0, description="Requests generated at once; more wait in a queue, their wait in their TTFT (0: no limit).")] = 0
    max_model_len: Annotated[Int, Field(ge=1, description="Longest prompt + output the simulator accepts.")] = 8192
    ping_every_chunks: Annotated[Int, Field(ge=0, description="Send an SSE ': ping' comment every N chunks (0: never).")] = 0
    # reasoning models, tool calls and adapters (chat streams; the completions endpoint has neither)
    reasoning_tokens: Annotated[Int, Field(ge=0, description="Chat: tokens of reasoning before the answer (part of max_tokens).")] = 0
    reasoning_field: Annotated[Str, Field(pattern=r"^(reasoning|reasoning_content)$", description="The delta field reasoning streams in: reasoning (vLLM >= 0.10) or reasoning_content.")] = "reasoning"
    reasoning_streamed: Annotated[Bool, Field(description="Stream the reasoning; without, the model reasons in silence and the first answer chunk's usage counts it.")] = True
    adapters: Annotated[Str, Field(pattern=r"^([^,\s]+(,[^,\s]+)*)?$", description="LoRA adapters served beside the model, comma-separated names.")] = ""
    # the prefix cache (agent/sim/prefix.py): on or off (off: every prompt is prefilled whole, as the timing
    # formula above says), its block size, and whether usage reports the tokens it gave (vLLM's
    # --enable-prompt-tokens-details)
    prefix_caching: Annotated[Bool, Field(description="Serve repeated prompt prefixes from a prefix cache (their prefill skipped).")] = False
    block_size: Annotated[Int, Field(ge=1, description="KV-cache block size in tokens: the prefix cache's unit.")] = 16
    prompt_tokens_details: Annotated[Bool, Field(description="Report usage.prompt_tokens_details.cached_tokens, as vLLM does with --enable-prompt-tokens-details.")] = False
    adapter_load_ms: Annotated[NonNegativeFloat, Field(description="Added to the TTFT of the first request to each adapter (its load).")] = 0.0

    @property
    def served(self) -> tuple[str, ...]:
        """The model names served: the base model, then the adapters."""
        return (self.model, *(a for a in self.adapters.split(",") if a))

    def steady_itl_ms(self, concurrency: int) -> float:
        """A closed loop's gap between chunks with `concurrency` streams always in flight: the streams that
        generate (at most `slots`) slow each other down."""
        running = min(concurrency, self.slots) if self.slots else concurrency
        return self.itl_ms * (1 + self.slowdown_per_stream * (running - 1))

    def steady_ttft_ms(self, concurrency: int, prompt_tokens: int, output_tokens: int) -> float:
        """A closed loop's mean TTFT with `concurrency` streams always in flight, each request
        `output_tokens` long. Past `slots`, requests wait for a slot: with every slot busy for `service` ms
        per request, `slots / service` requests finish per ms, so by Little's law a request waits
        `service x (concurrency - slots) / slots` on average before its own prefill starts (how the waits
        spread over the requests depends on how the slots' ends line up: the mean alone is exact)."""
        running = min(concurrency, self.slots) if self.slots else concurrency
        slowdown = 1 + self.slowdown_per_stream * (running - 1)
        prefill = (self.ttft_ms + self.ttft_per_prompt_token_ms * prompt_tokens) * slowdown
        chunks = -(-output_tokens // self.tokens_per_chunk)
        service = prefill + (chunks - 1) * self.itl_ms * slowdown
        wait = service * (concurrency - running) / running
        return wait + prefill

    def describe(self) -> str:
        """One line `key=value, ...` for logs."""
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())

"""A session turn's stream: timed as every request's is (agent/stream.py), and keeping what a client keeps
of it, the answer's text and its reasoning, to send back in the next turn."""

from __future__ import annotations

from collections.abc import Callable

from siliconbench.agent.stream import StreamTimeline, _Choice


class TurnTimeline(StreamTimeline):
    """`on_prefilled` is called at the first content-bearing chunk: the server has computed the prompt."""

    __slots__ = ("answer", "reasoning", "_on_prefilled")

    def __init__(self, max_tokens: int, on_prefilled: Callable[[], None]) -> None:
        super().__init__(max_tokens)
        self.answer: list[str] = []
        self.reasoning: list[str] = []
        self._on_prefilled: Callable[[], None] | None = on_prefilled

    def _kind(self, choice: _Choice, offset_ns: int) -> int:
        kind = super()._kind(choice, offset_ns)
        if choice.text:
            self.answer.append(choice.text)
        elif (delta := choice.delta) is not None:
            if delta.content:
                self.answer.append(delta.content)
            if thought := delta.reasoning_content or delta.reasoning:
                self.reasoning.append(thought)
        if kind >= 0 and self._on_prefilled is not None:
            self._on_prefilled()
            self._on_prefilled = None
        return kind

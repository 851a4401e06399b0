"""Multi-turn sessions (a plan's `sessions:` section; `siliconbench-agent run --sessions-*` flags), validated
when built. The load is the plan's steps read as sessions: a closed-loop step keeps `concurrency`
sessions going, an open-loop step starts sessions at `rate` per second, and a step's `requests` bound
counts sessions (every turn of a started session is sent); a search (`search:`) searches the largest session
concurrency or session rate within its SLOs, judged on the turns. The sessions themselves are the agent's
(siliconbench.agent.sessions).

    endpoint: chat
    output_tokens: 64              # each answer
    sessions:
      turns: 4
      think_time_s: 0.5            # after an answer, before the next turn
      first_turn_tokens: 256       # the first user message, in the server's tokens
      followup_tokens: 64          # each later user message
      system_prompts:              # sessions drawn into groups by weight; a group shares its system prompt
        - {tokens: 512, weight: 3}
        - {tokens: 128, weight: 1}
      echo_reasoning: false        # send the answer's reasoning back with it (real clients do not)

Each turn sends the history a real client sends: the system prompt, every earlier user message and the
assistant's answers as received, then the new user message.

An agentic session goes on after its plain turns through the nodes of its `agent` graph, in order; each node
ends in one turn of the session's own agent:

      agent:
        - {kind: tool, latency_s: 0.2, result_tokens: 80}  # a tool runs, its result is the next turn's message
        - {kind: fork, agents: 2, turns: 2}    # sub-agents sharing the history so far, at once; joined back
        - {kind: spawn, agents: 1, turns: 1}   # fresh sub-agents (the system prompt, a first message); joined
        - {kind: turn}                         # a plain user turn

A join's turn sends the sub-agents' last answers as one message. Sub-agents run plain turns (no graph of
their own); a forked one's turns continue the parent's turn count (its history is as deep).
"""

from __future__ import annotations

import hashlib
import itertools
from bisect import bisect_right
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from siliconbench.core.bounds import (MAX_AGENT_NODES, MAX_NAME_CHARS, MAX_SUBAGENTS, MAX_SYSTEM_PROMPTS, MAX_THINK_S,
                                      MAX_TOKENS, MAX_TURNS)
from siliconbench.core.config import STRICT, Bool, Int, NonNegativeFloat, PositiveFloat, Str, invalid
from siliconbench.core.errors import ConfigError

Tokens = Annotated[Int, Field(ge=1, le=MAX_TOKENS)]
_RESULT_TOKENS = 64  # a tool result's length unless given


@dataclass(frozen=True, slots=True, config=STRICT)
class SystemPrompt:
    """One group of sessions: its shared system prompt's length in tokens, and its relative weight."""

    tokens: Tokens
    weight: PositiveFloat = 1.0


@dataclass(frozen=True, slots=True, config=STRICT)
class AgentNode:
    """One node of a session's agent graph (see the module docstring); `name` defaults to its kind and place."""

    kind: Literal["turn", "tool", "fork", "spawn"]
    name: Annotated[Str, Field(max_length=MAX_NAME_CHARS)] = ""
    latency_s: Annotated[NonNegativeFloat, Field(le=MAX_THINK_S)] = 0.0   # tool: how long it runs
    result_tokens: Tokens = _RESULT_TOKENS                                  # tool: its result's tokens
    agents: Annotated[Int, Field(ge=1, le=MAX_SUBAGENTS)] = 1              # fork, spawn: sub-agents at once
    turns: Annotated[Int, Field(ge=1, le=MAX_TURNS)] = 1                   # fork, spawn: each sub-agent's turns

    @model_validator(mode="after")
    def _consistent(self) -> AgentNode:
        if self.kind != "tool" and (self.latency_s or self.result_tokens != _RESULT_TOKENS):
            raise invalid("latency_s and result_tokens belong to tool nodes")
        if self.kind not in ("fork", "spawn") and (self.agents, self.turns) != (1, 1):
            raise invalid("agents and turns belong to fork and spawn nodes")
        return self


@dataclass(frozen=True, slots=True, config=STRICT)
class SessionPlan:
    """What one session sends; see the module docstring."""

    turns: Annotated[Int, Field(ge=1, le=MAX_TURNS)] = 4
    think_time_s: Annotated[NonNegativeFloat, Field(le=MAX_THINK_S)] = 0.0
    first_turn_tokens: Tokens = 256
    followup_tokens: Tokens = 64
    system_prompts: Annotated[tuple[SystemPrompt, ...], Field(max_length=MAX_SYSTEM_PROMPTS)] = ()
    echo_reasoning: Bool = False
    agent: Annotated[tuple[AgentNode, ...], Field(max_length=MAX_AGENT_NODES)] = ()

    def group(self, seed: int, number: int) -> int:
        """The system-prompt group of session `number` (a draw by weight from the seed; -1: no system prompt)."""
        if not self.system_prompts:
            return -1
        digest = hashlib.blake2b(f"{seed}/session/{number}".encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / 2**64
        total = sum(p.weight for p in self.system_prompts)
        edges = list(itertools.accumulate(p.weight / total for p in self.system_prompts))
        return min(bisect_right(edges, draw), len(self.system_prompts) - 1)

    def describe(self) -> str:
        """One line: '4 turns (256 then 64 tokens), think 0.5 s, system prompts 512x3/128x1, agent tool > fork x2 > turn'."""
        parts = [f"{self.turns} turns ({self.first_turn_tokens} then {self.followup_tokens} tokens)",
                 f"think {self.think_time_s:g} s"]
        if self.system_prompts:
            parts.append("system prompts " + "/".join(f"{p.tokens}x{p.weight:g}" for p in self.system_prompts))
        if self.agent:
            parts.append("agent " + " > ".join(n.kind + (f" x{n.agents}" if n.kind in ("fork", "spawn") else "")
                                               for n in self.agent))
        return ", ".join(parts)

    def node_name(self, index: int) -> str:
        node = self.agent[index]
        return node.name or f"{index}.{node.kind}"

    def longest_history(self, output_tokens: int) -> list[int]:
        """The session agent's turns' prompt and output tokens at most, in message tokens (the chat template's
        own come on top), a forked sub-agent's last turn in place of the turn that joins it: what the plan's
        check holds against the server's context length."""
        system = max((p.tokens for p in self.system_prompts), default=0)
        sizes: list[int] = []
        history = system

        def turn(message: int) -> int:
            sizes.append(history + message + output_tokens)
            return history + message + output_tokens

        for number in range(self.turns):
            history = turn(self.first_turn_tokens if number == 0 else self.followup_tokens)
        for node in self.agent:
            if node.kind == "fork":
                sizes.append(history + node.turns * (self.followup_tokens + output_tokens))
            message = {"turn": self.followup_tokens, "tool": node.result_tokens}.get(node.kind,
                                                                                      node.agents * output_tokens)
            history = turn(message)
        return sizes


def turn_past_context(sessions: SessionPlan, output_tokens: int, max_model_len: int) -> str | None:
    """Why the plan's sessions cannot fit the server's context (names the first turn that would not), or None."""
    for turn, needed in enumerate(sessions.longest_history(output_tokens)):
        if needed > max_model_len:
            return (f"sessions: turn {turn} of a session's agent would need {needed} tokens (its history, the new message "
                    f"and output_tokens) before the chat template's own, past the server's max_model_len "
                    f"{max_model_len}: ask for fewer turns, shorter messages or a shorter output")
    return None


def sessions_with(base: SessionPlan | None, **given: Any) -> SessionPlan | None:
    """`base` (or the default sessions) with the `--sessions-*` flags that were given (None: not given);
    `base` itself when none was. A bad value is a ConfigError naming its flag."""
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        return base
    if isinstance(changes.get("system_prompts"), str):
        changes["system_prompts"] = parse_system_prompts(changes["system_prompts"])
    try:
        return replace(base or SessionPlan(), **changes)
    except ValidationError as exc:
        problems = [f"--sessions-{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("options: " + "; ".join(problems)) from None


def parse_system_prompts(text: str) -> tuple[SystemPrompt, ...]:
    """'512:3,128' -> a 512-token prompt of weight 3 and a 128-token one of weight 1."""
    groups = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        tokens, _, weight = part.partition(":")
        try:
            groups.append(SystemPrompt(tokens=int(tokens), weight=float(weight or 1)))
        except (ValueError, ValidationError):
            raise ConfigError(f"--sessions-system-prompts takes TOKENS[:WEIGHT] groups such as 512:3,128:1; got "
                              f"{part!r}") from None
    return tuple(groups)

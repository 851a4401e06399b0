"""One conversation's turns: each sends the history before it and the new message, is timed as every request
is (agent/load/send.py), recorded with its session, turn, agent node and expected prefix reuse, and its answer
(as received) joins the history. A turn that fails ends its conversation: the next could not send the
history a client would."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter_ns

from siliconbench.agent.clock import DeadlineTimer
from siliconbench.agent.httpstream import StreamingClient
from siliconbench.agent.load.send import ENDPOINT_PATHS, Done, Share, request_body, send_request, tokens_asked
from siliconbench.agent.sessions.ledger import BlockLedger
from siliconbench.agent.sessions.messages import Tokenizer
from siliconbench.agent.sessions.timeline import TurnTimeline
from siliconbench.agent.target import TargetInfo
from siliconbench.core.plan import Plan
from siliconbench.core.wire import pb


@dataclass(slots=True)
class Conversation:
    """A session's (or a sub-agent's) state: its messages so far, the turn count (a forked sub-agent's goes on
    from its parent's), when its next turn is due and when its last answer ended (perf_counter_ns)."""

    session_id: str
    scheduled_ns: int
    messages: list[dict] = field(default_factory=list)
    parent_id: str = ""
    turn: int = 0
    freed_ns: int = 0
    answer: str = ""


@dataclass(slots=True)
class Client:
    """What every turn of a run needs: the plan, the target and the connection to it, the server's tokenizer,
    the ledger of what the server has seen, the timer, and the sink's gate."""

    plan: Plan
    target: TargetInfo
    run_id: str
    client: StreamingClient
    timer: DeadlineTimer
    tokenizer: Tokenizer
    ledger: BlockLedger
    gate: Callable[[], Awaitable[None]] | None = None


class Turns:
    """Sends the turns of one share of a step (`share`), each finished record to `done`."""

    def __init__(self, client: Client, share: Share, done: Done) -> None:
        self._c = client
        self._share = share
        self._done = done
        self._path = ENDPOINT_PATHS[client.plan.endpoint]
        self._max_tokens = tokens_asked(client.plan)

    async def message(self, conv: Conversation, length: int) -> str:
        """Text of `length` tokens, drawn for the conversation's next turn."""
        return await self._c.tokenizer.message(f"{self._c.plan.seed}/{conv.session_id}/{conv.turn}", length)

    async def user(self, conv: Conversation, length: int, node: str = "", kind: str = "") -> bool:
        """A turn whose new message is the user's, `length` tokens."""
        return await self.send(conv, {"role": "user", "content": await self.message(conv, length)}, node, kind)

    async def send(self, conv: Conversation, message: dict, node: str = "", kind: str = "") -> bool:
        """One turn: `message` after the history, sent at the conversation's scheduled time. False: it failed."""
        c = self._c
        conv.messages.append(message)
        ids = await c.tokenizer.prompt_ids(conv.messages)
        share = self._share
        request_id = f"{conv.session_id}/{conv.turn}"
        record = pb.RequestRecord(run_id=c.run_id, request_id=request_id, step=share.step,
                                  concurrency=share.spec.concurrency, repetition=share.repetition,
                                  model=c.target.model, session_id=conv.session_id, turn=conv.turn,
                                  expected_cached_tokens=c.ledger.expected(ids), parent_session_id=conv.parent_id,
                                  agent_node=node, agent_kind=kind)
        body = json.loads(request_body(c.plan, c.target.model, conv.messages))
        body["user"] = conv.session_id  # OpenAI's end-user id: which conversation the request belongs to
        data = c.client.request_bytes(self._path, json.dumps(body, separators=(",", ":")).encode(), request_id)
        timeline = TurnTimeline(self._max_tokens, partial(c.ledger.computed, ids))
        await c.timer.sleep_until(conv.scheduled_ns / 1e9)
        if c.gate is not None:
            await c.gate()
        await send_request(c.client, data, record, self._max_tokens, conv.scheduled_ns, timeline)
        conv.freed_ns = perf_counter_ns()
        conv.turn += 1
        self._done(record)
        if record.error_class:
            return False
        conv.answer, reasoning = "".join(timeline.answer), "".join(timeline.reasoning)
        conv.messages.append(self._assistant(conv.answer, reasoning))
        # what the server computed: the prompt, then everything it generated, reasoning first
        c.ledger.computed((ids + await c.tokenizer.text_ids(reasoning + conv.answer))[:-1])
        conv.scheduled_ns = conv.freed_ns + int(self.think_s * 1e9)
        return True

    @property
    def think_s(self) -> float:
        assert self._c.plan.sessions is not None
        return self._c.plan.sessions.think_time_s

    def _assistant(self, answer: str, reasoning: str) -> dict:
        message = {"role": "assistant", "content": answer}
        sessions = self._c.plan.sessions
        if sessions is not None and sessions.echo_reasoning and reasoning:
            message["reasoning_content"] = reasoning
        return message

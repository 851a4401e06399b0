"""The send path of a sessions plan (siliconbench.core.sessions): sessions started on the plan's steps, each
turn sent with the history before it, timed as every request is (agent/load/send.py), and recorded with its
session, turn and expected prefix reuse.

Closed loop: `concurrency` slots, each running one session after another; open loop: sessions started at
the step's rate (Poisson or evenly spaced), at most `max_concurrency` at once when given. A turn's
scheduled time is the end of the answer before it plus the think time (a session's first turn: its slot's
freeing, or its arrival), so the client's own work between turns (counting the next prompt's tokens with the
server's tokenizer) shows as dispatch delay where it outlasts the think time. A turn that fails ends its
session: the next turn could not send the history a client would.

Sent from the agent's own process only (the plan's check): the ledger of what the server has seen is one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from time import perf_counter_ns

import aiohttp

from siliconbench.agent.clock import DeadlineTimer
from siliconbench.agent.errors import ConfigError
from siliconbench.agent.httpstream import StreamingClient
from siliconbench.agent.load.send import (ENDPOINT_PATHS, Done, Share, ShareReport, WarmUp, request_body,
                                          send_request, tokens_asked)
from siliconbench.agent.scrape import block_size, scrape
from siliconbench.agent.selfmon import SelfMonitor, percentile
from siliconbench.agent.sessions.ledger import BlockLedger
from siliconbench.agent.sessions.messages import Tokenizer
from siliconbench.agent.sessions.timeline import TurnTimeline
from siliconbench.agent.target import TargetInfo
from siliconbench.core.plan import Plan, StepSpec
from siliconbench.core.sessions import SessionPlan, turn_past_context
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)


class SessionSender:
    """Sends sessions for `LoadGenerator` in place of `Sender`: `start`, `warm_up` (which also reads the
    server's block size and builds the system prompts), `run` per step, `close`."""

    def __init__(self, plan: Plan, target: TargetInfo, run_id: str) -> None:
        assert plan.sessions is not None
        self._plan = plan
        self._sessions: SessionPlan = plan.sessions
        self._target = target
        self._run_id = run_id
        self._path = ENDPOINT_PATHS[plan.endpoint]
        self._max_tokens = tokens_asked(plan)
        self._client = StreamingClient(target.base_url, plan.request_timeout_s)
        self._timer = DeadlineTimer()
        self._http: aiohttp.ClientSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._system: list[str] = []
        self.ledger = BlockLedger(0)
        self.next_number = 0
        self.gate: Callable[[], Awaitable[None]] | None = None

    def start(self) -> None:
        self._timer.start()

    def close(self) -> None:
        self._timer.close()
        self._client.close()

    async def release(self) -> None:
        """Close the connection the tokenizer and the scrape used (after `close`)."""
        if self._http is not None:
            await self._http.close()

    async def _prepare(self) -> Tokenizer:
        """The server's block size and tokenizer, the plan held against its context, the system prompts."""
        if self._tokenizer is not None:
            return self._tokenizer
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        tokenizer = Tokenizer(self._http, self._target)
        size = block_size(await scrape(self._http, self._target.base_url))
        self.ledger = BlockLedger(size)
        seed = self._plan.seed
        self._system = [await tokenizer.message(f"{seed}/system/{g}", p.tokens)
                        for g, p in enumerate(self._sessions.system_prompts)]
        await tokenizer.text_ids("context")  # the context length, from the tokenizer's answer
        problem = turn_past_context(self._sessions, self._plan.output_tokens, tokenizer.max_model_len)
        if tokenizer.max_model_len and problem:
            raise ConfigError(problem)
        log.info("sessions: the server's KV block size is %s; %d system prompts built", size or "unknown (reuse "
                 "counted in tokens)", len(self._system))
        self._tokenizer = tokenizer
        return tokenizer

    async def warm_up(self, numbers: range) -> WarmUp:
        """One-turn sessions (not stored) that prime connections; the server's cache sees them, and so does
        the ledger."""
        await self._prepare()
        records: list[pb.RequestRecord] = []
        share = Share(StepSpec("closed", 1, 0.0, 1, 0.0), 0, 0, 1, 0.0, numbers, 0)
        await asyncio.gather(*(self._session(share, f"{self._run_id}/warmup/{n}", n, perf_counter_ns(),
                                             records.append, turns=1) for n in numbers))
        refusals = [r.error_message for r in records if 400 <= r.http_status < 500]
        return WarmUp(requests=len(records), refused=len(refusals), first_refusal=refusals[0] if refusals else "")

    async def run(self, share: Share, start_ns: int, done: Done) -> ShareReport:
        """Sessions of `share` (its numbers count sessions) from the monotonic instant `start_ns`."""
        await self._prepare()
        await self._timer.sleep_until(start_ns / 1e9)
        self.next_number = 0
        dispatch: list[int] = []

        def finished(record: pb.RequestRecord) -> None:
            dispatch.append(record.dispatch_delay_ns)
            done(record)

        monitor = SelfMonitor()
        monitor.start()
        if share.spec.open_loop:
            await self._open(share, start_ns, finished)
        else:
            await self._closed(share, start_ns, finished)
        me = await monitor.stop()
        return ShareReport(me, percentile(dispatch, 0.99) / 1e6, self.next_number)

    def _begin(self, share: Share, number: int) -> str:
        self.next_number = max(self.next_number, number + 1)
        return f"{self._run_id}/{share.step}/{number}"

    async def _closed(self, share: Share, start_ns: int, done: Done) -> None:
        duration_s = share.spec.duration_s
        deadline = start_ns + int(duration_s * 1e9) if duration_s else 0
        numbers = iter(share.numbers)

        async def slot() -> None:
            freed_ns = start_ns
            while (n := next(numbers, None)) is not None and not (deadline and freed_ns >= deadline):
                freed_ns = await self._session(share, self._begin(share, n), n, freed_ns, done)

        await asyncio.gather(*(slot() for _ in range(min(share.concurrency, len(share.numbers)))))

    async def _open(self, share: Share, start_ns: int, done: Done) -> None:
        spec = share.spec
        rng = random.Random(share.seed)
        cap = asyncio.Semaphore(share.concurrency) if share.concurrency else None
        end = start_ns + int(spec.duration_s * 1e9) if spec.duration_s else 0
        due = start_ns
        tasks: set[asyncio.Task] = set()

        async def one(n: int, scheduled: int) -> None:
            if cap is None:
                await self._session(share, self._begin(share, n), n, scheduled, done)
                return
            async with cap:  # a session waiting for room waits with its clock running: its first turn's delay
                await self._session(share, self._begin(share, n), n, scheduled, done)

        for n in share.numbers:
            if end and due >= end:
                break
            await self._timer.sleep_until(due / 1e9)
            task = asyncio.create_task(one(n, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += int((rng.expovariate(share.rate_rps) if spec.mode == "poisson" else 1 / share.rate_rps) * 1e9)
        if tasks:
            await asyncio.gather(*tasks)

    async def _session(self, share: Share, session_id: str, number: int, scheduled_ns: int, done: Done,
                       turns: int = 0) -> int:
        """One session from `scheduled_ns` on; returns when its last answer ended (perf_counter_ns)."""
        tokenizer = self._tokenizer
        assert tokenizer is not None
        plan, sessions = self._plan, self._sessions
        turns = turns or sessions.turns
        group = sessions.group(plan.seed, number)
        messages = [{"role": "system", "content": self._system[group]}] if group >= 0 else []
        freed_ns = scheduled_ns
        for turn in range(turns):
            length = sessions.first_turn_tokens if turn == 0 else sessions.followup_tokens
            messages.append({"role": "user", "content": await tokenizer.message(f"{plan.seed}/{session_id}/{turn}",
                                                                               length)})
            ids = await tokenizer.prompt_ids(messages)
            request_id = f"{session_id}/{turn}"
            record = pb.RequestRecord(run_id=self._run_id, request_id=request_id, step=share.step,
                                      concurrency=share.spec.concurrency, repetition=share.repetition,
                                      model=self._target.model, session_id=session_id, turn=turn,
                                      expected_cached_tokens=self.ledger.expected(ids))
            body = json.loads(request_body(plan, self._target.model, messages))
            body["user"] = session_id  # OpenAI's end-user id: which conversation the request belongs to
            data = self._client.request_bytes(self._path, json.dumps(body, separators=(",", ":")).encode(),
                                              request_id)
            timeline = TurnTimeline(self._max_tokens, partial(self.ledger.computed, ids))
            if turn:
                await self._timer.sleep_until(scheduled_ns / 1e9)
            if self.gate is not None:
                await self.gate()
            await send_request(self._client, data, record, self._max_tokens, scheduled_ns, timeline)
            freed_ns = perf_counter_ns()
            done(record)
            if record.error_class:
                break
            answer = "".join(timeline.answer)
            messages.append(self._assistant(answer, "".join(timeline.reasoning)))
            self.ledger.computed((ids + await tokenizer.text_ids(answer))[:-1])
            scheduled_ns = freed_ns + int(sessions.think_time_s * 1e9)
        return freed_ns

    def _assistant(self, answer: str, reasoning: str) -> dict:
        message = {"role": "assistant", "content": answer}
        if self._sessions.echo_reasoning and reasoning:
            message["reasoning_content"] = reasoning
        return message


"""The send path of a sessions plan (siliconbench.core.sessions): sessions started on the plan's steps, each
running its plain turns (agent/sessions/conversation.py) and then its agent graph (agent/sessions/agents.py).

Closed loop: `concurrency` slots, each running one session after another; open loop: sessions started at
the step's rate (Poisson or evenly spaced), at most `max_concurrency` at once when given. A turn's
scheduled time is the end of the answer before it plus the think time (a session's first turn: its slot's
freeing, or its arrival), so the client's own work between turns (counting the next prompt's tokens with the
server's tokenizer) shows as dispatch delay where it outlasts the think time.

Sent from the agent's own process only (the plan's check): the ledger of what the server has seen is one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from time import perf_counter_ns

import aiohttp

from siliconbench.agent.clock import DeadlineTimer
from siliconbench.agent.errors import ConfigError
from siliconbench.agent.httpstream import StreamingClient
from siliconbench.agent.load.send import Done, Share, ShareReport, WarmUp
from siliconbench.agent.scrape import block_size, scrape
from siliconbench.agent.selfmon import SelfMonitor
from siliconbench.agent.sessions.ledger import BlockLedger
from siliconbench.agent.sessions.messages import Tokenizer
from siliconbench.agent.sessions.agents import run_graph
from siliconbench.agent.sessions.conversation import Client, Conversation, Turns
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
        self._client = StreamingClient(target.base_url, plan.request_timeout_s)
        self._timer = DeadlineTimer()
        self._http: aiohttp.ClientSession | None = None
        self._prepared: Client | None = None
        self._system: list[str] = []
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

    async def _prepare(self) -> Client:
        """The server's block size and tokenizer, the plan held against its context, the system prompts."""
        if self._prepared is not None:
            return self._prepared
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        tokenizer = Tokenizer(self._http, self._target)
        size = block_size(await scrape(self._http, self._target.base_url))
        seed = self._plan.seed
        self._system = [await tokenizer.message(f"{seed}/system/{g}", p.tokens)
                        for g, p in enumerate(self._sessions.system_prompts)]
        await tokenizer.text_ids("context")  # the context length, from the tokenizer's answer
        problem = turn_past_context(self._sessions, self._plan.output_tokens, tokenizer.max_model_len)
        if tokenizer.max_model_len and problem:
            raise ConfigError(problem)
        log.info("sessions: the server's KV block size is %s; %d system prompts built", size or "unknown (reuse "
                 "counted in tokens)", len(self._system))
        self._prepared = Client(self._plan, self._target, self._run_id, self._client, self._timer, tokenizer,
                                BlockLedger(size), self.gate)
        return self._prepared

    async def warm_up(self, numbers: range) -> WarmUp:
        """One-turn sessions (not stored) that prime connections; the server's cache sees them, and so does
        the ledger."""
        records: list[pb.RequestRecord] = []
        share = Share(StepSpec("closed", 1, 0.0, 1, 0.0), 0, 0, 1, 0.0, numbers, 0)
        turns = Turns(await self._prepare(), share, records.append)
        await asyncio.gather(*(self._session(turns, f"{self._run_id}/warmup/{n}", n, perf_counter_ns(), plain_turns=1)
                               for n in numbers))
        refusals = [r.error_message for r in records if 400 <= r.http_status < 500]
        return WarmUp(requests=len(records), refused=len(refusals), first_refusal=refusals[0] if refusals else "")

    async def run(self, share: Share, start_ns: int, done: Done) -> ShareReport:
        """Sessions of `share` (its numbers count sessions) from the monotonic instant `start_ns`."""
        client = await self._prepare()
        await self._timer.sleep_until(start_ns / 1e9)
        self.next_number = 0
        turns = Turns(client, share, done)
        monitor = SelfMonitor()
        monitor.start()
        if share.spec.open_loop:
            await self._open(share, start_ns, turns)
        else:
            await self._closed(share, start_ns, turns)
        me = await monitor.stop()
        return ShareReport(me, self.next_number)

    def _begin(self, share: Share, number: int) -> str:
        self.next_number = max(self.next_number, number + 1)
        return f"{self._run_id}/{share.step}/{number}"

    async def _closed(self, share: Share, start_ns: int, turns: Turns) -> None:
        duration_s = share.spec.duration_s
        deadline = start_ns + int(duration_s * 1e9) if duration_s else 0
        numbers = iter(share.numbers)

        async def slot() -> None:
            freed_ns = start_ns
            while (n := next(numbers, None)) is not None and not (deadline and freed_ns >= deadline):
                freed_ns = await self._session(turns, self._begin(share, n), n, freed_ns)

        await asyncio.gather(*(slot() for _ in range(min(share.concurrency, len(share.numbers)))))

    async def _open(self, share: Share, start_ns: int, turns: Turns) -> None:
        spec = share.spec
        rng = random.Random(share.seed)
        cap = asyncio.Semaphore(share.concurrency) if share.concurrency else None
        end = start_ns + int(spec.duration_s * 1e9) if spec.duration_s else 0
        due = start_ns
        tasks: set[asyncio.Task] = set()

        async def one(n: int, scheduled: int) -> None:
            if cap is None:
                await self._session(turns, self._begin(share, n), n, scheduled)
                return
            async with cap:  # a session waiting for room waits with its clock running: its first turn's delay
                await self._session(turns, self._begin(share, n), n, scheduled)

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

    async def _session(self, turns: Turns, session_id: str, number: int, scheduled_ns: int,
                       plain_turns: int = 0) -> int:
        """One session from `scheduled_ns` on: its plain turns, then its agent graph (none with `plain_turns`
        given, a warm-up's); returns when its last answer ended (perf_counter_ns)."""
        sessions = self._sessions
        group = sessions.group(self._plan.seed, number)
        system = [{"role": "system", "content": self._system[group]}] if group >= 0 else []
        conv = Conversation(session_id, scheduled_ns, list(system))
        for n in range(plain_turns or sessions.turns):
            if not await turns.user(conv, sessions.first_turn_tokens if n == 0 else sessions.followup_tokens):
                return conv.freed_ns
        if not plain_turns:
            await run_graph(turns, sessions, conv, system)
        return conv.freed_ns

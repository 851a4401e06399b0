"""An aiohttp server that answers like vLLM's OpenAI-compatible API, on a configurable timing schedule.

Endpoints: `POST /v1/completions`, `POST /v1/chat/completions` (streaming SSE and JSON),
`POST /tokenize`, `POST /detokenize`, `GET /v1/models`, `GET /version`, `GET /health`, `GET /metrics`.
Every response carries `X-Siliconbench-Simulator: 1`, and `/version` says `"simulated": true`, so a run
against the simulator can never pass for a run against vLLM.

Timing: chunk deadlines are absolute (`SimProfile` documents the formula) and each chunk is pre-built,
then written the moment its deadline passes (`DeadlineTimer`), so errors do not accumulate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from time import monotonic
from typing import Any

from aiohttp import web

from siliconbench.agent.sim import api, events, script
from siliconbench.agent.clock import DeadlineTimer
from siliconbench.agent.sim.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from siliconbench.agent.sim.metrics import SimMetrics
from siliconbench.agent.sim.history import HistoryCheck
from siliconbench.agent.sim.prefix import PrefixCache
from siliconbench.agent.sim.profile import SimProfile
from siliconbench.agent.sim.sendlog import SendLog
from siliconbench.agent.sim.tokenizer import detokenize, output_text, tokenize
from siliconbench.core.simulator import SIMULATOR_HEADER

log = logging.getLogger(__name__)

SIMULATED_VLLM_VERSION = "0.11.0"
# Simulated KV-cache capacity, in tokens, per token of max_model_len (vllm:kv_cache_usage_perc's denominator).
KV_CACHE_CAPACITY_PER_MODEL_LEN = 16
# When chunks are already overdue (ttft_ms = itl_ms = 0, or an overloaded server), yield to the loop every
# this many chunks so that other streams and new connections still progress.
_YIELD_EVERY_CHUNKS = 32
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


class _Live:
    """A request being generated: counted in num_requests_running, the slowdown factor and KV usage.
    `cached`: its prompt tokens the prefix cache gave (not prefilled)."""

    __slots__ = ("prompt_tokens", "cached", "generated")

    def __init__(self, prompt_tokens: int, cached: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.cached = cached
        self.generated = 0


@dataclass(frozen=True)
class _Endpoint:
    path: str
    id_prefix: str
    parse: Callable[[Any, SimProfile], api.GenerationRequest]
    stream_events: type[events.StreamEvents]
    body: Callable[..., dict[str, Any]]


_COMPLETIONS = _Endpoint("/v1/completions", "cmpl-", api.parse_completion, events.CompletionEvents,
                         events.completion_body)
_CHAT = _Endpoint("/v1/chat/completions", "chatcmpl-", api.parse_chat, events.ChatEvents, events.chat_body)


class _Run:
    """One request's walk through its chunk deadlines, with the metrics and send-log bookkeeping."""

    __slots__ = ("_sim", "_live", "_stamps", "_next", "_itl_s", "_overdue", "arrival", "last_sent")

    def __init__(self, sim: _Simulator, live: _Live, arrival: float, stamps: list[int] | None,
                 admitted: float, model: str) -> None:
        """`admitted`: when the request got a slot (its prefill starts); `arrival` when it came in."""
        profile = sim.profile
        ttft_s = (profile.ttft_ms + profile.ttft_per_prompt_token_ms * (live.prompt_tokens - live.cached)) / 1000
        if model not in sim.loaded:  # an adapter's first request waits for its load
            sim.loaded.add(model)
            ttft_s += profile.adapter_load_ms / 1000
        self._sim = sim
        self._live = live
        self._stamps = stamps
        self._next = admitted + ttft_s * sim.slowdown()
        self._itl_s = profile.itl_ms / 1000
        self._overdue = 0
        self.arrival = arrival
        self.last_sent = arrival

    async def wait_next(self) -> None:
        """Sleep until the next chunk's deadline, then schedule the one after it: previous deadline + ITL x
        the slowdown at this moment."""
        deadline = self._next
        if deadline > monotonic():
            await self._sim.timer.sleep_until(deadline)
        else:
            self._overdue += 1
            if self._overdue >= _YIELD_EVERY_CHUNKS:
                self._overdue = 0
                await asyncio.sleep(0)
        self._next = deadline + self._itl_s * self._sim.slowdown()

    def stamp_send(self) -> None:
        """Note in the send log (if any) that a content chunk is being handed to the transport now."""
        if self._stamps is not None:
            self._stamps.append(time.time_ns())

    def record(self, generated: int) -> None:
        """Account a chunk just written; `generated` is the cumulative output token count."""
        now = monotonic()
        metrics = self._sim.metrics
        if self._live.generated == 0:
            metrics.ttft.observe(now - self.arrival)
        else:
            metrics.itl.observe(now - self.last_sent)
        metrics.generation_tokens += generated - self._live.generated
        self._live.generated = generated
        self.last_sent = now

    def finish(self, reason: str) -> None:
        metrics = self._sim.metrics
        metrics.finished[reason] += 1
        if reason in ("stop", "length"):
            metrics.e2e.observe(self.last_sent - self.arrival)


class _Simulator:
    """State shared by the handlers: the profile, the deadline timer, live requests and metrics."""

    def __init__(self, profile: SimProfile, send_log: SendLog | None, history: HistoryCheck | None) -> None:
        self.profile = profile
        self.send_log = send_log
        self.history = history
        self.timer = DeadlineTimer()
        self.cache = PrefixCache(profile.block_size, profile.prefix_caching)
        self.metrics = SimMetrics(profile.model, self.cache)
        self.live: set[_Live] = set()
        self.loaded = {profile.model}  # the base model, and each adapter once a request has asked for it
        self.slots = asyncio.Semaphore(profile.slots) if profile.slots else None
        self.waiting = 0  # requests queued for a slot
        self.started = int(time.time())

    def slowdown(self) -> float:
        """1 + slowdown_per_stream x (active requests - 1)."""
        return 1.0 + self.profile.slowdown_per_stream * max(len(self.live) - 1, 0)

    # --- generation ---------------------------------------------------------------------------------
    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, _COMPLETIONS)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, _CHAT)

    async def _generate(self, request: web.Request, endpoint: _Endpoint) -> web.StreamResponse:
        arrival = monotonic()
        arrival_ns = time.time_ns()
        body = await _json_body(request)
        gen = endpoint.parse(body, self.profile)
        if self.history is not None and gen.user and gen.messages is not None:
            self.history.turn(gen.user, gen.messages)
        x_request_id = request.headers.get("X-Request-Id")
        response_id = endpoint.id_prefix + (x_request_id or uuid.uuid4().hex)
        stamps = None
        if self.send_log is not None:
            stamps = self.send_log.begin(response_id, x_request_id, endpoint.path, arrival_ns, body.get("prompt"))
        if self.slots is None:
            return await self._admitted(request, endpoint, gen, response_id, arrival, stamps)
        self.waiting += 1
        try:
            await self.slots.acquire()  # first come, first served
        finally:
            self.waiting -= 1
        try:
            return await self._admitted(request, endpoint, gen, response_id, arrival, stamps)
        finally:
            self.slots.release()

    async def _admitted(self, request: web.Request, endpoint: _Endpoint, gen: api.GenerationRequest,
                        response_id: str, arrival: float, stamps: list[int] | None) -> web.StreamResponse:
        live = _Live(gen.prompt_tokens, self.cache.lookup(gen.prompt_ids))
        self.live.add(live)
        self.metrics.prompt_tokens += gen.prompt_tokens
        run = _Run(self, live, arrival, stamps, monotonic(), gen.model)
        try:
            if gen.stream:
                return await self._stream(request, endpoint, gen, response_id, run, live.cached)
            return await self._respond(endpoint, gen, response_id, run)
        finally:
            self.live.discard(live)

    def _finished(self, gen: api.GenerationRequest) -> None:
        """A response sent in full: its output's KV is cached (all but the last token), and its conversation
        goes on from its answer."""
        total = gen.output_tokens
        self.cache.compute([*gen.prompt_ids, *tokenize(output_text(0, total), False)][:-1])
        if self.history is not None and gen.user and gen.messages is not None and gen.tool is None:
            self.history.answered(gen.user, gen.messages, output_text(gen.reasoning_tokens, total))

    async def _stream(self, request: web.Request, endpoint: _Endpoint, gen: api.GenerationRequest,
                      response_id: str, run: _Run, cached: int) -> web.StreamResponse:
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        await resp.prepare(request)
        stream = endpoint.stream_events(response_id, int(time.time()), gen.model, gen.prompt_tokens,
                                        gen.continuous_usage,
                                        events.prompt_details(cached) if self.profile.prompt_tokens_details else "")
        ping_every = self.profile.ping_every_chunks
        total = gen.output_tokens
        call_id = "chatcmpl-tool-" + uuid.uuid4().hex
        reason = "abort"
        try:
            chunk = 0
            opened = False
            for sent, upto in script.spans(gen, self.profile):
                if chunk == gen.error_after:
                    await run.wait_next()
                    reason = "error"
                    await resp.write(events.error_event(f"simulated engine error after {chunk} chunks "
                                                        "(sim_error_after)"))
                    break
                data = script.chunk(stream, gen, self.profile, call_id, sent, upto)
                await run.wait_next()
                if data is None:  # reasoning in silence: its time passes, nothing is sent
                    continue
                if not opened:
                    data, opened = stream.opening() + data, True
                    self.cache.compute(gen.prompt_ids)  # the prefill is done
                run.stamp_send()
                await resp.write(data)  # hot path: built before the deadline, written right at it
                run.record(upto)
                chunk += 1
                if ping_every and chunk % ping_every == 0 and upto < total:
                    await resp.write(events.PING)
            else:
                reason = gen.finish_reason
                if gen.include_usage:
                    await resp.write(stream.usage(total))
                self._finished(gen)
            await resp.write(events.DONE)
            await resp.write_eof()
        except ConnectionResetError:
            log.debug("client closed the stream of request %s early", response_id)
        finally:
            run.finish(reason)
        return resp

    async def _respond(self, endpoint: _Endpoint, gen: api.GenerationRequest, response_id: str,
                       run: _Run) -> web.Response:
        """Non-streaming: walk the same schedule silently, then answer with the whole text."""
        per_chunk = self.profile.tokens_per_chunk
        total = gen.output_tokens
        sent = chunk = 0
        while sent < total:
            await run.wait_next()
            if chunk == gen.error_after:
                run.finish("error")
                raise api.ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "InternalServerError",
                                   f"simulated engine error after {chunk} chunks (sim_error_after)")
            sent = min(sent + per_chunk, total)
            run.record(sent)
            chunk += 1
        run.finish(gen.finish_reason)
        self._finished(gen)
        body = endpoint.body(response_id, int(time.time()), gen.model, output_text(0, total),
                             gen.finish_reason, gen.prompt_tokens, total)
        return web.json_response(body)

    # --- helper endpoints ---------------------------------------------------------------------------
    async def tokenize(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        ids = api.tokenize_request(body, self.profile)
        token_strs = [detokenize([i]) for i in ids] if body.get("return_token_strs") else None
        return web.json_response({"count": len(ids), "max_model_len": self.profile.max_model_len,
                                  "tokens": ids, "token_strs": token_strs})

    async def detokenize(self, request: web.Request) -> web.Response:
        ids = api.detokenize_request(await _json_body(request), self.profile)
        return web.json_response({"prompt": detokenize(ids)})

    async def models(self, request: web.Request) -> web.Response:
        """The base model, then each adapter as vLLM lists a LoRA module (root: its path, parent: the base)."""
        base = self.profile.model
        cards = [self._card(base, base, None)]
        cards += [self._card(adapter, f"/adapters/{adapter}", base) for adapter in self.profile.served[1:]]
        return web.json_response({"object": "list", "data": cards})

    def _card(self, model: str, root: str, parent: str | None) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": self.started, "owned_by": "vllm", "root": root,
                "parent": parent, "max_model_len": self.profile.max_model_len,
                "permission": [{"id": f"modelperm-{uuid.uuid4().hex}", "object": "model_permission",
                                "created": self.started, "allow_create_engine": False, "allow_sampling": True,
                                "allow_logprobs": True, "allow_search_indices": False, "allow_view": True,
                                "allow_fine_tuning": False, "organization": "*", "group": None,
                                "is_blocking": False}]}

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": f"{SIMULATED_VLLM_VERSION}-siliconbench-sim", "simulated": True})

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def prometheus(self, request: web.Request) -> web.Response:
        capacity = KV_CACHE_CAPACITY_PER_MODEL_LEN * self.profile.max_model_len
        used = sum(r.prompt_tokens + r.generated for r in self.live)
        page = self.metrics.render(running=len(self.live), waiting=self.waiting, kv_cache_usage=min(used / capacity, 1.0))
        return web.Response(body=page, headers={"Content-Type": METRICS_CONTENT_TYPE,
                                                "X-Content-Type-Options": "nosniff"})


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise api.bad_request(f"the request body is not valid JSON: {e}") from None


@web.middleware
async def _api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except api.ApiError as e:
        return web.json_response(e.body(), status=int(e.status))
    except web.HTTPException as e:  # router 404/405: prepared outside the app, so mark it here
        e.headers[SIMULATOR_HEADER] = "1"
        raise


async def _mark_simulated(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[SIMULATOR_HEADER] = "1"


def create_app(profile: SimProfile, send_log: SendLog | None = None,
               history: HistoryCheck | None = None) -> web.Application:
    """The simulator as an aiohttp application serving `profile` (validated when it was built); `history`
    checks each conversation's turns (agent/sim/history.py)."""
    sim = _Simulator(profile, send_log, history)
    app = web.Application(middlewares=[_api_errors])
    app.on_response_prepare.append(_mark_simulated)

    async def start_timer(_: web.Application) -> None:
        sim.timer.start()

    async def stop_timer(_: web.Application) -> None:
        sim.timer.close()

    app.on_startup.append(start_timer)
    app.on_cleanup.append(stop_timer)
    app.router.add_post("/v1/completions", sim.completions)
    app.router.add_post("/v1/chat/completions", sim.chat)
    app.router.add_post("/tokenize", sim.tokenize)
    app.router.add_post("/detokenize", sim.detokenize)
    app.router.add_get("/v1/models", sim.models)
    app.router.add_get("/version", sim.version)
    app.router.add_get("/health", sim.health)
    app.router.add_get("/metrics", sim.prometheus)
    return app


async def serve(profile: SimProfile, host: str, port: int, *, send_log: SendLog | None = None) -> None:
    """Serve until cancelled or SIGTERM/SIGINT (when run in the main thread). `port=0` picks a free port;
    the log line names the bound one. Streams still open at shutdown are cut after 1 s. With `send_log`,
    the caller dumps it after this returns."""
    runner = web.AppRunner(create_app(profile, send_log), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1] if runner.addresses else port
        log.info("simulator listening on http://%s:%d (profile %s)", host, bound, profile.describe())
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
                pass
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()

"""Sessions against the simulator: every turn resends the conversation so far, and the reuse the client
expects of the server's prefix cache is the reuse the simulator's cache reports."""

from __future__ import annotations

from collections import Counter

import pytest

from siliconbench.agent.errors import ConfigError
from siliconbench.agent.sim import SimProfile
from tests.agent.sessions.runs import CACHING, SESSIONS, run_sessions, sessions_plan


async def test_closed_loop_sessions_send_every_turn_with_the_whole_history_before_it():
    run = await run_sessions(sessions_plan([{"concurrency": 2, "requests": 4}]))
    assert run.history.violations == []
    assert run.history.turns == 4 * (SESSIONS["turns"] - 1)  # every later turn checked (a warm-up has one turn)
    assert Counter(r.turn for r in run.requests) == {0: 4, 1: 4, 2: 4}
    assert len({r.session_id for r in run.requests}) == 4
    assert all(r.error_class == "" for r in run.requests)


async def test_each_turn_prompt_grows_by_the_answer_and_the_next_message():
    run = await run_sessions(sessions_plan([{"concurrency": 1, "requests": 1}]))
    prompts = [r.prompt_tokens for r in sorted(run.requests, key=lambda r: r.turn)]
    # the answer (8 tokens) and the follow-up (20) each wrapped by the toy template's role token
    assert [b - a for a, b in zip(prompts, prompts[1:])] == [1 + 8 + 1 + 20] * 2


async def test_expected_reuse_equals_what_the_servers_prefix_cache_reports_turn_by_turn():
    run = await run_sessions(sessions_plan([{"concurrency": 2, "requests": 3}, {"rate": 20, "requests": 3}]))
    assert {r.step for r in run.requests} == {0, 1}
    assert [(r.request_id, r.expected_cached_tokens) for r in run.requests] == \
        [(r.request_id, r.cached_tokens) for r in run.requests]
    later = [r for r in run.requests if r.turn > 0]
    assert all(r.expected_cached_tokens > 0 and r.expected_cached_tokens % CACHING.block_size == 0 for r in later)
    assert all(step.block_size == CACHING.block_size for step in run.sink.steps)


async def test_a_server_that_does_not_say_what_it_cached_is_stored_as_not_said():
    run = await run_sessions(sessions_plan([{"concurrency": 1, "requests": 1}]),
                             SimProfile(ttft_ms=5, itl_ms=1, prefix_caching=True))
    assert {r.cached_tokens for r in run.requests} == {-1}
    assert max(r.expected_cached_tokens for r in run.requests) > 0


async def test_open_loop_sessions_start_at_the_rate_and_each_runs_all_its_turns():
    run = await run_sessions(sessions_plan([{"rate": 50, "arrival": "constant", "requests": 5}]))
    assert Counter(r.turn for r in run.requests) == {0: 5, 1: 5, 2: 5}
    assert run.history.violations == []
    assert run.sink.steps[0].mode == "constant" and run.sink.steps[0].requests == 15


async def test_a_plan_whose_history_outgrows_the_servers_context_is_refused_before_any_turn_naming_the_turn():
    # 50 + 40 + 8, then 20 + 8 a turn: turn 2 needs 154 message tokens, past 150
    with pytest.raises(ConfigError, match="turn 2 of a session's agent would need 154 tokens") as caught:
        await run_sessions(sessions_plan([{"concurrency": 1, "requests": 1}]),
                           SimProfile(ttft_ms=5, itl_ms=1, max_model_len=150))
    assert "max_model_len 150" in str(caught.value)


@pytest.mark.parametrize("echo", [False, True])
async def test_a_reasoning_models_answers_go_back_without_their_reasoning_unless_asked(echo):
    profile = SimProfile(ttft_ms=5, itl_ms=1, prefix_caching=True, prompt_tokens_details=True, reasoning_tokens=3)
    plan = sessions_plan([{"concurrency": 1, "requests": 2}], sessions={**SESSIONS, "echo_reasoning": echo},
                         output_tokens=24)
    run = await run_sessions(plan, profile)
    assert run.history.violations == [] and run.history.turns == 2 * (SESSIONS["turns"] - 1)
    assert [r.expected_cached_tokens for r in run.requests] == [r.cached_tokens for r in run.requests]
    prompts = [r.prompt_tokens for r in run.requests if r.session_id == run.requests[0].session_id]
    # each turn adds the answer (24 tokens, 3 of them reasoning, which the toy template never shows) and a message
    assert [b - a for a, b in zip(prompts, prompts[1:])] == [1 + 21 + 1 + 20] * 2

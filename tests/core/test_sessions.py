"""A plan's sessions: section, validated before any request."""

from __future__ import annotations

import pytest

from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import plan_from_mapping
from siliconbench.core.sessions import AgentNode, SessionPlan, SystemPrompt, sessions_with, turn_past_context


def test_sessions_need_the_chat_endpoint_and_one_sending_process():
    with pytest.raises(ConfigError, match="give endpoint chat"):
        plan_from_mapping({"sessions": {"turns": 2}}, "plan")
    with pytest.raises(ConfigError, match="workers 1 or auto"):
        plan_from_mapping({"endpoint": "chat", "workers": 4, "sessions": {"turns": 2}}, "plan")


def test_every_bad_sessions_key_is_named_with_its_bound():
    with pytest.raises(ConfigError) as caught:
        plan_from_mapping({"endpoint": "chat", "sessions": {"turns": 0, "think_time_s": 1e9, "tunrs": 3,
                                                            "system_prompts": [{"tokens": 0}]}}, "plan")
    message = str(caught.value)
    for expected in ("sessions.turns", "sessions.think_time_s", "sessions.tunrs", "sessions.system_prompts.0.tokens"):
        assert expected in message


def test_a_history_past_the_context_names_the_first_turn_that_would_not_fit():
    sessions = SessionPlan(turns=5, first_turn_tokens=100, followup_tokens=50, system_prompts=(SystemPrompt(200),))
    # turn k needs 200 + 100 + 50k + 64 (k + 1) tokens: 364, 478, 592, 706, 820
    assert turn_past_context(sessions, output_tokens=64, max_model_len=820) is None
    problem = turn_past_context(sessions, output_tokens=64, max_model_len=700)
    assert problem is not None and "turn 3 " in problem and "706 tokens" in problem


def test_sessions_flags_change_the_plan_files_section_and_name_themselves_when_wrong():
    base = SessionPlan(turns=3, followup_tokens=10)
    changed = sessions_with(base, turns=5, system_prompts="512:3,128")
    assert changed == SessionPlan(turns=5, followup_tokens=10,
                                  system_prompts=(SystemPrompt(512, 3.0), SystemPrompt(128, 1.0)))
    assert sessions_with(None) is None
    with pytest.raises(ConfigError, match="--sessions-turns"):
        sessions_with(base, turns=0)


def test_sessions_are_drawn_into_system_prompt_groups_by_weight():
    sessions = SessionPlan(system_prompts=(SystemPrompt(100, 3.0), SystemPrompt(100, 1.0)))
    groups = [sessions.group(seed=0, number=n) for n in range(4000)]
    assert 0.70 < groups.count(0) / len(groups) < 0.80
    assert SessionPlan().group(seed=0, number=1) == -1


def test_a_sessions_workload_is_described_by_its_conversations():
    sessions = SessionPlan(turns=2, think_time_s=0.5, system_prompts=(SystemPrompt(512, 3.0),),
                           agent=(AgentNode(kind="tool"), AgentNode(kind="fork", agents=2)))
    assert sessions.describe() == ("2 turns (256 then 64 tokens), think 0.5 s, system prompts 512x3, "
                                   "agent tool > fork x2")

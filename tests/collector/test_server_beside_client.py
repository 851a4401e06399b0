"""Every report sets the server's own figures beside the client's (tokens, mean TTFT, difference and
ratio, prefix-cache hit rate) with each check's outcome: passed, warned, or not possible and why."""

from __future__ import annotations

import pytest

from siliconbench.collector.checks import PointFigures, server_outcomes
from siliconbench.collector.reports import RENDERERS, Options, build_report
from siliconbench.collector.rollups import Selection
from tests.collector import load_modes as lm

NO_COST = Options(cost=False)


def server_rows(store, run_id: str) -> dict[str, dict]:
    table = build_report(store, Selection(runs=(run_id,)), NO_COST).table("server")
    return {row[1]: dict(zip([c.name for c in table.columns], row)) for row in table.rows}


def test_server_figures_stand_beside_the_clients_with_passed_checks(store, unique_id):
    run_id = f"srv-{unique_id}"
    lm.store_run(store, run_id, f"srv-{unique_id}", "V", server_ttft_s=0.035)
    row = server_rows(store, run_id)["concurrency 2"]
    assert (row["client output tokens"], row["server output tokens"], row["server ÷ client"]) == (56, 56, 1.0)
    assert row["client TTFT mean"] == pytest.approx(40.0) and row["server TTFT mean"] == pytest.approx(35.0)
    assert row["client − server TTFT"] == pytest.approx(5.0)
    assert row["client ÷ server TTFT"] == pytest.approx(40 / 35)
    assert row["prefix-cache hit rate"] == 0
    assert row["client vs server tokens"].startswith("passed: server generated 56 tokens")
    assert row["client vs server TTFT"].startswith("passed: client mean TTFT 40.0 ms vs server 35.0 ms")


def test_without_server_metrics_the_checks_say_they_were_not_possible(store, unique_id):
    run_id = f"nosrv-{unique_id}"
    lm.store_run(store, run_id, f"nosrv-{unique_id}", "W")
    row = server_rows(store, run_id)["poisson 4 req/s"]
    assert row["server output tokens"] is None
    assert row["client vs server tokens"] == "not possible: no server token counts"
    assert row["client vs server TTFT"] == "not possible: no server TTFT"


def test_cache_hits_on_prompts_meant_to_be_unique_are_warned_in_every_format(store, unique_id):
    run_id = f"cache-{unique_id}"
    lm.store_run(store, run_id, f"cache-{unique_id}", "Z", server_ttft_s=0.035, cache_hit_rate=0.875)
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    assert {f.point for f in report.findings if f.check == "prefix cache"} == set(lm.LABELS)
    assert server_rows(store, run_id)["concurrency 4"]["prefix-cache hit rate"] == pytest.approx(87.5)
    for fmt in ("markdown", "html", "json"):
        assert "88% of prompt tokens from its prefix cache" in RENDERERS[fmt].report(report), fmt


def test_cache_hits_on_unique_chat_prompts_are_warned_too(store, unique_id):
    run_id = f"chat-{unique_id}"
    lm.store_run(store, run_id, f"chat-{unique_id}", "C", server_ttft_s=0.035, cache_hit_rate=0.875, endpoint="chat")
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    assert {f.point for f in report.findings if f.check == "prefix cache"} == set(lm.LABELS)


@pytest.mark.parametrize("workload", [{"shared_prompts": True}, {"endpoint": "chat", "dataset": "chats.jsonl"}],
                         ids=["shared", "dataset"])
def test_cache_hits_are_expected_with_shared_or_dataset_prompts(store, unique_id, workload):
    run_id = f"shared-{unique_id}"
    lm.store_run(store, run_id, f"shared-{unique_id}", "Y", server_ttft_s=0.035, cache_hit_rate=0.875, **workload)
    assert not [f for f in build_report(store, Selection(runs=(run_id,)), NO_COST).findings if f.check == "prefix cache"]


@pytest.mark.parametrize("client_ms, server_ms, state", [
    (40.0, 35.0, "passed"),     # 5 ms of network and front end
    (80.0, 40.0, "warned"),     # twice the server's: passed before (the slack was max(50 ms, the server's))
    (30.0, 40.0, "warned"),     # below the server's: cannot be
])
def test_the_ttft_check_allows_20ms_or_a_quarter_of_the_servers(client_ms, server_ms, state):
    p = PointFigures(subject="A", concurrency=1, ttft_mean_ms=client_ms, server_ttft_mean_ms=server_ms)
    assert server_outcomes(p)["client vs server TTFT"][0] == state

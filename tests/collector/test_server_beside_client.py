"""Every report sets the server's own figures beside the client's (requests, prompt and output tokens, mean
TTFT, ITL, TPOT and E2E, prefix-cache hit rate) with each check's outcome: passed, warned, or could not apply and
why; the server figures are read by the names the real vLLM exposes."""

from __future__ import annotations

import pytest

import csv
import io
import json
from pathlib import Path

from siliconbench.collector import server_views
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
    assert row["client vs server tokens"] == "could not apply: no server token counts"
    assert row["client vs server TTFT"] == "could not apply: no server TTFT"


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


def test_every_server_metric_read_is_one_the_real_vllm_exposes():
    page = (Path(__file__).parents[1] / "fixtures" / "vllm-0.32-metrics.txt").read_text()
    exposed = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if line.startswith("vllm:")}
    assert set(server_views.READ_NAMES) <= exposed, set(server_views.READ_NAMES) - exposed
    assert "vllm:request_time_per_output_token_seconds_sum" in server_views.READ_NAMES


def test_server_requests_tokens_itl_tpot_and_e2e_stand_beside_the_clients(store, unique_id):
    run_id = f"srvall-{unique_id}"
    lm.store_run(store, run_id, f"srvall-{unique_id}", "V", server_ttft_s=0.035)
    row = server_rows(store, run_id)["concurrency 2"]  # 2 repetitions of 4 requests, 64 prompt tokens each
    assert (row["client requests"], row["server requests"]) == (8, 8)
    assert (row["client prompt tokens"], row["server prompt tokens"]) == (512, 512)
    assert row["client ITL/token mean"] == pytest.approx(10.0) and row["server ITL mean"] == pytest.approx(9.0)
    assert row["client TPOT mean"] == pytest.approx(10.0) and row["server TPOT mean"] == pytest.approx(9.0)
    assert row["client E2E mean"] == pytest.approx(100.0) and row["server E2E mean"] == pytest.approx(89.0)


def test_every_format_carries_the_server_figures_csv_included(store, unique_id):
    run_id = f"srvfmt-{unique_id}"
    lm.store_run(store, run_id, f"srvfmt-{unique_id}", "V", server_ttft_s=0.035)
    report = build_report(store, Selection(runs=(run_id,)), NO_COST)
    rows = {r["load"]: r for r in csv.DictReader(io.StringIO(RENDERERS["csv"].report(report)))}
    at = rows["concurrency 2"]  # the median of two repetitions of 4 requests
    assert (float(at["server_requests"]), float(at["server_tokens_in"]), float(at["server_tokens_out"])) == (4, 256, 28)
    assert [round(float(at[f"server_{m}_mean_ms"]), 6) for m in ("ttft", "itl", "tpot", "e2e")] == [35, 9, 9, 89]
    doc = json.loads(RENDERERS["json"].report(report))
    point = next(p for p in doc["points"] if p["mode"] == "closed" and p["concurrency"] == 2)
    assert point["server_tpot_mean_ms"] == pytest.approx(9.0) and point["server_requests"] == 4
    server = next(t for t in doc["tables"] if t["key"] == "server")
    assert "server TPOT mean" in server["columns"]
    for fmt in ("markdown", "html"):
        text = RENDERERS[fmt].report(report)
        assert "server TPOT mean" in text and "server E2E mean" in text and "server prompt tokens" in text, fmt

"""vLLM /metrics: the series the reports need, labels canonical, and whatever a target answers costs at most
that step's server metrics (one warning, never the run)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from siliconbench.agent import scrape as scrape_module
from siliconbench.agent.scrape import (CONFIG_NAMES, CURRENT_NAMES, MAX_SERIES, OLDER_NAMES, block_size, parse_metrics,
                                       scrape, server_metrics)

# A /metrics page of vLLM 0.32 (CPU build), serving one model
VLLM_PAGE = (Path(__file__).parents[1] / "fixtures" / "vllm-0.32-metrics.txt").read_text()

TEXT = '''# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 3.0
vllm:generation_tokens_total{model_name="tiny",engine="0"} 1280.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="tiny"} 0.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="tiny"} 0.52
vllm:time_to_first_token_seconds_count{engine="0",model_name="tiny"} 10.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="tiny"} 10.0
vllm:gpu_cache_usage_perc 0.25
python_gc_objects_collected_total{generation="0"} 100.0
'''


def test_wanted_series_with_sorted_labels_and_no_buckets():
    series = parse_metrics(TEXT)
    assert series[("vllm:generation_tokens_total", 'engine="0",model_name="tiny"')] == 1280.0
    assert series[("vllm:request_success_total", 'engine="0",finished_reason="length",model_name="tiny"')] == 10.0
    assert series[("vllm:gpu_cache_usage_perc", "")] == 0.25
    assert not any(name.endswith("_bucket") or name.startswith("python_") for name, _ in series)


def test_server_metrics_pair_start_and_end_values():
    start = parse_metrics(TEXT)
    end = dict(start)
    end[("vllm:generation_tokens_total", 'engine="0",model_name="tiny"')] = 2560.0
    metrics = {m.name: m for m in server_metrics("r", 2, start, end)}
    generated = metrics["vllm:generation_tokens_total"]
    assert (generated.step, generated.start_value, generated.end_value) == (2, 1280.0, 2560.0)
    assert server_metrics("r", 0, None, None) == []


def test_a_series_the_store_cannot_take_is_dropped_alone_with_a_warning(caplog):
    good = ("vllm:num_requests_running", "")
    nan = ("vllm:num_requests_waiting", "")
    surrogate = ("vllm:kv_cache_usage_perc", 'model_name="\ud800"')
    long_labels = ("vllm:prompt_tokens_total", 'model_name="' + "m" * 5000 + '"')
    start = {good: 1.0, nan: float("nan"), surrogate: 0.5, long_labels: 1.0}
    end = {good: 2.0, nan: 3.0, surrogate: 0.5, long_labels: float("inf")}
    metrics = server_metrics("r", 1, start, end)
    assert [(m.name, m.start_value, m.end_value) for m in metrics] == [("vllm:num_requests_running", 1.0, 2.0)]
    assert [m.SerializeToString() for m in metrics]  # what is kept can be encoded
    dropped = [r.getMessage() for r in caplog.records]
    assert len(dropped) == 3 and all("dropped" in m for m in dropped)
    assert any("nan; only finite" in m for m in dropped) and any("not valid UTF-8" in m for m in dropped)


def test_a_real_vllm_page_has_every_series_the_agent_scrapes_by_its_current_name():
    exposed = {sample.name for family in text_string_to_metric_families(VLLM_PAGE) for sample in family.samples}
    assert CURRENT_NAMES <= exposed, sorted(CURRENT_NAMES - exposed)
    assert not OLDER_NAMES & exposed  # read only from servers that predate the current names
    series = parse_metrics(VLLM_PAGE)
    assert {name for name, _ in series} == CURRENT_NAMES | CONFIG_NAMES
    assert all('model_name="tiny-llama"' in labels for name, labels in series if name in CURRENT_NAMES)


def test_the_block_size_is_read_from_the_cache_config_and_is_0_where_the_page_does_not_say():
    assert block_size(parse_metrics(VLLM_PAGE)) == 128
    assert block_size(parse_metrics('vllm:num_requests_running{model_name="m"} 1\n')) == 0
    assert block_size(None) == 0


def test_the_older_tpot_name_is_still_read():
    series = parse_metrics('vllm:time_per_output_token_seconds_sum{model_name="m"} 1.5\n'
                           'vllm:time_per_output_token_seconds_count{model_name="m"} 3\n')
    assert series == {("vllm:time_per_output_token_seconds_sum", 'model_name="m"'): 1.5,
                      ("vllm:time_per_output_token_seconds_count", 'model_name="m"'): 3.0}


def test_labels_with_blanks_around_the_equals_sign_keep_their_values():
    series = parse_metrics('vllm:num_requests_running{model_name = "m", engine= "0"} 3\n')
    assert series == {("vllm:num_requests_running", 'engine="0",model_name="m"'): 3.0}


def test_escaped_label_values_stay_escaped_and_distinct():
    series = parse_metrics('vllm:num_requests_running{model_name="a\\"b\\\\c"} 1\n'
                           'vllm:num_requests_running{model_name="a\\"b"} 2\n')
    assert series == {("vllm:num_requests_running", 'model_name="a\\"b\\\\c"'): 1.0,
                      ("vllm:num_requests_running", 'model_name="a\\"b"'): 2.0}


@pytest_asyncio.fixture
async def target():
    """A /metrics that answers the bytes given, or repeats them for ever (`serve(body, endless)` -> base URL),
    and a session to scrape it."""
    servers = []
    session = aiohttp.ClientSession()

    async def serve(body: bytes, endless: bool = False) -> str:
        async def metrics(request: web.Request) -> web.StreamResponse:
            headers = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
            if not endless:
                return web.Response(body=body, headers=headers)
            resp = web.StreamResponse(headers=headers)
            await resp.prepare(request)
            try:
                while True:
                    await resp.write(body)
            except ConnectionError:  # the scrape stopped reading and closed the connection
                return resp

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield session, serve
    await session.close()
    for server in servers:
        await server.close()


async def test_a_vllm_page_is_scraped_whole(target):
    session, serve = target
    series = await scrape(session, await serve(VLLM_PAGE.encode()))
    assert series == parse_metrics(VLLM_PAGE)


async def test_a_body_that_is_not_utf8_is_read_with_replacement_and_one_warning(target, caplog):
    session, serve = target
    body = b'vllm:num_requests_running{model_name="m\xff"} 1\nvllm:num_requests_waiting{model_name="m"} 2\n'
    with caplog.at_level(logging.WARNING):
        series = await scrape(session, await serve(body))
    assert series == {("vllm:num_requests_running", 'model_name="m\ufffd"'): 1.0,
                      ("vllm:num_requests_waiting", 'model_name="m"'): 2.0}
    assert [r.getMessage() for r in caplog.records if "not valid UTF-8" in r.getMessage()] != []
    assert len(caplog.records) == 1


@pytest.mark.parametrize("garbage", [
    b"<html><body>502 Bad Gateway</body></html>",
    b'vllm:num_requests_running{model_name="m"} 1\nthis is not a metric line\n',
    b'vllm:num_requests_running{model_name="m" 1\n',
    b"vllm:num_requests_running NaNx\n",
    b"\x00\x01\x02",
])
async def test_text_that_is_not_prometheus_is_no_metrics_for_the_step_with_one_warning(target, caplog, garbage):
    session, serve = target
    with caplog.at_level(logging.WARNING):
        assert await scrape(session, await serve(garbage)) is None
    assert len(caplog.records) == 1 and "is not Prometheus text" in caplog.records[0].getMessage()


async def test_a_body_that_never_ends_is_cut_at_the_bound(target, caplog):
    """Read to its end, it would grow the agent's memory until the scrape's timeout."""
    session, serve = target
    line = b'vllm:num_requests_running{model_name="m"} 1\n'
    with caplog.at_level(logging.WARNING):
        assert await scrape(session, await serve(line * 1000, endless=True)) is None
    assert len(caplog.records) == 1
    assert f"sent more than {scrape_module.MAX_METRICS_BYTES >> 20} MiB" in caplog.records[0].getMessage()


async def test_a_page_of_more_series_than_any_server_has_is_no_metrics_for_the_step(target, caplog):
    session, serve = target
    page = "".join(f'vllm:num_requests_running{{model_name="m{i}"}} 1\n' for i in range(MAX_SERIES + 1))
    with caplog.at_level(logging.WARNING):
        assert await scrape(session, await serve(page.encode())) is None
    assert len(caplog.records) == 1 and f"more than {MAX_SERIES} series" in caplog.records[0].getMessage()


def test_the_lora_adapters_a_server_runs_are_kept_with_their_labels():
    page = ('# TYPE vllm:lora_requests_info gauge\n'
            'vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql-lora,chat-lora",'
            'waiting_lora_adapters=""} 1.7e9\n')
    assert parse_metrics(page) == {("vllm:lora_requests_info", 'max_lora="4",running_lora_adapters="sql-lora,chat-lora",'
                                    'waiting_lora_adapters=""'): 1.7e9}

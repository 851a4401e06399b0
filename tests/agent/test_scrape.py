"""vLLM /metrics parsing: the series the reports need, labels canonical."""

from siliconbench.agent.scrape import parse_metrics, server_metrics

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

"""The simulator's Prometheus `/metrics`, named and labelled like vLLM V1's (`vllm:` prefix, `model_name`).

Only the series siliconbench scrapes are simulated: request gauges, KV-cache usage, token counters,
finished-request counter by reason, and the TTFT / inter-token / end-to-end latency histograms.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# vLLM V1's bucket edges (vllm/v1/metrics/loggers.py), in seconds.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
               20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
               240.0, 480.0, 960.0, 1920.0, 7680.0)
FINISH_REASONS = ("stop", "length", "abort", "error")


class Histogram:
    """A Prometheus histogram: per-bucket counts (rendered cumulatively), sum and count."""

    __slots__ = ("edges", "counts", "sum", "count")

    def __init__(self, edges: Sequence[float]) -> None:
        self.edges = tuple(edges)
        self.counts = [0] * (len(self.edges) + 1)  # last slot: above every edge (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.edges, value)] += 1  # first edge >= value: Prometheus `le`
        self.sum += value
        self.count += 1

    def render(self, name: str, labels: str, lines: list[str]) -> None:
        cumulative = 0
        for edge, n in zip(self.edges, self.counts):
            cumulative += n
            lines.append(f'{name}_bucket{{{labels},le="{edge}"}} {float(cumulative)}')
        lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {float(self.count)}')
        lines.append(f"{name}_count{{{labels}}} {float(self.count)}")
        lines.append(f"{name}_sum{{{labels}}} {self.sum}")


class SimMetrics:
    """Counters and histograms the server updates; gauges are passed in at render time."""

    def __init__(self, model: str) -> None:
        escaped = model.replace("\\", "\\\\").replace('"', '\\"')
        self._labels = f'engine="0",model_name="{escaped}"'
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.finished = dict.fromkeys(FINISH_REASONS, 0)
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)

    def render(self, running: int, waiting: int, kv_cache_usage: float) -> str:
        """Prometheus text exposition format 0.0.4."""
        lb = self._labels
        lines: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")

        head("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.")
        lines.append(f"vllm:num_requests_running{{{lb}}} {float(running)}")
        head("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.")
        lines.append(f"vllm:num_requests_waiting{{{lb}}} {float(waiting)}")
        head("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.")
        lines.append(f"vllm:kv_cache_usage_perc{{{lb}}} {kv_cache_usage}")
        head("vllm:prompt_tokens", "counter", "Number of prefill tokens processed.")
        lines.append(f"vllm:prompt_tokens_total{{{lb}}} {float(self.prompt_tokens)}")
        head("vllm:generation_tokens", "counter", "Number of generation tokens processed.")
        lines.append(f"vllm:generation_tokens_total{{{lb}}} {float(self.generation_tokens)}")
        head("vllm:request_success", "counter", "Count of successfully processed requests.")
        for reason, n in self.finished.items():
            lines.append(f'vllm:request_success_total{{{lb},finished_reason="{reason}"}} {float(n)}')
        head("vllm:time_to_first_token_seconds", "histogram", "Histogram of time to first token in seconds.")
        self.ttft.render("vllm:time_to_first_token_seconds", lb, lines)
        head("vllm:inter_token_latency_seconds", "histogram", "Histogram of inter-token latency in seconds.")
        self.itl.render("vllm:inter_token_latency_seconds", lb, lines)
        head("vllm:e2e_request_latency_seconds", "histogram", "Histogram of e2e request latency in seconds.")
        self.e2e.render("vllm:e2e_request_latency_seconds", lb, lines)
        return "\n".join(lines) + "\n"

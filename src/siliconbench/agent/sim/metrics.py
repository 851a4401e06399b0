"""The simulator's Prometheus `/metrics`, named and labelled like vLLM V1's (`vllm:` prefix, labels `engine`
and `model_name`), written by prometheus-client as vLLM's own page is.

Only the series siliconbench scrapes are simulated: request gauges, KV-cache usage, token counters, the
prefix cache's queries and hits and its block size (cache_config_info),
finished-request counter by reason, and the TTFT / inter-token / end-to-end latency histograms.
The server counts into plain integers and floats as it streams (an observation per chunk is a bisect);
`SimMetrics` is a prometheus-client collector that turns them into metric families only when the page is
rendered, so the library's locks and linear bucket search stay off the simulator's stream loop.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from siliconbench.agent.sim.prefix import PrefixCache

# vLLM V1's bucket edges (vllm/v1/metrics/loggers.py), in seconds.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
               20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
               240.0, 480.0, 960.0, 1920.0, 7680.0)
FINISH_REASONS = ("stop", "length", "abort", "error")
LABELS = ("engine", "model_name")
# vLLM 0.32's cache_config_info labels (tests/fixtures/vllm-0.32-metrics.txt), block_size and
# enable_prefix_caching the simulator's own
_CACHE_CONFIG = {
    "_block_size_resolved": "True", "block_size": "128", "cache_dtype": "auto", "cache_hit_alignment_tokens": "None",
    "effective_attention_block_size": "128", "enable_mamba_shared_prefix_checkpoint": "False",
    "enable_prefix_caching": "True", "gpu_memory_utilization": "0.92", "hash_block_size": "None",
    "is_attention_free": "False", "kv_cache_dtype_skip_layers": "[]", "kv_cache_layout": "None",
    "kv_cache_max_concurrency": "1024.0", "kv_cache_memory_bytes": "1073741824", "kv_cache_size_tokens": "2097152",
    "kv_offloading_backend": "native", "kv_offloading_size": "None", "kv_sharing_fast_prefill": "False",
    "mamba_block_size": "None", "mamba_cache_dtype": "auto", "mamba_cache_mode": "none",
    "mamba_page_size_padded": "None", "mamba_ssm_cache_dtype": "float32", "num_cpu_blocks": "None",
    "num_gpu_blocks": "16384", "num_gpu_blocks_override": "None", "prefix_cache_retention_interval": "0",
    "prefix_caching_hash_algo": "sha256", "prefix_match_unit": "None", "replayssm_buffer_len": "16",
    "skip_page_size_padded": "None", "sliding_window": "None", "swa_bounded_replay": "True",
    "use_kda_recoverssm": "False", "use_replayssm": "False", "user_specified_block_size": "False",
}
# The exposition vLLM serves (text format 0.0.4); prometheus-client's "latest" may name a newer version.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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

    def family(self, name: str, documentation: str, labels: list[str]) -> HistogramMetricFamily:
        buckets = []
        cumulative = 0
        for edge, n in zip(self.edges, self.counts):
            cumulative += n
            buckets.append((floatToGoString(edge), cumulative))
        buckets.append(("+Inf", self.count))
        family = HistogramMetricFamily(name, documentation, labels=LABELS)
        family.add_metric(labels, buckets, self.sum)
        return family


class SimMetrics(Collector):
    """Counters and histograms the server updates; gauges are passed in at render time."""

    def __init__(self, model: str, cache: PrefixCache) -> None:
        self._labels = ["0", model]
        self._cache = cache
        self._created = time.time()
        self._gauges = (0, 0, 0.0)
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.finished = dict.fromkeys(FINISH_REASONS, 0)
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def render(self, running: int, waiting: int, kv_cache_usage: float) -> bytes:
        """The page, in the Prometheus text format (CONTENT_TYPE)."""
        self._gauges = (running, waiting, kv_cache_usage)
        return generate_latest(self._registry)

    def collect(self) -> Iterator[Metric]:
        lb = self._labels
        running, waiting, kv_cache_usage = self._gauges
        for name, text, value in (
                ("vllm:num_requests_running", "Number of requests in model execution batches.", running),
                ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting),
                ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", kv_cache_usage)):
            gauge = GaugeMetricFamily(name, text, labels=LABELS)
            gauge.add_metric(lb, value)
            yield gauge
        for name, text, count in (
                ("vllm:prompt_tokens", "Number of prefill tokens processed.", self.prompt_tokens),
                ("vllm:generation_tokens", "Number of generation tokens processed.", self.generation_tokens)):
            counter = CounterMetricFamily(name, text, labels=LABELS)
            counter.add_metric(lb, count, created=self._created)
            yield counter
        for name, text, count in (
                ("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.",
                 self._cache.queries),
                ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", self._cache.hits)):
            counter = CounterMetricFamily(name, text, labels=LABELS)
            counter.add_metric(lb, count, created=self._created)
            yield counter
        config = {**_CACHE_CONFIG, "block_size": str(self._cache.block_size), "engine": "0",
                  "enable_prefix_caching": str(self._cache.enabled)}
        info = GaugeMetricFamily("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                                 labels=tuple(config))
        info.add_metric(list(config.values()), 1.0)
        yield info
        success = CounterMetricFamily("vllm:request_success", "Count of successfully processed requests.",
                                      labels=(*LABELS, "finished_reason"))
        for reason, n in self.finished.items():
            success.add_metric([*lb, reason], n, created=self._created)
        yield success
        yield self.ttft.family("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                               lb)
        yield self.itl.family("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                              lb)
        yield self.e2e.family("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
                              lb)

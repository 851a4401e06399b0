"""siliconbench: measured LLM serving benchmarks across GPUs and AWS custom silicon."""

"""siliconbench.telemetry.v1: generated bindings (never edit by hand; proto/generate.sh)."""

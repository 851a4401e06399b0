"""SendLog: per-request arrival and chunk hand-over times, dumped as JSON Lines."""

from __future__ import annotations

import json
import statistics
import time

import pytest

from siliconbench.agent.sim import SendLog, SimProfile
from tests.timing import LATE_S

from .conftest import MODEL
from .sse import read_events


@pytest.mark.timing
async def test_send_log_records_arrival_and_one_stamp_per_content_chunk(start_sim, tmp_path):
    log = SendLog()
    client = await start_sim(SimProfile(ttft_ms=20, itl_ms=30), send_log=log)
    before = time.time_ns()
    await read_events(await client.post(
        "/v1/chat/completions", headers={"X-Request-Id": "req-42"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "stream": True}))
    (record,) = log.records
    assert record.request_id == "chatcmpl-req-42"
    assert record.x_request_id == "req-42"
    assert record.endpoint == "/v1/chat/completions"
    assert before <= record.arrival_ns
    assert len(record.chunk_sent_ns) == 6
    # each stamp follows its chunk's deadline (20 ms + k x 30 ms): never before it (a stamp taken before
    # waiting would be; 0.5 ms for the wall clock the stamps use against the monotonic deadlines), and
    # the median within LATE_S (stamps taken all at the end would be 75 ms late)
    late_ns = [sent - record.arrival_ns - (20e6 + k * 30e6) for k, sent in enumerate(record.chunk_sent_ns)]
    assert min(late_ns) >= -0.5e6
    assert statistics.median(late_ns) < LATE_S * 1e9

    path = tmp_path / "sent.jsonl"
    log.dump(path)
    (line,) = path.read_text().splitlines()
    assert json.loads(line) == {"request_id": "chatcmpl-req-42", "x_request_id": "req-42",
                                "endpoint": "/v1/chat/completions", "arrival_ns": record.arrival_ns,
                                "chunk_sent_ns": record.chunk_sent_ns}


async def test_send_log_skips_rejected_requests(start_sim):
    log = SendLog()
    client = await start_sim(send_log=log)
    await client.post("/v1/completions", json={"model": "other", "prompt": "a"})
    assert log.records == []


async def test_send_log_stamps_content_chunks_but_not_the_error_event(start_sim):
    log = SendLog()
    client = await start_sim(send_log=log)
    await read_events(await client.post("/v1/completions", json={
        "model": MODEL, "prompt": "a", "max_tokens": 9, "stream": True, "sim_error_after": 4}))
    assert len(log.records[0].chunk_sent_ns) == 4

"""SendLog: per-request arrival and chunk hand-over times, dumped as JSON Lines."""

from __future__ import annotations

import json
import statistics
import time

from siliconbench.agent.sim import SendLog, SimProfile

from .conftest import MODEL
from .sse import read_events


async def test_send_log_records_arrival_and_one_stamp_per_content_chunk(start_sim, tmp_path):
    log = SendLog()
    client = await start_sim(SimProfile(ttft_ms=20, itl_ms=5), send_log=log)
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
    # the stamps follow the schedule: the first never before its TTFT (a stamp taken at the wrong moment
    # would be), the gaps around the ITL. Their precision is test_schedule's job: one late wake-up on a
    # busy 2-core machine must not fail this test.
    assert 20e6 - 0.5e6 <= record.chunk_sent_ns[0] - record.arrival_ns < 20e6 + 10e6
    gaps = [b - a for a, b in zip(record.chunk_sent_ns, record.chunk_sent_ns[1:])]
    assert all(g > 0 for g in gaps) and abs(statistics.median(gaps) - 5e6) < 1.5e6

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

"""The collector's Keeper (collector/kept.py): told what each stored group held, it keeps a step once the step is
over, not while its request batches still arrive; a late batch of a step it saw end makes the step due again;
closing keeps what was pending."""

from __future__ import annotations

import time

from siliconbench.collector import kept
from siliconbench.collector.errors import StoreUnavailable
from tests.collector import rows


def kept_rows(store, run_id: str) -> int:
    return store.query("SELECT max(step_rows) FROM {db}.kept_steps WHERE run_id = {r:String}",
                       {"r": run_id}).result_rows[0][0]


def wait_for(check, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_a_step_is_kept_once_over_and_again_after_a_late_batch(store, unique_id):
    agent = f"agent-{unique_id}"
    key = (unique_id, agent, 0)
    store.insert("runs", [rows.run(unique_id, agent)], f"{unique_id}/r")
    store.insert("requests", [rows.request(unique_id, agent, i, start_s=i) for i in range(3)], f"{unique_id}/q1")
    keeper = kept.Keeper(store, linger_s=0.0)
    try:
        keeper.notify([key])  # a batch of a step still running: nothing to keep
        time.sleep(0.3)
        assert kept_rows(store, unique_id) == 0
        store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0, 9)], f"{unique_id}/s")
        keeper.notify([key], over=[key])
        assert wait_for(lambda: kept_rows(store, unique_id) == 3)
        store.insert("requests", [rows.request(unique_id, agent, 9, start_s=5)], f"{unique_id}/q2")
        keeper.notify([key])  # a late batch of a step this keeper saw end
        assert wait_for(lambda: kept_rows(store, unique_id) == 4)
    finally:
        keeper.close()


def test_closing_keeps_what_was_pending(store, unique_id):
    agent = f"agent-{unique_id}"
    key = (unique_id, agent, 0)
    store.insert("runs", [rows.run(unique_id, agent)], f"{unique_id}/r")
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0, 9)], f"{unique_id}/s")
    store.insert("requests", [rows.request(unique_id, agent, i, start_s=i) for i in range(3)], f"{unique_id}/q")
    keeper = kept.Keeper(store, linger_s=60.0)  # would wait a minute before its next pass
    keeper.notify([key], over=[key])
    keeper.close()
    assert kept_rows(store, unique_id) == 3


def test_catching_up_keeps_what_the_store_held_unkept(store, unique_id):
    agent = f"agent-{unique_id}"
    store.insert("runs", [rows.run(unique_id, agent)], f"{unique_id}/r")
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0, 9)], f"{unique_id}/s")
    store.insert("requests", [rows.request(unique_id, agent, i, start_s=i) for i in range(3)], f"{unique_id}/q")
    keeper = kept.Keeper(store, linger_s=0.0)  # told of nothing: a collector started on this store
    try:
        keeper.catch_up()
        assert wait_for(lambda: kept_rows(store, unique_id) == 3)
    finally:
        keeper.close()


def test_a_failed_pass_is_tried_again_without_another_notice(store, unique_id, monkeypatch):
    agent = f"agent-{unique_id}"
    key = (unique_id, agent, 0)
    store.insert("runs", [rows.run(unique_id, agent)], f"{unique_id}/r")
    store.insert("steps", [rows.step(unique_id, agent, 0, 1, 0, 0, 9)], f"{unique_id}/s")
    store.insert("requests", [rows.request(unique_id, agent, i, start_s=i) for i in range(3)], f"{unique_id}/q")
    real, calls = kept.keep_due, []

    def refused_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise StoreUnavailable("the store went away for a moment")
        return real(*args, **kwargs)

    monkeypatch.setattr(kept, "keep_due", refused_once)
    monkeypatch.setattr(kept, "RETRY_FIRST_S", 0.2)
    keeper = kept.Keeper(store, linger_s=0.0)
    try:
        keeper.notify([key], over=[key])  # the last notice: the run's last step ended
        assert wait_for(lambda: kept_rows(store, unique_id) == 3, timeout_s=10.0)
        assert len(calls) == 2
    finally:
        keeper.close()

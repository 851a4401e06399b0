"""Independent reads of one store run at once on its reader threads (Store.concurrently, Store.started): each
result in the order asked, an error raised once all have ended, and a reader that asks for reads itself runs
them in turn rather than waiting on the other readers."""

from __future__ import annotations

import threading

import pytest

from siliconbench.collector.errors import StoreRefused
from siliconbench.collector.store import READERS


def _value(store, n: int) -> int:
    return store.query("SELECT {n:UInt32} * 2", {"n": n}).result_rows[0][0]


def test_reads_at_once_give_their_results_in_the_order_asked_from_reader_threads(store):
    threads: list[str] = []

    def read(n: int):
        threads.append(threading.current_thread().name)
        return _value(store, n)

    assert store.concurrently(*(lambda n=n: read(n) for n in range(8))) == [n * 2 for n in range(8)]
    assert threads and all(name.startswith("store-reader") for name in threads)


def test_a_failed_read_is_raised_once_every_read_has_ended(store):
    ended = []

    def slow() -> int:
        value = store.query("SELECT count() FROM numbers(3000000) WHERE number % 7 = 1").result_rows[0][0]
        ended.append(value)
        return value

    with pytest.raises(StoreRefused, match="refused it"):
        store.concurrently(lambda: store.query("SELECT no_such_column"), slow)
    assert ended == [len(range(1, 3_000_000, 7))]


def test_readers_that_ask_for_reads_themselves_run_them_in_turn_and_never_wait_on_each_other(store):
    def nested(n: int) -> list[int]:
        return store.concurrently(lambda: _value(store, n), lambda: _value(store, n + 1))

    # every reader busy with a read that asks for two more: they run where they were asked
    result = store.concurrently(*(lambda n=n: nested(n) for n in range(READERS * 2)))
    assert result == [[n * 2, (n + 1) * 2] for n in range(READERS * 2)]


def test_a_closed_store_stops_its_readers_and_starts_them_again_on_the_next_read(store):
    def reads() -> set[threading.Thread]:
        seen: set[threading.Thread] = set()

        def read(n: int) -> int:
            seen.add(threading.current_thread())
            return _value(store, n)

        assert store.concurrently(*(lambda n=n: read(n) for n in range(4))) == [0, 2, 4, 6]
        return seen

    first = reads()
    assert all(t.is_alive() for t in first)
    store.close()
    assert not any(t.is_alive() for t in first)
    assert reads().isdisjoint(first)

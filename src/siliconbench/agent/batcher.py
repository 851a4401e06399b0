"""The open batch and the spool thread: items in, numbered batches on disk (or held in memory) out.

Items are gathered into a batch, sealed by size (`max_items`, or before an item would push it over
`MAX_BATCH_BYTES`, the transport limit less room for the seq and batch id) or by the shipper's age timer.
Each item is encoded once as it is added (core/framing.py) and a batch is those encodings concatenated,
so sealing on the event loop costs 0.06 ms whatever the batch holds. Numbering, joining and writing a
sealed batch, and every other read or write of the spool's files (agent/uplink.py, agent/refusals.py),
run on one spool thread (FIFO, so files appear in sequence order) whose work is mostly in calls that
release the GIL (write, crc32, read). Sealing gives a batch the spool's next sequence number and a
globally unique `batch_id` `<agent>/<boot>/<seq>` (the store's dedup key).

A disk that refuses writes (full, read-only, quota) does not lose data: the batch is held in memory
(agent/spool.py), `disk_fault` says why (once in the log), and `retry_disk` writes the held batches
again (or, with none held, probes the disk) until the disk takes them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from google.protobuf.message import Message

from siliconbench.agent.spool import Entry, Spool
from siliconbench.core.framing import delimited, tag, varint
from siliconbench.core.limits import MAX_MESSAGE_BYTES
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = MAX_MESSAGE_BYTES - 64 * 1024  # room for the seq, the batch id and the message framing
LISTS = ("runs", "steps", "requests", "samples", "server_metrics")  # the repeated fields of a Batch
ITEM_TAGS = tuple(tag(pb.Batch, name) for name in LISTS)
RUNS_TAG, STEPS_TAG, REQUESTS_TAG, SAMPLES_TAG, METRICS_TAG = ITEM_TAGS
_SEQ_TAG = tag(pb.Batch, "seq")
_BATCH_ID_TAG = tag(pb.Batch, "batch_id")


def batch_head(seq: int, batch_id: str) -> bytes:
    """The encoded seq and batch id that open a batch."""
    return _SEQ_TAG + varint(seq) + delimited(_BATCH_ID_TAG, batch_id.encode())


class Batcher:
    """The open batch and the spool thread. `on_queued(entry, requests)` runs on the event loop once a
    sealed batch is in the spool (on disk, or held in memory)."""

    def __init__(self, spool: Spool, agent_id: str, max_items: int,
                 on_queued: Callable[[Entry, int], None]) -> None:
        self.spool = spool
        self._agent_id = agent_id
        self._max_items = max_items
        self._on_queued = on_queued
        self._boot = uuid.uuid4().hex[:12]   # with the spool's never-reused seq: batch ids are unique
        self._parts: list[bytes] = [b""]     # the open batch, encoded field by field; [0]: its seq and id
        self.items = 0
        self._open_bytes = 0
        self._open_requests = 0
        self._io = ThreadPoolExecutor(1, thread_name_prefix="spool")
        self.unstored = 0                    # batches sealed and not yet in the spool
        self._unstored_bytes = 0
        self.stored = asyncio.Event()        # every sealed batch is in the spool
        self.stored.set()
        self.disk_fault: str | None = None   # why the spool's disk refuses writes, while it does

    def start(self) -> None:
        self._io.submit(int)  # start the spool thread now: its start (0.2-2.5 ms) must not fall in a step

    def close(self) -> None:
        self._io.shutdown()  # batches still being written reach the disk before the spool's lock goes

    def on_spool_thread(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Run `fn(*args)` on the spool thread, after everything submitted before it."""
        return asyncio.wrap_future(self._io.submit(fn, *args))

    @property
    def unacked_bytes(self) -> int:
        """Bytes sealed and not yet acknowledged: in the spool, or on their way to it."""
        return self.spool.bytes + self._unstored_bytes

    def held(self) -> int:
        """Batches held in memory because the disk refused them."""
        return sum(e.data is not None for e in self.spool.entries.values())

    def add(self, key: bytes, item: Message) -> None:
        field = delimited(key, item.SerializeToString())
        if self.items and self._open_bytes + len(field) > MAX_BATCH_BYTES:
            self.seal()  # an item too large on its own is sealed alone, then set aside when it is sent
        self._parts.append(field)
        self._open_bytes += len(field)
        self.items += 1
        self._open_requests += key == REQUESTS_TAG
        if self.items >= self._max_items:
            self.seal()

    def seal(self) -> None:
        """Close the open batch and hand it to the spool thread (no-op when nothing is buffered)."""
        if not self.items:
            return
        parts, size, requests = self._parts, self._open_bytes, self._open_requests
        self._parts, self.items, self._open_bytes, self._open_requests = [b""], 0, 0, 0
        self.unstored += 1
        self._unstored_bytes += size
        self.stored.clear()
        self.on_spool_thread(self._store, parts).add_done_callback(partial(self._on_stored, size, requests))

    def _store(self, parts: list[bytes]) -> Entry:
        """On the spool thread: number the batch, join its fields and write it."""
        seq = self.spool.next_seq()
        parts[0] = batch_head(seq, f"{self._agent_id}/{self._boot}/{seq}")
        return self.spool.write(seq, b"".join(parts))

    def _on_stored(self, size: int, requests: int, stored: asyncio.Future) -> None:
        entry = stored.result()  # _store raises only on a bug; the loop's handler logs it
        self.unstored -= 1
        self._unstored_bytes -= size
        if not self.unstored:
            self.stored.set()
        self.queue(entry)
        self._on_queued(entry, requests)

    def queue(self, entry: Entry) -> None:
        """Queue a written batch; one the disk refused starts a disk fault (see the module docstring)."""
        self.spool.add(entry)
        if entry.data is not None and self.disk_fault is None:
            self.disk_fault = f"the spool {self.spool.directory} cannot write batch {entry.seq} ({entry.refused})"
            log.error("%s: the load pauses before its next request and resumes when the disk takes writes again, "
                      "or once the collector acknowledged the %d batches held in memory", self.disk_fault,
                      self.held())

    async def retry_disk(self) -> bool:
        """Write the batches held in memory again (a probe when none is held); True, and the fault lifted,
        once all are on disk."""
        held = [e for e in self.spool.entries.values() if e.data is not None]
        if not await self.on_spool_thread(self._persist, held):
            return False
        log.warning("%s before; the disk takes writes again: %d held batches written, the load resumes",
                    self.disk_fault, len(held))
        self.disk_fault = None
        return True

    def _persist(self, held: list[Entry]) -> bool:
        """On the spool thread."""
        return all(self.spool.persist(e) for e in held) if held else self.spool.writable()

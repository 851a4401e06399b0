"""Batches that cannot be delivered as they are: split in two, or their one record set aside.

No batch can hold up the ones behind it. A batch the collector refuses as invalid, or one too large to
send (left by an older agent), is split in two halves, each a new spooled batch whose id is the
original's plus `.0`/`.1` (so a split repeated after a crash is stored once); halves are split again
until only the offending record is alone, and that one is set aside in the spool's quarantine with the
reason logged and counted (`set_aside`). A batch of 2,000 records with one bad record costs 11 splits
(23 sends, each half that holds no bad record stored at once), and 1,999 records are stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from siliconbench.agent.batcher import ITEM_TAGS, LISTS, REQUESTS_TAG, Batcher, batch_head
from siliconbench.agent.spool import Entry
from siliconbench.core.framing import delimited
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)


class Refusals:
    """Splits and quarantine. `requests_of` maps the seq of each batch of this process to its request
    records (kept up to date for the halves); `changed` runs once a split is done."""

    def __init__(self, batcher: Batcher, requests_of: dict[int, int], changed: Callable[[], None]) -> None:
        self._batcher = batcher
        self._spool = batcher.spool
        self._requests_of = requests_of
        self._changed = changed
        self.splitting: set[int] = set()  # batches being split: not to be sent meanwhile
        self.set_aside = 0                 # records (of any kind) the collector refused, kept in quarantine
        self.requests_set_aside = 0

    def split(self, seq: int, why: str) -> None:
        """Take batch `seq` out of the way of those behind it: split it, or set its one record aside."""
        if seq in self.splitting or seq not in self._spool.entries:
            return  # being split already, or gone (a second refusal of a batch sent on two streams)
        self.splitting.add(seq)
        halves = self._batcher.on_spool_thread(self._halves, self._spool.entries[seq])
        halves.add_done_callback(partial(self._on_split, seq, why))

    def quarantine(self, seq: int, why: str) -> None:
        """Move batch `seq` out of the queue into the quarantine (a file that went bad)."""
        self._spool.quarantine(seq, why)
        self._changed()

    def _halves(self, entry: Entry) -> list[tuple[Entry, int]]:
        """On the spool thread: the batch's items written as two new batches, with their request counts;
        [] when it holds a single item."""
        batch = pb.Batch.FromString(self._spool.read(entry))
        items = [(key, item) for key, name in zip(ITEM_TAGS, LISTS) for item in getattr(batch, name)]
        if len(items) < 2:
            return []
        halves = []
        for k, part in enumerate((items[:len(items) // 2], items[len(items) // 2:])):
            seq = self._spool.next_seq()
            body = b"".join(delimited(key, item.SerializeToString()) for key, item in part)
            halves.append((self._spool.write(seq, batch_head(seq, f"{batch.batch_id}.{k}") + body),
                           sum(key == REQUESTS_TAG for key, _ in part)))
        return halves

    def _on_split(self, seq: int, why: str, done: asyncio.Future) -> None:
        self.splitting.discard(seq)
        try:
            halves = done.result()
        except Exception as exc:  # SpoolCorrupt, OSError, protobuf's DecodeError: the file went bad
            self._spool.quarantine(seq, f"unreadable ({exc})")
            halves = None
        counted = seq in self._requests_of  # a batch of this process, not one a previous run left
        requests = self._requests_of.pop(seq, 0)
        if halves:
            for half, half_requests in halves:
                self._batcher.queue(half)
                if counted:
                    self._requests_of[half.seq] = half_requests
            self._spool.remove(seq)
            log.warning("batch %d split in two (%s); the halves are sent on their own", seq, why)
        elif halves is not None:
            self.set_aside += 1
            self.requests_set_aside += requests
            self._spool.quarantine(seq, f"set aside: {why}")
        self._changed()

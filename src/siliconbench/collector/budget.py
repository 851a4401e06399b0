"""A global bound on the bytes of agent batches the collector holds, across all streams, taken
before a batch is received (a credit handshake), not after.

A batch costs far more memory decoded than on the wire: the received message, parsed messages,
numpy columns, Arrow tables, the Arrow IPC block for the insert and chDB's own copy (measured:
about 150 MiB of RSS per 10.9 MiB batch in flight, so 30 full batches at once took 4.4 GiB). One
`ByteBudget` holds the wire size of every batch in flight, from its admission until it is stored
(or refused); when it is spent, admissions wait in turn (first come, first served). That is
backpressure, not rejection: every batch is stored, later.

Admission happens before the batch is received (`Admission`). An agent announces each batch with
an Offer (its seq and byte size, a few bytes); the collector takes that size from the budget, then
sends a Grant, and only then does the agent send the batch. A stream waiting for its grant holds a
few bytes, and an idle stream (connected, nothing to send) holds nothing, so neither blocks
anyone. A stream goes on reading while it waits for its grant: a fleet member's progress reports still
arrive, so one waiting its turn behind a busy store is not taken for a node that dropped out. Charging the budget only after a message was read, as a first version did, still let each
stream hold one received message (up to the 16 MiB gRPC limit, twice: gRPC's buffer and the
Python bytes): with 100 agents sending full batches at once the collector peaked at 3.0 GiB of RSS.

gRPC options were considered instead and rejected: a stream the collector does not read gets no
HTTP/2 window beyond its initial one, so admission before posting each read would bound what gRPC
buffers, but the collector cannot know the next message's size (a 10.9 MiB batch or a 50-byte
progress report) before reading it. It would have to reserve the largest message (16 MiB) for every
read, and an idle stream with a read posted would hold that reservation, blocking the others.

Measured with bench/collector_memory.py (100 agents, one 11.0 MiB batch each, all at once, embedded
chDB, 2 cores; idle collector 370 MiB RSS): peak RSS 2,709 MiB with batches sent unannounced (charged
after they were read, each waiting stream holding its message; 2,577 MiB at 24 MiB); offered and
granted, 1,589 MiB with a 48 MiB budget and 1,150-1,280 MiB with the 24 MiB default (30 agents: 1,132
MiB), every request stored once.
bench/ingest.py (100 agents, 22,000 requests/s offered) still sustains about 20,600 requests/s with
the 24 MiB default.

Messages outside the handshake are still bounded: a batch that arrives without a grant (an agent
older than the handshake, or a hostile one) or with more bytes than it offered is charged after it
arrived, before it is parsed; any other message over `SMALL_MESSAGE_BYTES` likewise. A grant whose
batch does not come within `GRANT_TIMEOUT_S` (an agent that hung) is withdrawn, its bytes given
to the next in line; its batch is then charged when it arrives. The collector's memory is then
about: idle + budget x decoding factor + streams x (a small message).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from siliconbench.core.wire import pb

SMALL_MESSAGE_BYTES = 64 * 2**10  # offers and progress reports: read without a charge
GRANT_TIMEOUT_S = 30.0            # a granted batch not received by then loses its grant
_BATCH_TAG = bytes([pb.AgentMessage.DESCRIPTOR.fields_by_name["batch"].number << 3 | 2])


class ByteBudget:
    """Bytes that may be in flight at once; a request larger than the whole budget waits until it
    is the only one, then proceeds alone (so no message is ever refused for its size)."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"a byte budget must be positive, not {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.in_flight = 0
        self.peak = 0
        self.granted = 0        # batches admitted before they were sent (offered, then granted)
        self.charged_late = 0   # messages charged only once received (no grant, or more bytes than granted)
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    @property
    def waiting(self) -> int:
        """Admissions waiting for room."""
        return len(self._waiting)

    async def acquire(self, size: int) -> int:
        """Wait until `size` bytes fit (in arrival order); returns what to pass to `release`."""
        cost = min(size, self.limit_bytes)
        if not self._waiting and self.in_flight + cost <= self.limit_bytes:
            self._take(cost)
            return cost
        granted = asyncio.get_running_loop().create_future()
        self._waiting.append((cost, granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(cost)  # granted as the waiter was cancelled: give it back
            else:  # still queued, unless a wake-up already dropped it (see _wake)
                if (cost, granted) in self._waiting:
                    self._waiting.remove((cost, granted))
                self._wake()
            raise
        return cost

    def release(self, cost: int) -> None:
        self.in_flight -= cost
        self._wake()

    def _take(self, cost: int) -> None:
        self.in_flight += cost
        self.peak = max(self.peak, self.in_flight)

    def _wake(self) -> None:
        while self._waiting:
            cost, granted = self._waiting[0]
            if granted.cancelled():  # its waiter was cancelled and has not run its clean-up yet
                self._waiting.popleft()
                continue
            if self.in_flight + cost > self.limit_bytes:
                return
            self._waiting.popleft()
            self._take(cost)
            granted.set_result(None)


class Admission:
    """One stream's dealings with the budget: the grant it holds or awaits for its offered batch (at most
    one; a new offer replaces it), and the charge of each message it reads. The wait for a grant runs
    beside the stream's reading, so its progress reports still arrive while the budget is spent."""

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self._granted_bytes = 0
        self._cost = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._pending: asyncio.Task | None = None

    def offer(self, offer: pb.Offer, reply: Callable[[pb.CollectorMessage], None]) -> None:
        """Grant `offer` once its batch fits (first come, first served): hold its bytes for it, then
        `reply` with the Grant. Returns at once."""
        self.withdraw()
        self._pending = asyncio.get_running_loop().create_task(self._grant(offer, reply))

    async def _grant(self, offer: pb.Offer, reply: Callable[[pb.CollectorMessage], None]) -> None:
        self._cost = await self._budget.acquire(offer.bytes)
        self._granted_bytes = offer.bytes
        self._budget.granted += 1
        self._expiry = asyncio.get_running_loop().call_later(GRANT_TIMEOUT_S, self.withdraw)
        reply(pb.CollectorMessage(grant=pb.Grant(seq=offer.seq)))

    async def charge(self, raw: bytes) -> int:
        """What the message `raw` holds of the budget until it is stored or refused (pass it to
        `ByteBudget.release`): the grant, for the batch it was made for; 0 for a small message that is
        no batch; otherwise its size, taken now (waiting, before it is parsed)."""
        is_batch = raw[:1] == _BATCH_TAG  # an AgentMessage holds one field: its first byte says which
        if not is_batch and len(raw) <= SMALL_MESSAGE_BYTES:
            return 0
        if is_batch and self._cost and len(raw) <= self._granted_bytes:
            cost, self._cost = self._cost, 0
            self._stop_expiry()
            return cost
        self.withdraw()  # a stream waiting with a grant in hand could wait for its own bytes
        self._budget.charged_late += 1
        return await self._budget.acquire(len(raw))

    def withdraw(self) -> None:
        """Give back the grant held or awaited, if any (its batch, should it come, is charged when it
        arrives). A wait cancelled after the budget granted it gives its bytes back itself (`acquire`)."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self._pending = None
        self._stop_expiry()
        if self._cost:
            self._budget.release(self._cost)
            self._cost = 0

    def _stop_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

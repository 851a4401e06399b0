"""A global bound on the bytes of agent batches the collector holds, across all streams, taken
before a message is read from its stream (a credit handshake), shared fairly between agents.

A batch costs far more memory decoded than on the wire: the received message, parsed messages,
numpy columns, Arrow tables, the Arrow IPC block for the insert and chDB's own copy (measured:
about 150 MiB of RSS per 10.9 MiB batch in flight, so 30 full batches at once took 4.4 GiB). One
`ByteBudget` holds the wire size of every batch in flight, from before it is read until it is stored
(or refused); when it is spent, admissions wait. That is backpressure, not rejection: every batch is
stored, later.

What gRPC holds is what the collector has asked for. A stream whose next message is not being read
holds at most its HTTP/2 window (64 KiB: the server turns off window growth by bandwidth probing);
once a read is posted gRPC takes in the whole next message, whatever its size up to the 16 MiB limit
(`MAX_MESSAGE_BYTES`), and nothing in gRPC can bound one read below that. So the collector posts a read
only when the bytes it may bring are covered (`Admission`):
- An agent that offers (it says so in its call metadata, `OFFERS_METADATA`) announces each batch with an
  Offer (its seq and size, a few bytes); the collector takes that size from the budget, sends a Grant,
  and only then does the agent send the batch. Between batches such a stream sends small messages only
  (offers, progress reports: at most `SMALL_MESSAGE_BYTES`). Once its agent has shown it keeps to that
  (a batch came as offered: the agent is "proven"), the reads of one stream of that agent (`trusts`)
  need no cover: an idle stream, or one waiting for its grant, holds nothing and blocks nobody, and it
  goes on being read while it waits (a fleet member's progress reports still arrive).
- Any other stream (an agent older than the handshake, which may send a batch at any moment; a new agent
  until its first batch; an agent that broke the rules) is read only under a cover (`ByteBudget.cover`)
  taken from the budget before the read is posted, and given back (less the batch's size, kept until it
  is stored) when the message arrives; its offers are granted at once, since the read after them is
  covered anyway. Such streams are read one or two at a time; one that has held a cover `IDLE_COVER_S`
  without sending ends cleanly as soon as another stream waits, or has waited meanwhile (the agent
  reconnects when it has data).
- An offer over the message limit is refused at once (typed INVALID error naming the limit; the agent
  splits the batch). A grant whose batch does not arrive within `GRANT_TIMEOUT_S` ends the stream
  (UNAVAILABLE: the agent resends on a new stream): the grant goes to the next in line and no read
  stays posted under a grant that was given back.
- A stream that breaks the protocol (a batch without a grant, larger than its grant, a large message
  that is no batch) has its message dropped at once and the stream ended with a PROTOCOL error.

Fair shares: waiters are served in turn by agent (round robin over agent ids), proven agents first. An
agent that already holds bytes may take more only up to `limit / max(2, agents holding or waiting)`, and
agents not proven hold at most half the budget together. A request is never refused for its size: one
larger than a share goes when its agent (or the unproven half) holds nothing. So any number of streams of
one agent hold at most half the budget while another agent waits, and streams of any number of agents
that offer and never send hold at most half, each for at most `GRANT_TIMEOUT_S`.

The bound, with B the budget, S the open Telemetry streams (at most `max_streams`, the collector
refuses more with RESOURCE_EXHAUSTED) and about 14x the decoding factor measured above:

    collector RSS ~ idle + 14 x B + S x (64 KiB window + 64 KiB small message + ~20 KiB stream state)

that is 370 + 336 + 150 MiB = about 860 MiB at the defaults (24 MiB, 1,024 streams). A read's cover is
half the budget (`ByteBudget.cover`) so that a covered read leaves the other half to proven agents; below
a 32 MiB budget a covered batch may be larger than its cover and takes the difference as it arrives
(`overdraw`: at most 2 x (16 MiB - B/2), 8 MiB at the default). Outside the bound: the one message of a
client that breaks the protocol (a Hello, the first message and read before anything is known, or a
message sent against the rules above), at most 16 MiB, dropped as soon as it is read.

gRPC options alone cannot do this: the message limit is one per server, not per read. Measured with bench/collector_memory.py (embedded chDB, 2 cores): the figures are in docs/deploy.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable

from siliconbench.core.framing import BATCH_TAG
from siliconbench.core.limits import MAX_MESSAGE_BYTES
from siliconbench.core.wire import pb

SMALL_MESSAGE_BYTES = 64 * 2**10  # offers and progress reports: read without a cover
GRANT_TIMEOUT_S = 3.0             # a granted batch not received by then ends its stream
MAX_PROVEN = 4096                 # owners remembered as proven
IDLE_COVER_S = 2.0                # a stream holding a read's cover this long while others wait ends (cleanly)


class FlowViolation(Exception):
    """A message sent against the credit handshake; the stream ends with it as a PROTOCOL error."""


class ByteBudget:
    """Bytes that may be in flight at once, shared in turn between owners (agent ids, see the module
    docstring); a request larger than the whole budget waits until its owner holds nothing and the
    budget has room for it, then takes the whole budget (so no message is ever refused for its size)."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"a byte budget must be positive, not {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.in_flight = 0
        self.peak = 0
        self.granted = 0        # batches admitted before they were sent (offered, then granted)
        self.covered = 0        # batches read under a cover (agents that do not offer, or not proven yet)
        # A read's cover: half the budget, so that one covered read leaves the other half to proven agents;
        # the largest message (16 MiB) once the budget is 32 MiB or more (see `overdraw`).
        self.cover = max(1, min(MAX_MESSAGE_BYTES, limit_bytes // 2))
        self._held: Counter[str] = Counter()
        self._untried: Counter[str] = Counter()
        self._untried_total = 0  # the part of `_held` taken while its owner was not proven
        # owners whose last batch came as offered (the latest MAX_PROVEN), each with the one stream of theirs
        # that is trusted (read without a cover), None until one of its streams asks
        self._proven: OrderedDict[str, object | None] = OrderedDict()
        # owners with waiters, in turn order (a dict keeps insertion order); each owner's waiters in order
        self._queues: dict[str, deque[tuple[int, asyncio.Future]]] = {}
        self.waits = 0  # waits begun so far; and the streams holding a read's cover, since when (monotonic)
        self._covers: dict[Admission, float] = {}

    @property
    def waiting(self) -> int:
        """Admissions waiting for room."""
        return sum(len(queue) for queue in self._queues.values())

    def held_by(self, owner: str) -> int:
        return self._held[owner]

    def share(self) -> int:
        """What one owner may hold at most while it holds anything (see `_may_take`)."""
        owners = len(self._held.keys() | self._queues.keys())
        return self.limit_bytes // max(2, owners)

    async def acquire(self, size: int, owner: str = "") -> int:
        """Wait until `size` bytes fit (in turn between owners); returns what to pass to `release`."""
        cost = min(size, self.limit_bytes)
        if not self._queues and self._may_take(owner, cost):
            self._take(owner, cost)
            return cost
        granted = asyncio.get_running_loop().create_future()
        self._queues.setdefault(owner, deque()).append((cost, granted))
        self._wake()  # it may go at once: an owner over its share waits, others do not
        if not granted.done():
            self.waits += 1
            self._end_idle_covers()
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(cost, owner)  # granted as the waiter was cancelled: give it back
            else:  # still queued, unless a wake-up already dropped it (see _wake)
                queue = self._queues.get(owner)
                if queue is not None and (cost, granted) in queue:
                    queue.remove((cost, granted))
                    if not queue:
                        del self._queues[owner]
                self._wake()
            raise
        return cost

    def release(self, cost: int, owner: str = "") -> None:
        self.in_flight -= cost
        self._held[owner] -= cost
        if self._held[owner] <= 0:
            del self._held[owner]
        untried = min(cost, self._untried[owner])
        self._untried[owner] -= untried
        self._untried_total -= untried
        if self._untried[owner] <= 0:
            del self._untried[owner]
        self._wake()

    def overdraw(self, cost: int, owner: str) -> None:
        """Take `cost` now, over the limit if need be: a covered message larger than its cover (a budget
        under 32 MiB), already read."""
        self._take(owner, cost)

    def is_proven(self, owner: str) -> bool:
        return owner in self._proven

    def proven(self, owner: str, proven: bool, stream: object | None = None) -> None:
        """Say whether `owner`'s last grant or cover brought its batch (see the module docstring); with
        `stream`, the one that brought it becomes the owner's trusted stream."""
        holder = self._proven.pop(owner, None)
        if proven:
            self._proven[owner] = stream if stream is not None else holder
            if len(self._proven) > MAX_PROVEN:
                self._proven.popitem(last=False)
        self._wake()

    def trusts(self, owner: str, stream: object) -> bool:
        """Whether `stream` may be read without a cover: its owner is proven and it is the owner's one trusted
        stream (a proven owner's first stream to ask becomes it). So however many streams an agent opens, at
        most one of them can send a batch against the rules before the rest are read under covers again."""
        if owner not in self._proven:
            return False
        if self._proven[owner] is None:
            self._proven[owner] = stream
        return self._proven[owner] is stream

    def forget(self, owner: str, stream: object) -> None:
        """`stream` ended: another stream of its owner may become the trusted one."""
        if owner in self._proven and self._proven[owner] is stream:
            self._proven[owner] = None

    def cover_taken(self, holder: Admission) -> None:
        self._covers[holder] = time.monotonic()

    def cover_given_back(self, holder: Admission) -> None:
        self._covers.pop(holder, None)

    def _end_idle_covers(self) -> None:
        """Someone waits: streams holding a cover IDLE_COVER_S without a message end now (the rest at that mark)."""
        now = time.monotonic()
        for holder, since in list(self._covers.items()):
            if now - since >= IDLE_COVER_S:
                holder.idle_end()

    def _may_take(self, owner: str, cost: int) -> bool:
        return self._within_share(owner, cost) and self._fits(owner, cost)

    def _within_share(self, owner: str, cost: int) -> bool:
        held = self._held[owner]
        return not held or held + cost <= self.share()

    def _fits(self, owner: str, cost: int) -> bool:
        """Room in the budget, and for an owner not proven in the half that such owners share."""
        if self.in_flight + cost > self.limit_bytes:
            return False
        untried = self._untried_total
        return owner in self._proven or not untried or untried + cost <= self.limit_bytes // 2

    def _take(self, owner: str, cost: int) -> None:
        self.in_flight += cost
        self._held[owner] += cost
        if owner not in self._proven:
            self._untried[owner] += cost
            self._untried_total += cost
        self.peak = max(self.peak, self.in_flight)

    def _wake(self) -> None:
        """Grant waiters in turn: the first owner in line whose next request fits goes, then moves to the
        back of the line. Proven owners go before the others. An owner over its share is passed over; an
        owner within it whose request does not fit stops the line (nobody overtakes it, so a large request
        is not starved)."""
        while True:
            for owner in sorted(self._queues, key=lambda owner: owner not in self._proven):  # stable: in turn
                queue = self._queues[owner]
                while queue and queue[0][1].cancelled():  # its waiter was cancelled and has not cleaned up yet
                    queue.popleft()
                if not queue:
                    del self._queues[owner]
                    continue
                cost, granted = queue[0]
                if not self._within_share(owner, cost):
                    continue
                if not self._fits(owner, cost):
                    return  # the owners after it are not proven either, or it is not
                queue.popleft()
                del self._queues[owner]
                if queue:
                    self._queues[owner] = queue  # to the back of the line
                self._take(owner, cost)
                granted.set_result(None)
                break
            else:
                return


class Admission:
    """One stream's dealings with the budget (see the module docstring): the cover of its next read, or
    the grant it holds or awaits for its offered batch (at most one; a new offer replaces it); the charge
    of each message it reads. `ended` is set when the stream must end: `ending` is then the error to
    reply, or None for a clean end."""

    def __init__(self, budget: ByteBudget, owner: str, offers: bool) -> None:
        self._budget = budget
        self._owner = owner
        self._offers = offers
        self._granted_bytes = 0
        self._cost = 0                      # a grant's bytes, or the cover of the read posted
        self._covered = False               # the read posted is under a cover
        self._waits_at_cover = 0            # the budget's waits when the cover was taken
        self._timer: asyncio.TimerHandle | None = None
        self._pending: asyncio.Task | None = None
        self.ended = asyncio.Event()
        self.ending: pb.CollectorMessage | None = None

    def _trusted(self) -> bool:
        """Its next message is small or a granted batch: it offers, and its agent's batches came as offered."""
        return self._offers and self._budget.trusts(self._owner, self)

    async def before_read(self) -> None:
        """Return once the stream's next message may be read: at once when the stream is trusted or holds a
        grant (or awaits one); otherwise once the budget covers the largest message it could send."""
        if self._cost or self._pending is not None or self._trusted():
            return
        self._cost = await self._budget.acquire(self._budget.cover, self._owner)
        self._covered = True
        self._budget.cover_taken(self)
        self._waits_at_cover = self._budget.waits
        self._arm(IDLE_COVER_S, self._idle)

    def offer(self, offer: pb.Offer, reply: Callable[[pb.CollectorMessage], None]) -> None:
        """Grant `offer` once its batch fits: hold its bytes for it, then `reply` with the Grant. Returns
        at once. An offer over the message limit is refused; a stream not trusted is granted at once (its
        next read is covered)."""
        if offer.bytes > MAX_MESSAGE_BYTES:
            reply(error_reply(offer.seq, pb.ERROR_CODE_INVALID,
                         f"batch {offer.seq} offered with {offer.bytes} bytes, over the {MAX_MESSAGE_BYTES} byte "
                         "message limit: split it"))
            return
        self.withdraw()
        if not self._trusted():
            reply(pb.CollectorMessage(grant=pb.Grant(seq=offer.seq)))
            return
        self._pending = asyncio.get_running_loop().create_task(self._grant(offer, reply))

    async def _grant(self, offer: pb.Offer, reply: Callable[[pb.CollectorMessage], None]) -> None:
        self._cost = await self._budget.acquire(offer.bytes, self._owner)
        self._granted_bytes = offer.bytes
        self._arm(GRANT_TIMEOUT_S, lambda: self._expired(offer.seq))
        reply(pb.CollectorMessage(grant=pb.Grant(seq=offer.seq)))

    def charge(self, raw: bytes) -> int:
        """What the message `raw`, just read, holds of the budget until it is stored or refused (pass it to
        `ByteBudget.release` with the owner): the grant or the cover it came under, down to its size for a
        batch, 0 for a small message. Raises FlowViolation for a message sent against the handshake."""
        self._stop_timer()
        is_batch = raw.startswith(BATCH_TAG)  # an AgentMessage holds one field: its first byte says which
        if self._covered:
            self._budget.cover_given_back(self)
            cover, self._cost, self._covered = self._cost, 0, False
            cost = min(len(raw), self._budget.limit_bytes) if is_batch or len(raw) > SMALL_MESSAGE_BYTES else 0
            if cost > cover:
                self._budget.overdraw(cost - cover, self._owner)
            else:
                self._budget.release(cover - cost, self._owner)
            if is_batch:
                self._budget.covered += 1
                self._budget.proven(self._owner, True, self)
            return cost
        if is_batch and self._granted_bytes and len(raw) <= self._granted_bytes:
            cost, self._cost, self._granted_bytes, self._pending = self._cost, 0, 0, None
            self._budget.granted += 1
            self._budget.proven(self._owner, True, self)
            return cost
        if is_batch or len(raw) > SMALL_MESSAGE_BYTES:
            self._budget.proven(self._owner, False)  # its streams are read under a cover from now on
            if not is_batch:
                raise FlowViolation(f"a message of {len(raw)} bytes that is no batch: other messages are at most "
                                    f"{SMALL_MESSAGE_BYTES} bytes")
            if not self._granted_bytes:
                raise FlowViolation(f"a batch of {len(raw)} bytes arrived without a grant: offer each batch and "
                                    "send it once granted")
            raise FlowViolation(f"a batch of {len(raw)} bytes arrived under a grant of {self._granted_bytes}")
        return 0

    def release(self, cost: int) -> None:
        """Give back what `charge` returned."""
        self._budget.release(cost, self._owner)

    def withdraw(self) -> None:
        """Give back the grant or cover held or awaited, if any. A wait cancelled after the budget granted
        it gives its bytes back itself (`acquire`)."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self._pending = None
        self._stop_timer()
        self._granted_bytes = 0
        self._covered = False
        self._budget.cover_given_back(self)
        if self._cost:
            self._budget.release(self._cost, self._owner)
            self._cost = 0

    def close(self) -> None:
        """The stream ended: give back what it holds, and its trust to its agent's next stream."""
        self.withdraw()
        self._budget.forget(self._owner, self)

    def _expired(self, seq: int) -> None:
        self._budget.proven(self._owner, False)
        self._end(error_reply(seq, pb.ERROR_CODE_UNAVAILABLE, f"batch {seq} was granted and did not arrive within "
                              f"{GRANT_TIMEOUT_S:.0f} s; the stream ends, resend it on a new one"))

    def _idle(self) -> None:
        """At IDLE_COVER_S: end if anyone waits, or waited meanwhile (and comes back on its next stream)."""
        if self._budget.waiting or self._budget.waits != self._waits_at_cover:
            self.idle_end()
        else:
            self._arm(IDLE_COVER_S, self._idle)

    def idle_end(self) -> None:
        """End the stream cleanly: it held a cover idle while others needed it (its agent reconnects)."""
        self._stop_timer()
        self._end(None)

    def _end(self, error: pb.CollectorMessage | None) -> None:
        self.ending = error
        self.ended.set()

    def _arm(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._stop_timer()
        self._timer = asyncio.get_running_loop().call_later(delay_s, callback)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def error_reply(seq: int, code: pb.ErrorCode, message: str) -> pb.CollectorMessage:
    return pb.CollectorMessage(error=pb.Error(seq=seq, code=code, message=message))

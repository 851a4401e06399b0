"""Where a probe's readings come from: the collector's store, or the agent's own records.

The search judges each probe on the readings the collector reads from its store (Control.ProbeReadings,
collector/probe_readings.py) over the probe's steps, once it holds every request row the agent made in
them: what the search decides is then what the store holds and every report shows. The agent computes
the same readings from its own records (judge.py), the same way; it judges on those when the collector
cannot answer within `STORED_WAIT_S` (unreachable, an older collector, rows still on their way) and the
probe says why (`SearchProbe.readings_from`). Where both exist and differ, it warns: one of the two is
wrong, and the store's are used.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

import grpc

from siliconbench.agent.search.judge import Reading, readings_of
from siliconbench.core.limits import MAX_TEXT_CHARS
from siliconbench.core.search import FROM_STORE
from siliconbench.core.slo import Objective
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

STORED_WAIT_S = 2.0  # how long the collector may wait for a probe's rows before the agent judges on its own
CALL_MARGIN_S = 1.0  # on top of it, for the call itself

# (the probe's steps, its judged records) -> (its readings, where they came from: FROM_STORE, or why not)
ReadProbe = Callable[[Sequence[pb.ProbeStep], Sequence[pb.RequestRecord]], Awaitable[tuple[tuple[Reading, ...], str]]]


@runtime_checkable
class StoreReader(Protocol):
    """What reads a probe from the collector's store: the agent's shipper."""

    async def probe_readings(self, request: pb.ProbeReadingsRequest, timeout_s: float) -> pb.ProbeReadingsReply: ...


def own_readings(objectives: Sequence[Objective]) -> ReadProbe:
    """Readings from the records alone, where no store stands behind the search (a bench's or a test's
    prober): there is no other source to name."""
    async def read(steps: Sequence[pb.ProbeStep], records: Sequence[pb.RequestRecord]) -> tuple[tuple[Reading, ...], str]:
        return readings_of(objectives, records), ""
    return read


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


class StoredReadings:
    """Reads each probe's readings from the collector's store through `reader`, falling back to the agent's own."""

    def __init__(self, reader: StoreReader, run_id: str, objectives: Sequence[Objective],
                 wait_s: float = STORED_WAIT_S) -> None:
        self._reader = reader
        self._run_id = run_id
        self._objectives = tuple(objectives)
        self._slo = ",".join(f"{o.key}<={o.limit!r}" for o in self._objectives)
        self._wait_s = wait_s
        self._said = ""  # the last reason for judging on the agent's own readings that was logged

    async def __call__(self, steps: Sequence[pb.ProbeStep],
                       records: Sequence[pb.RequestRecord]) -> tuple[tuple[Reading, ...], str]:
        asked = time.monotonic()
        request = pb.ProbeReadingsRequest(run_id=self._run_id, steps=steps, slo=self._slo, wait_s=self._wait_s)
        reply, why = None, ""
        try:
            reply = await asyncio.wait_for(self._reader.probe_readings(request, self._wait_s + CALL_MARGIN_S),
                                           self._wait_s + 2 * CALL_MARGIN_S)
        except grpc.aio.AioRpcError as exc:
            why = f"the collector did not answer ({exc.code().name}: {exc.details()})"
        except TimeoutError:
            why = f"the collector did not answer within {self._wait_s + 2 * CALL_MARGIN_S:g} s"
        read_s = time.monotonic() - asked
        own = readings_of(self._objectives, records)
        if reply is None or [r.key for r in reply.readings] != [o.key for o in self._objectives]:
            return own, self._own(why or "the collector's readings are not of the search's SLOs")
        stored = tuple(Reading(o, _or_none(r.point), _or_none(r.bound), r.samples, _or_none(r.lower))
                       for o, r in zip(self._objectives, reply.readings))
        if stored != own:
            log.warning("search %s, steps %s: the store's readings differ from the agent's own (store: %s; agent: "
                        "%s); judged on the store's", self._run_id, ",".join(str(s.step) for s in steps),
                        "; ".join(r.show() for r in stored), "; ".join(r.show() for r in own))
        log.debug("search %s, steps %s: readings read from the store %.3f s after the step ended (the collector "
                  "waited %.3f s for its rows)", self._run_id, ",".join(str(s.step) for s in steps), read_s,
                  reply.stored_after_s)
        return stored, FROM_STORE

    def _own(self, why: str) -> str:
        if why != self._said:
            log.warning("search %s: probes are judged on the agent's own readings: %s", self._run_id, why)
            self._said = why
        return f"agent: {why}"[:MAX_TEXT_CHARS]

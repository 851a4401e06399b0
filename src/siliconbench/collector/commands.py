"""Commands for agents, kept until each agent acknowledges them.

A stream is no place to keep a command: it ends at its maximum age, or breaks, and the agent comes
back on a new one (maybe after the command was written, before it arrived). So the fleet registry
keeps every start and cancel here, per agent id, and sends what is pending again on each new stream
of that agent until a `CommandAck` names its id. The agent handles a repeat once (agent/fleet.py).

A pending command does not wait forever: a start is useless once the run's start grace has passed
(`run status` reports that member as never started), and a cancel after PENDING_TTL_NS, long after
the member's lease ended (collector/fleet.py). Ids start at a random point, so the ids of two
replicas, or of a restarted collector, do not meet in practice.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass

from siliconbench.core.wire import pb

# A cancel not acknowledged in this long is dropped: the member's lease ended long ago.
PENDING_TTL_NS = 600 * 10**9


@dataclass(frozen=True, slots=True)
class Pending:
    command: pb.Command
    run_id: str
    kind: str          # "start" or "cancel"
    expires_ns: int    # dropped unacknowledged after this wall-clock time


class Outbox:
    """Per agent id, the commands sent and not acknowledged yet, in the order they were queued."""

    def __init__(self) -> None:
        self._pending: dict[str, dict[int, Pending]] = {}
        self._ids = itertools.count(random.getrandbits(62) + 1)

    def put(self, agent_id: str, command: pb.Command, expires_ns: int) -> pb.Command:
        """Keep `command` (a start or a cancel) for the agent under a new id; returns it with the id."""
        command.id = next(self._ids)
        kind = command.WhichOneof("kind")
        run_id = command.start.run_id if kind == "start" else command.cancel.run_id
        self._pending.setdefault(agent_id, {})[command.id] = Pending(command, run_id, kind, expires_ns)
        return command

    def acknowledged(self, agent_id: str, command_id: int) -> None:
        box = self._pending.get(agent_id, {})
        box.pop(command_id, None)
        if not box:
            self._pending.pop(agent_id, None)

    def due(self, agent_id: str) -> list[pb.Command]:
        """What to send on the agent's new stream: its pending commands, those past their time dropped."""
        box = self._pending.get(agent_id, {})
        now = time.time_ns()
        for command_id in [i for i, p in box.items() if p.expires_ns < now]:
            del box[command_id]
        if not box:
            self._pending.pop(agent_id, None)
        return [p.command for p in box.values()]

    def unacknowledged(self, agent_id: str, run_id: str) -> list[str]:
        """The kinds ("start", "cancel") of the agent's pending commands for `run_id`."""
        return [p.kind for p in self._pending.get(agent_id, {}).values() if p.run_id == run_id]

    def withdraw_starts(self, run_id: str) -> None:
        """A cancelled run's starts not delivered yet are never sent (the cancel goes all the same)."""
        for agent_id, box in list(self._pending.items()):
            for command_id in [i for i, p in box.items() if p.kind == "start" and p.run_id == run_id]:
                del box[command_id]
            if not box:
                del self._pending[agent_id]

"""The agent's disk spool: every sealed batch lives here, one file each, until the collector acks it.

Layout of a spool directory (one agent process at a time, enforced by an flock on `lock`):

    lock             held while an agent uses the directory
    state            "<agent_id> <next_seq>\n": sequence numbers are reserved in blocks, so a restarted
                     agent never reuses one, and an agent id change is noticed. When it is damaged, it is
                     rebuilt from the batches (their ids name the agent; numbering resumes after the
                     highest): a number an acknowledged batch had may come back, which is harmless, as
                     batch ids also carry the agent process's boot id
    <seq:020d>.batch one serialized Batch (it carries its seq and batch_id) behind a checksummed header
    quarantine/      files that failed their checksum or were rejected by the collector, kept for a human

A file is written under a temporary name and renamed into place, so a kill leaves either the whole
batch or a `.tmp` (never a short `.batch`). Writes are not fsynced: a spool survives the agent
process dying (kill -9, OOM, pod deletion), not a node's power loss; an fsync per batch would flush
a disk that the node's vLLM shares.

Threads: the file work of a batch (`next_seq`, `write`, `read`) may run on one thread other than the
event loop's (the shipper's spool thread keeps it off the loop that stamps chunk arrivals); the queue
itself (`add`, `remove`, `quarantine`, `entries`, `bytes`) belongs to the event loop's thread. `remove`
and `quarantine` unlink or move a file on the loop: a metadata operation of ~6 us, not worth a hop.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from siliconbench.agent.config import DEFAULT_SPOOL_MB
from siliconbench.agent.errors import ConfigError, SpoolCorrupt
from siliconbench.core.wire import pb

log = logging.getLogger(__name__)

MAGIC = b"SBB1"
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
_SUFFIX = ".batch"
SEQ_BLOCK = 1000  # sequence numbers reserved per write of `state`
_MAX_SEQ = 1 << 62  # a Batch's seq is a uint64; no spool comes near this
_MAX_STATE_BYTES = 4096  # an agent id of at most MAX_ID_CHARS characters, a number, a space and a newline
DEFAULT_MAX_BYTES = DEFAULT_SPOOL_MB * 2**20


@dataclass(slots=True)
class Entry:
    seq: int
    size: int
    data: bytes | None = None  # only when the disk refused the write: then it lives in memory
    refused: str = ""          # why the disk refused it


class Spool:
    """The on-disk queue of unacknowledged batches of one agent, ordered by sequence number."""

    def __init__(self, directory: Path, agent_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.agent_id = agent_id
        self.max_bytes = max_bytes
        self.entries: dict[int, Entry] = {}   # insertion order == seq order
        self.bytes = 0
        self.quarantined = 0
        self._lock_fd = -1
        self._next_seq = 1
        self._reserved = 0

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path, agent_id: str, max_bytes: int = DEFAULT_MAX_BYTES) -> "Spool":
        """Lock the directory, load what a previous run left (quarantining broken files) and
        reserve sequence numbers. Raises ConfigError naming the directory and the fix."""
        spool = cls(directory, agent_id, max_bytes)
        try:
            spool.directory.mkdir(parents=True, exist_ok=True)
            spool._lock()
            spool._load()
        except OSError as exc:
            spool.close()
            raise ConfigError(f"cannot use the spool directory {spool.directory}: {exc.strerror or exc}; "
                              "point --spool-dir (SILICONBENCH_SPOOL_DIR) at a writable directory") from None
        except BaseException:
            spool.close()
            raise
        return spool

    def _lock(self) -> None:
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"the spool directory {self.directory} is in use by another agent process; "
                              "give each agent its own --spool-dir") from None

    def _load(self) -> None:
        state = self._read_state()
        if state is not None:
            owner, next_seq = state
            if owner != self.agent_id and any(self.directory.glob("*" + _SUFFIX)):
                raise self._foreign(owner, f"the spool {self.directory} holds unacknowledged batches")
            self._next_seq = next_seq
        for leftover in self.directory.glob("*.tmp"):  # a write cut short: its batch was never sealed
            leftover.unlink()
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            try:
                seq = int(path.name[: -len(_SUFFIX)])
                batch = self._read_batch(path)
                if batch.seq != seq:
                    raise SpoolCorrupt(f"it holds batch {batch.seq}, not {seq}")
            except (SpoolCorrupt, ValueError) as exc:
                self._move_to_quarantine(path, f"corrupt or truncated ({exc})")
                continue
            self.entries[seq] = Entry(seq, path.stat().st_size)
            self.bytes += self.entries[seq].size
            self._next_seq = max(self._next_seq, seq + 1)
        self._reserve()
        if self.entries:
            log.warning("spool %s: %d unacknowledged batches (%.1f MiB) from a previous run will be replayed "
                        "first, in order", self.directory, len(self.entries), self.bytes / 2**20)

    def _read_state(self) -> tuple[str, int] | None:
        """The owner and next sequence number that `state` records; None when there is none yet, or when it
        is damaged and the batches beside it are this agent's (then `_load` renumbers from them, with a log
        line). Raises ConfigError when the batches are another agent's, or when `state` cannot be replaced."""
        path = self.directory / "state"
        if not path.exists():
            return None
        if not path.is_file():
            raise ConfigError(f"the spool state {path} is not a file; remove it (rm -r {shlex.quote(str(path))}) "
                              "and start again: it is rebuilt from the batches beside it")
        with open(path, "rb") as f:
            raw = f.read(_MAX_STATE_BYTES + 1)  # a state that is not one is not read whole
        damage = _state_damage(raw)
        if damage is None:
            owner, _, next_seq = raw.decode()[:-1].rpartition(" ")
            return owner, int(next_seq)
        owners = self._batch_owners()
        foreign = sorted(owners - {self.agent_id}, key=lambda owner: (not owner, owner))  # a named agent first
        if foreign:
            raise self._foreign(foreign[0], f"the spool state {path} is damaged ({damage}) and the spool holds "
                                            "unacknowledged batches")
        log.warning("spool %s: its state file is damaged (%s); rebuilt from the %d batches beside it: agent %r, "
                    "sequence numbers after the highest batch", self.directory, damage,
                    sum(1 for _ in self.directory.glob("*" + _SUFFIX)), self.agent_id)
        return None

    def _batch_owners(self) -> set[str]:
        """The agents whose batches are in the directory, from their batch ids ("<agent>/<boot>/<seq>"); a
        batch that names none counts as an unknown agent (""). Corrupt files are left for `_load`."""
        owners = set()
        for path in self.directory.glob("*" + _SUFFIX):
            try:
                batch_id = self._read_batch(path).batch_id
            except SpoolCorrupt:
                continue
            parts = batch_id.rsplit("/", 2)
            owners.add(parts[0] if len(parts) == 3 else "")
        return owners

    def _foreign(self, owner: str, what: str) -> ConfigError:
        """`what` (batches not this agent's are in the directory) and the commands that deal with them."""
        away = f"move the directory away (mv {shlex.quote(str(self.directory))} {shlex.quote(f'{self.directory}.old')})"
        if not owner:
            return ConfigError(f"{what} that name no agent; {away}")
        return ConfigError(f"{what} of agent {owner!r}, not {self.agent_id!r}; start with --node-name "
                           f"{shlex.quote(owner)} to deliver them first, or {away}")

    def _reserve(self) -> None:
        reserved = self._next_seq + SEQ_BLOCK
        tmp = self.directory / "state.tmp"
        tmp.write_text(f"{self.agent_id} {reserved}\n")
        os.replace(tmp, self.directory / "state")
        self._reserved = reserved

    # -- the queue -------------------------------------------------------------------------
    def next_seq(self) -> int:
        """The next sequence number, never handed out before in this directory. A failed reservation
        (disk full) is logged and retried with the next number; the numbers stay unique in this process."""
        seq = self._next_seq
        self._next_seq += 1
        if self._next_seq >= self._reserved:
            try:
                self._reserve()
            except OSError as exc:
                log.error("spool %s: cannot reserve sequence numbers (%s); a restart may reuse numbers after "
                          "%d", self.directory, exc.strerror or exc, seq)
        return seq

    def write(self, seq: int, data: bytes) -> Entry:
        """Write the serialized Batch `seq` to its file and return its entry, for `add`. On a disk error
        (full, read-only, quota) the entry holds the data in memory and says why in `refused` (never
        dropped; the shipper pauses the load and says so). Touches no queue state."""
        entry = Entry(seq, len(data) + _HEADER.size, data)
        self.persist(entry)
        return entry

    def persist(self, entry: Entry) -> bool:
        """Write a batch held in memory to its file; True once it is on disk (its data then leaves memory)."""
        if entry.data is None:
            return True
        try:
            self._put(self._path(entry.seq), entry.data)
        except OSError as exc:
            entry.refused = exc.strerror or str(exc)
            return False
        entry.data, entry.refused = None, ""
        return True

    def writable(self) -> bool:
        """The disk takes a batch-sized write again (a probe file, written and removed; not a `.batch`)."""
        probe = self.directory / "probe"
        try:
            self._put(probe, bytes(256 * 1024))
            probe.unlink()
        except OSError:
            return False
        return True

    def _put(self, path: Path, data: bytes) -> None:
        """`data` behind its header, written under a temporary name and renamed to `path`. OSError when the
        disk refuses, the partial temporary file removed (it would hold the space that is missing)."""
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(_HEADER.pack(MAGIC, len(data), zlib.crc32(data)))
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise

    def add(self, entry: Entry) -> None:
        """Queue a written batch (in sequence order)."""
        self.entries[entry.seq] = entry
        self.bytes += entry.size

    def read(self, entry: Entry) -> bytes:
        """The serialized Batch of `entry` (raises SpoolCorrupt if its file went bad meanwhile, OSError if
        it went away)."""
        if entry.data is not None:
            return entry.data
        path = self._path(entry.seq)
        return _payload(path.read_bytes(), path)

    def remove(self, seq: int) -> None:
        """Forget an acknowledged batch."""
        entry = self.entries.pop(seq, None)
        if entry is None:
            return
        self.bytes -= entry.size
        if entry.data is None:
            try:
                self._path(seq).unlink()
            except FileNotFoundError:
                pass

    def quarantine(self, seq: int, reason: str) -> None:
        """Take a batch out of the queue but keep its file for a human to look at."""
        entry = self.entries.get(seq)
        if entry is None:
            return
        if entry.data is None:
            self._move_to_quarantine(self._path(seq), reason)
        self.entries.pop(seq)
        self.bytes -= entry.size

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    # -- files -----------------------------------------------------------------------------
    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{_SUFFIX}"

    def _read_batch(self, path: Path) -> pb.Batch:
        batch = pb.Batch()
        try:
            batch.ParseFromString(_payload(path.read_bytes(), path))
        except Exception as exc:  # protobuf's DecodeError and friends
            raise SpoolCorrupt(f"not a Batch: {exc}") from None
        return batch

    def _move_to_quarantine(self, path: Path, reason: str) -> None:
        target_dir = self.directory / "quarantine"
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        os.replace(path, target)
        self.quarantined += 1
        log.error("spool %s: %s is %s; moved to %s, the other batches are replayed", self.directory, path.name,
                  reason, target)


def _state_damage(raw: bytes) -> str | None:
    """What is wrong with the bytes of a `state` file ("<agent_id> <next_seq>\\n", as `_reserve` writes it);
    None when nothing is. A file without its final newline was cut short."""
    if not raw:
        return "empty"
    if len(raw) > _MAX_STATE_BYTES:
        return f"longer than {_MAX_STATE_BYTES} bytes"
    if not raw.endswith(b"\n"):
        return "cut short"
    try:
        owner, _, next_seq = raw[:-1].decode().rpartition(" ")
    except UnicodeDecodeError:
        return "not text"
    if not owner or not owner.isprintable():
        return "no agent id"
    if not (next_seq.isascii() and next_seq.isdigit() and len(next_seq) < 20) or not 1 <= int(next_seq) <= _MAX_SEQ:
        return f"the sequence number is {next_seq[:40]!r}, not a number from 1 to {_MAX_SEQ}"
    return None


def _payload(raw: bytes, path: Path) -> bytes:
    if len(raw) < _HEADER.size:
        raise SpoolCorrupt(f"{len(raw)} bytes, shorter than the header")
    magic, length, crc = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise SpoolCorrupt(f"bad magic {magic!r}")
    data = raw[_HEADER.size:]
    if len(data) != length:
        raise SpoolCorrupt(f"truncated: {len(data)} of {length} payload bytes")
    if zlib.crc32(data) != crc:
        raise SpoolCorrupt("checksum mismatch")
    return data

"""The collector's errors. Each message names the thing that failed and what to do about it.

    SiliconbenchError                (siliconbench.core.errors: the CLIs print any of these as one line)
    └── CollectorError                                                                      exit code
        ├── StoreUnavailable         the store cannot be reached or opened: retry later       5 STORE
        │   └── StoreLocked          another process holds the embedded chDB store            5 STORE
        ├── StoreRefused             the store answered and refused the statement (bad SQL,   5 STORE
        │                            rows it rejects, a memory limit): retrying does not help
        ├── StoreFailed              a batch's insert failed: not acknowledged, its agent     5 STORE
        │                            resends it (the service's reply, never a command's)
        ├── DigestsStale             steps' digests do not match their rows (a crash between  5 STORE
        │                            the two writes): reports refuse them until rebuilt
        ├── InvalidBatch             a message from an agent breaks the wire contract:        2 BAD_INPUT
        │                            never stored (the service replies with its seq and code)
        ├── AuthConfigError          the agent tokens file, a TLS file or the cluster's keys  2 BAD_INPUT
        │                            cannot be used
        ├── NotAuthenticated         a presented credential is not accepted (the service      2 BAD_INPUT
        │                            ends the call UNAUTHENTICATED with this line)
        ├── RunNotFound              no run with the given id (or scenario) is in the store   2 BAD_INPUT
        ├── InvalidOption            a command-line value cannot be used                      2 BAD_INPUT
        ├── PriceMissing             an instance type has no price for the region and kind    2 BAD_INPUT
        └── InvalidPriceFile         a price CSV breaks a rule                                2 BAD_INPUT

Errors of the ClickHouse drivers (clickhouse-connect, chDB) never leave collector/store.py: its
`store_error` maps each to StoreUnavailable or StoreRefused, and every Store method raises only those.
"""

from __future__ import annotations

from siliconbench.core.errors import ExitCode, SiliconbenchError
from siliconbench.core.wire import pb


class CollectorError(SiliconbenchError):
    """Base class: a failure reported to the user as one clear line."""


class StoreUnavailable(CollectorError):
    """ClickHouse (server or embedded chDB) cannot be reached or opened."""

    exit_code = ExitCode.STORE


class StoreLocked(StoreUnavailable):
    """Another process (usually a running collector) holds the embedded chDB store."""


class StoreRefused(CollectorError):
    """The store answered and refused the statement: the message is ClickHouse's own first line."""

    exit_code = ExitCode.STORE


class StoreFailed(CollectorError):
    """Batch `seq` of a stream was not stored (`cause`: the store's error); it is not acknowledged and its
    agent resends it."""

    exit_code = ExitCode.STORE

    def __init__(self, seq: int, cause: BaseException) -> None:
        super().__init__(f"batch {seq} not stored ({type(cause).__name__}: {first_line(cause)})")
        self.seq = seq
        self.cause = cause


class DigestsStale(CollectorError):
    """Some steps' digests do not count the same requests as their rows (a collector crash between
    the two writes); reports would be wrong until they are rebuilt."""

    exit_code = ExitCode.STORE


class InvalidBatch(CollectorError):
    """A message from an agent breaks a rule of the wire contract; it is never stored. The service
    replies with `code` for batch `seq` (0: the stream itself)."""

    def __init__(self, message: str, seq: int = 0, code: pb.ErrorCode = pb.ERROR_CODE_INVALID) -> None:
        super().__init__(message)
        self.seq = seq
        self.code = code


class AuthConfigError(CollectorError):
    """The agent tokens file, a TLS file or the cluster's keys cannot be used."""


class NotAuthenticated(CollectorError):
    """A presented credential is not accepted; the message says why in one line, naming no secret."""


class RunNotFound(CollectorError):
    """No run with the given id is in the store."""


class InvalidOption(CollectorError):
    """A command-line value (filter, SLO, format...) cannot be used; the message says what is accepted."""


class PriceMissing(CollectorError):
    """A node's instance type has no price in the price table (for the region and kind asked)."""


class InvalidPriceFile(CollectorError):
    """A price CSV breaks a rule (missing column, unknown kind, bad number); the message names the line."""


def first_line(exc: BaseException | None, limit: int | None = 300) -> str:
    """What one line says of `exc`: its message's first line (at most `limit` characters; None: all of
    it), else its repr."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else repr(exc)

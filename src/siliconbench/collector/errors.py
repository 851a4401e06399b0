"""The collector's errors. Each message names the thing that failed and what to do about it.

    SiliconbenchError                (siliconbench.core.errors: the CLIs print any of these as one line)
    └── CollectorError
        ├── StoreUnavailable         the store cannot be reached or opened: retry later (an agent resends)
        │   └── StoreLocked          another process holds the embedded chDB store
        ├── StoreRefused             the store answered and refused the statement (bad SQL, rows it rejects,
        │                            a memory limit): retrying the same statement does not help
        ├── InvalidBatch             a message from an agent breaks the wire contract: never stored
        ├── RunNotFound              no run with the given id (or scenario) is in the store
        ├── InvalidOption            a command-line value cannot be used
        ├── PriceMissing             an instance type has no price for the region and kind asked
        └── InvalidPriceFile         a price CSV breaks a rule

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


class InvalidBatch(CollectorError):
    """A message from an agent breaks a rule of the wire contract; it is never stored. The service
    replies with `code` for batch `seq` (0: the stream itself)."""

    seq: int = 0
    code: pb.ErrorCode = pb.ERROR_CODE_INVALID


class RunNotFound(CollectorError):
    """No run with the given id is in the store."""


class InvalidOption(CollectorError):
    """A command-line value (filter, SLO, format...) cannot be used; the message says what is accepted."""


class PriceMissing(CollectorError):
    """A node's instance type has no price in the price table (for the region and kind asked)."""


class InvalidPriceFile(CollectorError):
    """A price CSV breaks a rule (missing column, unknown kind, bad number); the message names the line."""

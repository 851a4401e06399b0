"""The error base that both sides share. Each message names the thing that failed and what to do about it.

    SiliconbenchError               a failure reported to the user as one clear line, never a traceback
    ├── ConfigError                 a flag, plan or environment value is invalid (every problem at once)
    └── AddressInUse                a port to listen on is taken (or the address is not this host's)

Each deployable hangs its own tree below `SiliconbenchError` (siliconbench/agent/errors.py,
siliconbench/collector/errors.py), so a command line catches one class. Each class carries the exit code
the command lines end with (`ExitCode`), so a script can tell a wrong flag from a dead target.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of both command lines (README, "Exit codes"). 3 is a fleet run that did not finish."""

    OK = 0
    INTERNAL = 1  # an unforeseen failure: a bug; --verbose shows the traceback to report
    BAD_INPUT = 2  # a flag, plan, file or run id the command cannot use
    RUN_UNFINISHED = 3  # `run status --watch` saw the run end other than finished
    TARGET = 4  # the vLLM target is unreachable, does not answer in time, or is not a vLLM serving the model
    STORE = 5  # the store cannot be opened or reached, is locked by another process, or refused a statement
    ADDRESS_IN_USE = 6  # a port to listen on is taken
    COLLECTOR = 7  # the collector is unreachable, or has not acknowledged everything the agent sent
    AGENT_SATURATED = 8  # `workers: auto`: the agent could not keep up with the load on every core it may use
    NO_LOAD_WITHIN_SLO = 9  # `search`: even the smallest probe failed the SLOs (an answer, printed as one)
    SLO_BROKEN = 10  # `check-slo`, `plan --validate`: a node of the run broke an SLO (a verdict, printed as one)
    INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it: 128 + 2


class SiliconbenchError(Exception):
    """Base class: a failure the user sees as one clear line."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class ConfigError(SiliconbenchError):
    """A flag, plan or environment value is invalid; the message names the key and what is accepted."""


class AddressInUse(SiliconbenchError):
    """A server cannot listen on the address given: the port is taken, or the host is not this machine's."""

    exit_code = ExitCode.ADDRESS_IN_USE

"""The error base that both sides share. Each message names the thing that failed and what to do about it.

    SiliconbenchError               a failure reported to the user as one clear line, never a traceback
    └── ConfigError                 a flag, plan or environment value is invalid (every problem at once)

Each deployable hangs its own tree below `SiliconbenchError` (siliconbench/agent/errors.py,
siliconbench/collector/errors.py), so a command line catches one class.
"""

from __future__ import annotations


class SiliconbenchError(Exception):
    """Base class: a failure the user sees as one clear line."""


class ConfigError(SiliconbenchError):
    """A flag, plan or environment value is invalid; the message names the key and what is accepted."""

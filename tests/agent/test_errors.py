"""The agent's error tree: what stops a command and what is stored with one request."""

from __future__ import annotations

from siliconbench.agent import errors
from siliconbench.core.errors import SiliconbenchError
from siliconbench.core.outcomes import ErrorClass


def _subclasses(cls: type) -> set[type]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(c) for c in direct))


def test_every_stream_fault_stores_a_declared_error_class():
    faults = _subclasses(errors.StreamFault)
    assert faults and all(isinstance(f.error_class, ErrorClass) for f in faults)


def test_command_errors_share_the_base_that_the_command_line_catches():
    assert issubclass(errors.AgentError, SiliconbenchError) and issubclass(errors.ConfigError, SiliconbenchError)


def test_a_request_failure_is_never_mistaken_for_a_command_failure():
    assert not issubclass(errors.StreamFault, SiliconbenchError)

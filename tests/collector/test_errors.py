"""The collector's errors carry what their handlers need as named attributes, and each its exit code."""

from __future__ import annotations

from siliconbench.collector.errors import (AuthConfigError, CollectorError, DigestsStale, InvalidBatch, StoreFailed,
                                           StoreUnavailable, first_line)
from siliconbench.core.errors import ExitCode
from siliconbench.core.wire import pb


def test_a_failed_store_names_its_batch_and_cause():
    cause = StoreUnavailable("the store chdb://x is unavailable: gone\nmore detail")
    failed = StoreFailed(7, cause)
    assert (failed.seq, failed.cause, failed.exit_code) == (7, cause, ExitCode.STORE)
    assert str(failed) == "batch 7 not stored (StoreUnavailable: the store chdb://x is unavailable: gone)"


def test_an_invalid_batch_is_built_with_the_seq_and_code_to_reply():
    rejected = InvalidBatch("batch 3 rejected: no batch_id", 3, pb.ERROR_CODE_PROTOCOL)
    assert (rejected.seq, rejected.code, str(rejected)) == (3, pb.ERROR_CODE_PROTOCOL, "batch 3 rejected: no batch_id")
    assert (InvalidBatch("stream").seq, InvalidBatch("stream").code) == (0, pb.ERROR_CODE_INVALID)


def test_every_collector_error_is_in_the_tree_with_its_exit_code():
    assert all(issubclass(kind, CollectorError) for kind in (StoreFailed, DigestsStale, AuthConfigError))
    assert DigestsStale("stale").exit_code == ExitCode.STORE
    assert AuthConfigError("bad tokens file").exit_code == ExitCode.BAD_INPUT


def test_a_log_line_says_the_first_line_of_an_error_or_its_repr():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("x" * 400)) == "x" * 300
    assert first_line(ValueError("x" * 400), None) == "x" * 400
    assert first_line(ValueError()) == "ValueError()"

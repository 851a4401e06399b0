"""A file the user names is read whole only within its bound; past it, or unreadable, one line says so."""

from __future__ import annotations

import pytest

from siliconbench.core.errors import ConfigError
from siliconbench.core.files import read_capped


def test_a_file_within_its_bound_is_read_whole(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(b"x" * 1024)
    assert read_capped(str(path), 1024, "plan file", "fix") == b"x" * 1024


def test_a_file_past_its_bound_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_bytes(b"x" * (1 << 20) + b"y")
    with pytest.raises(ConfigError, match=r"^trace .*trace.jsonl is larger than 1 MiB; cut it$"):
        read_capped(str(path), 1 << 20, "trace", "cut it")


def test_a_missing_file_names_itself_and_why(tmp_path):
    with pytest.raises(ConfigError, match=r"^cannot read plan file .*nope.yaml: No such file or directory$"):
        read_capped(str(tmp_path / "nope.yaml"), 10, "plan file", "fix")

"""A fleet plan's dataset resolves only inside the agents' datasets directory, links included."""

from __future__ import annotations

import re

import pytest

from siliconbench.core.datasets import fleet_dataset_path
from siliconbench.core.errors import ConfigError


def test_a_relative_name_resolves_under_the_directory(tmp_path):
    assert fleet_dataset_path("prompts/a.jsonl", tmp_path) == (tmp_path / "prompts" / "a.jsonl").resolve()


@pytest.mark.parametrize("name", ["/etc/passwd", "../x.jsonl", "a/../../x.jsonl", ""])
def test_an_absolute_or_climbing_name_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match=re.escape("without '..'")):
        fleet_dataset_path(name, tmp_path)


def test_a_link_that_leads_out_is_refused(tmp_path):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "evil.jsonl").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match="symbolic link"):
        fleet_dataset_path("evil.jsonl", tmp_path / "datasets")

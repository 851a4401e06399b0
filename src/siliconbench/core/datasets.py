"""Where a fleet plan may read a dataset on a node: only inside the agent's datasets directory.

A plan given to `siliconbench-collector run start` travels to every matching node, so it must not
make an agent open an arbitrary file there (`dataset: /etc/passwd` was accepted). A fleet plan's
`dataset` is therefore a relative path, without `..`, resolved under FLEET_DATASET_DIR: the
directory `datasets` in the agent daemon's working directory (mount the datasets there). The
collector refuses other names before starting anything; the agent checks again, after resolving
symbolic links, before it reads. A plan run locally with `siliconbench-agent run` may name any file:
its author is on the node already.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from siliconbench.core.errors import ConfigError

FLEET_DATASET_DIR = Path("datasets")


def check_fleet_dataset(name: str) -> None:
    """ConfigError unless `name` is a relative path that stays inside the datasets directory."""
    parts = PurePosixPath(name).parts
    if not name or PurePosixPath(name).is_absolute() or "\\" in name or ".." in parts:
        raise ConfigError(f"dataset {name[:200]!r}: a fleet plan names a dataset relative to the agents' "
                          f"'{FLEET_DATASET_DIR}/' directory, without '..' (e.g. dataset: sharegpt.jsonl)")


def fleet_dataset_path(name: str, base: Path = FLEET_DATASET_DIR) -> Path:
    """The file a fleet plan's dataset names, under `base`; ConfigError if it (or a link in it) leads out."""
    check_fleet_dataset(name)
    root = base.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(f"dataset {name[:200]!r} leads outside the agents' '{base}/' directory (a symbolic link?)")
    return path

"""Reading a file the user named, whole but bounded: a plan, a trace."""

from __future__ import annotations

from siliconbench.core.errors import ConfigError


def read_capped(path: str, limit: int, what: str, fix: str) -> bytes:
    """The bytes of `path`, which must hold at most `limit` bytes (more are never read into memory);
    ConfigError naming `what` ('plan file', 'trace') and, past the limit, `fix`."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise ConfigError(f"{what} {path} is larger than {limit >> 20} MiB; {fix}")
    return raw

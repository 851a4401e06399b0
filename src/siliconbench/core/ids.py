"""Identifiers that both sides mint or parse."""

from __future__ import annotations

import time
import uuid


def new_run_id() -> str:
    """A run id that sorts by start time (UTC, to the second) and is unique: `20261129T033301Z-a1b2c3`."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]

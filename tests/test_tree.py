"""The tracked tree holds no unresolved merge: a conflict marker committed in a README, a doc or a module is
a page that reads wrong or a module that does not import, and nothing else would catch the first."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(rb"^(<{7} |={7}$|>{7} )", re.M)


def test_no_tracked_text_file_holds_a_conflict_marker():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    marked = [name for name in tracked.decode().split("\0")
              if name and (ROOT / name).is_file() and MARKER.search((ROOT / name).read_bytes())]
    assert marked == []

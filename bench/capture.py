"""A tcpdump capture of one TCP port on loopback, with nanosecond kernel timestamps.

    with Capture.start(port, path) as capture:   # returns once tcpdump is listening
        ...                                      # the traffic to capture
    capture.dropped                               # packets the kernel or tcpdump dropped (from its stderr)

`Capture.unavailable()` says why no capture can be taken here (no tcpdump, or no right to capture on
loopback), or None. scripts/ensure_tcpdump.sh installs tcpdump where it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

BUFFER_KIB = 64 * 1024  # the kernel's capture buffer (-B): ample for a run's bursts, so nothing is dropped
# Without --immediate-mode (a wake-up per packet, on the server's core) the kernel hands tcpdump its packets
# a block at a time, a block at the latest this long after its first packet (tcpdump's 1 s read timeout):
# `stop` waits that long before it signals tcpdump, which exits without reading what is still queued.
FLUSH_S = 1.3


class Capture:
    def __init__(self, proc: subprocess.Popen, path: Path, stderr: Path) -> None:
        self.proc = proc
        self.path = path
        self._stderr = stderr
        self.captured = self.dropped = 0

    @staticmethod
    def unavailable() -> str | None:
        """Why a loopback capture is impossible here, or None when it works (tried for a moment)."""
        if shutil.which("tcpdump") is None:
            return "tcpdump is not installed (scripts/ensure_tcpdump.sh installs it)"
        with tempfile.TemporaryDirectory() as tmp:
            try:
                capture = Capture.start(9, Path(tmp) / "probe.pcap")
            except RuntimeError as exc:
                return str(exc)
            capture.proc.kill()
            capture.proc.wait()
        return None

    @classmethod
    def start(cls, port: int, path: Path, cpu: int | None = None) -> Capture:
        """Capture TCP port `port` on `lo` into `path` (pcap, ns timestamps); pinned to `cpu` if given."""
        stderr = path.with_suffix(".stderr")
        args = ["tcpdump", "-i", "lo", "-n", "-s", "0", "-B", str(BUFFER_KIB), "--time-stamp-precision=nano",
                "-w", str(path), f"tcp port {port}"]
        if os.geteuid() == 0:
            args[1:1] = ["-Z", "root"]  # keep root's rights to write `path` (tcpdump would drop to its own user)
        if cpu is not None and shutil.which("taskset"):
            args = ["taskset", "-c", str(cpu), *args]
        with stderr.open("wb") as err:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 10
        while b"listening on" not in stderr.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                text = stderr.read_text(errors="replace").strip().splitlines()
                raise RuntimeError(f"tcpdump cannot capture on lo: {text[-1] if text else 'no output'} (it needs "
                                   "root or CAP_NET_RAW)")
            time.sleep(0.01)
        return cls(proc, path, stderr)

    def stop(self) -> None:
        """Stop tcpdump once the kernel has handed it every packet, and read its packet counts."""
        time.sleep(FLUSH_S)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        text = self._stderr.read_text(errors="replace")
        self.captured = _count(text, "packets captured")
        self.dropped = _count(text, "packets dropped by kernel") + _count(text, "packets dropped by interface")

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _count(text: str, what: str) -> int:
    found = re.search(rf"(\d+) {what}", text)
    return int(found.group(1)) if found else 0

"""A page looked at in headless Chromium (Debian's; scripts/ensure_chromium.sh installs it): a probe
script added to a copy of the page (the reports themselves have none) measures what was laid out and writes
it into the DOM as JSON, beside the page's own errors (script errors, resources that failed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Collects the page's errors from the start; the probe proper runs on load and reads them.
_ERRORS = """<script>window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.target && e.target.outerHTML)), true);
</script>"""


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (scripts/ensure_chromium.sh installs it)")
    return found


def probe(page: str, script: str, tmp_path: Path, width: int = 1400) -> dict:
    """Load `page` with `script` (which must set `window.__result` on load) and return that result, with
    `errors`: the page's errors and the console's."""
    body = script + "<script>window.addEventListener('load', () => { const pre = document.createElement('pre'); " \
        "pre.id = 'probe'; pre.textContent = JSON.stringify({...window.__result, errors: window.__errors}); " \
        "document.body.appendChild(pre); });</script>"
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + _ERRORS, 1).replace("</body>", body + "</body>"),
                      encoding="utf-8")
    done = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},2000",
                           "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, "the probe wrote nothing: the page did not load in chromium"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                        .replace("&amp;", "&"))
    result["errors"] += [line for line in done.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    return result

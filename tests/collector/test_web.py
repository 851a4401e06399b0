"""`serve --http`: beyond loopback every page asks for an operator token of the tokens file (a header, or
`?token=` once, kept in an HttpOnly cookie); an agent's token or none is refused with the fix; a listener
beyond loopback with no tokens file is refused before anything starts; with the collector's certificate the
pages are served over TLS only."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from siliconbench.core.errors import ExitCode
from siliconbench.core.listen import is_loopback
from tests.collector.test_service import _make_cert
from tests.servers import start_collector

OPERATOR, AGENT = "operator-secret-1", "agent-secret-1"
PATHS = ("/", "/run?id=x", "/live.js", "/api/live?run=x", "/report?run=x", "/fleet-report?run=x",
         "/search-report?id=x")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=tls))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=300) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A collector whose pages listen on every interface; yields their loopback URL."""
    tmp = tmp_path_factory.mktemp("web")
    tokens = tmp / "tokens"
    tokens.write_text(f"{OPERATOR} operator\n{AGENT} agent=node-a\n")
    collector = start_collector(f"chdb://{tmp}/data", tmp / "collector.log", "--agent-tokens-file", str(tokens),
                                "--http", "0.0.0.0:0")
    try:
        port = collector.wait_log(re.compile(r"pages listening on http://0\.0\.0\.0:(\d+) \(operator token required\)"))
        yield f"http://127.0.0.1:{port.group(1)}", collector
    finally:
        collector.stop()


def test_beyond_loopback_no_token_and_an_agent_token_are_refused_on_every_page(guarded):
    url, collector = guarded
    for path in PATHS:
        for headers in ({}, {"Authorization": f"Bearer {AGENT}"}, {"Authorization": "Bearer wrong"},
                        {"Cookie": f"siliconbench_operator={AGENT}"}):
            status, _, body = get(url + path, headers)
            assert status == 401 and "needs an operator token" in body, (path, headers)
        status, _, _ = get(f"{url}{path}{'&' if '?' in path else '?'}token={AGENT}")
        assert status == 401, path
    assert OPERATOR not in collector.log() and AGENT not in collector.log()


def test_beyond_loopback_an_operator_token_reads_the_pages(guarded):
    url, _ = guarded
    status, _, body = get(url + "/", {"Authorization": f"Bearer {OPERATOR}"})
    assert status == 200 and "<h1>Runs</h1>" in body
    status, _, body = get(url + "/api/live?run=no-such-run", {"Authorization": f"Bearer {OPERATOR}"})
    assert status == 404 and "no run 'no-such-run'" in body


def test_a_token_in_the_address_moves_into_an_http_only_cookie_that_then_reads_the_pages(guarded):
    url, _ = guarded
    status, headers, _ = get(f"{url}/run?id=r1&token={OPERATOR}")
    assert status == 303 and headers["Location"] == "/run?id=r1"  # the token leaves the address bar
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, body = get(f"{url}/run?id=r1", {"Cookie": cookie.split(";")[0]})
    assert status == 200 and 'data-run="r1"' in body


def test_pages_beyond_loopback_without_a_tokens_file_are_refused_before_serving(tmp_path):
    done = subprocess.run([sys.executable, "-m", "siliconbench.collector", "serve", "--listen", "127.0.0.1:0",
                           "--http", "0.0.0.0:8080", "--store", f"chdb://{tmp_path}/data"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitCode.BAD_INPUT
    assert "--http 0.0.0.0:8080 listens beyond loopback: it needs --agent-tokens-file" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "data").exists()


def test_with_the_collector_s_certificate_the_pages_are_served_over_tls_only(tmp_path):
    ca = _make_cert(tmp_path, "ca", None)
    cert, key = _make_cert(tmp_path, "server", ca)
    collector = start_collector(f"chdb://{tmp_path}/data", tmp_path / "collector.log", "--tls-cert", str(cert),
                                "--tls-key", str(key), "--http", "127.0.0.1:0")
    try:
        port = collector.wait_log(re.compile(r"pages listening on https://127\.0\.0\.1:(\d+)")).group(1)
        status, _, body = get(f"https://localhost:{port}/", tls=ssl.create_default_context(cafile=ca[0]))
        assert status == 200 and "<h1>Runs</h1>" in body
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(f"http://127.0.0.1:{port}/")
    finally:
        collector.stop()


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("", False),
                                                ("::", False), ("10.0.0.5", False), ("collector.local", False)])
def test_only_loopback_addresses_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback

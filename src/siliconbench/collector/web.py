"""`serve --http ADDR`: read-only pages from the running collector.

    /                       the runs (`runs list`'s rows), each linked to its live view and report
    /run?id=RUN             a live view of a run or fleet run, refreshed every POLL_MS while it runs
    /api/live?run=RUN       what that view shows, as JSON (collector/live.py)
    /report?run=RUN         the run's report in HTML       (`report --run RUN --format html`)
    /fleet-report?run=RUN   a fleet run's report in HTML   (`run report --run RUN --format html`)
    /search-report?id=ID    a search's report in HTML      (`report --search ID --format html`)

Reports are the read commands' own output: they run through the collector's read service
(collector/reads.py), as `report` does while it serves. Nothing here writes. On a loopback address anyone
on this host may read (they can read an embedded store's files anyway); beyond loopback every request needs
an operator token of the tokens file: `Authorization: Bearer TOKEN`, or `?token=TOKEN` once, which the page
keeps in an HttpOnly cookie. TLS with the collector's certificate when it has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from siliconbench.collector import web_pages
from siliconbench.collector.errors import AuthConfigError, CollectorError
from siliconbench.collector.identity import Authenticator
from siliconbench.collector.live import live_run
from siliconbench.collector.reads import ReadService
from siliconbench.collector.rollups import list_runs
from siliconbench.collector.store import Store
from siliconbench.core.errors import AddressInUse, ExitCode
from siliconbench.core.listen import is_loopback, split_address

log = logging.getLogger(__name__)

COOKIE = "siliconbench_operator"
REFUSED = ("this page needs an operator token: open it with ?token=TOKEN (a `TOKEN operator` line of the "
           "collector's tokens file) or send `Authorization: Bearer TOKEN`")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_tls(cert: Path | None, key: Path | None, client_ca: Path | None) -> ssl.SSLContext | None:
    """The pages' TLS from the collector's own options (None: plain HTTP); with a client CA, browsers
    must present a certificate it signed, as agents must."""
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise AuthConfigError(f"cannot use the TLS files {cert}, {key} for --http: {exc}") from None
    return context


def operator_guard(tokens: Authenticator, secure: bool) -> Callable:
    """Middleware: every request carries an operator token (header, cookie, or `?token=` once, which is
    moved into the cookie and out of the address); anything else is refused with 401 and the fix."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        offered = request.query.get("token")
        header = request.headers.get("Authorization")
        token = offered or request.cookies.get(COOKIE, "")
        granted = tokens.credential([("authorization", header if header and not offered else f"Bearer {token}")])
        if granted is None or not granted.operator:
            log.warning("page request from %s refused: no operator token", request.remote)
            return web.Response(status=401, text=REFUSED + "\n", headers={"WWW-Authenticate": "Bearer"})
        if offered:
            raise _to_cookie(request, offered, secure)
        return await handler(request)

    return guard


def _to_cookie(request: web.Request, token: str, secure: bool) -> web.HTTPSeeOther:
    query = {k: v for k, v in request.query.items() if k != "token"}
    moved = web.HTTPSeeOther(request.rel_url.with_query(query))
    moved.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/")
    return moved


class Pages:
    """The handlers: reads of `store` (held by this collector) and read commands through `reads`."""

    def __init__(self, store: Store, reads: ReadService) -> None:
        self._store = store
        self._reads = reads

    async def runs(self, request: web.Request) -> web.Response:
        rows = await asyncio.to_thread(list_runs, self._store)
        return _html(web_pages.runs_page(rows, self._store.location.shown))

    async def run(self, request: web.Request) -> web.Response:
        return _html(web_pages.live_page(_wanted(request, "id")))

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(text=web_pages.LIVE_SCRIPT, content_type="text/javascript",
                            headers={"Cache-Control": "no-store"})

    async def live(self, request: web.Request) -> web.Response:
        run_id = _wanted(request, "run")
        try:
            found = await asyncio.to_thread(live_run, self._store, run_id)
        except CollectorError as exc:
            return web.json_response({"error": str(exc)}, status=404 if exc.exit_code == ExitCode.BAD_INPUT else 500)
        return web.json_response(found.to_json(), headers={"Cache-Control": "no-store"})

    async def report(self, request: web.Request) -> web.Response:
        return await self._command(["report", "--run", _wanted(request, "run"), "--format", "html"])

    async def fleet_report(self, request: web.Request) -> web.Response:
        return await self._command(["run", "report", "--run", _wanted(request, "run"), "--format", "html"])

    async def search_report(self, request: web.Request) -> web.Response:
        return await self._command(["report", "--search", _wanted(request, "id"), "--format", "html"])

    async def _command(self, argv: list[str]) -> web.Response:
        """A read command's HTML output, as `siliconbench-collector ARGV` prints it; its error otherwise."""
        code, out, err = await asyncio.to_thread(self._reads.answer, [*argv, "--store", self._store.location.dsn])
        if code != 0:
            status = 404 if code == ExitCode.BAD_INPUT else 500
            return _html(web_pages.error_page(err.strip() or f"the report ended with exit code {code}"), status)
        return web.Response(text=out, content_type="text/html")


def _wanted(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise web.HTTPBadRequest(text=f"this page needs ?{name}=...; the runs are listed at /\n")
    return value


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html",
                        headers={"Content-Security-Policy": web_pages.CSP})


def pages_app(store: Store, reads: ReadService, tokens: Authenticator | None, secure: bool) -> web.Application:
    """The pages as an application; `tokens` None: no token asked (a loopback listener)."""
    app = web.Application(middlewares=[operator_guard(tokens, secure)] if tokens is not None else [])
    pages = Pages(store, reads)
    app.router.add_get("/", pages.runs)
    app.router.add_get("/run", pages.run)
    app.router.add_get("/live.js", pages.script)
    app.router.add_get("/api/live", pages.live)
    app.router.add_get("/report", pages.report)
    app.router.add_get("/fleet-report", pages.fleet_report)
    app.router.add_get("/search-report", pages.search_report)
    return app


@contextlib.asynccontextmanager
async def serving_pages(store: Store, reads: ReadService, listen: str, tokens: Authenticator | None,
                        tls: ssl.SSLContext | None) -> AsyncIterator[None]:
    """While the block runs: the pages on `listen`; beyond loopback only for operator tokens of `tokens`.
    Logs "pages listening on http(s)://HOST:PORT" once they answer (port 0: the one the kernel picked)."""
    host, port = split_address(listen, "--http")
    guarded = not is_loopback(host)
    if guarded and tokens is None:  # ServeConfig refuses this first; never serve the store openly by mistake
        raise AuthConfigError(f"--http {listen} listens beyond loopback: it needs --agent-tokens-file")
    runner = web.AppRunner(pages_app(store, reads, tokens if guarded else None, tls is not None), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host or None, port, ssl_context=tls).start()
    except OSError as exc:
        await runner.cleanup()
        raise AddressInUse(f"cannot listen on --http {listen}: {exc.strerror}") from None
    bound = runner.addresses[0]
    scheme = "https" if tls else "http"
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    log.info("pages listening on %s://%s:%d (%s)", scheme, shown, bound[1],
             "operator token required" if guarded else "loopback: no token asked")
    try:
        yield
    finally:
        await runner.cleanup()

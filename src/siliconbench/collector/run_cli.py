"""`siliconbench-collector run start|status|cancel`: fleet runs through a running collector."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import grpc
import typer

from siliconbench.collector import settings
from siliconbench.collector.control import TERMINAL
from siliconbench.collector.fleet import STATE_NAMES, check_selector
from siliconbench.collector.options import DEFAULT_STORE, PasswordOpt, StoreOpt
from siliconbench.collector.reads import served
from siliconbench.core.cli import fail as _fail
from siliconbench.core.errors import ExitCode
from siliconbench.core.plan import Plan, load_plan
from siliconbench.core.rpc import pb_grpc
from siliconbench.core.wire import pb

run_app = typer.Typer(
    help="Fleet runs: one plan on every matching node, started together. The bearer token and TLS files come "
         "from SILICONBENCH_AGENT_TOKEN and SILICONBENCH_TLS_CA/_CERT/_KEY, as for the agent.",
    no_args_is_help=True)

CollectorOpt = Annotated[str, typer.Option(
    envvar=settings.COLLECTOR,
    help="Collector gRPC address HOST:PORT. A name that resolves to several addresses (a headless Service) "
         "reaches every replica.")]


CALL_TIMEOUT_S = 10  # a Control call reads a few rows; a collector silent this long is hung or not one


def _addresses(collector: str) -> list[str]:
    """Every address the collector name resolves to, so each replica hears a start/cancel."""
    host, _, port = collector.rpartition(":")
    if not host or not port.isdigit():
        raise _fail(f"--collector {collector!r} must be HOST:PORT")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _fail(f"cannot resolve collector host {host!r}: {exc.strerror}") from None
    seen = sorted({str(info[4][0]) for info in infos})  # the host of an IPv4 or IPv6 sockaddr
    return [f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip in seen]


def _channel(address: str) -> grpc.Channel:
    """Plaintext, or TLS (mTLS) when SILICONBENCH_TLS_CA (and _CERT/_KEY) name PEM files, as for the agent."""
    credentials = settings.client_tls().credentials()
    return grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)


def _call(address: str, method: str, request: Any) -> Any:
    """One Control call; the bearer token comes from SILICONBENCH_OPERATOR_TOKEN (settings.operator_token)."""
    token = settings.operator_token()
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with _channel(address) as channel:
        return getattr(pb_grpc.ControlStub(channel), method)(request, timeout=CALL_TIMEOUT_S, metadata=metadata)


def _fan_out(addresses: list[str], method: str, request: Any) -> list[Any]:
    """`method(request)` on each replica in turn, the replies in the same order. The first replica that
    fails ends the command with one line naming it: a start or cancel must reach every replica."""
    replies = []
    for address in addresses:
        try:
            replies.append(_call(address, method, request))
        except grpc.RpcError as exc:
            raise _rpc_error(address, exc) from None
    return replies


def _rpc_error(address: str, exc: grpc.RpcError) -> typer.Exit:
    """One line for a failed call: the collector is down or hung (exit 7), or it refused the request (2)."""
    if exc.code() == grpc.StatusCode.UNAVAILABLE:
        return _fail(f"collector at {address} is unreachable; is `siliconbench-collector serve` running there?",
                     ExitCode.COLLECTOR)
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return _fail(f"collector at {address} accepted the connection but did not answer within {CALL_TIMEOUT_S} s; "
                     "is it a collector's gRPC port (--collector), and is it overloaded?", ExitCode.COLLECTOR)
    return _fail(f"collector at {address}: {exc.details()}")


def parse_selector(pairs: list[str], scenario: str | None) -> dict[str, str]:
    selector = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise _fail(f"--selector takes KEY=VALUE (e.g. instance-type=p5.48xlarge), got {pair!r}")
        selector[key.strip()] = value.strip()
    if scenario:
        selector["scenario"] = scenario
    check_selector(selector)
    return selector


@run_app.command()
def start(
    plan: Annotated[str, typer.Option(help="Plan file (YAML/JSON of the agent's run options).")],
    selector: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE over instance-type, node, agent, scenario, accelerator; repeatable.")] = None,
    scenario: Annotated[Optional[str], typer.Option(help="Only nodes labelled with this scenario (same as --selector scenario=X).")] = None,
    start_delay_s: Annotated[float, typer.Option(help="Seconds from now to the shared start.")] = 3.0,
    min_agents: Annotated[int, typer.Option(help="Start only when at least this many agents match.")] = 1,
    wait_s: Annotated[float, typer.Option(help="How long to wait for --min-agents to connect.")] = 0.0,
    collector: CollectorOpt = "127.0.0.1:50051",
) -> None:
    """Send PLAN to every connected agent that matches, to start together; prints the run id."""
    run_id = start_fleet_run(load_plan(plan), parse_selector(selector or [], scenario), collector, min_agents,
                             wait_s, start_delay_s)
    typer.echo(run_id)


def start_fleet_run(plan: Plan, selector: dict[str, str], collector: str, min_agents: int, wait_s: float,
                    start_delay_s: float, exactly: bool = False) -> str:
    """Start `plan` on every connected agent that `selector` matches, once at least `min_agents` are (`exactly`:
    refuse more than that); says who starts when on standard error, returns the run id."""
    addresses = _addresses(collector)
    found = _wait_for_agents(addresses, selector, min_agents, wait_s)
    if exactly and found > min_agents:
        raise _fail(f"{found} connected agents match {selector}, and the run is for {min_agents}; "
                    "narrow the nodes with --selector (e.g. node=NAME is one node)")
    start_at = time.time_ns() + int(start_delay_s * 1e9)
    request = pb.StartRunRequest(plan_json=plan.to_json(), selector=selector, start_at_unix_ns=start_at)
    replies = _fan_out(addresses[:1], "StartRun", request)
    request.run_id = run_id = replies[0].run_id  # the first replica names the run; the others reuse its id
    replies += _fan_out(addresses[1:], "StartRun", request)
    agents = sorted({agent for reply in replies for agent in reply.agents})  # one reconnecting may be on two
    if not agents:
        raise _fail(f"no connected agent matches {selector or 'the (empty) selector'}; see the collector's log for who is connected")
    typer.echo(f"run {run_id}: {len(agents)} agents ({', '.join(agents)}), start at "
               f"{time.strftime('%H:%M:%S', time.gmtime(start_at / 1e9))} UTC", err=True)
    return run_id


def _wait_for_agents(addresses: list[str], selector: dict[str, str], wanted: int, wait_s: float) -> int:
    """Wait until at least `wanted` agents over all replicas match, or fail after wait_s; how many match."""
    deadline = time.monotonic() + wait_s
    while True:
        found = [hello for reply in _fan_out(addresses, "ListAgents", pb.ListAgentsRequest(selector=selector))
                 for hello in reply.agents]
        if len(found) >= wanted:
            return len({hello.agent_id for hello in found})
        if time.monotonic() >= deadline:
            names = ", ".join(sorted(a.agent_id for a in found)) or "none"
            raise _fail(f"{len(found)} connected agents match {selector or 'the empty selector'} ({names}); "
                        f"{wanted} wanted (raise --wait-s, or check the agents' logs)")
        time.sleep(0.5)


@run_app.command()
def agents(
    selector: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE filters, repeatable.")] = None,
    collector: CollectorOpt = "127.0.0.1:50051",
) -> None:
    """List the agents connected now (over every replica the address reaches)."""
    chosen = parse_selector(selector or [], None)
    for reply in _fan_out(_addresses(collector), "ListAgents", pb.ListAgentsRequest(selector=chosen)):
        for hello in reply.agents:
            typer.echo(f"{hello.agent_id}  node={hello.node_name} instance-type={hello.instance_type or '-'} "
                       f"scenario={hello.scenario or '-'} accelerators={hello.accelerator_count}x{hello.accelerator_kind}")


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total if total else 0
    return "#" * filled + "." * (width - filled)


def render_status(reply: pb.RunStatusReply) -> str:
    lines = [f"run {reply.run_id}: {STATE_NAMES.get(reply.state, 'unknown')}",
             f"{'node':<24} {'scenario':<8} {'instance type':<16} {'state':<10} {'steps':<28} {'requests':>8} "
             f"{'tok/s':>9} {'errors':>6}"]
    for node in reply.nodes:
        p = node.progress
        state = STATE_NAMES.get(p.state, "?") + ("" if node.connected or p.state in TERMINAL else "*")
        lines.append(f"{node.node_name or node.agent_id:<24} {node.scenario or '-':<8} {node.instance_type or '-':<16} "
                     f"{state:<10} [{_bar(p.step, p.steps_total)}] {p.step:>2}/{p.steps_total:<2} {p.requests_done:>8} "
                     f"{p.output_tokens_per_s:>9,.0f} {p.errors:>6}" + (f"  {p.detail}" if p.detail else "")
                     + (f"  [{' and '.join(node.unacknowledged)} not acknowledged]" if node.unacknowledged else ""))
    if any(not n.connected and n.progress.state not in TERMINAL for n in reply.nodes):
        lines.append("* not connected to any collector replica now")
    if any(n.unacknowledged for n in reply.nodes):
        lines.append("not acknowledged: the node has not confirmed that command yet; the collector sends it again "
                     "on each of its streams")
    return "\n".join(lines)


def _status_once(collector: str, run: str) -> pb.RunStatusReply:
    """The run's status from the store (every replica reads the same one); a node counts as connected
    when any replica holds its stream (agents move between replicas as their streams end), and a command
    is unacknowledged while any replica waits for its ack."""
    replies = _fan_out(_addresses(collector), "RunStatus", pb.RunStatusRequest(run_id=run))
    reply = replies[0]
    connected = {n.agent_id for r in replies for n in r.nodes if n.connected}
    waiting: dict[str, set[str]] = {}
    for node in (n for r in replies for n in r.nodes):
        waiting.setdefault(node.agent_id, set()).update(node.unacknowledged)
    for node in reply.nodes:
        node.connected = node.agent_id in connected
        node.unacknowledged[:] = sorted(waiting[node.agent_id], reverse=True)  # start before cancel
    return reply


@run_app.command()
def status(
    run: Annotated[str, typer.Option("--run", help="Run id from `run start`.")],
    watch: Annotated[bool, typer.Option(help="Keep showing progress until the run ends; exit 0 only if it finished.")] = False,
    interval_s: Annotated[float, typer.Option(help="Refresh interval with --watch.")] = 1.0,
    collector: CollectorOpt = "127.0.0.1:50051",
) -> None:
    """Show each node's state, step, requests, tokens/s and errors for a fleet run."""
    if not watch:
        typer.echo(render_status(_status_once(collector, run)))
        return
    tty = sys.stdout.isatty()
    show = (lambda text: typer.echo("\x1b[H\x1b[2J" + text)) if tty else (lambda text: typer.echo(text + "\n"))
    if watch_run(collector, run, interval_s, show, every=tty) != pb.RUN_STATE_FINISHED:
        raise typer.Exit(ExitCode.RUN_UNFINISHED)


def watch_run(collector: str, run: str, interval_s: float, show: Callable[[str], None], every: bool = False) -> pb.RunState:
    """Pass the run's status to `show` until the run ends (each change once; `every`: each refresh, as a
    terminal redraws it); its final state."""
    shown = ""
    while True:
        reply = _status_once(collector, run)
        text = render_status(reply)
        if every or text != shown:
            show(text)
        shown = text
        if reply.state in TERMINAL:
            return reply.state
        time.sleep(interval_s)


@run_app.command()
def cancel(
    run: Annotated[str, typer.Option("--run", help="Run id from `run start`.")],
    collector: CollectorOpt = "127.0.0.1:50051",
) -> None:
    """Stop a fleet run on every node; what was measured so far stays stored. An unknown run id is an error
    (exit 2); a run that has already ended is said so, and nothing is sent."""
    state = _status_once(collector, run).state  # NOT_FOUND for an unknown id: one line, exit 2
    if state in TERMINAL:
        typer.echo(f"run {run} has already ended ({STATE_NAMES.get(state, 'unknown')}); nothing to cancel", err=True)
        return
    replies = _fan_out(_addresses(collector), "CancelRun", pb.CancelRunRequest(run_id=run))
    members = max(reply.agents for reply in replies)  # every replica queues it for every member
    typer.echo(f"run {run}: cancel sent to {members} agents (again on each of their new streams until each "
               "acknowledges it; `run status` shows who has not)")


@run_app.command("report")
@served
def report_run(
    run: Annotated[str, typer.Option("--run", help="Run id.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="markdown, csv, json or html.")] = "markdown",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: standard output).",
                                                   show_default=False)] = None,
    store: StoreOpt = DEFAULT_STORE,
    password: PasswordOpt = None,
) -> None:
    """Compare a fleet run's scenarios: exact percentiles over all nodes of each scenario, each node's state, what
    was measured, charts per scenario and instance type, and cost (`report --run RUN` gives every table per node)."""
    from siliconbench.collector import digests
    from siliconbench.collector.reports import build_fleet_report, renderer
    from siliconbench.collector.reports.terminal import emit
    from siliconbench.collector.store import Store

    render = renderer(fmt)
    opened = Store.open_existing(store, password)
    digests.check(opened, [run])  # its figures come from the digests: refuse ones a crash left short
    emit(render.fleet(build_fleet_report(opened, run)), output, fmt)

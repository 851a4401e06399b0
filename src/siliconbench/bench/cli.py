"""`siliconbench`: benchmark one vLLM server in one command, collector included."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from siliconbench.agent.options import NODE_FLAGS, agent_config, plan_flags
from siliconbench.agent.config import AgentConfig
from siliconbench.bench.result import result_block, result_lines
from siliconbench.bench.run import bench as run_bench
from siliconbench.bench.run import html_report, simulator, step_results
from siliconbench.collector.options import DEFAULT_STORE, StoreOpt
from siliconbench.core.cli import main as run_program
from siliconbench.core.cli import program_options, setup_logging, with_flags
from siliconbench.core.errors import ConfigError
from siliconbench.core.plan import Plan, with_overrides

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.callback()(program_options)

UNSET_COLLECTOR = "(this command's own)"


def _node(**flags: Any) -> AgentConfig:
    """`agent run`'s node flags but --collector: the command runs its own collector."""
    return agent_config(collector=UNSET_COLLECTOR, **flags)


node_flags = with_flags("node", [f for f in NODE_FLAGS if f.name != "collector"], _node)


@app.command("bench")
@node_flags
@plan_flags
def bench_command(
    node: AgentConfig,
    plan: Plan,
    store: StoreOpt = DEFAULT_STORE,
    save_result: Annotated[Optional[Path], typer.Option(help="Write each step's result here as a flat JSON object a line (vllm bench serve's key names where the metric is the same, docs/result-json.md), and the HTML report beside it (FILE with .html).", show_default=False)] = None,
    simulate: Annotated[bool, typer.Option("--simulate", help="Start the vLLM simulator and benchmark it instead of --target (stored as SIMULATED).")] = False,
    run_id: Annotated[Optional[str], typer.Option(help="Run id (default: generated).", show_default=False)] = None,
) -> None:
    """Benchmark TARGET with the plan: the collector runs on the embedded --store for the run, each step's
    result is printed as `vllm bench serve` prints it, and the run stays in the store for reports.
    Exit codes as `siliconbench-agent run`; 130 when interrupted (the steps measured so far are stored)."""
    setup_logging()
    if save_result is not None and save_result.suffix == ".html":
        raise ConfigError(f"--save-result {save_result}: the HTML report is written beside it; name a .json file")
    if not store.startswith("chdb://"):
        raise ConfigError(f"--store {store}: `siliconbench bench` runs its collector on an embedded store "
                          "(chdb://PATH); for a ClickHouse server run `siliconbench-collector serve` and "
                          "`siliconbench-agent run`")
    labelled = with_overrides(plan, scenario=node.scenario or None)
    if simulate:
        with simulator([]) as url:
            run_id, interrupted = run_bench(dataclasses.replace(node, target=url), labelled, store, run_id)
    else:
        run_id, interrupted = run_bench(node, labelled, store, run_id)
    results = step_results(store, run_id, labelled)
    for result in results:
        typer.echo(result_block(result))
    if save_result is not None:
        save_result.write_text(result_lines(results), encoding="utf-8")
        html = save_result.with_suffix(".html")
        html_report(store, run_id, html)
        typer.echo(f"wrote {save_result} and {html}", err=True)
    typer.echo(run_id)
    if interrupted is not None:
        raise interrupted


def main() -> None:
    run_program(app)

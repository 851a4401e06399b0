"""Help answers "what if I leave it out?" for every option of every command, and flags read as flags."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from siliconbench.agent.cli import app as agent_app
from siliconbench.bench.cli import app as bench_app
from siliconbench.collector.cli import app as collector_app
from siliconbench.core.cli import finish_help


def commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


def options_of(app: typer.Typer):
    root = typer.main.get_command(app)
    finish_help(root)
    for path, command in commands(root):
        for option in [*command.params, command.get_help_option(typer.Context(command))]:
            if getattr(option, "param_type_name", "") == "option":
                yield " ".join(path), option


@pytest.mark.parametrize("app", [agent_app, collector_app, bench_app], ids=["agent", "collector", "bench"])
def test_every_optional_option_shows_its_default_and_every_flag_shows_no_type(app):
    for path, option in options_of(app):
        if option.is_flag:
            assert option.metavar == "", (path, option.opts)
        elif not option.required:
            shown = option.show_default is not False and option.default not in (None, "", (), [])
            assert shown or "default" in (option.help or ""), (path, option.opts)


def test_run_help_as_printed_has_no_bool_and_says_none_where_nothing_is_the_default():
    result = subprocess.run([sys.executable, "-m", "siliconbench.agent", "run", "--help"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0 and "<bool>" not in result.stdout
    tls = next(line for line in result.stdout.splitlines() if "--tls-ca " in line)
    assert "[default: none]" in tls


def test_the_demo_names_the_program_as_this_shell_can_run_it(monkeypatch, tmp_path):
    from pathlib import Path

    from siliconbench.collector.cli import typed_name

    monkeypatch.setenv("PATH", str(tmp_path))  # not activated: the installation's bin/ is not on PATH
    monkeypatch.chdir(Path(sys.executable).parent.parent.parent)
    assert typed_name("siliconbench-collector") == str(Path(Path(sys.executable).parent.parent.name, "bin",
                                                            "siliconbench-collector"))
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # activated
    assert typed_name("siliconbench-collector") == "siliconbench-collector"

"""core.cli.main, the last net around both command lines: whatever escapes a command is one line and an
ExitCode; --verbose, anywhere on the line, adds the traceback above it. A configuration model's fields are
its command's flags (model_flags), so each default is written once, in the model."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated, Optional, get_args

import pytest
import typer
from pydantic import Field
from pydantic.dataclasses import dataclass

from siliconbench.core import cli
from siliconbench.core.config import STRICT, Int, Str
from siliconbench.core.errors import ConfigError, ExitCode
from tests.programs import run_program

RAISED = {
    "bug": RuntimeError("something broke"),
    "port": OSError(errno.EADDRINUSE, "Address already in use"),
    "file": FileNotFoundError(errno.ENOENT, "No such file or directory", "plan.yaml"),
    "config": ConfigError("--concurrency: must be positive"),
    "ctrl-c": KeyboardInterrupt(),
}


def program() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.callback()(cli.program_options)

    @app.command()
    def fail(what: str) -> None:
        raise RAISED[what]

    return app


@pytest.mark.parametrize("what, code, line", [
    ("bug", ExitCode.INTERNAL, "error: unexpected RuntimeError: something broke; rerun with --verbose and report"),
    ("port", ExitCode.ADDRESS_IN_USE, "error: cannot listen: Address already in use; stop what holds the port"),
    ("file", ExitCode.BAD_INPUT, "error: plan.yaml: No such file or directory; check the path"),
    ("config", ExitCode.BAD_INPUT, "error: --concurrency: must be positive"),
    ("ctrl-c", ExitCode.INTERRUPTED, "interrupted (Ctrl-C): stopped; what was already stored stays stored"),
])
def test_what_escapes_a_command_is_one_line_and_its_code(capsys, what, code, line):
    with pytest.raises(SystemExit) as exited:
        cli.main(program(), ["fail", what])
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == code and len(err) == 1 and err[0].startswith(line), err


def test_verbose_after_the_command_prints_the_traceback_first(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_verbose", False)  # main sets it for the process: restored after this test
    with pytest.raises(SystemExit) as exited:
        cli.main(program(), ["fail", "bug", "--verbose"])
    err = capsys.readouterr().err
    assert exited.value.code == ExitCode.INTERNAL
    assert err.startswith("Traceback") and err.strip().splitlines()[-1].startswith("error: unexpected RuntimeError")


@dataclass(frozen=True, config=STRICT)
class Knobs:
    """A configuration model whose flags are made from its fields."""

    name: Annotated[Str, Field(description="What to call it.")] = "knob"
    turns: Annotated[Int, Field(ge=1, description="How often to turn it.")] = 2
    label: Annotated[Str | None, Field(description="Printed beside it.")] = None
    log: Annotated[Path | None, Field(description="Where to write.")] = None


def knobs_program() -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.callback()(cli.program_options)

    @app.command()
    @cli.with_flags("knobs", cli.model_flags(Knobs, envvars={"turns": "KNOBS_TURNS"}), cli.model_builder(Knobs))
    def show(knobs: Knobs) -> None:
        typer.echo(repr(knobs))

    return app


def test_a_models_flags_are_its_fields_with_their_defaults_types_and_descriptions():
    flags = {flag.name: flag for flag in cli.model_flags(Knobs)}
    assert list(flags) == ["name", "turns", "label", "log"]
    assert [flags[name].default for name in flags] == ["knob", 2, None, None]
    assert get_args(flags["turns"].annotation)[0] is int  # plain types: typer parses them, the model checks them
    assert get_args(flags["label"].annotation)[0] == Optional[str]
    assert get_args(flags["turns"].annotation)[1].help == "How often to turn it."


def test_the_flags_given_build_the_model_and_the_rest_keep_its_defaults():
    code, lines = run_program(knobs_program(), "show", "--turns", "3", "--log", "out.txt")
    assert code == 0 and lines == [repr(Knobs(turns=3, log=Path("out.txt")))]


def test_a_flag_reads_its_environment_variable(monkeypatch):
    monkeypatch.setenv("KNOBS_TURNS", "5")
    assert run_program(knobs_program(), "show") == (0, [repr(Knobs(turns=5))])


def test_a_value_the_model_refuses_is_one_line_naming_its_flag():
    code, lines = run_program(knobs_program(), "show", "--turns", "0")
    assert code == ExitCode.BAD_INPUT
    assert lines == ["error: options: --turns: must be greater than or equal to 1, got 0"]


def test_help_shows_each_flag_with_its_description_and_default():
    code, lines = run_program(knobs_program(), "show", "--help")
    shown = {line.split()[1]: line for line in lines if line.startswith("│ --")}
    assert code == 0
    assert "What to call it." in shown["--name"] and "[default: knob]" in shown["--name"]
    assert "[env var: KNOBS_TURNS]" in shown["--turns"] and "[default: 2]" in shown["--turns"]


def test_help_text_can_be_given_for_a_command_and_a_field_without_any_is_refused():
    @dataclass(frozen=True, config=STRICT)
    class Bare:
        size: Int = 1

    assert get_args(cli.model_flags(Bare, help={"size": "How big."})[0].annotation)[1].help == "How big."
    with pytest.raises(TypeError, match=r"Bare\.size has no description"):
        cli.model_flags(Bare)


def test_a_default_can_come_from_another_instance_of_the_model():
    assert [flag.default for flag in cli.model_flags(Knobs, only=("turns",), defaults=Knobs(turns=7))] == [7]

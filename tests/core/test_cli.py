"""core.cli.main, the last net around both command lines: whatever escapes a command is one line and an
ExitCode; --verbose, anywhere on the line, adds the traceback above it."""

from __future__ import annotations

import errno

import pytest
import typer

from siliconbench.core import cli
from siliconbench.core.errors import ConfigError, ExitCode

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

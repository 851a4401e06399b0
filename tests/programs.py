"""A command line run in the test process as its program runs it: through `siliconbench.core.cli.main`,
which turns whatever escapes a command into one line on standard error and an exit code (typer's own test
runner calls the app directly and would see the exception instead)."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

import pytest
import typer

from siliconbench.core.cli import main


def run_program(app: typer.Typer, *args: str) -> tuple[int, list[str]]:
    """The exit code, and the lines written to standard output then standard error (200 columns wide)."""
    out, err = io.StringIO(), io.StringIO()
    with (mock.patch.dict(os.environ, {"COLUMNS": "200"}), redirect_stdout(out), redirect_stderr(err),
          pytest.raises(SystemExit) as exited):
        main(app, list(args))
    return int(exited.value.code or 0), (out.getvalue() + err.getvalue()).strip().splitlines()

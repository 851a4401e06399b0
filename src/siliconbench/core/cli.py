"""What both command lines share: one-line errors, and flag groups handed to commands as one object.

A flag group is a list of `flag(...)` parameters and a `build` function that turns their values into
one validated object (an AgentConfig, a Plan, report options). `with_flags` adds the group to a
command's signature, so typer shows and parses the flags, and calls the command with the built object
instead: commands that share a group declare it once and stay a few lines each.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import typer

from siliconbench.core.errors import SiliconbenchError


def fail(exc: Exception | str) -> typer.Exit:
    """Print `exc` as one line on standard error; the caller raises the returned exit (code 2: bad input)."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def flag(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """One flag of a group, as a command parameter would declare it (`annotation` holds the typer.Option)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def with_flags(group: str, flags: list[inspect.Parameter], build: Callable[..., Any]):
    """A decorator: the command gets the `flags` on its command line and, as its `group` argument, what
    `build(**values)` makes of them. A SiliconbenchError from `build` is one line and exit code 2."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != group]
        names = [parameter.name for parameter in flags]

        @functools.wraps(command)
        def wrapper(**values: Any) -> None:
            try:
                built = build(**{name: values.pop(name) for name in names})
            except SiliconbenchError as exc:
                raise fail(exc) from None
            command(**values, **{group: built})

        parameters = own + flags
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate

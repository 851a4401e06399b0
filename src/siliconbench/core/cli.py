"""What both command lines share: one-line errors with distinct exit codes, and flag groups handed to
commands as one object.

No traceback reaches a user: `main` runs a typer app and turns whatever escapes a command into one line on
standard error and an `ExitCode` (a SiliconbenchError its own code, a taken port 6, a missing file 2,
Ctrl-C 130, anything unforeseen 1 with a request to report it). `--verbose` (or `-v`), anywhere on the
command line, is one option of the whole program: it turns on debug logging and prints the traceback above
that line.

A flag group is a list of `flag(...)` parameters and a `build` function that turns their values into
one validated object (an AgentConfig, a Plan, report options). `with_flags` adds the group to a
command's signature, so typer shows and parses the flags, and calls the command with the built object
instead: commands that share a group declare it once and stay a few lines each. `model_flags` makes the
group from a configuration model's fields (name, type, default, `Field(description=...)` as help), and
`model_builder` validates the flags into the model: a default is written once, in the model.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import sys
import traceback
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo

import typer
from typer.core import HAS_RICH
from typer._click.exceptions import ClickException

from siliconbench.core.config import flag_error
from siliconbench.core.errors import ExitCode, SiliconbenchError

VERBOSE_FLAGS = ("--verbose", "-v")
_verbose = False
_given: list[str] = []  # the command line `main` runs, without --verbose


def setup_logging() -> None:
    """Log lines with time, level and logger; debug with --verbose."""
    logging.basicConfig(level=logging.DEBUG if _verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def fail(exc: Exception | str, code: ExitCode | None = None) -> typer.Exit:
    """Print `exc` as one line on standard error (its traceback above it with --verbose); the caller raises
    the returned exit, whose code is `code`, else the error's own (`SiliconbenchError.exit_code`), else 2."""
    if _verbose and isinstance(exc, BaseException):
        traceback.print_exception(exc, file=sys.stderr)
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code if code is not None else getattr(exc, "exit_code", ExitCode.BAD_INPUT))


def one_line(exc: BaseException) -> tuple[str, ExitCode]:
    """What an exception that escaped a command tells the user, and the exit code."""
    if isinstance(exc, SiliconbenchError):
        return f"error: {exc}", exc.exit_code
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
        return (f"error: cannot listen: {exc.strerror or exc}; stop what holds the port, or pass another "
                "--port/--listen", ExitCode.ADDRESS_IN_USE)
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return f"error: {exc.filename}: {exc.strerror}; check the path", ExitCode.BAD_INPUT
    return (f"error: unexpected {type(exc).__name__}: {exc or '(no message)'}; rerun with --verbose and report "
            "the traceback", ExitCode.INTERNAL)


def main(app: typer.Typer, args: list[str] | None = None) -> None:
    """Run `app` as a program: exits with the command's code, or one line and an ExitCode when it fails."""
    global _verbose
    given = list(sys.argv[1:] if args is None else args)
    end = given.index("--") if "--" in given else len(given)  # after --, -v is an argument, not our option
    _verbose = any(arg in VERBOSE_FLAGS for arg in given[:end])
    rest = [arg for arg in given[:end] if arg not in VERBOSE_FLAGS] + given[end:]
    _given[:] = rest
    command = typer.main.get_command(app)
    finish_help(command)
    try:
        code = command.main(args=rest, standalone_mode=False)  # typer returns 130 for a Ctrl-C, with nothing said
    except ClickException as exc:  # a usage error: typer's own box, with the command's --help hint
        _show_usage_error(exc)
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        code = ExitCode.INTERRUPTED
    except Exception as exc:  # the last net: anything a command did not turn into its own line
        if _verbose:
            traceback.print_exception(exc, file=sys.stderr)
        line, code = one_line(exc)
        typer.echo(line, err=True)
    if code == ExitCode.INTERRUPTED:
        typer.echo("\ninterrupted (Ctrl-C): stopped; what was already stored stays stored", err=True)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def given_args() -> list[str]:
    """The command line of the running program, as `main` got it (without --verbose)."""
    return list(_given)


def finish_help(command: Any) -> None:
    """Help that answers "what if I leave it out?" for `command` and its subcommands: an optional option
    whose help names no default says `[default: none]` (typer shows nothing for None or ""), and a
    boolean flag (--help too) is shown without a type (typer prints `<bool>`, as if it took a value)."""
    for option in [*command.params, command.get_help_option(typer.Context(command))]:
        if getattr(option, "is_flag", False):
            option.metavar = ""
        elif _default_unshown(option):
            option.help = f"{option.help or ''} \\[default: none]".strip()  # \\[: a literal [ in rich markup
    for sub in getattr(command, "commands", {}).values():
        finish_help(sub)


def _default_unshown(option: Any) -> bool:
    if getattr(option, "param_type_name", "") != "option" or option.required:
        return False
    shown = option.show_default is not False and option.default not in (None, "", (), [])
    return not shown and "default" not in (option.help or "").lower()


def _show_usage_error(exc: ClickException) -> None:
    """As typer shows it when it runs standalone."""
    if HAS_RICH:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    else:
        exc.show()


def flag(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """One flag of a group, as a command parameter would declare it (`annotation` holds the typer.Option)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def with_flags(group: str, flags: list[inspect.Parameter], build: Callable[..., Any]):
    """A decorator: the command gets the `flags` on its command line and, as its `group` argument, what
    `build(**values)` makes of them. A SiliconbenchError from `build` reaches `main`: one line, its code."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != group]
        names = [parameter.name for parameter in flags]

        @functools.wraps(command)
        def wrapper(**values: Any) -> None:
            built = build(**{name: values.pop(name) for name in names})
            command(**values, **{group: built})

        parameters = own + flags
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def model_flags(model: type, *, only: Iterable[str] | None = None, help: Mapping[str, str] | None = None,
                envvars: Mapping[str, str] | None = None, given: Mapping[str, Any] | None = None,
                defaults: Any = None) -> list[inspect.Parameter]:
    """One flag per field of the pydantic dataclass `model` (the fields named in `only`, in that order):
    `--field-name`, the field's type, its default (or the field's value in `defaults`, an instance of
    `model`), help from `help` else the field's `Field(description=...)`, the environment variable named in
    `envvars`. `given` holds the Annotated types of fields whose option is declared once for several
    commands (its help and variable come with it)."""
    fields: dict[str, FieldInfo] = model.__pydantic_fields__  # type: ignore[attr-defined]  # a pydantic dataclass
    helps, variables, declared = help or {}, envvars or {}, given or {}
    flags = []
    for name in only if only is not None else fields:
        info = fields[name]
        default = getattr(defaults, name) if defaults is not None else info.get_default(call_default_factory=True)
        text = helps.get(name, info.description)
        if text is None and name not in declared:
            raise TypeError(f"{model.__name__}.{name} has no description for its --help")
        annotation = declared.get(name) or Annotated[_plain(info.annotation),
                                                     typer.Option(help=text, envvar=variables.get(name))]
        flags.append(flag(name, annotation, default))
    return flags


def model_builder(model: type) -> Callable[..., Any]:
    """`model(**flags)`, with every bad flag named in one ConfigError (siliconbench.core.config.flag_error)."""

    def build(**flags: Any) -> Any:
        try:
            return model(**flags)
        except ValidationError as exc:
            raise flag_error(exc) from None

    return build


def _plain(annotation: Any) -> Any:
    """`annotation` without its Annotated validation metadata, which typer would take for its own:
    `Annotated[str, Strict()] | None` -> `Optional[str]`."""
    if get_origin(annotation) is Annotated:
        return _plain(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return Union[tuple(_plain(arg) for arg in get_args(annotation))]
    return annotation


def program_options(
    verbose_flag: Annotated[bool, typer.Option(*VERBOSE_FLAGS, help="Debug logging, and the traceback above any error (also accepted after the command).")] = False,
) -> None:
    """The options of the whole program (a typer callback); `main` takes --verbose from anywhere."""
    global _verbose
    _verbose = _verbose or verbose_flag

"""How every configuration model is declared and how its problems reach the user.

Plans, agent options, collector options and simulator profiles are pydantic dataclasses built with
`STRICT`: unknown keys are errors, and the scalar types below never coerce (`2.5` is not an int,
`"512"` is not a number, `true` is not a timeout). Containers stay lax so a YAML or JSON list fills a
tuple field; their items are strict. Validation reports every problem at once, and `config_error`
turns them into one `ConfigError` line with each problem's key path (`steps.2.rate: ...`), never a
pydantic traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import ConfigDict, Field, Strict, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from siliconbench.core.errors import ConfigError

STRICT = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, allow_inf_nan=False)

Int = Annotated[int, Strict()]             # rejects 2.5, "3" and true
Float = Annotated[float, Strict()]         # an int is fine (4 -> 4.0); "4" and true are not
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]           # rejects "yes" and 1
PositiveFloat = Annotated[Float, Field(gt=0)]
NonNegativeFloat = Annotated[Float, Field(ge=0)]


def invalid(message: str) -> PydanticCustomError:
    """Raise this from a model's own check (a model_validator): it is reported as `message` under the
    model's key path. `message` is used as is, so it may hold braces."""
    return PydanticCustomError(_OWN_CHECK, "{message}", {"message": message})


_OWN_CHECK = "siliconbench_config"


_IN_PLAN_FILE_WORDS = (  # pydantic's Python terms, as a YAML/JSON/TOML author says them
    ("a valid tuple", "a list"),
    (r"a valid dictionary|a dictionary or an instance of \w+", "a mapping"),
)


def _path(loc: tuple[int | str, ...]) -> str:
    """('steps', 2, 'rate') -> 'steps.2.rate'; pydantic's '[key]' marks for dict keys are dropped."""
    return ".".join(str(part) for part in loc if part != "[key]")


def _flag(loc: tuple[int | str, ...]) -> str:
    """('sample_interval_s',) -> '--sample-interval-s'."""
    return "--" + str(loc[0]).replace("_", "-") if loc else ""


def _problem(error: ErrorDetails, known_keys: Iterable[str], path: str) -> str:
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, list(known_keys), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return _at(path, f"unknown key{hint}")
    if error["type"] == _OWN_CHECK:
        return _at(path, error["msg"])
    message = error["msg"].replace("Input should be", "must be")
    for python, plan_file in _IN_PLAN_FILE_WORDS:
        message = re.sub(python, plan_file, message)
    shown = error.get("input")
    if isinstance(shown, (dict, list, tuple)):  # a whole mapping or list says nothing more than the path
        return _at(path, message)
    return _at(path, f"{message}, got {shown!r}")


def _at(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def config_error(exc: ValidationError, source: str, known_keys: Iterable[str] = ()) -> ConfigError:
    """One ConfigError naming every problem in `exc`, each with its key path, prefixed by `source`.
    `known_keys` feed the "did you mean" hint for unknown (misspelt) keys."""
    known = list(known_keys)
    return _joined(source, [_problem(error, known, _path(error["loc"])) for error in exc.errors(include_url=False)])


def flag_error(exc: ValidationError) -> ConfigError:
    """One ConfigError naming every problem in `exc` by its command-line flag (`--sample-interval-s`).
    A model's own check names the flags in its message, so it is shown without a path."""
    return _joined("options", [_problem(error, (), "" if error["type"] == _OWN_CHECK else _flag(error["loc"]))
                               for error in exc.errors(include_url=False)])


def _joined(source: str, problems: list[str]) -> ConfigError:
    count = f"{len(problems)} problems: " if len(problems) > 1 else ""
    return ConfigError(f"{source}: {count}{'; '.join(problems)}")

"""What every reader of untrusted benchmark files shares (kept apart, so that every importer may use it): the
guard that turns a malformed file into an InputError, a checked number, and a JSON file read."""

from __future__ import annotations

import functools
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pdopt.errors import InputError
from pdopt.io.files import read_text

__all__ = ["finite_number", "read_json", "shown", "untrusted"]


def shown(value: Any) -> str:
    """A value for a message: ``a huge integer`` rather than thousands of digits."""
    return "a huge integer" if isinstance(value, int) and not isinstance(value, bool) else repr(value)


def finite_number(value: Any, where: str) -> float:
    """``value`` as a float when it is a finite number (a boolean is not one; an integer too large for a float
    is not either); else InputError ``<where>: expected a finite number, got ...``."""
    try:
        ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        ok = False
    if not ok:
        raise InputError(f"{where}: expected a finite number, got {shown(value)}")
    return float(value)


def read_json(path: Path, what: str) -> Any:
    """A benchmark file's JSON document (at most the benchmark size limit); InputError ``<path>: not JSON`` naming
    the parser's complaint."""
    try:
        return json.loads(read_text(path, what, kind="benchmark"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc.msg})") from None


_F = TypeVar("_F", bound=Callable[..., Any])


def untrusted(what: str) -> Callable[[_F], _F]:
    """A reader of benchmark files whose every failure on a malformed file is an InputError naming the file: a
    value of the wrong type, a number too large, nesting too deep, a damaged archive (the readers check what they
    use by name; this catches the shapes they do not expect)."""
    def wrap(func: _F) -> _F:
        @functools.wraps(func)
        def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return func(path, *args, **kwargs)
            except InputError:
                raise
            except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError, RecursionError,
                    zipfile.BadZipFile) as exc:
                raise InputError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None
        return guarded  # type: ignore[return-value]
    return wrap

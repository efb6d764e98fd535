"""A guard for readers of untrusted benchmark files (kept apart, so that every importer may use it)."""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable
from typing import Any, TypeVar

from pdopt.errors import InputError

__all__ = ["untrusted"]


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

"""The error a user's input raises, and how pydantic's validation errors become its message.

This module imports nothing from pdopt, so that both the instance schema (:mod:`pdopt.instance`, whose
validated copy methods raise :class:`InputError`) and the file readers (:mod:`pdopt.io`, which import the
schema) can use it without an import cycle. ``from pdopt.io import InputError`` keeps working.
"""

from __future__ import annotations

from pydantic import ValidationError


class InputError(ValueError):
    """The user's input is wrong; the message says where and why (the CLI exits 2)."""


class SolverUnavailableError(RuntimeError):
    """The requested solver is not installed (the CLI exits 2 and says how to install it)."""


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("prefill", "decode") and out.endswith("]"):
            continue  # discriminated-union tag, not a field
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _offending_number(value: object) -> str:
    """`` (got X)`` for a number the user gave, so that a wrong value is seen without opening the file; empty for
    anything else (a whole mapping or list would swamp the line)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f" (got {value!r})"
    return ""


def format_validation_error(err: ValidationError) -> list[str]:
    """One line per problem: ``field.path: message``; cross-reference problems are split into their own lines."""
    lines: list[str] = []
    for e in err.errors(include_url=False):
        loc = _format_loc(tuple(e["loc"]))
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the format; check the spelling)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif not e["type"].startswith("value_error"):
            msg += _offending_number(e.get("input"))
        # the instance's cross-reference check joins its problems with "; ": one line each (pydantic's own
        # messages and the unknown-key one are single problems, whatever punctuation they hold)
        for part in msg.split("; ") if e["type"] == "value_error" else [msg]:
            lines.append(part if loc == "(top level)" and ":" in part.split(" ")[0] else f"{loc}: {part}")
    return lines

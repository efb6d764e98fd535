"""File primitives of the I/O layer: read text, parse YAML and JSON, write new files, make new folders.

Every user file pdopt reads or writes passes through here or through the readers built on it
(:mod:`pdopt.io.instances`, :mod:`pdopt.io.traces`, :mod:`pdopt.io.importers`, :mod:`pdopt.io.library`).
Writing never overwrites: a user's file is never lost. Reading is bounded: every file has a size limit by kind
(:data:`LIMITS_MB`, raised for all kinds by the environment variable ``PDOPT_MAX_FILE_MB``), text must be UTF-8
without NUL bytes, and YAML is read by :mod:`pdopt.io.yaml_safe` (libyaml's C parser when PyYAML was built with
it, several times faster than the pure-Python one; the same rules either way).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import yaml

from pdopt.errors import InputError
from pdopt.io import yaml_safe

LIMITS_MB: dict[str, float] = {"instance": 16, "plan": 16, "csv": 64, "trace": 1024, "benchmark": 256}
"""Largest file of each kind pdopt reads, in MB (10^6 bytes)."""
CHUNK_BYTES = 1 << 20
"""Files are read a megabyte at a time."""
LIMIT_VARIABLE = "PDOPT_MAX_FILE_MB"
"""Environment variable that raises every limit to at least its value (MB)."""


def limit_bytes(kind: str) -> int:
    """The size limit of a kind of file, in bytes, with ``PDOPT_MAX_FILE_MB`` applied."""
    mb = LIMITS_MB[kind]
    raised = os.environ.get(LIMIT_VARIABLE)
    if raised:
        try:
            value = float(raised)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{LIMIT_VARIABLE}: '{raised}' is not a positive number of megabytes")
        mb = max(mb, value)
    return int(mb * 1e6)


def read_text(path: str | Path, what: str, encoding: str = "utf-8", kind: str = "instance") -> str:
    """A file's text, at most the kind's size limit; InputError naming the file and why it cannot be read
    (missing, too large, not text)."""
    p = Path(path)
    limit = limit_bytes(kind)
    chunks: list[bytes] = []
    size = 0
    try:
        if p.exists() and not p.is_file() and not p.is_char_device():  # a FIFO or a folder would block or fail
            raise InputError(f"{p}: the {what} is not a regular file")
        with p.open("rb") as fh:
            while size <= limit:  # in chunks, so that binary input stops at its first NUL, not at the limit
                chunk = fh.read(min(CHUNK_BYTES, limit + 1 - size))
                if not chunk:
                    break
                if b"\x00" in chunk:
                    raise InputError(f"{p}: the {what} is not a text file (it holds NUL bytes)")
                chunks.append(chunk)
                size += len(chunk)
    except OSError as exc:
        raise InputError(f"{p}: cannot read the {what} ({exc.strerror})") from None
    if size > limit:
        raise InputError(f"{p}: the {what} is larger than the {limit / 1e6:g} MB limit for {kind} files (raise it "
                         f"with the environment variable {LIMIT_VARIABLE})")
    raw = b"".join(chunks)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: the {what} is not UTF-8 text (byte {exc.start})") from None


def parse_yaml(text: str, source: str, loader: str = yaml_safe.DEFAULT_LOADER) -> Any:
    """Parse YAML (a superset of JSON) by pdopt's safe rules (:mod:`pdopt.io.yaml_safe`); InputError naming the
    line and the problem."""
    try:
        return yaml_safe.load(text, loader)
    except (yaml_safe.UnsafeDocumentError, yaml.constructor.ConstructorError) as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None and not problem.startswith("line ") else ""
        raise InputError(f"{source}: {where}{problem}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        if "flow level" in first:  # libyaml's own bound on nesting
            raise InputError(f"{source}: nested deeper than the YAML parser allows") from None
        raise InputError(f"{source}: not valid YAML or JSON ({first})") from None
    except RecursionError:
        raise InputError(f"{source}: nested too deeply to read") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:  # a backstop: never a crash
        raise InputError(f"{source}: cannot read a value ({type(exc).__name__}: {exc})") from None


def dump_yaml(doc: Any) -> str:
    """YAML in the key order given (for profiles and generated instances a user reads)."""
    return yaml.safe_dump(doc, sort_keys=False)


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON object from a file (a plan); InputError when unreadable, not JSON, or not an object."""
    p = Path(path)
    text = read_text(p, what, kind="plan")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: the {what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except _DuplicateKeyError as exc:
        raise InputError(f"{p}: the {what} gives the key '{exc.args[0]}' twice in one object") from None
    except RecursionError:
        raise InputError(f"{p}: the {what} is nested too deeply to read") from None
    except ValueError as exc:  # an integer beyond Python's conversion limit
        raise InputError(f"{p}: the {what} holds a number that cannot be read ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{p}: the {what} must be a JSON object")
    check_format_version(doc, str(p))
    return doc


class _DuplicateKeyError(ValueError):
    """A JSON object names a key twice (the last would silently win)."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(k)
        out[k] = v
    return out


FORMAT_VERSION = "1.0"
"""The version of the JSON documents pdopt writes (plans, simulations, comparisons, sweeps...), their first field
``format_version``: MAJOR.MINOR, the minor raised when fields are added, the major when a field changes meaning
or goes. A reader refuses a document of another major version (:func:`check_format_version`)."""


def dump_json(data: dict[str, Any]) -> str:
    """Stable, human-readable JSON, ``format_version`` first (:data:`FORMAT_VERSION`)."""
    return json.dumps({"format_version": FORMAT_VERSION, **data}, indent=2, sort_keys=False)


def check_format_version(doc: dict[str, Any], source: str) -> None:
    """InputError when ``doc`` states a ``format_version`` this pdopt cannot read: not a string MAJOR.MINOR, or of
    another major version. A document without one (written before it was recorded, or by hand) is read as 1.x."""
    if "format_version" not in doc:
        return
    version = doc["format_version"]
    major, _, minor = version.partition(".") if isinstance(version, str) else ("", "", "")
    if not (major.isdigit() and minor.isdigit()):
        raise InputError(f"{source}: format_version must be a string MAJOR.MINOR such as "
                         f"'{FORMAT_VERSION}', got {json.dumps(version)[:40]}")
    if int(major) != int(FORMAT_VERSION.split(".")[0]):
        raise InputError(f"{source}: format_version {version} is not readable by this pdopt (it reads "
                         f"{FORMAT_VERSION.split('.')[0]}.x); use the pdopt that wrote it")


def write_new(path: str | Path, data: str | bytes, what: str) -> Path:
    """Write a new file; InputError when it exists (pdopt never overwrites) or its folder does not."""
    p = Path(path)
    if p.exists():
        raise InputError(f"{p}: exists; pdopt does not overwrite files (choose another name for the {what})")
    if not p.parent.is_dir():
        raise InputError(f"{p}: the folder {p.parent} does not exist")
    raw = data if isinstance(data, bytes) else data.encode("utf-8")
    try:
        with p.open("xb") as fh:  # exclusive creation: a file that appeared meanwhile is not overwritten
            fh.write(raw)
    except OSError as exc:
        raise InputError(f"{p}: cannot write the {what} ({exc.strerror})") from None
    return p


def new_folder(path: str | Path) -> Path:
    """A folder for a report: created if missing; InputError when it exists and holds files."""
    p = Path(path)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise InputError(f"{p}: exists and is not an empty folder; pdopt writes reports only to a new folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{p}: cannot create the folder ({exc.strerror})") from None
    return p

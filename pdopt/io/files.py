"""File primitives of the I/O layer: read text, parse YAML and JSON, write new files, make new folders.

Every user file pdopt reads or writes passes through here or through the readers built on it
(:mod:`pdopt.io.instances`, :mod:`pdopt.io.traces`, :mod:`pdopt.io.importers`, :mod:`pdopt.io.library`).
Writing never overwrites: a user's file is never lost. YAML is parsed with libyaml's C loader when PyYAML was
built with it (``yaml.CSafeLoader``, the same safe subset as ``yaml.SafeLoader``, several times faster), else
with the pure-Python safe loader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pdopt.errors import InputError

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when available, else PyYAML's pure-Python one (same safety, same results)."""


def read_text(path: str | Path, what: str, encoding: str = "utf-8") -> str:
    """A file's text; InputError naming the file and why it cannot be read."""
    p = Path(path)
    try:
        return p.read_text(encoding=encoding)
    except OSError as exc:
        raise InputError(f"{p}: cannot read the {what} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{p}: the {what} is not UTF-8 text") from None


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML (a superset of JSON) with the safe loader; InputError with the parser's first line."""
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML or JSON ({str(exc).splitlines()[0]})") from None


def dump_yaml(doc: Any) -> str:
    """YAML in the key order given (for profiles and generated instances a user reads)."""
    return yaml.safe_dump(doc, sort_keys=False)


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """A JSON object from a file (a plan); InputError when unreadable, not JSON, or not an object."""
    p = Path(path)
    text = read_text(p, what)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: the {what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{p}: the {what} must be a JSON object")
    return doc


def dump_json(data: dict[str, Any]) -> str:
    """Stable, human-readable JSON."""
    return json.dumps(data, indent=2, sort_keys=False)


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

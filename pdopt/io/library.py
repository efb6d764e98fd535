"""The bundled instance library (``instances/`` in a source checkout, the package data ``pdopt.library`` in an
installed wheel): instance files, the instance sets of ``sets.yaml`` and the known answers.

``pyproject.toml`` maps the package ``pdopt.library`` onto the repository's ``instances/`` folder, so a wheel
carries the same files and every command that reads the library (``pdopt bench``, the tests) works from an
installed package as from the checkout.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from pdopt.errors import InputError
from pdopt.io.files import parse_yaml, read_text


def root() -> Path:
    """The folder that holds the bundled instances."""
    return Path(str(importlib.resources.files("pdopt.library")))


def path(entry: str) -> Path:
    """A library file by its path relative to the library (``paper/dsv31-h200-5mtpm.yaml``); InputError for a path
    that leaves the library or names no file."""
    base = root().resolve()
    p = (base / entry).resolve()
    if base not in p.parents or not p.is_file():
        raise InputError(f"instance library: no file '{entry}' in {base}")
    return p


def sets() -> dict[str, list[str]]:
    """Instance sets by name (``sets.yaml``): entries are library paths or ``generate:<family>:<seed>``."""
    doc: Any = parse_yaml(read_text(root() / "sets.yaml", "instance sets"), "sets.yaml")
    if not isinstance(doc, dict) or not all(isinstance(v, list) for v in doc.values()):
        raise InputError("sets.yaml: expected a mapping of set name -> list of entries")
    return {str(k): [str(e) for e in v] for k, v in doc.items()}


def known_answers() -> dict[str, list[dict[str, Any]]]:
    """The library's known answers (``known_answers.yaml``): path -> entries (status, objective, bound, ...)."""
    doc: Any = parse_yaml(read_text(root() / "known_answers.yaml", "known answers"), "known_answers.yaml")
    instances = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(instances, dict):
        raise InputError("known_answers.yaml: expected 'instances:' mapping paths to entries")
    return {str(k): list(v) for k, v in instances.items()}


def examples() -> dict[str, dict[str, str]]:
    """The bundled examples by name (``examples.yaml``): name -> ``path`` (in the library) and ``about``."""
    doc: Any = parse_yaml(read_text(root() / "examples.yaml", "examples"), "examples.yaml")
    if not isinstance(doc, dict) or not all(isinstance(v, dict) and {"path", "about"} <= set(v) for v in doc.values()):
        raise InputError("examples.yaml: expected a mapping of name -> {path, about}")
    return {str(k): {"path": str(v["path"]), "about": str(v["about"])} for k, v in doc.items()}


def example(name: str) -> Path:
    """The file of a bundled example; InputError naming the examples there are."""
    known = examples()
    if name not in known:
        raise InputError(f"--example: no example '{name}' (examples: {', '.join(known)}; `pdopt examples` "
                         "says what each shows)")
    return path(known[name]["path"])


def load_set(name: str) -> list[str]:
    """The entries of one set; InputError naming the sets there are."""
    all_sets = sets()
    if name not in all_sets:
        raise InputError(f"--set: unknown set '{name}' (sets: {', '.join(sorted(all_sets))})")
    return all_sets[name]

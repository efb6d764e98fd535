"""MkDocs hook: pages and nav entries made when the site is built.

- ``formulation-reference.md``: every formulation spec in ``formulations/*.yaml`` (sets, parameters, variables,
  objective, and each constraint family with its index, its maths, why it holds and the function that adds it),
  rendered from the YAML on every build, so the page cannot drift from the specs.
- ``report.md`` goes into the nav (before Architecture) only when the page exists.

Referenced from ``mkdocs.yml`` (``hooks:``); ``mkdocs serve`` watches ``formulations/`` and rebuilds.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import yaml
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "formulation-reference.md"
REPORT = "report.md"
SPEC_ORDER = ("f1.yaml", "horizon.yaml")  # F1 first, then what links its periods; any other spec after them
SECTIONS = {"sets": "Sets", "parameters": "Parameters"}
KNOWN = {"name", "summary", "sets", "parameters", "variables", "objective", "constraints"}


def _root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _prose(text: object) -> str:
    """One paragraph of spec text as Markdown that reads as written (no emphasis, links or HTML from it)."""
    flat = html.escape(" ".join(str(text).split()), quote=False)
    return re.sub(r"([\\`*_\[\]])", r"\\\1", flat)


def _code(text: object) -> str:
    """Maths in the spec's plain notation, as inline code (it wraps, and nothing in it is Markdown)."""
    flat = " ".join(str(text).split())
    return f"`` {flat} ``" if "`" in flat else f"`{flat}`"


def _specs(root: Path) -> list[Path]:
    paths = sorted((root / "formulations").glob("*.yaml"))
    rank = {name: i for i, name in enumerate(SPEC_ORDER)}
    return sorted(paths, key=lambda p: (rank.get(p.name, len(rank)), p.name))


def _spec_page(rel: str, spec: dict[str, Any]) -> list[str]:
    out = [f"## {spec.get('name', rel)}", "", f"Spec: `{rel}`.", ""]
    if "summary" in spec:
        out += [_prose(spec["summary"]), ""]
    for key, title in SECTIONS.items():
        if spec.get(key):
            out += [f"### {title}", ""]
            out += [f"- {_code(name)}: {_prose(text)}" for name, text in spec[key].items()]
            out.append("")
    if spec.get("variables"):
        out += ["### Variables", ""]
        for name, v in spec["variables"].items():
            out += [f"#### `{name}`", "", f"- domain: {_code(v['domain'])}", f"- meaning: {_prose(v['meaning'])}",
                    f"- code: `{v['code']}`", ""]
    if "objective" in spec:
        out += ["### Objective", "", _prose(spec["objective"]), ""]
    if spec.get("constraints"):
        out += ["### Constraints", ""]
        for name, c in spec["constraints"].items():
            out += [f"#### `{name}`", "", f"- index: {_code(c['index'])}", f"- constraint: {_code(c['math'])}",
                    f"- code: `{c['code']}`", ""]
            if c.get("why"):
                out += [f"Why: {_prose(c['why'])}", ""]
    for key, value in spec.items():
        if key not in KNOWN:
            out += [f"### {key.replace('_', ' ').capitalize()}", "", _prose(value), ""]
    return out


def reference(root: Path) -> str:
    """The formulation reference page, Markdown, from every spec under ``root/formulations``."""
    specs = _specs(root)
    names = ", ".join(f"`{p.relative_to(root).as_posix()}`" for p in specs)
    out = [
        "# Formulation reference",
        "",
        f"Generated from {names} when this site is built. [Formulation F1](formulation.md) explains the model and "
        "its modelling choices; [plans over a day](horizon.md) the periods. The notation is the specs' own plain "
        "text: `sum_{s in S}` a sum, `x[s,p]` a variable by index, `<=` and `>=` the inequalities. Family names are "
        "the names in the code (one `add_<family>` function each) and in the solver's rows, "
        "`<family>__<index>__<index>`.",
        "",
    ]
    for path in specs:
        out += _spec_page(path.relative_to(root).as_posix(), yaml.safe_load(path.read_text()))
    return "\n".join(out).rstrip() + "\n"


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    docs = Path(config.docs_dir)
    nav = config.nav
    if (docs / REPORT).is_file() and isinstance(nav, list) and not any(REPORT in str(item) for item in nav):
        at = next((i for i, item in enumerate(nav) if isinstance(item, dict) and "Architecture" in item), len(nav))
        nav.insert(at, {"Report": REPORT})
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, PAGE, content=reference(_root(config))))
    return files

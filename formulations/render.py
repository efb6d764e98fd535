"""Render the family tables of docs/formulation.md from a formulation spec (formulations/f1.yaml).

The docs page holds the generated tables between ``<!-- families:start -->`` and ``<!-- families:end -->``;
``tests/test_formulation_spec.py`` fails when they differ from what this renders. To refresh them, on purpose:

    .venv/bin/python formulations/render.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "formulations" / "f1.yaml"
DOCS = ROOT / "docs" / "formulation.md"
START, END = "<!-- families:start -->", "<!-- families:end -->"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def tables(spec: dict[str, Any]) -> str:
    """Markdown: one table of variable families, one of constraint families, each with its maths and code."""
    out = ["Variables:", "", "| variable | domain | meaning | code |", "|---|---|---|---|"]
    for name, v in spec["variables"].items():
        out.append(f"| `{name}` | {_cell(v['domain'])} | {_cell(v['meaning'])} | `{v['code'].split('::')[-1]}` |")
    out += ["", "Constraints:", "", "| family | index | constraint | code |", "|---|---|---|---|"]
    for name, c in spec["constraints"].items():
        out.append(f"| `{name}` | {_cell(c['index'])} | {_cell(c['math'])} | `{c['code'].split('::')[-1]}` |")
    return "\n".join(out)


def render(page: str, spec: dict[str, Any]) -> str:
    """The page with its generated section replaced."""
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{tables(spec)}\n{END}{tail}"


def main() -> int:
    spec = yaml.safe_load(SPEC.read_text())
    DOCS.write_text(render(DOCS.read_text(), spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())

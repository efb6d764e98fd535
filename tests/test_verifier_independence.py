"""The verifier shares no code with the planner: its import graph, followed transitively, never reaches it.

A verifier that imported the capacity table, the model data, the MILP, the plan builder, the solver, the baselines
or the simulator would share their bugs and approve whatever they produce. The graph is read from the source
with :mod:`ast` rather than from ``sys.modules``, because importing any ``pdopt.*`` module first runs
``pdopt/__init__.py``, which re-exports the whole library; that top-level package is therefore left out of the
walk, and importing it directly (``import pdopt`` or ``from pdopt import <a name that is no module>``) counts as
reaching everything it re-exports. Every import statement counts, also those inside functions; relative imports
are resolved against the importing module's package, and ``from a import b`` also reaches ``a.b`` when that is a
module. Importing a submodule also runs its parent packages (other than the top one), so they are walked too.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = ("pdopt.perf.capacity", "pdopt.perf.prefill", "pdopt.perf.decode", "pdopt.perf.shapes", "pdopt.optimize",
             "pdopt.plan", "pdopt.paper", "pdopt.comparison", "pdopt.sim", "pdopt.cli", "pdopt.report")
"""The planner's modules (and, for packages, everything in them)."""

ALLOWED_OUTSIDE = {"pdopt.instance", "pdopt.instance.base", "pdopt.instance.profiles", "pdopt.instance.schema",
                   "pdopt.instance.estimates",
                   "pdopt.instance.traffic", "pdopt.instance.horizon", "pdopt.instance.purchase",
                   "pdopt.errors", "pdopt.perf", "pdopt.perf.queueing", "pdopt.perf.calibrate",
                   "pdopt.perf.decode_fit"}
"""pdopt modules outside the verifier package that it may reach: the data model (with its error type) and pure
queueing and calibration formulas."""

FORBIDDEN_THIRD_PARTY = {"pulp", "highspy"}
"""Solvers: the verifier decides everything by its own arithmetic and search."""


def module_file(root: Path, name: str) -> Path | None:
    """The source file of a dotted module name under ``root`` (a package's ``__init__.py``), or None."""
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def imports_of(root: Path, name: str, top: str) -> set[str]:
    """Every module ``name``'s source imports, anywhere in the file, as absolute dotted names."""
    path = module_file(root, name)
    assert path is not None, name
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                mod = node.module
            submodules = {f"{mod}.{a.name}" for a in node.names if module_file(root, f"{mod}.{a.name}")}
            found |= submodules
            if mod != top or len(submodules) < len(node.names):  # `from pdopt import x`: only x, if a module
                found.add(mod)
    return found


def walk(root: Path, start: str, top: str) -> dict[str, str | None]:
    """Every module reached from ``start``: module -> the module that first imported it (None for ``start``).
    Modules outside ``top`` (third-party, standard library) are recorded but not followed."""
    seen: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        name = queue.popleft()
        reached = imports_of(root, name, top)
        for mod in list(reached):  # importing a.b.c runs a.b (but the top package is left out, see above)
            parts = mod.split(".")
            reached |= {".".join(parts[:i]) for i in range(2, len(parts)) if parts[0] == top}
        for mod in sorted(reached):
            if mod in seen:
                continue
            seen[mod] = name
            if mod.split(".")[0] == top and mod != top and module_file(root, mod) is not None:
                queue.append(mod)
    return seen


def chain(seen: dict[str, str | None], mod: str) -> str:
    """How ``mod`` was reached: start -> ... -> mod."""
    path = [mod]
    while (prev := seen[path[-1]]) is not None:
        path.append(prev)
    return " -> ".join(reversed(path))


def _is_within(mod: str, packages: tuple[str, ...] | set[str]) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in packages)


def test_verifier_reaches_no_planner_module() -> None:
    seen = walk(ROOT, "pdopt.verifier", "pdopt")
    assert "pdopt" not in seen, f"the verifier imports the top-level package: {chain(seen, 'pdopt')}"
    bad = [chain(seen, m) for m in seen if _is_within(m, FORBIDDEN)]
    assert not bad, "the verifier reaches planner code:\n" + "\n".join(bad)
    ours = {m for m in seen if m.split(".")[0] == "pdopt"}
    outside = {m for m in ours if not _is_within(m, ("pdopt.verifier",))}
    assert outside <= ALLOWED_OUTSIDE, [chain(seen, m) for m in sorted(outside - ALLOWED_OUTSIDE)]
    solvers = [chain(seen, m) for m in seen if m.split(".")[0] in FORBIDDEN_THIRD_PARTY]
    assert not solvers, solvers
    # the walk really covers the package and its allowed dependencies (a walker that found nothing would pass)
    assert {"pdopt.verifier.capacity", "pdopt.verifier.packing", "pdopt.verifier.registry", "pdopt.instance",
            "pdopt.perf.queueing", "pdopt.perf.calibrate", "networkx", "numpy", "scipy.optimize"} <= set(seen)


def test_verifier_does_not_import_by_name() -> None:
    """``importlib.import_module`` or ``__import__`` would hide an import from the walk above."""
    for mod in walk(ROOT, "pdopt.verifier", "pdopt"):
        path = module_file(ROOT, mod)
        if mod.split(".")[0] != "pdopt" or path is None:
            continue
        names = {n.id for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Name)}
        attrs = {n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)}
        assert not ({"__import__", "importlib"} & names or "import_module" in attrs), mod


def test_queueing_imports_nothing_of_pdopt() -> None:
    """The pure formulas the verifier shares stand alone (QUANTILES is defined there, capacity imports it)."""
    seen = walk(ROOT, "pdopt.perf.queueing", "pdopt")
    assert {m for m in seen if m.split(".")[0] == "pdopt"} <= {"pdopt.perf.queueing", "pdopt.perf"}
    from pdopt.perf import capacity, queueing

    assert capacity.QUANTILES is queueing.QUANTILES


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_walker_finds_hidden_imports(tmp_path: Path) -> None:
    """The walk itself: an import inside a function, a relative import two levels up, ``from pkg import mod``,
    and a parent package's own imports are all followed; a name imported from the top package is flagged."""
    _write(tmp_path, {
        "pkg/__init__.py": "from pkg.planner import solve\n",
        "pkg/planner.py": "def solve() -> None: ...\n",
        "pkg/formulas.py": "import math\n",
        "pkg/deep/__init__.py": "from pkg import formulas\n",
        "pkg/deep/checker/__init__.py": "from .helpers import f\n",
        "pkg/deep/checker/helpers.py": "def f() -> None:\n    from ... import planner\n",
        "pkg/lazy.py": "def g() -> None:\n    from pkg import solve\n",
    })
    seen = walk(tmp_path, "pkg.deep.checker", "pkg")
    assert chain(seen, "pkg.planner") == "pkg.deep.checker -> pkg.deep.checker.helpers -> pkg.planner"
    assert chain(seen, "pkg.formulas") == "pkg.deep.checker -> pkg.deep -> pkg.formulas"
    assert "math" in seen and "pkg" not in seen
    assert "pkg" in walk(tmp_path, "pkg.lazy", "pkg")  # `solve` is no module: the top package is reached

"""The package's structure holds: no import cycle between pdopt's modules (imports inside functions counted), no
module over 500 lines, deferred third-party imports only from the one list below, every package in the wheel,
and a fast start: ``import pdopt`` and loading an instance load no solver, scipy, networkx, plotting, table or
progress library (checked in a fresh interpreter, so that other tests' imports do not count)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pdopt"

DEFERRED_THIRD_PARTY: dict[str, str] = {
    "scipy": "queueing percentiles and root finding, calibration fits, decode under load, simulator statistics",
    "networkx": "routes of instances with a network",
    "matplotlib": "the plots of pdopt bench",
    "numpy": "the generator of synthetic instances (read by the CLI's parser at start-up)",
    "pydantic": "the plan's validator, built on first use",
    "highspy": "HiGHS's interrupt callback type, only when HiGHS solves (an optional extra)",
    "pandas": "DataFrames, only when a frame is asked for (an optional extra)",
    "aiconfigurator": "AIConfigurator's estimates, only when profiles are estimated with it (an optional extra)",
    "aisimulate": "AIConfigurator's successor, tried when aiconfigurator is not installed",
}
"""Third-party packages pdopt may import inside a function (to start fast), and why; docs/architecture.md
repeats this list. Any other deferred third-party import fails :func:`test_deferred_imports_are_listed`."""

HEAVY = ("scipy", "networkx", "matplotlib", "pandas", "pulp", "highspy", "tqdm", "rich")
"""Modules that must not be loaded by ``import pdopt`` or by loading an instance."""


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                out.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return out


def _imports(name: str) -> tuple[set[str], list[tuple[str, bool]]]:
    """(pdopt modules it imports, [(third-party top-level package, inside a function)]), skipping
    ``if TYPE_CHECKING:`` blocks (never run)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    ours: set[str] = set()
    third: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or node.lineno in skip:
            continue
        inside = any(f.lineno < node.lineno <= (f.end_lineno or f.lineno) for f in functions)
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base
                                                                                                   else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                targets.append(sub if sub in MODULES else base)
        for t in targets:
            if t.split(".")[0] == "pdopt":
                ours.add(t if t in MODULES else t.rpartition(".")[0])
            elif t.split(".")[0] not in sys.stdlib_module_names:
                third.append((t.split(".")[0], inside))
    return ours, third


def test_no_import_cycle() -> None:
    graph = {m: _imports(m)[0] - {m} for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = [*stack[stack.index(n):], n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n in graph and not state.get(n):
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if not state.get(m):
            visit(m)


def test_cycle_detection_can_fail() -> None:
    """The graph code sees an import inside a function (the kind that used to hide cycles)."""
    ours, _ = _imports("pdopt.cli.commands")
    assert "pdopt.optimize.pipeline" in ours


def test_deferred_imports_are_listed() -> None:
    for m in MODULES:
        for pkg, inside in _imports(m)[1]:
            if inside:
                assert pkg in DEFERRED_THIRD_PARTY, f"{m}: deferred import of {pkg} is not listed"


def test_modules_stay_readable() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_every_package_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    library = {"pdopt.library"} | {f"pdopt.library.{d.name}" for d in (ROOT / "instances").iterdir()
                                   if d.is_dir() and not d.name.startswith((".", "_"))}
    assert listed == found | library


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return {m.split(".")[0] for m in out.stdout.split()}


@pytest.mark.parametrize("code", [
    "import pdopt",
    "import pdopt\npdopt.load_instance('instances/paper/dsv31-h200-5mtpm.yaml')",
    "import pdopt\npdopt.load_instance('instances/examples/llama70b-bloom176b-a100-h100.yaml')",
    "from pdopt.cli.parser import build_parser\nbuild_parser()",
])
def test_fast_start(code: str) -> None:
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_fast_start_check_can_fail() -> None:
    """The same check sees a heavy package once a stage that needs it runs."""
    loaded = _loaded_after("import pdopt\ninst = pdopt.load_instance('instances/paper/dsv31-h200-5mtpm.yaml')\n"
                           "pdopt.solve(inst)")
    assert "pulp" in loaded


def test_every_library_file_is_package_data() -> None:
    """Each file of instances/ matches a package-data pattern of its folder, so the wheel carries it."""
    import fnmatch

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for f in (ROOT / "instances").rglob("*"):
        if not f.is_file() or f.suffix in (".py", ".pyc"):
            continue
        rel = f.relative_to(ROOT / "instances")
        package = ".".join(["pdopt.library", *rel.parent.parts])
        if not any(fnmatch.fnmatch(rel.name, pat) for pat in data.get(package, [])):
            missing.append(str(rel))
    assert missing == []

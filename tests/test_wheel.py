"""From a wheel: ``pip wheel .`` installed in a new virtual environment (no extras), ``pdopt bench --set smoke``
runs, reading the instance library shipped as package data, from a folder outside the checkout.

Slow (builds a wheel and a venv): ``pytest -m slow tests/test_wheel.py``. The new environment borrows the
installed dependencies of this one through a path file (pdopt itself comes only from the wheel: this
environment's editable install is not visible there, its finder is not loaded); building the wheel fetches
setuptools and wheel from the package index (pip's build isolation).
"""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_smoke_from_a_wheel(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                    str(ROOT)], check=True, capture_output=True)
    wheel = next(dist.glob("pdopt-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    borrowed = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(p).is_dir()]
    (purelib / "borrowed-deps.pth").write_text("\n".join(borrowed) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "-q", str(wheel)], check=True, capture_output=True)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import pdopt.io.library as l; print(l.root())"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(purelib), where
    out = tmp_path / "report"
    run = subprocess.run([str(venv / "bin" / "pdopt"), "bench", "--set", "smoke", "--out", str(out)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (out / "results.csv").read_text().count("optimal") == 2


WHEEL_COMMANDS: list[list[str]] = [
    ["examples"],
    ["plan", "--example", "paper"],
    ["plan", "--example", "two-models", "--alternatives", "2", "--format", "json"],
    ["plan", "--example", "two-periods"],
    ["capacity", "--example", "llama-bloom", "--format", "csv"],
    ["validate", "--example", "azure-day"],
    ["simulate", "--example", "two-models", "--requests", "2000"],
    ["compare", "--example", "two-models"],
    ["sweep", "--example", "two-models", "--demand", "1,2", "--jobs", "2"],
    ["generate", "--family", "fleet-S", "--seed", "1"],
    ["schema"],
]
"""Commands run from the wheel with the core dependencies only; each must exit 0."""


@pytest.mark.slow
def test_every_command_from_a_wheel_without_extras(tmp_path: Path) -> None:
    """A wheel installed with pip in a new virtual environment, dependencies from the package index, no extra: no
    pandas, highspy or dask there; the bundled examples, generation (CBC when HiGHS is missing), sweeps on local
    processes and the plan JSON's format version all work from outside the checkout."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("pdopt-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, pdopt_bin = venv / "bin" / "python", venv / "bin" / "pdopt"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True)
    missing = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('pandas', 'highspy', "
                              "'dask', 'mkdocs', 'pytest') if u.find_spec(m)])"],
                             check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert missing == "[]", missing
    for argv in WHEEL_COMMANDS:
        run = subprocess.run([str(pdopt_bin), *argv], capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, (argv, run.stderr[-2000:])
    plan = subprocess.run([str(pdopt_bin), "plan", "--example", "paper", "--format", "json"], capture_output=True,
                          text=True, cwd=tmp_path, check=True).stdout
    assert plan.startswith('{\n  "format_version": "1.0"')
    (tmp_path / "plan.json").write_text(plan)
    paper = subprocess.run([str(py), "-c", "import pdopt.io.library as l; print(l.example('paper'))"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    check = subprocess.run([str(pdopt_bin), "verify", paper, "--plan", "plan.json"], capture_output=True, text=True,
                           cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    frames = subprocess.run([str(py), "-c", "import pdopt; pdopt.solve(pdopt.load_instance("
                             f"{paper!r})).to_frame()"], capture_output=True, text=True, cwd=tmp_path)
    assert frames.returncode != 0 and "the 'frames' extra" in frames.stderr

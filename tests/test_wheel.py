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

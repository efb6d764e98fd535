"""Ctrl-C and SIGTERM during a solve: exit 130, the best plan found so far on the usual output (status feasible,
marked interrupted), no ``*-pulp.*`` file left in a private ``$TMPDIR``, and no solver process left.

Each case runs ``pdopt plan`` as a subprocess in its own session (so that a group signal is a terminal's Ctrl-C),
with a 20 s time limit, and signals it at a fixed moment of the solve: CBC and HiGHS on fleet-L (no proof within
20 s; fleet-M now proves in a fraction of a second), so that the solve is still running when the signal comes.
The moments (3 s and 5 s after start) come after the greedy start, during the LP-rounding start's relaxation
or the solve proper (a signal during the relaxation reports the greedy start as the plan)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pdopt.optimize.solver import available_solvers

PDOPT = [sys.executable, "-m", "pdopt"]


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fleets")
    out = {}
    for family in ("fleet-L",):
        path = folder / f"{family}.yaml"
        subprocess.run([*PDOPT, "generate", "--family", family, "--seed", "0", "--output", str(path)], check=True,
                       capture_output=True)
        out[family] = path
    return out


def _children(pid: int) -> list[int]:
    from pdopt.interrupt import child_pids

    return child_pids(pid)


CASES = [("cbc", "fleet-L", "group", 3.0), ("cbc", "fleet-L", "process", 5.0), ("cbc", "fleet-L", "term", 5.0),
         ("highs", "fleet-L", "group", 3.0), ("highs", "fleet-L", "process", 5.0)]


@pytest.mark.parametrize(("solver", "family", "how", "after_s"), CASES)
def test_interrupted_solve_keeps_the_best_plan(solver: str, family: str, how: str, after_s: float,
                                               fleets: dict[str, Path], tmp_path: Path) -> None:
    if solver not in available_solvers():
        pytest.skip(f"{solver} is not installed")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([*PDOPT, "plan", str(fleets[family]), "--solver", solver, "--time-limit", "20",
                             "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)}, start_new_session=True)
    time.sleep(after_s)
    assert proc.poll() is None, "the solve ended before the signal"
    if how == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT if how == "process" else signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    plan = json.loads(out)
    assert plan["solver"]["interrupted"] is True
    assert plan["status"] == "feasible" and plan["objective_usd_per_hour"] > 0
    assert "interrupted" in plan["solver"]["message"] and "Traceback" not in err
    assert list(tmp.iterdir()) == []
    assert _children(proc.pid) == []


def test_interrupted_simulation_reports_what_finished(tmp_path: Path) -> None:
    """SIGINT while the simulator runs: exit 130, the statistics of the requests that finished, marked partial."""
    proc = subprocess.Popen([*PDOPT, "simulate", "instances/paper/dsv31-h200-5mtpm.yaml", "--requests", "3000000",
                             "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1], start_new_session=True)
    time.sleep(4.0)
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "pdopt: interrupted" in err and "Traceback" not in err
    result = json.loads(out)
    assert result["partial"] is True and 0 < result["requests_completed"] < 3_000_000
    assert result["models"]["dsv31"]["requests"] > 0 and result["models"]["dsv31"]["ttft_s"]["mean"] > 0

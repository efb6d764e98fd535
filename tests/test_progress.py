"""pdopt/progress.py: a status line only on a terminal, after a delay, cleared at the end; solves report into it."""

from __future__ import annotations

import io
import time

import pytest

import pdopt
from pdopt.progress import Reporter, report, reporter, solver_line
from tests.conftest import INSTANCES


def test_nothing_is_drawn_off_a_terminal() -> None:
    buf = io.StringIO()  # not a TTY
    with reporter(buf):
        report("working")
    assert buf.getvalue() == ""
    report("no reporter: a no-op")


def test_the_line_waits_for_the_delay_and_is_cleared() -> None:
    buf = io.StringIO()
    rep = Reporter(buf, delay=0.05, interval=0.0, force=True)
    rep.update("too early")
    assert buf.getvalue() == ""
    time.sleep(0.06)
    rep.update("now")
    assert "now" in buf.getvalue() and buf.getvalue().startswith("\r[")
    rep.clear()
    assert buf.getvalue().endswith("\r")


def test_solver_line() -> None:
    assert solver_line("CBC", 2.0, 110.0, 100.0) == ("CBC solving 2.0 s  best plan 110.00 USD/h  bound 100.00  "
                                                     "gap 9.09%")
    assert solver_line("CBC", 1.0, 120.0, None) == "CBC solving 1.0 s  start 120.00 USD/h"


def test_a_solve_reports_while_it_runs() -> None:
    """HiGHS on fleet-L for 2.5 s: its callback reports the best plan and bound into the line."""
    from pdopt.optimize.solver import available_solvers

    if "highs" not in available_solvers():
        pytest.skip("highspy not installed")
    buf = io.StringIO()
    inst = pdopt.load_instance(INSTANCES / "generated" / "fleet-L-seed0.yaml")
    with reporter(buf, force=True):
        pdopt.solve(inst, pdopt.SolverOptions(name="highs", time_limit_s=2.5), explain_mode=False)
    assert "HiGHS solving" in buf.getvalue()

"""pdopt/progress.py: a status line only on a terminal, after a delay, cleared at the end; solves report into it."""

from __future__ import annotations

import io
import time
from pathlib import Path

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


def test_a_stage_is_shown_before_what_the_work_inside_reports() -> None:
    from pdopt.progress import stage

    buf = io.StringIO()
    with reporter(buf, force=True, delay=0.0, interval=0.0):
        stage("sweep: 3 of 20 points solved")
        report("CBC solving 1.0 s")
    assert "sweep: 3 of 20 points solved\r" in buf.getvalue() or "sweep: 3 of 20 points solved " in buf.getvalue()
    assert "sweep: 3 of 20 points solved  CBC solving 1.0 s" in buf.getvalue()
    stage("outside a reporter: a no-op")


@pytest.mark.parametrize(("argv", "said"), [
    (["sweep", str(INSTANCES / "tiny" / "mixed-two-models-cap.yaml"), "--demand", "1,2"],
     "sweep: 2 of 2 points solved"),
    (["compare", str(INSTANCES / "tiny" / "mixed-two-models-cap.yaml")], "compare: baseline 1 of"),
    (["compare", str(INSTANCES / "tiny" / "mixed-two-models-cap.yaml"), "--fallbacks"], "fallbacks: without slow"),
    (["simulate", str(INSTANCES / "tiny" / "mixed-two-models-cap.yaml"), "--requests", "3000"], "simulating: "),
    (["bench", "--set", "smoke", "--no-baselines", "--out", "{tmp}"], "2/2"),
])
def test_long_commands_report_on_a_terminal_and_not_when_piped(argv: list[str], said: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The same command: on a terminal (a reporter forced with no delay) its steps are shown on standard error;
    piped (the CLI's own reporter, standard error not a terminal) nothing is added."""
    import contextlib

    from pdopt import progress
    from pdopt.cli import main

    argv = [a.replace("{tmp}", str(tmp_path / "piped")) for a in argv]
    assert main(argv) in (0, 1)
    piped = capsys.readouterr().err
    assert said not in piped and "\r" not in piped
    real = progress.reporter
    monkeypatch.setattr(progress, "reporter", lambda: real(force=True, delay=0.0, interval=0.0))
    argv = [a.replace(str(tmp_path / "piped"), str(tmp_path / "terminal")) for a in argv]
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(argv) in (0, 1)
    assert said in err.getvalue(), err.getvalue()[-500:]

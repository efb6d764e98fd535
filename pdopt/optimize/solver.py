"""The one place that calls a MILP solver. Moving to another PuLP API or solver changes this module only.

The status is read from BOTH ``prob.status`` and ``prob.sol_status``: after a time limit PuLP reports
``status == Optimal`` with ``sol_status == IntegerFeasible``; that is a feasible incumbent, never ``optimal``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulp

from pdopt.errors import SolverUnavailableError
from pdopt.interrupt import Interruption
from pdopt.optimize.options import SOLVERS, SolverOptions
from pdopt.plan import SolverReport, SolveStatus
from pdopt.progress import active, report, solver_line
from pdopt.progress import done as progress_done

__all__ = [
    "OPTIMALITY_GAP",
    "SOLVERS",
    "LpResolve",
    "Solution",
    "SolverOptions",
    "SolverUnavailableError",
    "available_solvers",
    "normalise_status",
    "run_solver",
]

OPTIMALITY_GAP = 1e-6
"""A relative gap at most this (solver round-off between incumbent and bound) counts as proven optimal."""


@dataclass(frozen=True)
class Solution:
    """What a solve returns, as values: the solver's report, and the value of every variable by name.

    Nothing is read back from PuLP's variables after this: extraction and diagnosis take a ``Solution``.
    ``values`` is empty when the solver found no solution.
    """

    report: SolverReport
    values: Mapping[str, float] = field(default_factory=dict)

    @property
    def status(self) -> SolveStatus:
        """The normalised status (always set by :func:`run_solver`)."""
        assert self.report.status is not None
        return self.report.status

    @property
    def has_solution(self) -> bool:
        """True when the values hold a solution (optimal or feasible)."""
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)

    def value(self, name: str) -> float:
        """A variable's value (0 for a variable the solver left out, as PuLP drops unused columns)."""
        return self.values.get(name, 0.0)


def available_solvers() -> list[str]:
    """Solver names usable here (``cbc`` always: its binary ships in PuLP's wheel)."""
    names = ["cbc"]
    with contextlib.suppress(Exception):
        if pulp.HiGHS(msg=False).available():
            names.append("highs")
    return names


@contextlib.contextmanager
def _silence_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null: HiGHS prints a banner even when asked not to log."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class LpResolve:
    """An LP solved again and again with one variable's bounds changed, kept in HiGHS between solves: the first
    solve goes through PuLP (which builds HiGHS's model and maps each variable to its column, ``var.index``);
    later ones change that column's bounds and solve from the previous basis, without rebuilding or converting
    the model (the generator's calibration: 31 LPs of one model)."""

    def __init__(self, problem: pulp.LpProblem) -> None:
        self.problem = problem
        self.solved = False

    def solve(self, variable: pulp.LpVariable, value: float) -> dict[str, float] | None:
        """The LP's variable values with ``variable`` held at ``value`` (None when HiGHS finds no optimum)."""
        import highspy

        if not self.solved:
            variable.lowBound = variable.upBound = value
            with _silence_stdout():
                self.problem.solve(pulp.HiGHS(msg=False, log_to_console=False))
            self.solved = True
        else:
            with _silence_stdout():
                self.problem.solverModel.changeColBounds(variable.index, value, value)
                self.problem.solverModel.run()
        highs = self.problem.solverModel
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        values = highs.getSolution().col_value
        return {v.name: float(values[v.index]) for v in self.problem.variables()}


_CBC_NUMBER = r"(-?[0-9.eE+-]+|-?inf)"


def _cbc_log_bound(log: str) -> float | None:
    """The best bound in a CBC log (``Lower bound:`` after a stop, else the optimal objective)."""
    m = re.search(r"Lower bound:\s*" + _CBC_NUMBER, log)
    if m:
        return float(m.group(1))
    m = re.search(r"Result - Optimal solution found.*?Objective value:\s*" + _CBC_NUMBER, log, re.S)
    return float(m.group(1)) if m else None


GAP_FLOOR_USD_PER_HOUR = 1.0
"""The gap is relative to max(|objective|, this): an objective near zero (every price zero, only the tie-break
terms left) is not called unproven for a difference of a millionth of a dollar an hour."""


def _relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|objective - bound| / max(|objective|, 1 USD/h), or None without a finite bound."""
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return max(0.0, objective - bound) / max(abs(objective), GAP_FLOOR_USD_PER_HOUR)


def normalise_status(
    status: int, sol_status: int, gap: float | None, gap_rel: float
) -> tuple[SolveStatus, float | None]:
    """Map PuLP's (status, sol_status) and the gap to a :class:`SolveStatus` (and the gap to report).

    ``optimal`` needs PuLP's Optimal in both fields and a gap within :data:`OPTIMALITY_GAP` (a solver that proved
    optimality with no tolerance but printed no bound has gap 0). Optimal with a stated tolerance left open, or
    sol_status IntegerFeasible (a time-limited incumbent), is ``feasible``.
    """
    if sol_status == pulp.LpSolutionOptimal and status == pulp.LpStatusOptimal:
        if gap is None and gap_rel == 0.0:
            gap = 0.0
        return (SolveStatus.OPTIMAL if gap is not None and gap <= OPTIMALITY_GAP else SolveStatus.FEASIBLE), gap
    if sol_status == pulp.LpSolutionIntegerFeasible:
        return SolveStatus.FEASIBLE, gap
    if status == pulp.LpStatusInfeasible or sol_status == pulp.LpSolutionInfeasible:
        return SolveStatus.INFEASIBLE, None
    if status == pulp.LpStatusUnbounded or sol_status == pulp.LpSolutionUnbounded:
        return SolveStatus.UNBOUNDED, None
    if status == pulp.LpStatusNotSolved or sol_status == pulp.LpSolutionNoSolutionFound:
        return SolveStatus.NO_SOLUTION, None
    return SolveStatus.ERROR, None


def _cbc_root_lp(log: str) -> float | None:
    m = re.search(r"Continuous objective value is\s*" + _CBC_NUMBER, log)
    return float(m.group(1)) if m else None


def _failed_run(options: SolverOptions, runtime: float, error: str, log: str, interrupted: bool = False) -> Solution:
    """A solve that ended without a readable answer: ``no_solution`` when it was interrupted, CBC's verdict when
    its log states infeasibility (it proves it in preprocessing and then writes no solution file), else
    ``error``."""
    if interrupted:
        return Solution(SolverReport(options.name, runtime, None, None, "interrupted before a first plan",
                                     status=SolveStatus.NO_SOLUTION, interrupted=True))
    if "infeasible" in log.lower():
        return Solution(SolverReport(options.name, runtime, None, None, "Infeasible", status=SolveStatus.INFEASIBLE))
    return Solution(SolverReport(options.name, runtime, None, None, f"solver error: {error}",
                                 status=SolveStatus.ERROR))


_CBC_PROGRESS = re.compile(r"(-?[0-9.e+]+) best solution, best possible (-?[0-9.e+]+) \(([0-9.]+) seconds\)")


class _CbcWatch:
    """Reports CBC's progress (:mod:`pdopt.progress`) from a daemon thread, stopped when the solve returns: the
    time so far and, when its log shows them, the best plan and bound. CBC writes its log through a buffer that
    it empties at the end, so during the solve the line mostly shows the time and the start's cost."""

    def __init__(self, log_path: Path, start_usd_per_hour: float | None = None) -> None:
        self.path = log_path
        self.start_cost = start_usd_per_hour
        self.done = threading.Event()
        self.start = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True) if active() else None
        if self.thread is not None:
            self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.5):
            try:
                text = self.path.read_text(errors="replace") if self.path.exists() else ""
            except OSError:
                continue
            found = _CBC_PROGRESS.findall(text)
            best, bound = (float(found[-1][0]), float(found[-1][1])) if found else (self.start_cost, None)
            report(solver_line("CBC", time.monotonic() - self.start, best if best and best < 1e49 else None, bound))

    def stop(self) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=1.0)


STEP_MARGIN = 1e-3
"""The absolute gap handed to the solver is the objective step less this fraction of it (the bound and the
incumbent carry the solver's round-off)."""


def _abs_gap(objective_step: float | None) -> float | None:
    """The absolute gap at which a solve may stop: just under the objective's lattice step, or the solver's own
    default without one."""
    return objective_step * (1.0 - STEP_MARGIN) if objective_step else None


class _Highs(pulp.HiGHS):  # type: ignore[misc,name-defined,unused-ignore]
    """PuLP's HiGHS interface, with a MIP start and with the status HiGHS gives at a node limit.

    With ``start``, the variables' current values go to HiGHS as a (partial) solution it completes and checks
    (``setSolution``); PuLP's own interface drops a start. ``kSolutionLimit`` (a node limit), missing from PuLP's
    table of statuses, reads as a time limit's: the incumbent, not proven (or no solution when HiGHS has none).
    """

    def __init__(self, start: bool, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.start = start

    def callSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 (PuLP's name)
        if self.start:
            import numpy as np

            given = [(v.index, float(v.varValue)) for v in lp.variables() if v.varValue is not None]
            if given:
                index, value = zip(*given, strict=True)
                lp.solverModel.setSolution(len(index), np.asarray(index, dtype=np.int32),
                                           np.asarray(value, dtype=np.float64))
        super().callSolver(lp)

    def findSolutionValues(self, lp: pulp.LpProblem) -> tuple[int, int]:  # noqa: N802 (PuLP's name)
        try:
            return super().findSolutionValues(lp)  # type: ignore[no-any-return]
        except KeyError:  # raised after the values are assigned, at the status lookup
            import highspy

            highs = lp.solverModel
            if highs.getModelStatus() != highspy.HighsModelStatus.kSolutionLimit:
                raise
            if math.isfinite(highs.getInfo().objective_function_value) and highs.getInfo().primal_solution_status:
                return pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound


def _start_values_returned(problem: pulp.LpProblem) -> bool:
    """True when HiGHS's objective and the objective of the values it returned disagree: HiGHS 1.16, given a start
    for a model its presolve then solves outright, reports the optimum's objective beside the start's values."""
    if problem.sense != pulp.LpMinimize or problem.sol_status not in (pulp.LpSolutionOptimal,
                                                                      pulp.LpSolutionIntegerFeasible):
        return False
    reported = float(problem.solverModel.getObjectiveValue())
    value = pulp.value(problem.objective)
    return value is not None and abs(float(value) - reported) > 1e-6 * max(1.0, abs(reported))


def run_solver(problem: pulp.LpProblem, options: SolverOptions, warm_start: bool = False,
               heuristic_usd_per_hour: float | None = None, heuristic: str | None = None,
               objective_step: float | None = None) -> Solution:
    """Solve ``problem`` and return its report (normalised status, objective, bound, gap) and variable values.

    ``heuristic_usd_per_hour`` is the cost of the start given with ``warm_start``, recorded in the report.
    ``objective_step`` (minimisation only) is the spacing of the lattice every feasible objective value lies on
    (:func:`pdopt.optimize.lexicographic.objective_step`): the solver may stop once its bound is within a step of
    its incumbent, for then no plan lies strictly between them, and the bound reported is the incumbent's value.
    """
    if options.name not in SOLVERS:
        raise SolverUnavailableError(f"unknown solver '{options.name}' (choose from {', '.join(SOLVERS)})")
    options = options.within_deadline()
    start = time.perf_counter()
    bound: float | None = None
    no_incumbent = False
    with Interruption() as interruption:
        if options.name == "cbc":
            with tempfile.TemporaryDirectory(prefix="pdopt-cbc-") as tmp:  # PuLP's files too: removed on any exit
                log_path = Path(tmp) / "cbc.log"
                with warnings.catch_warnings():  # PuLP 3.x warns that PuLP 4 drops PULP_CBC_CMD: the one place
                    warnings.simplefilter("ignore", DeprecationWarning)
                    cmd = pulp.PULP_CBC_CMD(msg=False, timeLimit=options.time_limit_s, gapRel=options.gap_rel,
                                            gapAbs=_abs_gap(objective_step), threads=options.threads,
                                            maxNodes=options.max_nodes, logPath=str(log_path), warmStart=warm_start,
                                            options=[] if options.cbc_preprocess else ["preprocess off"])
                cmd.tmpDir = tmp
                watch = _CbcWatch(log_path, heuristic_usd_per_hour if warm_start else None)
                try:
                    problem.solve(cmd)
                except pulp.PulpSolverError as exc:  # CBC ended without writing a solution file
                    log = log_path.read_text() if log_path.exists() else ""
                    return _failed_run(options, time.perf_counter() - start, str(exc).splitlines()[0], log,
                                       interruption.requested)
                finally:
                    watch.stop()
                    progress_done()
                log = log_path.read_text() if log_path.exists() else ""
            bound = _cbc_log_bound(log)
            root = _cbc_root_lp(log)
        else:
            root = None
            # mip_rel_gap passed directly: PuLP drops a gapRel of 0 as falsy and HiGHS would stop at its 1e-4
            # default. threads is not passed: HiGHS fixes its thread pool at the first solve of a process and
            # fails later solves that ask for another size; it uses its own default
            import highspy  # the interrupt callback's type; present whenever the HiGHS API is available

            def solve_highs(with_start: bool) -> None:
                highs = _Highs(with_start, msg=False, timeLimit=options.time_limit_s, log_to_console=False,
                               mip_rel_gap=options.gap_rel, gapAbs=_abs_gap(objective_step),
                               callbackTuple=(interruption.highs_callback, None),
                               callbacksToActivate=[highspy.cb.HighsCallbackType.kCallbackMipInterrupt],
                               **({} if options.max_nodes is None else {"mip_max_nodes": options.max_nodes}))
                if not highs.available():
                    raise SolverUnavailableError("solver 'highs' needs the highspy package: the 'highs' "
                                                 "extra (pip install '.[highs]' in a clone) or pip install "
                                                 "highspy==1.16.0")
                with _silence_stdout():
                    try:
                        problem.solve(highs)
                    finally:
                        progress_done()

            solve_highs(warm_start)
            if warm_start and _start_values_returned(problem) and not interruption.requested:
                solve_highs(False)  # HiGHS 1.16 quirk: see _start_values_returned
            with contextlib.suppress(Exception):
                bound = float(problem.solverModel.getInfo().mip_dual_bound)
            with contextlib.suppress(Exception):  # interrupted before a first solution, PuLP still says feasible
                no_incumbent = int(problem.solverModel.getInfo().primal_solution_status) != 2
    runtime = time.perf_counter() - start
    if interruption.requested and no_incumbent:
        return _failed_run(options, runtime, "interrupted", "", True)

    status, sol = problem.status, problem.sol_status
    objective = None
    if sol in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        value = pulp.value(problem.objective)
        objective = float(value) if value is not None else 0.0
    if problem.sense == pulp.LpMaximize:
        bound = root = None  # the logs state bounds of the internal minimisation; not reported for maximisation
    elif objective is not None and bound is not None and objective_step and objective - bound <= objective_step * (
            1.0 - STEP_MARGIN):
        bound = objective  # no lattice point lies between the bound and the incumbent: the incumbent is optimal
    gap = _relative_gap(objective, bound)
    st, gap = normalise_status(status, sol, gap, options.gap_rel)
    has = st in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    values: dict[str, float] = {}
    if has:
        for v in problem.variables():
            val = v.value()
            values[v.name] = float(val) if val is not None and not math.isnan(val) else 0.0
    message = pulp.LpStatus.get(status, str(status))
    if interruption.requested:
        st = SolveStatus.FEASIBLE if has else SolveStatus.NO_SOLUTION
        message = "interrupted: the best plan found so far" if has else "interrupted before a first plan"
    elif st is SolveStatus.FEASIBLE and message == "Optimal":
        message = "stopped with a plan not proven optimal"  # PuLP says Optimal beside a time-limited incumbent
    report = SolverReport(options.name, runtime, gap, bound if has else None, message, root, heuristic_usd_per_hour,
                          st, objective, interruption.requested, heuristic)
    return Solution(report, values)

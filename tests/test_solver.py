"""Solver status normalisation: a time-limited incumbent is feasible, never optimal."""

import pulp
import pytest

import pdopt
from pdopt.optimize.solver import SolverOptions, SolverUnavailableError, normalise_status, run_solver
from pdopt.plan import SolveStatus
from tests.conftest import EXAMPLE


@pytest.mark.parametrize(
    ("status", "sol", "gap", "gap_rel", "expected"),
    [
        (pulp.LpStatusOptimal, pulp.LpSolutionOptimal, 0.0, 0.0, SolveStatus.OPTIMAL),
        (pulp.LpStatusOptimal, pulp.LpSolutionOptimal, None, 0.0, SolveStatus.OPTIMAL),
        (pulp.LpStatusOptimal, pulp.LpSolutionOptimal, 0.03, 0.05, SolveStatus.FEASIBLE),
        (pulp.LpStatusOptimal, pulp.LpSolutionOptimal, None, 0.05, SolveStatus.FEASIBLE),
        # PuLP after a time limit with an incumbent: status Optimal, sol_status IntegerFeasible
        (pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible, 0.2, 0.0, SolveStatus.FEASIBLE),
        (pulp.LpStatusInfeasible, pulp.LpSolutionInfeasible, None, 0.0, SolveStatus.INFEASIBLE),
        (pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound, None, 0.0, SolveStatus.NO_SOLUTION),
        (pulp.LpStatusUnbounded, pulp.LpSolutionUnbounded, None, 0.0, SolveStatus.UNBOUNDED),
        (pulp.LpStatusUndefined, -3, None, 0.0, SolveStatus.ERROR),
    ],
)
def test_normalise_status(status: int, sol: int, gap: float | None, gap_rel: float, expected: SolveStatus) -> None:
    assert normalise_status(status, sol, gap, gap_rel)[0] is expected


def test_cbc_reports_bound_and_zero_gap() -> None:
    prob = pulp.LpProblem("t", pulp.LpMinimize)
    x = prob.add_variable("x", lowBound=0, cat=pulp.LpInteger)
    prob += 3 * x
    prob += 2 * x >= 7, "cover"
    res = run_solver(prob, SolverOptions())
    assert res.status is SolveStatus.OPTIMAL
    assert res.report.objective == pytest.approx(12.0)
    assert res.report.bound == pytest.approx(12.0) and res.report.gap == 0.0


def test_infeasible_problem() -> None:
    prob = pulp.LpProblem("t", pulp.LpMinimize)
    x = prob.add_variable("x", lowBound=0, upBound=1, cat=pulp.LpInteger)
    prob += x
    prob += x >= 2, "cover"
    assert run_solver(prob, SolverOptions()).status is SolveStatus.INFEASIBLE


def test_unknown_solver() -> None:
    with pytest.raises(SolverUnavailableError, match="unknown solver"):
        run_solver(pulp.LpProblem("t"), SolverOptions(name="gurobi"))


def test_options_reach_the_solver() -> None:
    """A gap and a time limit are accepted; the result is optimal or an honest feasible, and verifies."""
    inst = pdopt.load_instance(EXAMPLE)
    plan = pdopt.solve(inst, SolverOptions(time_limit_s=30, gap_rel=0.5))
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    if plan.status is SolveStatus.FEASIBLE:
        assert plan.solver.gap is None or plan.solver.gap > 0
    assert pdopt.verify(inst, plan.to_dict()) == []

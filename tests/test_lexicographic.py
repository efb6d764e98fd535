"""The objective in two stages (pdopt/optimize/lexicographic.py): the cost's lattice step, the proof it gives, and
the tie-break among plans of the optimal cost.

Known answers by hand:
- 17.68 x + 16.2205 y (x, y integer): over 10^4 the coefficients are 176,800 and 162,205, whose greatest common
  divisor is 5 (176,800 = 2^5 5^2 13 17, 162,205 = 5 32,441 and 32,441 is odd, not a multiple of 5, 13 or 17),
  so the step is 5 / 10^4 = 0.0005 USD/h.
- The paper's instance: one node-billed pool at 28 USD per node-hour (8 x 3.50), the only costed variable: step 28,
  and the held-cost row of the optimum 224 reads 28 nodes <= 224 + 14.
"""

from __future__ import annotations

from pathlib import Path

import pulp
import pytest

import pdopt
from pdopt.optimize.lexicographic import objective_step
from pdopt.optimize.options import SolverOptions
from pdopt.optimize.solver import available_solvers
from pdopt.verifier import verify

ROOT = Path(__file__).resolve().parent.parent


PROBLEM = pulp.LpProblem("step")


def _ints(*names: str) -> list[pulp.LpVariable]:
    return [PROBLEM.add_variable(n, lowBound=0, cat=pulp.LpInteger) for n in names]


def test_objective_step_by_hand() -> None:
    x, y = _ints("x", "y")
    assert objective_step(17.68 * x + 16.2205 * y) == pytest.approx(0.0005, rel=1e-12)
    assert objective_step(28.0 * x) == 28.0
    # 17.68 and 34 over 100: 1,768 = 136 x 13 and 3,400 = 136 x 25, so the step is 1.36
    assert objective_step(2.21 * 8 * x + 4.25 * 8 * y) == pytest.approx(1.36, rel=1e-12)


def test_no_step_without_a_lattice() -> None:
    x, y = _ints("x", "y")
    z = PROBLEM.add_variable("z", lowBound=0)
    assert objective_step(2.0 * x + 1e4 * z) is None  # a costed continuous variable (a penalty)
    assert objective_step((1 / 3) * x + y) is None  # not a decimal with at most 6 places
    assert objective_step(0.0 * x) is None  # nothing costed


def test_paper_held_cost_row() -> None:
    text = (ROOT / "tests" / "golden" / "lp" / "stage_tie_break.lp").read_text()
    assert "cost_at_optimum: 28 nodes__h200_nodes <= 238" in text


@pytest.mark.parametrize("solver", available_solvers())
def test_the_lattice_proves_the_paper_optimum(solver: str) -> None:
    """The proof by lattice: the plan is optimal, its bound is its cost, and the tie-break was proven."""
    plan = pdopt.solve(pdopt.load_instance(ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"),
                       SolverOptions(solver), explain_mode=False)
    assert plan.status.value == "optimal" and plan.objective_usd_per_hour == pytest.approx(224.0)
    assert plan.solver.bound == pytest.approx(224.0) and plan.solver.gap == 0.0
    assert plan.solver.tie_break == "proven"


def test_no_tie_break_without_a_proven_cost() -> None:
    """A plan stopped by the time limit has no second stage (its cost is not proven, so neither are its ties)."""
    inst = pdopt.load_instance(ROOT / "instances" / "generated" / "fleet-M-seed0.yaml")
    plan = pdopt.solve(inst, SolverOptions(cuts=False, time_limit_s=1.0), explain_mode=False)
    assert plan.status.value == "feasible"
    assert plan.solver.tie_break is None


@pytest.mark.skipif("highs" not in available_solvers(), reason="highspy not installed")
def test_fleet_m_fewest_gpus_among_optimal_plans() -> None:
    """fleet-M seed 0: HiGHS proves the cost (2,389.4589) and the fewest GPUs among plans of that cost; CBC's plan
    has the same cost, verifies, and never fewer GPUs than that minimum (equal when it proves its tie-break)."""
    inst = pdopt.load_instance(ROOT / "instances" / "generated" / "fleet-M-seed0.yaml")
    highs = pdopt.solve(inst, SolverOptions("highs"), explain_mode=False)
    cbc = pdopt.solve(inst, SolverOptions("cbc"), explain_mode=False)
    assert highs.status.value == cbc.status.value == "optimal"
    assert highs.objective_usd_per_hour == pytest.approx(2389.4589, abs=1e-6)
    assert cbc.objective_usd_per_hour == pytest.approx(2389.4589, abs=1e-6)
    assert highs.solver.tie_break == "proven"
    fewest = sum(highs.gpus_used.values())
    assert sum(cbc.gpus_used.values()) >= fewest
    if cbc.solver.tie_break == "proven":
        assert sum(cbc.gpus_used.values()) == fewest
    assert verify(inst, highs.to_dict()) == [] and verify(inst, cbc.to_dict()) == []


@pytest.mark.skipif("highs" not in available_solvers(), reason="highspy not installed")
def test_highs_given_a_start_returns_the_optimum_values() -> None:
    """tests/data/highs-start-quirk.yaml: given the greedy start (42.0 USD/h), HiGHS 1.16 solves the model in
    presolve and reports the optimum 40.5 beside the start's values; the solver layer notices and solves again
    without the start, so HiGHS and CBC agree (the property test that found it compares them)."""
    import yaml

    from pdopt.io import instance_from_dict

    inst = instance_from_dict(yaml.safe_load((ROOT / "tests" / "data" / "highs-start-quirk.yaml").read_text()))
    highs = pdopt.solve(inst, SolverOptions("highs"), explain_mode=False)
    cbc = pdopt.solve(inst, SolverOptions("cbc"), explain_mode=False)
    assert highs.status.value == cbc.status.value == "optimal"
    assert highs.objective_usd_per_hour == cbc.objective_usd_per_hour == pytest.approx(40.5)
    assert verify(inst, highs.to_dict()) == []

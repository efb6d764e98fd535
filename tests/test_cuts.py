"""The cut families demand_rounding and role_cost_floor (pdopt/optimize/cuts.py, formulations/f1.yaml): valid, exact
in floats, and useful.

Known answers by hand:
- The paper's 3-shape example row 4.0812 x1 + 3.2 x2 >= 12.52 with c = 4.0812: a/c = 1 and 0.7841, b/c = 3.0677,
  g = 0.0677; coefficients floor(1) + 0 = 1 and 0 + min(0.7841 / 0.0677, 1) = 1, right-hand side ceil(3.0677) = 4:
  x1 + x2 >= 4 (3 instances give at most 12.24 < 12.52).
- Row 2 x >= 3 (one shape of capacity 2) with c = 2: q = 1.5, g = 0.5, coefficient 1, rhs 2: x >= 2, which cuts
  off the LP optimum x = 1.5.
- b / c whole (2 x >= 4, c = 2): no cut.
- role_cost_floor on tiny/mixed-two-models-cap.yaml (its description gives the capacities; every instance 1 GPU
  in a GPU-billed pool, so l = 4.00 fast, 2.00 slow; at most 2 fast instances by the cap): alpha decode b = 3.5,
  one fast (4.0 req/s) costs 4 against ceil(3.5 / 1.6) = 3 slow for 6, z = 4 (LP 3.5 x 4/4 = 3.5); alpha
  prefill one fast (6.0) 4 against 4 slow 8, z = 4 (LP 3.5 x 4/6 = 2.33); beta decode one fast (5.0) 4 against 5
  slow 10, z = 4 (LP 4.5 x 4/5 = 3.6); beta prefill one slow (5.5) 2, z = 2 (LP 4.5 x 2/5.5 = 1.64). Summed, 14:
  the root LP bound with this family alone, against the optimum 16 (the cap couples the rows).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pdopt
from pdopt.io import load_instance
from pdopt.optimize.cuts import cost_floor, mir_cut
from pdopt.optimize.options import SolverOptions
from pdopt.optimize.solver import available_solvers

ROOT = Path(__file__).resolve().parent.parent


def test_hand_examples() -> None:
    coefs, rhs = mir_cut([4.0812, 3.2], 12.52, 4.0812) or ([], 0.0)
    assert coefs == [1.0, 1.0] and rhs == 4.0
    assert mir_cut([2.0], 3.0, 2.0) == ([1.0], 2.0)
    assert mir_cut([2.0], 4.0, 2.0) is None


@settings(max_examples=80, deadline=None)
@given(caps=st.lists(st.floats(0.5, 9.0, allow_nan=False), min_size=1, max_size=3),
       rhs=st.floats(0.1, 10.0, allow_nan=False), pick=st.integers(0, 2), mult=st.sampled_from([0.5, 1.0, 2.0, 3.0]))
def test_every_integer_point_of_the_row_meets_the_cut(caps: list[float], rhs: float, pick: int, mult: float) -> None:
    """Exhaustive check on small rows: every integer x >= 0 (up to the count that covers the row alone) with
    sum a x >= b satisfies the cut, in exact arithmetic on the floats, for every divisor rule."""
    divisor = caps[min(pick, len(caps) - 1)] * mult
    cut = mir_cut(caps, rhs, divisor)
    if cut is None:
        assert (Fraction(rhs) / Fraction(divisor)).denominator == 1
        return
    coefs, bound = cut
    limits = [math.ceil(rhs / a) + 1 for a in caps]
    for x in itertools.product(*(range(n + 1) for n in limits)):
        if sum(Fraction(a) * k for a, k in zip(caps, x, strict=True)) >= Fraction(rhs):
            assert sum(Fraction(c) * k for c, k in zip(coefs, x, strict=True)) >= Fraction(bound), (x, cut)


INSTANCES = ["paper/dsv31-h200-5mtpm.yaml", "examples/llama70b-bloom176b-a100-h100.yaml",
             "tiny/mixed-two-models-cap.yaml", "tiny/whole-node-pricing.yaml", "tiny/tp3-packing.yaml",
             "tiny/network-spine.yaml", "tiny/budget-at-optimum.yaml", "tiny/zero-price.yaml",
             "library/opt66b-a100-distserve-tp3.yaml"]


@pytest.mark.parametrize("rel", INSTANCES)
def test_same_optimum_with_and_without_cuts(rel: str) -> None:
    """The cuts remove no integer plan: the optimum is the same with them and without (CBC, proven), and the
    plan with them verifies."""
    from pdopt.verifier import verify

    inst = load_instance(ROOT / "instances" / rel)
    on = pdopt.solve(inst, SolverOptions(cuts=True), explain_mode=False)
    off = pdopt.solve(inst, SolverOptions(cuts=False, time_limit_s=120.0), explain_mode=False)
    assert on.status.value == "optimal"
    assert on.objective_usd_per_hour == pytest.approx(off.objective_usd_per_hour, rel=1e-9, abs=1e-9)
    assert verify(inst, on.to_dict()) == []


@pytest.mark.skipif("highs" not in available_solvers(), reason="highspy not installed")
def test_fleet_m_proven_with_cuts_equals_highs_without() -> None:
    """fleet-M seed 0: CBC with the cuts proves the optimum HiGHS proves without them (about 2 CPU s); CBC without
    the cuts does not prove it within a minute (docs/benchmarks.md), so HiGHS is the independent answer."""
    inst = load_instance(ROOT / "instances" / "generated" / "fleet-M-seed0.yaml")
    on = pdopt.solve(inst, SolverOptions(cuts=True), explain_mode=False)
    off = pdopt.solve(inst, SolverOptions(name="highs", cuts=False), explain_mode=False)
    assert on.status.value == off.status.value == "optimal"
    assert on.objective_usd_per_hour == pytest.approx(off.objective_usd_per_hour, rel=1e-9)


def test_the_cuts_raise_the_root_bound() -> None:
    """fleet-M seed 0: the LP relaxation with the cuts is closer to the optimum than without (root bounds as CBC
    reports them), and the rows are there."""
    from pdopt.optimize.build import build_problem
    from pdopt.optimize.model_data import build_model_data
    from pdopt.perf.capacity import capacity_table

    inst = load_instance(ROOT / "instances" / "generated" / "fleet-M-seed0.yaml")
    data = build_model_data(inst, capacity_table(inst))
    built = build_problem(data)
    assert len(built.rows["demand_rounding"]) > 10
    assert "demand_rounding" not in build_problem(data, cuts=False).rows
    on = pdopt.solve(inst, SolverOptions(cuts=True), explain_mode=False)
    assert on.solver.root_lp_bound is not None and on.objective_usd_per_hour is not None
    assert on.solver.root_lp_bound >= 2387.0  # 2372.4 without the cuts (docs/benchmarks.md)


def test_cost_floor_hand_example() -> None:
    """Items (cost 3, capacity 2) and (2, 1), need 3: one of each, 5 (the LP bound is 4.5: 1.5 of the first)."""
    assert cost_floor([(3.0, 2.0, 10), (2.0, 1.0, 10)], 3.0) == 5.0
    assert cost_floor([(3.0, 2.0, 1), (2.0, 1.0, 0)], 3.0) == 0.0  # cannot cover: no floor claimed


@settings(max_examples=150, deadline=None)
@given(items=st.lists(st.tuples(st.floats(0.0, 5.0, allow_nan=False), st.floats(0.3, 3.0, allow_nan=False),
                                st.integers(0, 4)), min_size=1, max_size=4),
       need=st.floats(0.0, 8.0, allow_nan=False))
def test_cost_floor_is_the_brute_force_minimum(items: list[tuple[float, float, int]], need: float) -> None:
    """Exhaustive: the branch and bound returns the least cost of the integer points within their bounds that
    cover the need (up to the 1e-9 relative cover tolerance), and never more than it."""
    best = math.inf
    for y in itertools.product(*(range(u + 1) for _, _, u in items)):
        if sum(a * k for (_, a, _), k in zip(items, y, strict=True)) >= need - 1e-9 * max(1.0, need):
            best = min(best, sum(c * k for (c, _, _), k in zip(items, y, strict=True)))
    got = cost_floor(items, need)
    if math.isfinite(best):
        assert got == pytest.approx(best, rel=1e-12, abs=1e-12)
    else:
        assert got == 0.0


def test_cost_floor_past_its_node_limit_is_the_lp_bound() -> None:
    """With no nodes to spend the floor falls back to the LP bound, which never exceeds the minimum."""
    items = [(3.0, 2.0, 10), (2.0, 1.0, 10)]
    assert cost_floor(items, 3.0, node_limit=0) == pytest.approx(4.5)


def test_role_cost_floor_rows_by_hand() -> None:
    """The rows of tiny/mixed-two-models-cap.yaml (module docstring) and the root bound they give alone."""
    from pdopt.optimize.build import build_problem
    from pdopt.optimize.model_data import build_model_data
    from pdopt.perf.capacity import capacity_table

    inst = load_instance(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
    built = build_problem(build_model_data(inst, capacity_table(inst)), cuts=("role_cost_floor",))
    rhs = {name: built.problem.get_constraint_by_name(name) for name in built.rows["role_cost_floor"]}
    floors = {name.split("__", 1)[1]: -c.constant for name, c in rhs.items() if c is not None}
    assert floors == pytest.approx({"alpha__prefill": 4.0, "alpha__decode": 4.0, "beta__prefill": 2.0,
                                    "beta__decode": 4.0}, rel=1e-8)
    assert "demand_rounding" not in built.rows
    plan = pdopt.solve(inst, SolverOptions(cuts=("role_cost_floor",)), explain_mode=False)
    assert plan.solver.root_lp_bound == pytest.approx(14.0, rel=1e-6)
    assert plan.objective_usd_per_hour == pytest.approx(16.0)


def test_cut_families_are_the_registered_cuts() -> None:
    from pdopt.optimize.families import FAMILIES
    from pdopt.optimize.options import CUT_FAMILIES

    assert tuple(f.name for f in FAMILIES if f.cut) == CUT_FAMILIES


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_role_cost_floor_raises_fleet_s_root_bounds(seed: int) -> None:
    """fleet-S (generated): the family raises the LP bound over the rounding cuts alone on every seed (measured
    235.91 -> 236.37, 284.14 -> 285.50, 249.72 -> 251.47 against optima 236.57, 286.97, 257.57), never above the
    optimum, and the optimum is the same with it and without."""
    from pdopt.comparison.generate import FAMILIES as GEN
    from pdopt.comparison.generate import generate
    from pdopt.io import instance_from_dict
    from pdopt.optimize.build import build_problem, relax
    from pdopt.optimize.model_data import build_model_data
    from pdopt.optimize.solver import run_solver
    from pdopt.perf.capacity import capacity_table

    inst = instance_from_dict(generate(dataclasses.replace(GEN["fleet-S"], seed=seed)))
    data = build_model_data(inst, capacity_table(inst))
    bounds = []
    for cuts in (("demand_rounding",), True):
        built = build_problem(data, cuts=cuts)
        relax(built)
        sol = run_solver(built.problem, SolverOptions())
        assert sol.report.objective is not None
        bounds.append(sol.report.objective)
    with_floor = pdopt.solve(inst, SolverOptions(), explain_mode=False)
    without = pdopt.solve(inst, SolverOptions(cuts=("demand_rounding",)), explain_mode=False)
    assert with_floor.status.value == without.status.value == "optimal"
    assert with_floor.objective_usd_per_hour == pytest.approx(without.objective_usd_per_hour, rel=1e-9)
    assert bounds[0] + 0.3 < bounds[1] <= with_floor.objective_usd_per_hour + 1e-6

"""The demand_rounding cuts (pdopt/optimize/cuts.py, formulations/f1.yaml): valid, exact in floats, and useful.

Known answers by hand:
- The paper's 3-shape example row 4.0812 x1 + 3.2 x2 >= 12.52 with c = 4.0812: a/c = 1 and 0.7841, b/c = 3.0677,
  g = 0.0677; coefficients floor(1) + 0 = 1 and 0 + min(0.7841 / 0.0677, 1) = 1, right-hand side ceil(3.0677) = 4:
  x1 + x2 >= 4 (3 instances give at most 12.24 < 12.52).
- Row 2 x >= 3 (one shape of capacity 2) with c = 2: q = 1.5, g = 0.5, coefficient 1, rhs 2: x >= 2, which cuts
  off the LP optimum x = 1.5.
- b / c whole (2 x >= 4, c = 2): no cut.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pdopt
from pdopt.io import load_instance
from pdopt.optimize.cuts import mir_cut
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

"""Capacity formulas against hand arithmetic and an independent route (numerical root finding)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq

import pdopt
from pdopt.instance import DecodePoint, Instance
from pdopt.perf.capacity import max_batch_within_tpot, mm1_max_arrival_rate, sojourn_factor, tpot_at_batch


def test_sojourn_factors() -> None:
    assert sojourn_factor("mean") == 1.0
    assert sojourn_factor("p50") == pytest.approx(math.log(2))
    assert sojourn_factor("p99") == pytest.approx(math.log(100))


@given(mu=st.floats(0.5, 50), budget=st.floats(0.05, 10), stat=st.sampled_from(["mean", "p50", "p90", "p95", "p99"]))
def test_mm1_rate_meets_target_exactly(mu: float, budget: float, stat: str) -> None:
    """At lambda_max the M/M/1 sojourn statistic equals the budget; found independently by root finding
    on the exponential CDF 1 - exp(-(mu - lambda) t) = p (or on the mean 1/(mu - lambda))."""
    lam = mm1_max_arrival_rate(mu, budget, stat)  # type: ignore[arg-type]
    if lam <= 0:
        return
    p = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}.get(stat)
    if p is None:
        assert 1.0 / (mu - lam) == pytest.approx(budget, rel=1e-9)
    else:
        t = brentq(lambda t: 1.0 - math.exp(-(mu - lam) * t) - p, 1e-12, 1e6)
        assert t == pytest.approx(budget, rel=1e-7)


def test_p99_target_of_1_09s_leaves_nothing_on_paper_hardware(paper: Instance) -> None:
    """mu = 28309/6144 = 4.6076 req/s; ln(100) / (T - 0.1) >= mu  <=>  T <= 0.1 + 4.6052/4.6076 = 1.0995 s."""
    for target, usable in ((1.09, False), (1.0, False), (1.2, True)):
        w = paper.workloads["dsv31"]
        inst = paper.model_copy(update={"workloads": {"dsv31": w.model_copy(
            update={"ttft": w.ttft.model_copy(update={"target_s": target, "statistic": "p99"})})}})
        table = pdopt.capacity_table(inst)
        assert bool(table.for_role("dsv31", "prefill")) is usable
        if not usable:
            (skip,) = [s for s in table.skipped if s.role == "prefill"]
            assert "M/M/1" in skip.reason


def test_target_below_unloaded_ttft_is_skipped(paper: Instance) -> None:
    """Unloaded TTFT = 6144/28309 + 0.1 = 0.317 s; a 0.3 s mean target cannot be met at any load."""
    w = paper.workloads["dsv31"]
    inst = paper.model_copy(update={"workloads": {"dsv31": w.model_copy(
        update={"ttft": w.ttft.model_copy(update={"target_s": 0.3})})}})
    table = pdopt.capacity_table(inst)
    assert not table.for_role("dsv31", "prefill")
    assert "unloaded TTFT 0.317" in table.skipped[0].reason
    plan = pdopt.solve(inst)
    assert plan.status is pdopt.SolveStatus.INFEASIBLE
    assert plan.reason is not None and "'dsv31', role prefill" in plan.reason


CURVE = [DecodePoint(batch=10, tpot_ms=12.8), DecodePoint(batch=20, tpot_ms=16.4), DecodePoint(batch=30, tpot_ms=18.8)]


def test_tpot_interpolation_and_no_extrapolation() -> None:
    assert tpot_at_batch(CURVE, 15) == pytest.approx(14.6)
    with pytest.raises(ValueError, match="outside the measured range"):
        tpot_at_batch(CURVE, 31)
    assert max_batch_within_tpot(CURVE, 12.0, "whole") is None
    assert max_batch_within_tpot(CURVE, 50.0, "whole") == 30  # capped at the largest measured batch
    assert max_batch_within_tpot(CURVE, 16.4, "whole") == 20
    assert max_batch_within_tpot(CURVE, 15.0, "fractional") == pytest.approx(10 + 2.2 / 0.36)


@given(target=st.floats(12.8, 18.8))
def test_whole_batch_is_largest_integer_within_target(target: float) -> None:
    b = max_batch_within_tpot(CURVE, target, "whole")
    assert b is not None and b == int(b)
    assert tpot_at_batch(CURVE, b) <= target
    if b < 30:
        assert tpot_at_batch(CURVE, b + 1) > target
    frac = max_batch_within_tpot(CURVE, target, "fractional")
    assert frac is not None and b <= frac < b + 1 + 1e-9

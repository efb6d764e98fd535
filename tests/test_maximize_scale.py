"""``solve(instance, maximize_scale=True)`` finds the largest uniform demand multiplier a fixed inventory serves.

For each instance: the returned ``scale`` s is served (``solve(instance, scale_demand=s)`` is feasible), 1% more
is not (``scale_demand=1.01 s`` is infeasible), the maximize-scale plan itself verifies, and where the maximum
was derived by hand it matches:

- whole-node-pricing.yaml: 24 one-GPU instances of 1.0 req/s in all (16 cheap + 8 dear GPUs), 12 per role
  against 4.5 req/s: s = 12 / 4.5 = 8/3;
- tp3-packing.yaml: 3 nodes, each at best 3 + 3 + 2 (six TP3 and three TP2 slots); prefill 4 TP3 + 1 TP2 =
  11.25 req/s and decode 2 TP3 + 2 TP2 = 11.0 against 6.5 req/s: s = 11 / 6.5 = 22/13 (other splits of the
  slots give less, e.g. 4 TP3 prefill (10.0) with 2 TP3 + 3 TP2 decode (13.0): 10 / 6.5);
- infeasible-gpu-cap.yaml: 6 capped GPUs hold 3 TP2 instances; 2 prefill (3.0) + 1 decode (2.0) against 4.0
  req/s: s = 2.0 / 4.0 = 0.5;
- infeasible-budget.yaml: 20 USD/h pays for one 4-GPU node: 2 + 2 instances of 1.0 against 2.5 req/s: s = 0.8;
- llama70b-bloom176b-a100-h100.yaml: known_answers.yaml has scale 1.5 feasible and 2.0 infeasible.

On small generated instances the maximum is also re-derived by the exhaustive enumerator of
tests/test_bruteforce.py: the largest min over (model, role) of (capacity - spares) / demand among all count
vectors that pack and respect caps and budget. When no positive multiplier can be served (e.g. the budget buys
no node) there is no plan: ``solve(scale_demand=0)`` is rejected, so a "maximum" of 0 is no answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import pdopt
from pdopt.io import instance_from_dict, load_instance
from pdopt.plan import SolveStatus
from pdopt.verifier import verify
from tests.conftest import EXAMPLE, INSTANCES
from tests.test_bruteforce import enumerate_plans, tiny_instances

TINY = INSTANCES / "tiny"

CASES: list[tuple[Path, float | None, tuple[float, float]]] = [
    # (instance, hand-derived maximum or None, bounds known from known_answers.yaml)
    (EXAMPLE, None, (1.5, 2.0)),
    (TINY / "whole-node-pricing.yaml", 8 / 3, (0.0, 100.0)),
    (TINY / "tp3-packing.yaml", 22 / 13, (1.0, 100.0)),
    (TINY / "infeasible-gpu-cap.yaml", 0.5, (0.0, 1.0)),
    (TINY / "infeasible-budget.yaml", 0.8, (0.0, 1.0)),
    (TINY / "mixed-two-models-cap.yaml", None, (1.0, 3.0)),
]


@pytest.mark.parametrize(("path", "expected", "bounds"), CASES, ids=[c[0].stem for c in CASES])
def test_maximize_scale_is_the_largest_servable_multiplier(path: Path, expected: float | None,
                                                           bounds: tuple[float, float]) -> None:
    inst = load_instance(path)
    top = pdopt.solve(inst, maximize_scale=True)
    assert top.has_plan, top.reason
    s = top.scale
    assert s is not None and s > 0
    if expected is not None:
        assert s == pytest.approx(expected, rel=1e-6)
    lo, hi = bounds
    assert lo <= s < hi
    at = pdopt.solve(inst, scale_demand=s)
    assert at.has_plan, (s, at.reason)
    assert at.objective_usd_per_hour == pytest.approx(top.objective_usd_per_hour, rel=1e-6)
    above = pdopt.solve(inst, scale_demand=s * 1.01)
    assert above.status is SolveStatus.INFEASIBLE, (s, above.status)
    assert verify(inst, top.to_dict()) == []


def test_maximize_scale_without_a_usable_shape_is_infeasible() -> None:
    """No multiplier helps a role that no shape can serve: the reason names the model and role."""
    plan = pdopt.solve(load_instance(TINY / "infeasible-no-shape.yaml"), maximize_scale=True)
    assert plan.status is SolveStatus.INFEASIBLE
    assert plan.scale is None
    assert plan.reason is not None and "model 'summarize', role prefill: no usable shape" in plan.reason


def test_budget_that_buys_no_node_has_no_scale() -> None:
    """infeasible-budget.yaml with a budget of 5 USD/h, below one node (11.00): no instance can be paid, so no
    positive multiplier is served. The answer must be "infeasible" with a reason, not scale 0 with an empty plan
    (which serves nothing and which ``solve(scale_demand=0)`` would reject)."""
    inst = load_instance(TINY / "infeasible-budget.yaml")
    poor = inst.model_copy(update={"limits": inst.limits.model_copy(update={"budget_usd_per_hour": 5.0})})
    assert enumerate_plans(poor).max_scale == 0.0
    plan = pdopt.solve(poor, maximize_scale=True)
    assert plan.status is SolveStatus.INFEASIBLE, (plan.status, plan.scale, plan.placements)
    assert plan.reason


@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=tiny_instances())
def test_maximize_scale_matches_bruteforce(doc: dict[str, Any]) -> None:
    inst = instance_from_dict(doc)
    expected = enumerate_plans(inst).max_scale
    top = pdopt.solve(inst, maximize_scale=True)
    if expected is None or expected <= 0.0:
        assert top.status is SolveStatus.INFEASIBLE, (expected, top.status, top.scale)
        assert top.reason
        return
    assert top.has_plan, (expected, top.reason)
    assert top.scale == pytest.approx(expected, rel=1e-6)
    assert pdopt.solve(inst, scale_demand=top.scale).has_plan
    assert pdopt.solve(inst, scale_demand=top.scale * 1.01).status is SolveStatus.INFEASIBLE
    assert verify(inst, top.to_dict()) == []

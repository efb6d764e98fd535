"""Budgets exactly at the optimum and 1e-6 below it, on 300 generated tiny instances, with both solvers, against
the exhaustive enumerator of tests/test_bruteforce.py (which shares no code with the formulation).

For each instance the enumerator gives the optimum without a budget; with the budget set to it, both solvers must
report ``optimal`` at that cost (no false ``infeasible`` from a solver's preprocessing); 1e-6 below it, both must
report ``infeasible`` unless the enumerator finds a plan that cheap (a near-tie). Every fifth instance has all
prices set to zero on purpose (then the budget is 0 and 1e-6 below it is negative: not a budget, skipped). Slow:
``pytest -m slow tests/test_budget_edges.py``."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import pdopt
from pdopt.io import instance_from_dict
from pdopt.optimize.solver import SolverOptions, available_solvers
from pdopt.plan import SolveStatus
from tests.test_bruteforce import enumerate_plans, tiny_instances

COUNT = {"n": 0}


def _zero_prices(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for g in out["gpu_types"].values():
        g["price_usd_per_gpu_hour"] = 0.0
    for p in out["node_pools"].values():
        if "price_usd_per_node_hour" in p:
            p["price_usd_per_node_hour"] = 0.0
        p["activation_cost_usd_per_hour"] = 0.0
    return out


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(doc=tiny_instances())
def test_budget_at_and_below_the_optimum(doc: dict[str, Any]) -> None:
    COUNT["n"] += 1
    if COUNT["n"] % 5 == 0:
        doc = _zero_prices(doc)
    doc = {**doc, "limits": {}}
    inst = instance_from_dict(doc)
    best = enumerate_plans(inst).best_cost
    if best is None:
        return
    for factor in (1.0, 1.0 - 1e-6):
        budget = best * factor
        if budget < 0 or (factor < 1 and best == 0):
            continue
        capped = instance_from_dict({**doc, "limits": {"budget_usd_per_hour": budget}})
        truth = enumerate_plans(capped).best_cost
        for solver in available_solvers():
            plan = pdopt.solve(capped, SolverOptions(solver))
            if truth is None:
                assert plan.status is SolveStatus.INFEASIBLE, (solver, factor, plan.status, best)
            else:
                assert plan.status is SolveStatus.OPTIMAL, (solver, factor, plan.status, plan.reason, best)
                assert plan.objective_usd_per_hour == pytest.approx(truth, rel=1e-6, abs=1e-9), (solver, factor)

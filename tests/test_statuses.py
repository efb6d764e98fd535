"""The right status every time: a zero-cost optimum is ``optimal``; CBC's ``infeasible`` is confirmed without its
preprocessing before it is reported; the uncovered-demand message keeps demand and spares apart."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.io import instance_from_dict
from pdopt.optimize import pipeline
from pdopt.optimize.solver import Solution, SolverOptions, available_solvers
from pdopt.plan import SolverReport, SolveStatus
from tests.conftest import INSTANCES, PAPER


def _free_paper() -> pdopt.Instance:
    doc = yaml.safe_load(PAPER.read_text())
    doc["gpu_types"]["h200"]["price_usd_per_gpu_hour"] = 0.0
    doc["node_pools"]["h200_nodes"]["price_usd_per_node_hour"] = 0.0
    return instance_from_dict(doc, PAPER.parent)


@pytest.mark.parametrize("solver", available_solvers())
def test_a_zero_cost_optimum_is_optimal(solver: str) -> None:
    """Every price zero: every plan ties on cost and the second stage picks the fewest GPUs, then nodes; the plan is
    still the paper's 4 + 4 instances (fewest GPUs), proven optimal."""
    plan = pdopt.solve(_free_paper(), SolverOptions(solver))
    assert plan.status is SolveStatus.OPTIMAL, plan.solver
    assert plan.objective_usd_per_hour == 0.0
    assert (plan.models["dsv31"].prefill.instances, plan.models["dsv31"].decode.instances) == (4, 4)
    assert plan.solver.tie_break == "proven"


def test_cbc_infeasible_is_confirmed_without_preprocessing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for CBC's preprocessing cutting off a plan on a limit: the first solve says infeasible; the
    pipeline solves again without preprocessing and reports the plan it finds."""
    real = pipeline.run_solver
    calls: list[bool] = []

    def flaky(problem: Any, options: SolverOptions, *args: Any, **kwargs: Any) -> Solution:
        calls.append(options.cbc_preprocess)
        if options.cbc_preprocess and problem.name == "pdopt_f1":
            return Solution(SolverReport("cbc", 0.0, None, None, "Infeasible", status=SolveStatus.INFEASIBLE))
        return real(problem, options, *args, **kwargs)

    monkeypatch.setattr(pipeline, "run_solver", flaky)
    inst = pdopt.load_instance(PAPER)
    budget = inst.replace(limits={"budget_usd_per_hour": 224.0})  # exactly the optimum (known_answers.yaml)
    plan = pdopt.solve(budget)
    assert calls == [True, False]
    assert plan.status is SolveStatus.OPTIMAL and plan.objective_usd_per_hour == pytest.approx(224.0)
    assert "preprocessing had reported infeasible" in plan.solver.message
    assert pdopt.verify(budget, plan.to_dict()) == []


@pytest.mark.parametrize("solver", available_solvers())
@pytest.mark.parametrize("factor", [1.0, 1.0 - 1e-6])
def test_budget_at_and_just_below_the_optimum(solver: str, factor: float) -> None:
    """Budgets at the optimum of each bundled feasible instance are feasible at that cost; 1e-6 below is
    infeasible (the optimum is the cheapest plan), with both solvers."""
    for name in ("tiny/mixed-two-models-cap.yaml", "tiny/tp3-packing.yaml", "tiny/whole-node-pricing.yaml",
                 "paper/dsv31-h200-5mtpm.yaml"):
        inst = pdopt.load_instance(INSTANCES / name)
        opt = pdopt.solve(inst, SolverOptions(solver)).objective_usd_per_hour
        assert opt is not None
        plan = pdopt.solve(inst.replace(limits={"budget_usd_per_hour": opt * factor}), SolverOptions(solver))
        if factor == 1.0:
            assert plan.status is SolveStatus.OPTIMAL and plan.objective_usd_per_hour == pytest.approx(opt), name
        else:
            assert plan.status is SolveStatus.INFEASIBLE and "budget" in (plan.reason or ""), name


def test_uncovered_demand_keeps_spares_apart() -> None:
    """whole-node-pricing with 2 spare decode instances and 2 nodes in all: the message gives the demand and the
    spares' reserve separately, never 'more than the demand of the demand'."""
    doc = yaml.safe_load((INSTANCES / "tiny" / "whole-node-pricing.yaml").read_text())
    w = next(iter(doc["workloads"].values()))
    w["spare_instances"] = {"decode": 2}
    w["demand"] = {"requests_per_s": 12.0}
    plan = pdopt.solve(instance_from_dict(doc, INSTANCES / "tiny"))
    assert plan.status is SolveStatus.INFEASIBLE
    assert "plus" in (plan.reason or "") and "spare instance(s)" in (plan.reason or ""), plan.reason
    assert dataclasses.asdict(plan.solver)["status"] == "infeasible"


@pytest.mark.parametrize("solver", available_solvers())
@pytest.mark.parametrize("rps", [1e-6, 1e-9])
def test_a_tiny_demand_still_gets_instances(solver: str, rps: float) -> None:
    """A demand of a micro-request per second is within a solver's feasibility tolerance of being covered by no
    instance: the plan still has one instance per role (demand_presence) and verifies."""
    doc = yaml.safe_load((INSTANCES / "tiny" / "whole-node-pricing.yaml").read_text())
    next(iter(doc["workloads"].values()))["demand"] = {"requests_per_s": rps}
    inst = instance_from_dict(doc, INSTANCES / "tiny")
    plan = pdopt.solve(inst, SolverOptions(solver))
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.models["chat"].prefill.instances >= 1 and plan.models["chat"].decode.instances >= 1
    assert pdopt.verify(inst, plan.to_dict()) == []

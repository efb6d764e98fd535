"""Each infeasible tiny instance fails for its one cause, and the plan names that cause in the instance's terms.

- infeasible-gpu-cap.yaml: every plan needs 10 h100 GPUs, max_gpus is 6: the GPU type and 4 more GPUs;
- infeasible-budget.yaml: the cheapest plan costs 22.00 USD/h against a budget of 20: the budget, 2.00 short;
- infeasible-no-shape.yaml: no summarize prefill shape meets the TTFT target: the model, the role, no shape.

The hand derivations are in each instance's description and in instances/known_answers.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pdopt
from pdopt.cli import main
from pdopt.io import load_instance
from pdopt.plan import SolveStatus
from tests.conftest import INSTANCES

TINY = INSTANCES / "tiny"
GPU_CAP = TINY / "infeasible-gpu-cap.yaml"
BUDGET = TINY / "infeasible-budget.yaml"
NO_SHAPE = TINY / "infeasible-no-shape.yaml"


def _plan(path: Path) -> pdopt.Plan:
    plan = pdopt.solve(load_instance(path))
    assert plan.status is SolveStatus.INFEASIBLE
    assert not plan.has_plan
    assert plan.objective_usd_per_hour is None
    assert plan.reason
    return plan


def test_gpu_cap_names_the_type_and_the_missing_gpus() -> None:
    plan = _plan(GPU_CAP)
    caps = [n for n in plan.resource_needs if n.startswith("GPU type")]
    assert len(caps) == 1, plan.resource_needs
    assert "'h100'" in caps[0]
    assert "4 more GPU(s)" in caps[0]
    assert "cap 6" in caps[0]
    assert caps[0] in plan.reason
    # the cap is the only resource that runs out: no pool needs more nodes, there is no budget
    assert not [n for n in plan.resource_needs if n.startswith(("node pool", "budget"))]
    assert plan.shortfall_rps.get("assistant"), plan.shortfall_rps


def test_budget_names_the_budget_and_the_gap() -> None:
    plan = _plan(BUDGET)
    assert len(plan.resource_needs) == 1, plan.resource_needs
    need = plan.resource_needs[0]
    assert need.startswith("budget")
    assert "2.00 USD/hour more" in need  # optimum 22.00 against 20.00
    assert "budget of 20 USD/hour" in need
    assert need in plan.reason
    assert plan.shortfall_rps.get("chat"), plan.shortfall_rps


def test_budget_at_the_optimum_is_feasible() -> None:
    """Raising the budget to the hand-derived optimum, 22.00 USD/h, makes the instance feasible at that cost."""
    inst = load_instance(BUDGET)
    raised = inst.model_copy(update={"limits": inst.limits.model_copy(update={"budget_usd_per_hour": 22.0})})
    plan = pdopt.solve(raised)
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective_usd_per_hour == pytest.approx(22.0, rel=1e-9)


def test_gpu_cap_raised_by_the_missing_gpus_is_feasible() -> None:
    """With max_gpus 6 + 4 = 10 the instance is feasible: 10 GPUs x 4.00 = 40.00 USD/h."""
    inst = load_instance(GPU_CAP)
    gt = inst.gpu_types["h100"].model_copy(update={"max_gpus": 10})
    plan = pdopt.solve(inst.model_copy(update={"gpu_types": {"h100": gt}}))
    assert plan.status is SolveStatus.OPTIMAL
    assert plan.objective_usd_per_hour == pytest.approx(40.0, rel=1e-9)


def test_no_shape_names_the_model_and_role() -> None:
    plan = _plan(NO_SHAPE)
    assert "model 'summarize', role prefill: no usable shape" in plan.reason
    assert "unloaded TTFT" in plan.reason
    assert "chat" not in plan.reason and "decode" not in plan.reason  # only the unservable role is named
    skipped = {(s.model, s.role, s.gpus_per_instance) for s in plan.skipped_shapes}
    assert skipped == {("summarize", "prefill", 1), ("summarize", "prefill", 2)}


@pytest.mark.parametrize("path", [GPU_CAP, BUDGET, NO_SHAPE], ids=lambda p: p.stem)
def test_cli_plan_exits_3(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(path)]) == 3
    capsys.readouterr()

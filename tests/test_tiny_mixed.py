"""instances/tiny/mixed-two-models-cap.yaml: the joint optimum mixes GPU types and differs from planning model
by model (derivation in the instance's description: joint 16.00 USD/h; each model alone 8.00 + 6.00 = 14.00 but
3 fast GPUs against a cap of 2)."""

import pytest

import pdopt
from pdopt.instance import Instance
from tests.conftest import INSTANCES

TINY = INSTANCES / "tiny" / "mixed-two-models-cap.yaml"


def _alone(inst: Instance, model: str) -> Instance:
    return inst.model_copy(update={"workloads": {model: inst.workloads[model]}})


def test_joint_plan_mixes_gpu_types() -> None:
    inst = pdopt.load_instance(TINY)
    plan = pdopt.solve(inst)
    assert plan.objective_usd_per_hour == pytest.approx(16.0)
    used = {(p.model, p.role): (p.gpu_type, p.count) for p in plan.placements}
    assert used == {("alpha", "prefill"): ("fast", 1), ("alpha", "decode"): ("slow", 3),
                    ("beta", "prefill"): ("slow", 1), ("beta", "decode"): ("fast", 1)}
    assert plan.gpus_used == {"fast": 2, "slow": 4}
    assert pdopt.verify(inst, plan.to_dict()) == []


def test_model_by_model_differs_and_overdraws_the_cap() -> None:
    inst = pdopt.load_instance(TINY)
    alone = {m: pdopt.solve(_alone(inst, m)) for m in inst.workloads}
    assert alone["alpha"].objective_usd_per_hour == pytest.approx(8.0)
    assert alone["beta"].objective_usd_per_hour == pytest.approx(6.0)
    assert sum(p.gpus_used.get("fast", 0) for p in alone.values()) == 3 > 2

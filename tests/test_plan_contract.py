"""The typed plan contract: ``Plan.from_dict`` inverts ``to_dict``, reads plans written by pdopt 0.1.0 (fixtures
in tests/data/plans-0.1.0, never regenerated), keeps every JSON field name, and refuses malformed plans with the
field named. Served demand is read one way everywhere: demand x ``scale_demand`` x ``scale``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pdopt
from pdopt.errors import InputError
from pdopt.plan import Plan
from tests.conftest import INSTANCES, PAPER, ROOT

OLD = sorted((ROOT / "tests" / "data" / "plans-0.1.0").glob("*.json"))
INSTANCE_OF = {
    "dsv31-h200-5mtpm": PAPER, "dsv31-rate-matching-baseline": PAPER,
    "network-spine": INSTANCES / "tiny" / "network-spine.yaml",
    "infeasible-budget": INSTANCES / "tiny" / "infeasible-budget.yaml",
    "llama70b-bloom176b-a100-h100": INSTANCES / "examples" / "llama70b-bloom176b-a100-h100.yaml",
    "whole-node-pricing-max-scale": INSTANCES / "tiny" / "whole-node-pricing.yaml",
}


def test_fixtures_present() -> None:
    assert {p.stem for p in OLD} == set(INSTANCE_OF)


def _keeps(old: object, new: object, where: str) -> None:
    """Every key of ``old`` is in ``new`` with the same value, at any depth (objects may gain keys; lists keep
    their length and order)."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        for k, v in old.items():
            assert k in new, f"{where}.{k} was dropped"
            _keeps(v, new[k], f"{where}.{k}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _keeps(a, b, f"{where}[{i}]")
    else:
        assert new == old, where


@pytest.mark.parametrize("path", OLD, ids=lambda p: p.stem)
def test_reads_plans_of_0_1_0(path: Path) -> None:
    """Every key a 0.1.0 plan has survives a read and a write with the same value; only fields are added."""
    old = json.loads(path.read_text())
    plan = Plan.from_dict(old)
    new = plan.to_dict()
    _keeps(old, new, "")
    instance = pdopt.load_instance(INSTANCE_OF[path.stem])
    if plan.has_plan:
        assert pdopt.verify(instance, new) == []
        assert plan.served_demand_rps(instance) == pytest.approx(
            {m: mp["demand_rps"] for m, mp in old["models"].items()}, rel=1e-12)


@pytest.mark.parametrize("path", OLD, ids=lambda p: p.stem)
def test_round_trip(path: Path) -> None:
    plan = Plan.from_dict(json.loads(path.read_text()))
    assert Plan.from_dict(plan.to_dict()) == plan
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_fresh_plan_round_trip_and_new_fields() -> None:
    instance = pdopt.load_instance(INSTANCES / "tiny" / "whole-node-pricing.yaml")
    plan = pdopt.solve(instance, maximize_scale=True)
    doc = plan.to_dict()
    assert Plan.from_dict(doc) == plan
    served = plan.served_demand_rps(instance)["chat"]
    assert served == pytest.approx(12.0, rel=1e-9)  # 8/3 x 4.5 req/s, tests/test_maximize_scale.py
    assert doc["models"]["chat"]["served_demand_rps"] == pytest.approx(served, rel=1e-12)
    assert doc["solver"]["status"] == "optimal"


@pytest.mark.parametrize(("change", "field"), [
    ({"placements": [{"model": "m"}]}, "placements[0].role"),
    ({"placements": [{"model": "m", "role": "prefill", "gpu_type": "g", "gpus_per_instance": 1, "pool": "p",
                      "count": 1.5, "capacity_rps": 1.0, "cost_usd_per_hour": 1.0}]}, "placements[0].count"),
    ({"status": "maybe"}, "status"),
    ({"scale_demand": "lots"}, "scale_demand"),
    ({"scale_demand": float("inf")}, "scale_demand"),
    ({"instance": None}, "instance"),
])
def test_malformed_plans_name_the_field(change: dict[str, object], field: str) -> None:
    doc = {**json.loads(OLD[0].read_text()), **change}
    with pytest.raises(InputError, match=field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        Plan.from_dict(doc, "p.json")


def test_not_an_object() -> None:
    with pytest.raises(InputError, match="must be a JSON object"):
        Plan.from_dict([1, 2], "p.json")

"""Every instance in instances/known_answers.yaml solves to its recorded answer, and its plan verifies."""

from typing import Any

import pytest
import yaml

import pdopt
from pdopt.io import load_instance
from pdopt.verifier import verify
from tests.conftest import INSTANCES, instance_files

KNOWN = yaml.safe_load((INSTANCES / "known_answers.yaml").read_text())["instances"]
CASES = [(path, entry) for path, entries in KNOWN.items() for entry in entries if entry["status"] != "best_known"]
"""``best_known`` entries (SCIP .solu style: a plan's cost and a bound, no proof) are checked by the benchmark,
not here: they do not prove in the time a test may take."""


def test_every_instance_file_has_a_known_answer() -> None:
    files = {str(p.relative_to(INSTANCES)) for p in instance_files()}
    assert files == set(KNOWN)
    for entries in KNOWN.values():
        for e in entries:
            assert e["status"] in ("optimal", "infeasible", "best_known")
            if e["status"] == "best_known":
                assert e["bound_usd_per_hour"] <= e["objective_usd_per_hour"]


@pytest.mark.parametrize(("path", "entry"), CASES, ids=[f"{p}@{e.get('scale_demand', 1.0)}" for p, e in CASES])
def test_known_answer(path: str, entry: dict[str, Any]) -> None:
    inst = load_instance(INSTANCES / path)
    if "horizon_cost_usd" in entry:
        _horizon_known_answer(inst, entry)
        return
    plan = pdopt.solve(inst, scale_demand=entry.get("scale_demand", 1.0))
    assert plan.status.value == entry["status"]
    assert entry.get("derivation"), "each known answer says how it was obtained"
    if entry["status"] == "optimal":
        assert plan.objective_usd_per_hour == pytest.approx(entry["objective_usd_per_hour"],
                                                            rel=entry.get("tolerance_rel", 1e-6))
        assert verify(inst, plan.to_dict()) == []
    else:
        assert plan.reason


def _horizon_known_answer(inst: pdopt.Instance, entry: dict[str, Any]) -> None:
    """A plan over a horizon: its cost, the static plan's, each period's hourly cost, and the verifier's verdict
    (which learns the periods from the instance)."""
    rel = entry.get("tolerance_rel", 1e-6)
    plan = pdopt.plan_horizon(inst)
    assert plan.status.value == entry["status"] and entry.get("derivation")
    assert plan.total_cost_usd == pytest.approx(entry["horizon_cost_usd"], rel=rel)
    assert plan.static_cost_usd == pytest.approx(entry["static_peak_cost_usd"], rel=rel)
    if "period_usd_per_hour" in entry:
        assert {p.name: p.plan.objective_usd_per_hour for p in plan.periods} == pytest.approx(
            entry["period_usd_per_hour"], rel=rel)
    if "reserved_units" in entry:
        assert {p.pool: p.reserved for p in plan.purchase} == entry["reserved_units"]
    for key, got in (("static_peak_reserved_cost_usd", plan.static_reserved_cost_usd),
                     ("no_reserved_cost_usd", plan.no_reserved_cost_usd)):
        if key in entry:
            assert got == pytest.approx(entry[key], rel=rel), key
    assert verify(inst, plan.to_dict()) == []

"""The verifier's network checks on hand-written KV flows over tiny/network-spine.yaml.

The spine plan (derived in the instance's description) puts one prefill instance of GPU a in rack r0 (5 req/s)
and one decode instance of GPU b in rack r1 (5 req/s); demand is 4 req/s and each request moves 1 Gbit of KV
cache over r0-spine-r1 (10 Gbit/s per link). Flows are replaced by hand so that each figure below is known.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from pdopt import solve
from pdopt.instance import Instance
from pdopt.io import instance_from_dict, load_instance
from pdopt.verifier import Violation, verify
from tests.conftest import INSTANCES


@pytest.fixture(scope="module")
def spine() -> tuple[Instance, dict[str, Any]]:
    inst = load_instance(INSTANCES / "tiny" / "network-spine.yaml")
    plan: dict[str, Any] = solve(inst).to_dict()
    assert plan["kv_flows"] == [{"model": "m", "from_domain": "r0", "to_domain": "r1", "rps": 4.0}]
    return inst, plan


def _flows(spine: tuple[Instance, dict[str, Any]], *flows: tuple[str, str, float], tol: float = 1e-6,
           count: dict[str, int] | None = None) -> list[Violation]:
    """The kv_flow_capacity violations of the spine plan with these (from, to, rps) flows of model m, and
    placement counts changed by pool (the other checks then disagree with the costs: not looked at here)."""
    inst, plan = spine
    plan = copy.deepcopy(plan)
    plan["kv_flows"] = [{"model": "m", "from_domain": a, "to_domain": b, "rps": rps} for a, b, rps in flows]
    for p in plan["placements"]:
        p["count"] = (count or {}).get(p["pool"], p["count"])
    return [v for v in verify(inst, plan, tol) if v.check == "kv_flow_capacity"]


def test_flows_up_to_capacity_pass(spine: tuple[Instance, dict[str, Any]]) -> None:
    assert verify(spine[0], spine[1]) == []
    assert _flows(spine, ("r0", "r1", 5.0)) == []  # exactly the 5 req/s of r0's prefill and r1's decode
    assert _flows(spine, ("r0", "r1", 5.0 * (1 + 1e-7))) == []  # within the relative tolerance


def test_flows_beyond_capacity_name_role_domain_and_numbers(spine: tuple[Instance, dict[str, Any]]) -> None:
    got = [v.message for v in _flows(spine, ("r0", "r1", 5.5))]
    assert got == ["model 'm': 5.5 req/s flow through prefill in domain 'r0', which serves 5",
                   "model 'm': 5.5 req/s flow through decode in domain 'r1', which serves 5"]
    assert len(_flows(spine, ("r0", "r1", 5.0 * (1 + 1e-5)))) == 2  # beyond the tolerance


def test_flows_are_summed_per_domain(spine: tuple[Instance, dict[str, Any]]) -> None:
    """Two flows of 2.5 leave r0 together: 5 req/s, at capacity; 3 + 2.5 exceed it, though each alone fits."""
    assert _flows(spine, ("r0", "r1", 2.5), ("r0", "r1", 2.5)) == []
    assert {v.message.split(" in domain")[0] for v in _flows(spine, ("r0", "r1", 3.0), ("r0", "r1", 2.5))} == {
        "model 'm': 5.5 req/s flow through prefill", "model 'm': 5.5 req/s flow through decode"}


def test_a_domain_without_the_role_serves_nothing(spine: tuple[Instance, dict[str, Any]]) -> None:
    """Decoding in r0, where the plan has no decode instance, or prefilling in r1, where it has no prefill."""
    assert [v.message for v in _flows(spine, ("r0", "r0", 4.0))] == [
        "model 'm': 4 req/s flow through decode in domain 'r0', which serves 0"]
    assert [v.message for v in _flows(spine, ("r1", "r1", 4.0))] == [
        "model 'm': 4 req/s flow through prefill in domain 'r1', which serves 0"]


def test_capacity_counts_instances(spine: tuple[Instance, dict[str, Any]]) -> None:
    """Two decode instances in r1 serve 10 req/s: 6 req/s then exceed only r0's single prefill."""
    got = _flows(spine, ("r0", "r1", 6.0), count={"b_r1": 2})
    assert [v.message for v in got] == ["model 'm': 6 req/s flow through prefill in domain 'r0', which serves 5"]


def test_malformed_flows_are_reported_never_raised(spine: tuple[Instance, dict[str, Any]]) -> None:
    """Every field of a flow replaced by junk or a name the instance does not have: bad_plan_field, no exception
    (a domain unknown to the network used to escape as networkx's NodeNotFound)."""
    inst, plan = spine
    junk: list[Any] = [None, "x", "spine", "nowhere", [], {}, True, -1.0, float("nan"), 2.5]
    for key in ("model", "from_domain", "to_domain", "rps"):
        for value in junk:
            bad = copy.deepcopy(plan)
            bad["kv_flows"][0][key] = value
            violations = verify(inst, bad)
            assert all(isinstance(v, Violation) for v in violations)
            if key != "rps" and value not in ("r0", "r1"):
                assert any(v.check == "bad_plan_field" and "kv_flows[0]" in v.message for v in violations), (key,
                                                                                                          value)
    bad = copy.deepcopy(plan)
    bad["kv_flows"][0]["to_domain"] = "spine"  # a switch holds no pool: nothing decodes there
    assert [str(v) for v in verify(inst, bad)] == [
        "bad_plan_field: kv_flows[0].to_domain: 'spine' holds no node pool (domains: r0, r1)",
        "kv_flow_total: model 'm': KV flows carry 0 req/s, below the demand 4"]


def test_flow_of_a_model_without_workload(spine: tuple[Instance, dict[str, Any]]) -> None:
    """A model the instance describes but serves no demand for (it used to raise KeyError on the link check)."""
    doc = yaml.safe_load((INSTANCES / "tiny" / "network-spine.yaml").read_text())
    doc["models"]["idle"] = {"kv_bytes_per_token": 1000, "weights_gb": 1}
    inst = instance_from_dict(doc)
    plan = copy.deepcopy(spine[1])
    plan["kv_flows"].append({"model": "idle", "from_domain": "r0", "to_domain": "r1", "rps": 1.0})
    assert [str(v) for v in verify(inst, plan)] == [
        "bad_plan_field: kv_flows[1].model: 'idle' has no workload in the instance"]

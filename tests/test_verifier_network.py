"""The verifier's network checks on hand-written KV flows over tiny/network-spine.yaml.

The spine plan (derived in the instance's description) puts one prefill instance of GPU a in rack r0 (5 req/s)
and one decode instance of GPU b in rack r1 (5 req/s); demand is 4 req/s and each request moves 1 Gbit of KV
cache over r0-spine-r1 (10 Gbit/s per link). Flows are replaced by hand so that each figure below is known.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pdopt.instance import Instance
from pdopt.io import load_instance
from pdopt.plan import solve
from pdopt.verify import Violation, verify
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

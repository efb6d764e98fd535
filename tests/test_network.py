"""Network: KV flows over links, transfer time in TTFT, surviving a domain loss, and network input errors."""

from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.io import InputError, instance_from_dict
from pdopt.plan import Plan
from pdopt.sim import SimOptions, simulate
from tests.conftest import INSTANCES

SPINE = INSTANCES / "tiny" / "network-spine.yaml"


def _doc(spine_gbps: float = 10.0) -> dict[str, Any]:
    doc = yaml.safe_load(SPINE.read_text())
    for link in doc["network"]["links"]:
        link["bandwidth_gbps"] = spine_gbps
    return doc


@pytest.mark.parametrize(("gbps", "cost", "split"), [(10.0, 4.10, True), (4.0, 4.10, True), (3.9, 6.00, False),
                                                     (1.0, 6.00, False)])
def test_spine_bandwidth_decides_the_split(gbps: float, cost: float, split: bool) -> None:
    """Derived in the instance's description: the split needs 4 Gbit/s on each spine link."""
    inst = instance_from_dict(_doc(gbps))
    plan = pdopt.solve(inst)
    assert plan.objective_usd_per_hour == pytest.approx(cost)
    domains = {plan.pools[p.pool].domain for p in plan.placements}
    assert (domains == {"r0", "r1"}) is split
    load = {(link.a, link.b): link.kv_traffic_gbps for link in plan.links}
    assert load[("r0", "spine")] == pytest.approx(4.0 if split else 0.0)
    assert pdopt.verify(inst, plan.to_dict()) == []


def test_transfer_time_enters_ttft() -> None:
    """Overhead = client I/O 0.05 s + 1 Gbit of KV over the 1-GPU instance's NIC. At 100 Gbit/s: 0.06 s, budget
    1.25 - 0.06 = 1.19 s, capacity of a 6 - 1/1.19 = 5.16 req/s. At 1 Gbit/s: 1.05 s, budget 0.2 s: a's service
    1000/6000 = 0.167 s fits (capacity 6 - 1/0.2 = 1 req/s); b's 1000/3500 = 0.286 s does not: the TTFT target is
    below b's unloaded TTFT, so b's prefill is unusable at the low bandwidth and usable at the high one."""
    fast = _doc()
    fast["network"]["client_io_s"] = 0.05
    for g in fast["gpu_types"].values():
        g["nic_gbps_per_gpu"] = 100.0
    table = pdopt.capacity_table(instance_from_dict(fast))
    a = next(s for s in table.for_role("m", "prefill") if s.gpu_type == "a")
    assert a.detail["transfer_s"] == pytest.approx(0.06)
    assert a.capacity_rps == pytest.approx(6 - 1 / 1.19)
    assert {s.gpu_type for s in table.for_role("m", "prefill")} == {"a", "b"}
    slow = _doc()
    slow["network"]["client_io_s"] = 0.05
    for g in slow["gpu_types"].values():
        g["nic_gbps_per_gpu"] = 1.0
    table = pdopt.capacity_table(instance_from_dict(slow))
    assert [s.gpu_type for s in table.for_role("m", "prefill")] == ["a"]
    assert table.for_role("m", "prefill")[0].capacity_rps == pytest.approx(1.0)
    assert any(s.gpu_type == "b" and "unloaded TTFT" in s.reason for s in table.skipped)


def test_simulator_uses_the_transfer_time() -> None:
    doc = _doc()
    doc["network"]["client_io_s"] = 0.05
    for g in doc["gpu_types"].values():
        g["nic_gbps_per_gpu"] = 2.0  # 0.05 + 1 / 2 = 0.55 s
    inst = instance_from_dict(doc)
    res = simulate(inst, pdopt.solve(inst), SimOptions(requests=5000, seed=2))
    eng = res.engine
    assert eng is not None
    gap = eng.requests.join_s - eng.requests.prefill_end_s
    assert float(gap.min()) >= 0.55 - 1e-9


def test_surviving_a_domain_loss() -> None:
    """With half the demand to survive either rack's loss, both racks need prefill and decode: each rack alone
    must carry 2 req/s of each role. The plan verifies, and the simulator serves the fraction with one rack's
    instances removed (at 2 req/s, half the demand, the remaining fleet meets the SLOs)."""
    doc = _doc()
    doc["resilience"] = {"domain_loss_fraction": 0.5}
    inst = instance_from_dict(doc)
    plan = pdopt.solve(inst)
    assert plan.status is pdopt.SolveStatus.OPTIMAL
    assert pdopt.verify(inst, plan.to_dict()) == []
    for lost, per in plan.failure_scenarios.items():
        assert per["m"].served_fraction >= 0.5 - 1e-9, lost
    half = instance_from_dict({**doc, "workloads": {"m": {**doc["workloads"]["m"],
                                                          "demand": {"requests_per_s": 2.0}}}})
    for lost in ("r0", "r1"):
        kept = [p for p in plan.to_dict()["placements"] if inst.node_pools[p["pool"]].domain != lost]
        survivor = {**plan.to_dict(), "instance": half.name, "placements": kept}
        res = simulate(half, Plan.from_dict(survivor), SimOptions(requests=8000, seed=3))
        assert res.models["m"]["slo_met"], lost


def test_a_link_too_thin_names_the_link_and_shortfall() -> None:
    """With prefill possible only on a (in r0) and decode only on b (in r1), every request crosses the spine:
    4 Gbit/s against 1 on each link, so the diagnosis asks for 3 Gbit/s more on the first link of the route."""
    doc = _doc(1.0)
    doc["profiles"] = [p for p in doc["profiles"] if not (p["role"] == "decode" and p["gpu_type"] == "a")]
    doc["profiles"] = [p for p in doc["profiles"] if not (p["role"] == "prefill" and p["gpu_type"] == "b")]
    plan = pdopt.solve(instance_from_dict(doc))
    assert plan.status is pdopt.SolveStatus.INFEASIBLE
    assert any("link r0-spine: 3 Gbit/s more" in n for n in plan.resource_needs), plan.resource_needs


def test_network_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _doc()
    doc["network"]["links"][0]["b"] = "core"
    with pytest.raises(InputError, match=r"network\.links\[0\]\.b: 'core' is neither a pool domain nor a switch"):
        instance_from_dict(doc)
    doc = _doc()
    doc["network"]["links"] = [{"a": "r0", "b": "spine", "bandwidth_gbps": 10}]
    with pytest.raises(InputError, match="pool domains are disconnected"):
        instance_from_dict(doc)
    doc = _doc(0.0)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 2
    assert "network.links[0].bandwidth_gbps: Input should be greater than 0" in capsys.readouterr().err


def test_verifier_catches_network_violations() -> None:
    inst = instance_from_dict(_doc(10.0))
    plan = pdopt.solve(inst).to_dict()
    assert pdopt.verify(inst, plan) == []
    thin = instance_from_dict(_doc(1.0))
    checks = {v.check for v in pdopt.verify(thin, {**plan, "instance": thin.name})}
    assert "link_bandwidth" in checks  # the 10 Gbit/s plan's 4 Gbit/s of KV over a 1 Gbit/s spine
    short = {**plan, "kv_flows": [dict(plan["kv_flows"][0], rps=3.0)]}
    assert "kv_flow_total" in {v.check for v in pdopt.verify(inst, short)}
    resilient = instance_from_dict({**_doc(10.0), "resilience": {"domain_loss_fraction": 0.5}})
    assert "domain_loss_cover" in {v.check for v in pdopt.verify(resilient, {**plan, "instance": resilient.name})}

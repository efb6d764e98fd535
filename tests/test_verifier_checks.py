"""The verifier's registry of checks: complete, documented, and every check fired by a corruption of a real plan.

Each registered check gets one corruption below: a plan that pdopt solved for a bundled instance (or a small
variant of one, built with ``instance_from_dict``), verified clean, then broken in one specific way. The test
asserts the exact set of checks that fire: the target one, plus only those that the same corruption necessarily
breaks as well (listed beside it and explained). A check without a corruption here fails
:func:`test_every_check_has_a_corruption`, so a check cannot be added without a plan that triggers it.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdopt import solve
from pdopt.instance import Instance
from pdopt.io import instance_from_dict, load_instance
from pdopt.optimize.horizon import plan_horizon
from pdopt.verifier import (
    CHECKS,
    CHECKS_BY_NAME,
    FAMILIES,
    Violation,
    checks_markdown,
    format_violations,
    packing,
    verify,
)
from tests.test_verify import ffd_trap_doc  # derived there, by hand

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "verifier.md"
PACKAGE = ROOT / "pdopt" / "verifier"


# ----------------------------------------------------------------------------------------------------------------
# The registry and its documentation
# ----------------------------------------------------------------------------------------------------------------


def test_registry_is_well_formed() -> None:
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names)) == len(CHECKS_BY_NAME)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", n) for n in names), names
    assert all(c.family in FAMILIES for c in CHECKS)
    assert all(c.summary.endswith(".") and "|" not in c.summary for c in CHECKS)
    order = list(FAMILIES)  # grouped by family, families in the order the verifier runs them
    assert [order.index(c.family) for c in CHECKS] == sorted(order.index(c.family) for c in CHECKS)


def test_unregistered_check_cannot_be_emitted() -> None:
    with pytest.raises(ValueError, match="unregistered verifier check 'made_up'"):
        Violation("made_up", "never")
    v = Violation("budget", "over")
    assert v.spec is CHECKS_BY_NAME["budget"] and str(v) == "budget: over"


def _emitted_names() -> dict[str, set[str]]:
    """Check names passed as string literals to ``Violation(...)`` in the package's source, per module."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Violation"
                    and node.args):
                assert isinstance(node.args[0], ast.Constant), f"{path.name}:{node.lineno}: name the check literally"
                found.setdefault(str(node.args[0].value), set()).add(path.name)
    return found


def test_registry_matches_what_the_code_emits() -> None:
    """Every ``Violation("...")`` in the source is registered, and every registered check is emitted somewhere."""
    assert set(_emitted_names()) == set(CHECKS_BY_NAME)


def _docs_section() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- checks:start -->\n(.*?)<!-- checks:end -->", text, re.S)
    assert match, "docs/verifier.md lost its <!-- checks:start --> / <!-- checks:end --> markers"
    return match.group(1)


def test_docs_table_is_current() -> None:
    """docs/verifier.md shows the registry as it is. Regenerate the section with
    ``python -c "from pdopt.verifier import checks_markdown; print(checks_markdown(), end='')"``."""
    assert _docs_section() == checks_markdown(), "docs/verifier.md is stale: regenerate the checks table"


def test_readme_links_the_verifier_page() -> None:
    assert "(docs/verifier.md)" in (ROOT / "README.md").read_text()


# ----------------------------------------------------------------------------------------------------------------
# Bases: real plans of bundled instances (and small variants), each verified clean
# ----------------------------------------------------------------------------------------------------------------

INSTANCES = ROOT / "instances"
TWO_PERIODS = ROOT / "instances" / "tiny" / "two-periods.yaml"


def _spine_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((INSTANCES / "tiny" / "network-spine.yaml").read_text())
    return doc


def _load(name: str) -> Instance:
    """A base instance by name: a bundled file, or a small variant of one."""
    files = {"paper": "paper/dsv31-h200-5mtpm.yaml", "mixed": "tiny/mixed-two-models-cap.yaml",
             "example": "examples/llama70b-bloom176b-a100-h100.yaml", "spine": "tiny/network-spine.yaml",
             "modes": "tiny/mixed-modes.yaml", "spot": "tiny/spot-two-periods.yaml",
             "spot_risk": "tiny/spot-risk-two-periods.yaml"}
    if name in files:
        return load_instance(INSTANCES / files[name])
    if name == "paper_budget":  # the paper instance with a budget its optimum (224 USD/hour) just meets
        path = INSTANCES / files["paper"]
        doc = yaml.safe_load(path.read_text())
        return instance_from_dict({**doc, "limits": {"budget_usd_per_hour": 224.0}}, path.parent)
    if name == "resilient":  # network-spine, half the demand to survive either rack's loss
        return instance_from_dict({**_spine_doc(), "resilience": {"domain_loss_fraction": 0.5}})
    if name == "ffd_trap":
        return instance_from_dict(ffd_trap_doc())
    if name in ("two_periods", "two_periods_variants"):
        return instance_from_dict(_two_periods_doc(name == "two_periods_variants"), TWO_PERIODS.parent)
    raise AssertionError(name)


def _two_periods_doc(variants: bool = False) -> dict[str, Any]:
    """instances/tiny/two-periods.yaml; with ``variants``, a second decode profile identical to the first (variant
    ``b``) and a pool of 2 nodes x 6 GPUs, 12 GPUs: the day's fleet exactly."""
    doc: dict[str, Any] = yaml.safe_load(TWO_PERIODS.read_text())
    if variants:
        decode = next(p for p in doc["profiles"] if p["role"] == "decode")
        doc["profiles"].append({**decode, "variant": "b"})
        doc["node_pools"]["nodes"]["gpus_per_node"] = 6
    return doc


@functools.cache
def _solved(name: str) -> tuple[Instance, str]:
    inst = _load(name)
    plan = plan_horizon(inst).to_dict() if inst.horizon is not None else solve(inst).to_dict()
    assert plan["status"] == "optimal", plan["reason"]
    return inst, json.dumps(plan)  # stored as text: every use gets its own copy


def _base(name: str) -> tuple[Instance, dict[str, Any]]:
    inst, text = _solved(name)
    plan: dict[str, Any] = json.loads(text)
    return inst, plan


def _one(plan: dict[str, Any], **match: Any) -> dict[str, Any]:
    """The one placement whose fields equal ``match``."""
    found = [p for p in plan["placements"] if all(p[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def _rebook(inst: Instance, plan: dict[str, Any], nodes: dict[str, int] | None = None) -> dict[str, Any]:
    """The plan's bookkeeping redone from its placements, by the pricing rules the instance states, so that a
    corruption of the fleet breaks nothing else: each pool's GPUs, nodes in use (``nodes`` overrides), cost (node
    billing: nodes x (node price + activation); GPU billing: GPUs x GPU price + nodes x activation), the
    placements' shares of it by GPUs, the objective, GPUs per type (the pool's) and the per-model summary.
    Checked against the planner's own bookkeeping in :func:`test_rebooking_reproduces_the_planner`."""
    nodes = nodes or {}
    pools: dict[str, dict[str, Any]] = plan["pools"]
    for pid in {p["pool"] for p in plan["placements"]} - set(pools):
        np_ = inst.node_pools[pid]
        pools[pid] = {"gpu_type": np_.gpu_type, "domain": np_.domain, "node_count": np_.node_count,
                      "nodes_used": 0, "gpus_used": 0, "packing": "aggregate", "cost_usd_per_hour": 0.0}
    gpus_by_type: dict[str, float] = {}
    for pid, entry in pools.items():
        pool = inst.node_pools[pid]
        here = [p for p in plan["placements"] if p["pool"] == pid]
        gpus = sum(p["gpus_per_instance"] * p["count"] for p in here)
        n = nodes.get(pid, entry["nodes_used"])
        by_node = pool.billing == "node_hour" or (pool.billing is None and pool.price_usd_per_node_hour is not None)
        if by_node:
            assert pool.price_usd_per_node_hour is not None
            cost = n * (pool.price_usd_per_node_hour + pool.activation_cost_usd_per_hour)
        else:
            cost = gpus * inst.gpu_types[pool.gpu_type].price_usd_per_gpu_hour + n * pool.activation_cost_usd_per_hour
        entry.update(nodes_used=n, gpus_used=gpus, cost_usd_per_hour=cost)
        for p in here:
            p["cost_usd_per_hour"] = cost * p["gpus_per_instance"] * p["count"] / gpus
        if gpus:
            gpus_by_type[pool.gpu_type] = gpus_by_type.get(pool.gpu_type, 0) + gpus
    plan["objective_usd_per_hour"] = sum(e["cost_usd_per_hour"] for e in pools.values())
    plan["gpus_used"] = gpus_by_type
    for model, summary in plan["models"].items():
        for role in ("prefill", "decode", "aggregated"):
            if summary.get(role) is None:
                continue
            mine = [p for p in plan["placements"] if p["model"] == model and p["role"] == role]
            summary[role]["instances"] = sum(p["count"] for p in mine)
            summary[role]["gpus"] = sum(p["gpus_per_instance"] * p["count"] for p in mine)
    return plan


BASES = ["paper", "paper_budget", "mixed", "example", "spine", "resilient", "ffd_trap", "modes", "two_periods",
         "two_periods_variants", "spot", "spot_risk"]


@pytest.mark.parametrize("name", BASES)
def test_bases_verify_clean(name: str) -> None:
    inst, plan = _base(name)
    assert verify(inst, plan) == [], format_violations(verify(inst, plan))


HORIZON_BASES = ("two_periods", "two_periods_variants", "spot", "spot_risk")


@pytest.mark.parametrize("name", [b for b in BASES if b not in HORIZON_BASES])  # horizons: not rebooked
def test_rebooking_reproduces_the_planner(name: str) -> None:
    """The corruptions' bookkeeping agrees with the planner's on every base (so it hides nothing)."""
    inst, plan = _base(name)
    again = _rebook(inst, copy.deepcopy(plan))
    assert again["objective_usd_per_hour"] == pytest.approx(plan["objective_usd_per_hour"], rel=1e-12)
    assert again["gpus_used"] == {g: n for g, n in plan["gpus_used"].items() if n}
    for mine, theirs in zip(again["placements"], plan["placements"], strict=True):
        assert mine["cost_usd_per_hour"] == pytest.approx(theirs["cost_usd_per_hour"], rel=1e-12)
    for pid, entry in plan["pools"].items():
        assert again["pools"][pid]["cost_usd_per_hour"] == pytest.approx(entry["cost_usd_per_hour"], rel=1e-12)
        assert again["pools"][pid]["gpus_used"] == entry["gpus_used"]
    assert again["models"] == plan["models"]


# ----------------------------------------------------------------------------------------------------------------
# One corruption per registered check
# ----------------------------------------------------------------------------------------------------------------

Corruption = Callable[[Instance, dict[str, Any], pytest.MonkeyPatch], tuple[Instance, dict[str, Any]]]


@dataclass(frozen=True)
class Case:
    """Break ``base``'s plan (or, where no plan can break the rule alone, check it against a stricter variant of
    its instance) so that ``check`` fires, together with exactly ``also``."""

    check: str
    base: str
    corrupt: Corruption
    also: frozenset[str] = frozenset()


def _bad_plan_field(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["pools"]["h200_nodes"]["packing"] = 5  # a pool entry's packing must be a string
    return inst, plan


def _instance_mismatch(inst: Instance, plan: dict[str, Any],
                       _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["instance"] = "another-instance"
    return inst, plan


def _integrality(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, role="decode")["count"] = 4.5  # half an instance more, paid as a ninth node
    return inst, _rebook(inst, plan, {"h200_nodes": 9})


def _unknown_shape(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # an extra instance of alpha prefill on 2 slow GPUs: every profile of this instance is 1 GPU
    plan["placements"].append({"model": "alpha", "role": "prefill", "gpu_type": "slow", "gpus_per_instance": 2,
                               "pool": "slow_nodes", "count": 1, "capacity_rps": 1.0, "cost_usd_per_hour": 0.0,
                               "variant": "default"})
    return inst, _rebook(inst, plan)


def _unusable_shape(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # an extra llama2_70b prefill on 2 A100s: benchmarked, but its p90 TTFT misses the target at any load
    plan["placements"].append({"model": "llama2_70b", "role": "prefill", "gpu_type": "a100_80gb",
                               "gpus_per_instance": 2, "pool": "a100_nodes", "count": 1, "capacity_rps": 0.0,
                               "cost_usd_per_hour": 0.0, "variant": "default"})
    return inst, _rebook(inst, plan, {"a100_nodes": 4})  # 26 GPUs on 8-GPU nodes


def _unknown_pool(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["pools"]["nowhere"] = dict(plan["pools"]["h200_nodes"])
    return inst, plan


def _pool_gpu_type(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, model="beta", role="decode")["pool"] = "slow_nodes"  # a fast-GPU instance in the slow pool
    return inst, _rebook(inst, plan)


def _capacity_mismatch(inst: Instance, plan: dict[str, Any],
                       _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, role="prefill")["capacity_rps"] *= 1.1
    return inst, plan


def _demand_cover(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, role="decode")["count"] = 3  # 3 x 3.33 = 10 req/s of decode for 12.52
    return inst, _rebook(inst, plan, {"h200_nodes": 7})


def _pool_gpu_capacity(inst: Instance, plan: dict[str, Any],
                       _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, role="decode")["count"] = 13  # 17 one-node instances in a 16-node pool, claimed on 16 nodes
    return inst, _rebook(inst, plan, {"h200_nodes": 16})


def _node_packing(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    return inst, _rebook(inst, plan, {"h200_nodes": 7})  # 8 one-node instances paid as 7 nodes


def _node_packing_undecided(inst: Instance, plan: dict[str, Any],
                            monkeypatch: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # the plan is sound, but first-fit decreasing cannot pack it and the exact search may expand one state only
    monkeypatch.setattr(packing, "MAX_SEARCH_STATES", 1)
    return inst, plan


def _pool_node_limit(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["pools"]["slow_nodes"]["nodes_used"] = 3  # of 2; GPU billing without activation: the cost is unchanged
    return inst, plan


def _gpu_type_availability(inst: Instance, plan: dict[str, Any],
                           _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, model="alpha", role="prefill")["count"] = 2  # a third fast GPU; max_gpus is 2
    return inst, _rebook(inst, plan)


def _cost_mismatch(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, role="decode")["cost_usd_per_hour"] *= 1.5
    return inst, plan


def _objective_mismatch(inst: Instance, plan: dict[str, Any],
                        _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["objective_usd_per_hour"] = 200.0  # the pools cost 224
    return inst, plan


def _budget(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    _one(plan, role="decode")["count"] = 5  # one node more than needed: 252 USD/hour, budget 224
    return inst, _rebook(inst, plan, {"h200_nodes": 9})


def _summary_mismatch(inst: Instance, plan: dict[str, Any],
                      _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["models"]["dsv31"]["prefill"]["instances"] = 3  # of 4
    return inst, plan


def _kv_flow_total(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["kv_flows"][0]["rps"] = 3.0  # of a demand of 4 req/s
    return inst, plan


def _kv_flow_capacity(inst: Instance, plan: dict[str, Any],
                      _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["kv_flows"][0]["rps"] = 6.0  # r0's prefill and r1's decode serve 5 req/s each; 6 Gbit/s fit the spine
    return inst, plan


def _link_bandwidth(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # No plan of this instance can overload a link alone: the flow out of r0 is bounded by r0's prefill (5 req/s,
    # 5 Gbit/s) and the spine carries 10. So the same plan is checked against the spine at 1 Gbit/s per link.
    doc = _spine_doc()
    for link in doc["network"]["links"]:
        link["bandwidth_gbps"] = 1.0
    return instance_from_dict(doc), plan


def _domain_loss_cover(inst: Instance, plan: dict[str, Any],
                       _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # drop r1's prefill: r0's prefill (5 req/s) still covers the 4 req/s and carries every flow already, but
    # losing r0 now leaves no prefill, below half the demand
    plan["placements"].remove(_one(plan, role="prefill", pool="b_r1"))
    return inst, _rebook(inst, plan)


def _mode_split(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # the fleet (2 P, 1 D, 1 aggregated) serves 90 req/s by routing 10.79 to 11.8 req/s to the aggregated
    # instance; routing 30 overloads it (11.8 req/s)
    plan["models"]["llm"]["aggregated_rps"] = 30.0
    return inst, plan


def _mode_not_allowed(inst: Instance, plan: dict[str, Any],
                      _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # the same plan against the instance limited to P/D pairs: its aggregated placement is not allowed, and the
    # pairs alone (min(2 x 40.8, 79.2) req/s) fall short of 90
    path = INSTANCES / "tiny" / "mixed-modes.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["workloads"]["llm"]["modes"] = ["disaggregated"]
    return instance_from_dict(doc, path.parent), plan


def _horizon_periods(inst: Instance, plan: dict[str, Any],
                     _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["periods"].reverse()  # day before night: not the horizon's order
    return inst, plan


def _horizon_starts(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["periods"][1]["starts"] = 3  # the day adds 5 prefill + 2 decode instances: 7 starts
    return inst, plan


def _min_uptime(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # the same plan against a 13-hour minimum uptime: the 5 prefill instances started for the day (12 h before
    # the night begins) must still run at night, which keeps 3 (the description of two-periods.yaml)
    return inst.replace(horizon={**inst.horizon.model_dump(mode="json"), "min_uptime_h": 13.0}), plan  # type: ignore[union-attr]


def _ramp_capacity(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # the day's decode instances on the other (identical) decode variant: each period still verifies, but the ramp
    # before the day holds 8 prefill + the night's 2 decode + the day's 4 other decode = 14 GPUs in a 12-GPU pool;
    # the day then starts 4 decode instances (9 starts, not 7) and the night 2 (the day has none of its variant),
    # and the ramp's least cost 0.5 x (14 - 5) = 4.50 is above the stated 3.50, so the total differs too
    night = next(p for p in plan["periods"][0]["plan"]["placements"] if p["role"] == "decode")
    day = next(p for p in plan["periods"][1]["plan"]["placements"] if p["role"] == "decode")
    day["variant"] = "b" if night["variant"] == "default" else "default"
    return inst, plan


def _horizon_cost(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["periods"][0]["cost_usd"] = 61.0  # 12 h x 5.00 USD/h = 60.00
    return inst, plan


def _static_fleet(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # the static plan's night holds the night's own (smaller, valid) fleet: not the same placements as its day;
    # its day then starts 7 instances (stated 0), its ramp costs 0.5 x (12 - 5) = 3.50 (stated 0), and its total
    # is not the stated 288.00
    plan["static_peak"][0] = copy.deepcopy(plan["periods"][0])
    plan["static_peak"][0]["starts"] = 0
    return inst, plan


def _purchase_cover(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # the day's 12 GPUs: 5 reserved + 4 spot + 3 on demand; one on-demand GPU fewer leaves one uncovered (its
    # 12 x 1.00 taken off the pool's cost and the total too, so that only the cover is wrong)
    entry = plan["purchase"]["pools"][0]
    entry["periods"][1]["on_demand"] -= 1
    entry["cost_usd"] -= 12.0
    plan["total_cost_usd"] -= 12.0
    return inst, plan


def _purchase_limits(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # 5 spot GPUs by day where 4 are on offer, one on-demand GPU fewer: covered, same units, cheaper by 0.70 x 12
    entry = plan["purchase"]["pools"][0]
    entry["periods"][1]["spot"] += 1
    entry["periods"][1]["on_demand"] -= 1
    entry["cost_usd"] -= 12 * 0.7
    plan["total_cost_usd"] -= 12 * 0.7
    return inst, plan


def _purchase_cost(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    plan["purchase"]["pools"][0]["cost_usd"] = 100.0  # recomputed 122.40 (the total still states 122.40)
    return inst, plan


def _spot_loss_cover(inst: Instance, plan: dict[str, Any], _: pytest.MonkeyPatch) -> tuple[Instance, dict[str, Any]]:
    # half the spot GPUs may go instead of a quarter: losing 2 of the day's 4 leaves 9 - 2 = 7 prefill instances
    # (7.0 < 7.5 req/s) and 5 - 2 = 3 decode (6.0 < 7.5); the plan is otherwise untouched
    doc = inst.model_dump(mode="json")
    doc["node_pools"]["nodes"]["purchase"]["spot"]["loss_share"] = 0.5
    return Instance.model_validate(doc), plan


CASES: tuple[Case, ...] = (
    Case("bad_plan_field", "paper", _bad_plan_field),
    Case("instance_mismatch", "paper", _instance_mismatch),
    Case("integrality", "paper", _integrality),
    Case("unknown_shape", "mixed", _unknown_shape),
    Case("unusable_shape", "example", _unusable_shape),
    Case("unknown_pool", "paper", _unknown_pool),
    Case("pool_gpu_type", "mixed", _pool_gpu_type),
    Case("capacity_mismatch", "paper", _capacity_mismatch),
    Case("demand_cover", "paper", _demand_cover),
    # more GPUs than the pool holds cannot be packed on its nodes either
    Case("pool_gpu_capacity", "paper", _pool_gpu_capacity, frozenset({"node_packing"})),
    Case("node_packing", "paper", _node_packing),
    Case("node_packing_undecided", "ffd_trap", _node_packing_undecided),
    Case("pool_node_limit", "mixed", _pool_node_limit),
    Case("gpu_type_availability", "mixed", _gpu_type_availability),
    Case("cost_mismatch", "paper", _cost_mismatch),
    Case("objective_mismatch", "paper", _objective_mismatch),
    Case("budget", "paper_budget", _budget),
    Case("summary_mismatch", "paper", _summary_mismatch),
    Case("kv_flow_total", "spine", _kv_flow_total),
    Case("kv_flow_capacity", "spine", _kv_flow_capacity),
    Case("link_bandwidth", "spine", _link_bandwidth),
    Case("domain_loss_cover", "resilient", _domain_loss_cover),
    Case("mode_split", "modes", _mode_split),
    Case("mode_not_allowed", "modes", _mode_not_allowed, frozenset({"demand_cover"})),
    Case("horizon_periods", "two_periods", _horizon_periods),
    Case("horizon_starts", "two_periods", _horizon_starts),
    Case("min_uptime", "two_periods", _min_uptime),
    Case("ramp_capacity", "two_periods_variants", _ramp_capacity, frozenset({"horizon_starts", "horizon_cost"})),
    Case("horizon_cost", "two_periods", _horizon_cost),
    Case("static_fleet", "two_periods", _static_fleet, frozenset({"horizon_starts", "horizon_cost"})),
    Case("purchase_cover", "spot", _purchase_cover),
    Case("purchase_limits", "spot", _purchase_limits),
    Case("purchase_cost", "spot", _purchase_cost),
    Case("spot_loss_cover", "spot_risk", _spot_loss_cover),
)
CASE_OF: dict[str, Case] = {c.check: c for c in CASES}


def test_every_check_has_a_corruption() -> None:
    """One corruption per registered check, and none for a check that is not registered."""
    assert len(CASE_OF) == len(CASES)
    assert set(CASE_OF) == set(CHECKS_BY_NAME)
    assert all(c.base in BASES for c in CASES)


@pytest.mark.parametrize("check", [c.name for c in CHECKS])
def test_corruption_fires_its_check(check: str, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASE_OF.get(check)
    assert case is not None, f"no corruption makes a plan break '{check}': add a Case to CASES"
    inst, plan = _base(case.base)
    assert verify(inst, plan) == []
    inst, plan = case.corrupt(inst, plan, monkeypatch)
    violations = verify(inst, plan)
    assert {v.check for v in violations} == {check} | case.also, format_violations(violations)
    assert all(v.message for v in violations)

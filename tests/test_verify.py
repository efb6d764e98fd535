"""The independent plan verifier: clean on pdopt's own plans, and each corruption caught by its named check.

The verifier is only worth having if it (a) agrees with the planner on correct plans, so that its silence means
something, and (b) names the constraint a broken plan violates. Plans are corrupted one way at a time so that a
check firing for the wrong reason would show up as a missing check name.
"""

from __future__ import annotations

import ast
import copy
import math
from pathlib import Path
from typing import Any

import pytest

from pdopt.instance import Instance
from pdopt.io import instance_from_dict, load_instance
from pdopt.plan import solve
from pdopt.verify import (
    Violation,
    first_fit_decreasing,
    format_violations,
    recompute_shape,
    verify,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER_FILE = ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"


def _checks(violations: list[Violation]) -> set[str]:
    return {v.check for v in violations}


@pytest.fixture(scope="module")
def paper_instance() -> Instance:
    return load_instance(PAPER_FILE)


@pytest.fixture(scope="module")
def paper_plan(paper_instance: Instance) -> dict[str, Any]:
    plan: dict[str, Any] = solve(paper_instance).to_dict()
    assert plan["status"] == "optimal"
    return plan


def _placement(plan: dict[str, Any], role: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in plan["placements"] if p["role"] == role]
    assert len(found) == 1
    return found[0]


# ----------------------------------------------------------------------------------------------------------------
# The paper instance: pdopt's plan is clean, each corruption is named
# ----------------------------------------------------------------------------------------------------------------


def test_paper_plan_verifies_clean(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    assert verify(paper_instance, paper_plan) == []
    assert "no violations" in format_violations([])


def test_paper_capacities_recomputed_by_hand(paper_instance: Instance) -> None:
    """The paper's arithmetic: prefill (28309 - 6144/1.9)/6144 req/s; decode whole batch 34 at 19.92 ms."""
    pre = recompute_shape(paper_instance, "dsv31", "prefill", "h200", 8)
    dec = recompute_shape(paper_instance, "dsv31", "decode", "h200", 8)
    assert pre is not None and dec is not None
    assert pre.capacity_rps == pytest.approx((28309 - 6144 / 1.9) / 6144, rel=1e-12)
    assert dec.capacity_rps == pytest.approx(34 / (0.01992 * 512), rel=1e-12)


def _corrupt(plan: dict[str, Any], how: str) -> dict[str, Any]:
    bad = copy.deepcopy(plan)
    dec, pre = _placement(bad, "decode"), _placement(bad, "prefill")
    if how == "drop_decode":
        dec["count"] -= 1
        dec["cost_usd_per_hour"] = dec["count"] * 8 * 3.5
        bad["models"]["dsv31"]["decode"]["instances"] -= 1
        bad["models"]["dsv31"]["decode"]["gpus"] -= 8
        bad["gpus_used"]["h200"] -= 8
        bad["objective_usd_per_hour"] -= 28.0
    elif how == "seventeen_nodes":
        dec["count"] = 17 - pre["count"]
    elif how == "wrong_cost":
        dec["cost_usd_per_hour"] *= 1.5
    elif how == "unknown_pool":
        dec["pool"] = "nowhere"
    elif how == "wrong_gpu_type":
        dec["gpu_type"] = "h100"
    elif how == "capacity_off":
        pre["capacity_rps"] *= 1.1
    elif how == "fractional_count":
        dec["count"] = 3.5
    elif how == "no_placements":
        del bad["placements"]
    elif how == "wrong_objective":
        bad["objective_usd_per_hour"] = 200.0
    elif how == "wrong_summary":
        bad["models"]["dsv31"]["prefill"]["instances"] = 3
    else:  # pragma: no cover - a typo in the parametrisation
        raise AssertionError(how)
    return bad


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("drop_decode", {"demand_cover"}),
        ("seventeen_nodes", {"node_packing", "pool_gpu_capacity"}),
        ("wrong_cost", {"cost_mismatch"}),
        ("unknown_pool", {"unknown_pool"}),
        ("wrong_gpu_type", {"pool_gpu_type", "unknown_shape"}),
        ("capacity_off", {"capacity_mismatch"}),
        ("fractional_count", {"integrality"}),
        ("no_placements", {"bad_plan_field"}),
        ("wrong_objective", {"objective_mismatch"}),
        ("wrong_summary", {"summary_mismatch"}),
    ],
)
def test_paper_corruption_is_named(paper_instance: Instance, paper_plan: dict[str, Any], how: str,
                                   expected: set[str]) -> None:
    violations = verify(paper_instance, _corrupt(paper_plan, how))
    assert expected <= _checks(violations), format_violations(violations)
    assert all(v.message for v in violations)


def test_drop_decode_is_only_demand_cover(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    """A consistent but too small plan fails on demand alone, with the numbers in the message."""
    violations = verify(paper_instance, _corrupt(paper_plan, "drop_decode"))
    assert _checks(violations) == {"demand_cover"}
    (v,) = violations
    assert "dsv31" in v.message and "decode" in v.message and "12.52" in v.message


def test_missing_placements_is_reported_alone(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    """Without a fleet nothing else can be checked; echoing demand_cover etc. would only add noise."""
    violations = verify(paper_instance, _corrupt(paper_plan, "no_placements"))
    assert [v.check for v in violations] == ["bad_plan_field"]
    assert "placements" in violations[0].message


def test_wrong_cost_does_not_blame_the_objective(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    """The objective is checked against recomputed prices, so one bad placement cost is reported once."""
    assert _checks(verify(paper_instance, _corrupt(paper_plan, "wrong_cost"))) == {"cost_mismatch"}


def test_unplanned_status_has_nothing_to_verify(paper_instance: Instance) -> None:
    assert verify(paper_instance, {"status": "infeasible", "placements": None}) == []
    assert verify(paper_instance, {"status": "no_solution"}) == []


def test_other_instance_is_named(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    bad = dict(paper_plan, instance="someone-else")
    assert _checks(verify(paper_instance, bad)) == {"instance_mismatch"}


def test_scale_demand_is_honoured(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    """The same fleet claimed at 1.5x demand no longer covers it (and the summary's demand is off)."""
    bad = dict(paper_plan, scale_demand=1.5)
    assert {"demand_cover", "summary_mismatch"} <= _checks(verify(paper_instance, bad))


def _malformations(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every top-level and placement field removed or replaced by a value of the wrong type."""
    out: list[dict[str, Any]] = []
    junk: list[Any] = [None, "x", [], {}, True, -1, math.nan, 1.5]
    for key in plan:
        for j in junk:
            out.append({**copy.deepcopy(plan), key: j})
        out.append({k: v for k, v in copy.deepcopy(plan).items() if k != key})
    for key in plan["placements"][0]:
        for j in junk:
            bad = copy.deepcopy(plan)
            bad["placements"][0][key] = j
            out.append(bad)
        bad = copy.deepcopy(plan)
        del bad["placements"][0][key]
        out.append(bad)
    for j in junk:
        for path in (("models", "dsv31"), ("models", "dsv31", "prefill"), ("models", "dsv31", "prefill", "gpus"),
                     ("gpus_used", "h200")):
            bad = copy.deepcopy(plan)
            node = bad
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = j
            out.append(bad)
        bad = copy.deepcopy(plan)
        bad["placements"] = [j]
        out.append(bad)
    return out


def test_malformed_plans_never_raise(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    for bad in _malformations(paper_plan):
        violations = verify(paper_instance, bad)
        assert all(isinstance(v, Violation) for v in violations)
        format_violations(violations)
    assert _checks(verify(paper_instance, {})) == {"bad_plan_field"}
    assert _checks(verify(paper_instance, [])) == {"bad_plan_field"}  # type: ignore[arg-type]


def test_missing_field_is_bad_plan_field(paper_instance: Instance, paper_plan: dict[str, Any]) -> None:
    for key in ("count", "model", "pool", "capacity_rps", "cost_usd_per_hour", "gpus_per_instance"):
        bad = copy.deepcopy(paper_plan)
        del bad["placements"][0][key]
        violations = verify(paper_instance, bad)
        assert any(v.check == "bad_plan_field" and key in v.message for v in violations), key


# ----------------------------------------------------------------------------------------------------------------
# A small instance: node packing one node at a time
# ----------------------------------------------------------------------------------------------------------------

PREFILL_CAP = 10000 / 1000 - 1 / (1.1 - 0.1)  # mu = X / L_in = 10 req/s, mean TTFT budget 1 s
DECODE_CAP = 30 / (0.020 * 100)  # TPOT(30) = 10 + 20/40 x 20 = 20 ms exactly: B* = 30, L_out = 100


def _small_doc() -> dict[str, Any]:
    return {
        "name": "small",
        "gpu_types": {"gpu": {"memory_gb": 80, "price_usd_per_gpu_hour": 2.0}},
        "node_pools": {"pool": {"gpu_type": "gpu", "gpus_per_node": 8, "node_count": 2}},
        "models": {"m": {"kv_bytes_per_token": 1000, "weights_gb": 100}},
        "workloads": {"m": {"demand": {"requests_per_s": 8.0}, "input_tokens_mean": 1000,
                            "output_tokens_mean": 100, "ttft": {"target_s": 1.1}, "tpot": {"target_ms": 20.0},
                            "ttft_overhead_s": 0.1}},
        "profiles": [
            {"model": "m", "role": "prefill", "gpu_type": "gpu", "gpus_per_instance": 8,
             "max_throughput_by_input": [{"input_tokens": 1000, "max_throughput_tok_per_s": 10000}]},
            {"model": "m", "role": "decode", "gpu_type": "gpu", "gpus_per_instance": 4,
             "tpot_by_batch": [{"batch": 10, "tpot_ms": 10.0}, {"batch": 50, "tpot_ms": 30.0}]},
        ],
    }


def _hand_plan(n_prefill: int, n_decode: int) -> dict[str, Any]:
    """A plan dict written by hand, consistent in every field but the ones under test."""
    def role(n: int, gpus: int, cap: float) -> dict[str, Any]:
        return {"instances": n, "fractional_instances": None, "capacity_rps": n * cap,
                "utilisation": 8.0 / (n * cap), "gpus": n * gpus}
    return {
        "instance": "small", "formulation": "F1", "status": "feasible",
        "objective_usd_per_hour": (8 * n_prefill + 4 * n_decode) * 2.0, "scale_demand": 1.0, "reason": None,
        "placements": [
            {"model": "m", "role": "prefill", "gpu_type": "gpu", "gpus_per_instance": 8, "pool": "pool",
             "count": n_prefill, "capacity_rps": PREFILL_CAP, "cost_usd_per_hour": 16.0 * n_prefill},
            {"model": "m", "role": "decode", "gpu_type": "gpu", "gpus_per_instance": 4, "pool": "pool",
             "count": n_decode, "capacity_rps": DECODE_CAP, "cost_usd_per_hour": 8.0 * n_decode},
        ],
        "models": {"m": {"demand_rps": 8.0, "prefill": role(n_prefill, 8, PREFILL_CAP),
                         "decode": role(n_decode, 4, DECODE_CAP), "pd_ratio": n_prefill / n_decode}},
        "gpus_used": {"gpu": 8 * n_prefill + 4 * n_decode},
        "shortfall_rps": {}, "skipped_shapes": [], "solver": {"name": "hand", "runtime_s": 0.0, "gap": None,
                                                              "bound": None, "message": ""},
    }


@pytest.fixture(scope="module")
def small() -> Instance:
    return instance_from_dict(_small_doc())


def test_small_capacities(small: Instance) -> None:
    pre = recompute_shape(small, "m", "prefill", "gpu", 8)
    dec = recompute_shape(small, "m", "decode", "gpu", 4)
    assert pre is not None and dec is not None
    assert pre.capacity_rps == pytest.approx(9.0, rel=1e-12)
    assert dec.capacity_rps == pytest.approx(15.0, rel=1e-12)
    assert recompute_shape(small, "m", "decode", "gpu", 8) is None


def test_one_eight_two_fours_pack(small: Instance) -> None:
    violations = verify(small, _hand_plan(1, 2))
    assert violations == [], format_violations(violations)


def test_two_eights_one_four_do_not_pack(small: Instance) -> None:
    checks = _checks(verify(small, _hand_plan(2, 1)))
    assert "node_packing" in checks
    assert "pool_gpu_capacity" in checks


def test_first_fit_decreasing_works_node_by_node() -> None:
    """Sizes outside a divisibility chain fragment nodes: GPU totals fit, yet the instances do not."""
    assert first_fit_decreasing({8: 1, 4: 2}, 8, 2) == {}
    assert first_fit_decreasing({8: 2, 4: 1}, 8, 2) == {4: 1}
    assert first_fit_decreasing({6: 2, 4: 1}, 8, 2) == {4: 1}  # 16 GPUs in 16, but 6+4 > 8
    assert first_fit_decreasing({6: 2, 2: 2}, 8, 2) == {}
    assert first_fit_decreasing({16: 1}, 8, 4) == {16: 1}  # larger than a node
    assert first_fit_decreasing({8: 10**15}, 8, 16) == {8: 10**15 - 16}  # bounded by nodes, not count


# ----------------------------------------------------------------------------------------------------------------
# Agreement with the planner on variants (a disagreement here is a bug in one of the two)
# ----------------------------------------------------------------------------------------------------------------


def _variant(name: str) -> tuple[dict[str, Any], float]:
    doc = _small_doc()
    doc["node_pools"]["pool"]["node_count"] = 6
    scale = 1.0
    wl = doc["workloads"]["m"]
    if name == "fractional":
        doc["options"] = {"decode_batch_rule": "fractional"}
        wl["tpot"]["target_ms"] = 21.3
    elif name == "whole_mid_segment":
        wl["tpot"]["target_ms"] = 21.3
    elif name == "p99":
        wl["ttft"] = {"target_s": 2.1, "statistic": "p99"}
    elif name == "p50":
        wl["ttft"] = {"target_s": 0.25, "statistic": "p50"}
    elif name == "tokens_per_min":
        wl["demand"] = {"tokens_per_min": 60.0 * 1100 * 20}
    elif name == "node_price":
        doc["node_pools"]["pool"]["price_usd_per_node_hour"] = 12.0
    elif name == "scaled":
        scale = 2.5
    elif name == "curve":
        doc["profiles"][0]["max_throughput_by_input"] = [{"input_tokens": 500, "max_throughput_tok_per_s": 12000},
                                                         {"input_tokens": 1500, "max_throughput_tok_per_s": 9000}]
        doc["profiles"].append({"model": "m", "role": "prefill", "gpu_type": "gpu", "gpus_per_instance": 4,
                                "max_throughput_by_input": [{"input_tokens": 1000,
                                                             "max_throughput_tok_per_s": 6000}]})
        doc["gpu_types"]["gpu"]["max_gpus"] = 40
    elif name == "beyond_curve":
        wl["tpot"]["target_ms"] = 45.0
    return doc, scale


@pytest.mark.parametrize("name", ["fractional", "whole_mid_segment", "p99", "p50", "tokens_per_min",
                                  "node_price", "scaled", "curve", "beyond_curve"])
def test_pdopt_plans_verify_clean(name: str) -> None:
    doc, scale = _variant(name)
    inst = instance_from_dict(doc)
    plan = solve(inst, scale_demand=scale).to_dict()
    assert plan["status"] in ("optimal", "feasible"), plan["reason"]
    violations = verify(inst, plan)
    assert violations == [], format_violations(violations)


def test_fractional_and_whole_batches() -> None:
    """Target 21.3 ms crosses the segment (10 ms @ 10, 30 ms @ 50) at batch 32.6; whole rule takes 32."""
    whole = instance_from_dict(_variant("whole_mid_segment")[0])
    frac = instance_from_dict(_variant("fractional")[0])
    w = recompute_shape(whole, "m", "decode", "gpu", 4)
    f = recompute_shape(frac, "m", "decode", "gpu", 4)
    assert w is not None and f is not None
    assert w.capacity_rps == pytest.approx(32 / (0.0210 * 100), rel=1e-12)
    assert f.capacity_rps == pytest.approx(32.6 / (0.0213 * 100), rel=1e-12)


def test_unusable_shape_is_named() -> None:
    """A shape whose target cannot be met serves nothing: placing it is flagged, and demand stays uncovered."""
    doc = _small_doc()
    doc["workloads"]["m"]["tpot"]["target_ms"] = 5.0
    inst = instance_from_dict(doc)
    checks = _checks(verify(inst, _hand_plan(1, 2)))
    assert {"unusable_shape", "demand_cover", "capacity_mismatch"} <= checks


def test_gpu_type_availability() -> None:
    doc = _small_doc()
    doc["gpu_types"]["gpu"]["max_gpus"] = 12
    inst = instance_from_dict(doc)
    assert _checks(verify(inst, _hand_plan(1, 2))) == {"gpu_type_availability"}


def test_verifier_is_independent() -> None:
    """It must not import the modules it checks, or it would share their bugs."""
    tree = ast.parse((ROOT / "pdopt" / "verify.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not imported & {"pulp", "pdopt.capacity", "pdopt.milp", "pdopt.model_data", "pdopt.plan",
                           "pdopt.solver"}
    assert {m for m in imported if m.startswith("pdopt")} <= {"pdopt.instance"}

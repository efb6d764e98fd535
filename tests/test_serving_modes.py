"""The serving mode as a decision of the plan: aggregated instances, P/D pairs, or both behind one router.

Known answers are worked by hand in instances/tiny/mixed-modes.yaml (capacities 40.8 prefill, 79.208 decode,
11.8 aggregated, req/s; prices 1.00 and 0.60 USD per GPU-hour): disaggregated only 5.00, aggregated only 4.80,
both 3.60 USD/h. Variants are checked against the exact dynamic program of tests/test_independent_dp.py, which
shares no code with the MILP.
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.errors import InputError
from pdopt.io import instance_from_dict, load_instance
from pdopt.optimize.options import SolverOptions
from pdopt.verifier import verify
from tests.conftest import INSTANCES
from tests.test_independent_dp import dp_optimum

MIXED = INSTANCES / "tiny" / "mixed-modes.yaml"
MODE_INSTANCES = ["tiny/mixed-modes.yaml", "library/llama70b-a100-conv-aggregated.yaml",
                  "library/opt66b-a100-distserve-modes.yaml", "examples/llama70b-bloom176b-modes.yaml"]
KNOWN = yaml.safe_load((INSTANCES / "known_answers.yaml").read_text())["instances"]


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(MIXED.read_text())
    return doc


def _plan(doc: dict[str, Any], **kw: Any) -> pdopt.Plan:
    return pdopt.solve(instance_from_dict(doc, MIXED.parent), **kw)


def test_the_hand_worked_answer_and_its_comparison() -> None:
    plan = _plan(_doc())
    assert plan.objective_usd_per_hour == pytest.approx(3.6, rel=1e-9)
    mp = plan.models["llm"]
    assert (mp.mode, mp.prefill.instances, mp.decode.instances) == ("both", 2, 1)
    assert mp.aggregated is not None and mp.aggregated.instances == 1
    assert mp.aggregated.capacity_rps == pytest.approx(11.8, rel=1e-9)  # worked by hand
    # the router balances the load: 90 x 11.8 / (11.8 + 79.208), inside the feasible range [10.792, 11.8]
    assert mp.aggregated_rps == pytest.approx(90 * 11.8 / (11.8 + 8000 / 101), rel=1e-9)
    assert 90 - 79.2079208 - 1e-6 <= mp.aggregated_rps <= 11.8 + 1e-6
    assert mp.disaggregated_rps == pytest.approx(90 - mp.aggregated_rps)
    cmp = plan.mode_comparison["llm"]
    assert (cmp.aggregated_only_usd_per_hour, cmp.disaggregated_only_usd_per_hour) == pytest.approx((4.8, 5.0))
    line = cmp.line("llm")
    assert "disaggregate: partly" in line and "saving 25.0% against aggregated only" in line
    assert "saving 28.0% against disaggregated only" in line
    doc = plan.to_dict()
    assert doc["models"]["llm"]["mode"] == "both" and doc["mode_comparison"]["llm"]["mode"] == "both"
    assert verify(instance_from_dict(_doc(), MIXED.parent), doc) == []


@pytest.mark.parametrize(("modes", "cost", "mode"), [(["aggregated"], 4.8, "aggregated"),
                                                      (["disaggregated"], 5.0, "disaggregated")])
def test_a_workload_may_restrict_its_modes(modes: list[str], cost: float, mode: str) -> None:
    doc = _doc()
    doc["workloads"]["llm"]["modes"] = modes
    plan = _plan(doc)
    assert plan.objective_usd_per_hour == pytest.approx(cost, rel=1e-9)
    assert plan.models["llm"].mode == mode and plan.mode_comparison == {}
    assert verify(instance_from_dict(doc, MIXED.parent), plan.to_dict()) == []


def test_an_unused_mode_holds_no_spares() -> None:
    """One aggregated spare (11.8 req/s) costs 0.60 more if aggregated instances are used, nothing if not:
    both: 2 P + 1 D + 2 aggregated (23.6 - 11.8 net >= 10.79) = 4.20; disaggregated only stays 5.00."""
    doc = _doc()
    doc["workloads"]["llm"]["spare_instances"] = {"aggregated": 1}
    plan = _plan(doc)
    assert plan.objective_usd_per_hour == pytest.approx(4.2, rel=1e-9)
    doc["workloads"]["llm"]["spare_instances"] = {"aggregated": 3}  # 3 spares: 5.40 with them, so P/D pairs win
    plan = _plan(doc)
    assert plan.objective_usd_per_hour == pytest.approx(5.0, rel=1e-9)
    assert plan.models["llm"].mode == "disaggregated"
    assert verify(instance_from_dict(doc, MIXED.parent), plan.to_dict()) == []


def _variant(rng: random.Random) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    doc["workloads"]["llm"]["demand"] = {"requests_per_s": round(rng.uniform(1.0, 150.0), 3)}
    doc["gpu_types"]["small"]["price_usd_per_gpu_hour"] = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, 1.5])
    doc["gpu_types"]["big"]["price_usd_per_gpu_hour"] = rng.choice([0.5, 1.0, 2.0])
    spares = {r: rng.choice([0, 0, 1, 2]) for r in ("prefill", "decode", "aggregated")}
    doc["workloads"]["llm"]["spare_instances"] = {r: k for r, k in spares.items() if k}
    if rng.random() < 0.3:
        doc["gpu_types"]["small"]["max_gpus"] = rng.choice([1, 4, 8])
    if rng.random() < 0.2:
        doc["workloads"]["llm"]["modes"] = [rng.choice(["aggregated", "disaggregated"])]
    return doc


@pytest.mark.parametrize("seed", range(12))
def test_random_variants_match_the_dynamic_program(seed: int) -> None:
    """Random demands, prices (zero included), spares per role, caps and mode restrictions: the MILP's cost is
    the exact DP's, and every plan verifies."""
    doc = _variant(random.Random(1000 + seed))
    inst = instance_from_dict(doc, MIXED.parent)
    plan = pdopt.solve(inst, explain_mode=False)
    best = dp_optimum(inst, 1.0)
    if best is None:
        assert not plan.has_plan
        return
    assert plan.has_plan, plan.reason
    assert plan.objective_usd_per_hour == pytest.approx(best, rel=1e-6, abs=1e-9)
    assert verify(inst, plan.to_dict()) == []


@pytest.mark.parametrize("path", MODE_INSTANCES)
def test_cbc_and_highs_agree(path: str) -> None:
    inst = load_instance(INSTANCES / path)
    known = KNOWN[path][0]["objective_usd_per_hour"]
    for solver in ("cbc", "highs"):
        plan = pdopt.solve(inst, SolverOptions(solver), explain_mode=False)
        assert plan.objective_usd_per_hour == pytest.approx(known, rel=1e-6), solver
        assert verify(inst, plan.to_dict()) == []


def test_maximize_scale_with_both_modes() -> None:
    """One node of each type (8 big, 8 small GPUs): the largest demand multiplier, by hand; its plan verifies."""
    doc = _doc()
    doc["node_pools"]["big_nodes"]["node_count"] = 1
    doc["node_pools"]["small_nodes"]["node_count"] = 1
    inst = instance_from_dict(doc, MIXED.parent)
    plan = pdopt.solve(inst, maximize_scale=True, explain_mode=False)
    assert plan.has_plan and plan.scale is not None
    # by hand: 8 big GPUs serve at most min(40.8 a, 79.208 (8 - a)) over a: a = 5 P (204) and 3 D (237.6) give
    # 204, a = 6 gives min(244.8, 158.4) = 158.4; so 204 req/s from pairs, plus 8 x 11.8 = 94.4 aggregated:
    # 298.4 req/s = 3.3156 x 90
    assert plan.scale == pytest.approx((204.0 + 8 * 11.8) / 90.0, rel=1e-6)
    assert verify(inst, plan.to_dict()) == []


def test_schema_errors_name_the_field() -> None:
    doc = _doc()
    doc["workloads"]["llm"]["modes"] = ["aggregated", "aggregated"]
    with pytest.raises(InputError, match="modes"):
        instance_from_dict(doc, MIXED.parent)
    doc = _doc()
    doc["profiles"] = [p for p in doc["profiles"] if p["role"] != "aggregated"]
    doc["workloads"]["llm"]["modes"] = ["aggregated"]
    with pytest.raises(InputError, match=r"workloads\.llm\.modes: 'aggregated' needs aggregated profile"):
        instance_from_dict(doc, MIXED.parent)
    doc = _doc()
    doc["profiles"][2]["max_batch"] = 4096
    with pytest.raises(InputError, match="max_batch 4096 exceeds token_budget 2048"):
        instance_from_dict(doc, MIXED.parent)
    doc = _doc()
    doc["profiles"] = [p for p in doc["profiles"] if p["role"] == "aggregated"]  # aggregated only: valid
    assert instance_from_dict(doc, MIXED.parent).serving_modes("llm") == ("aggregated",)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pdopt", *args], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[1])


def test_plan_and_compare_print_the_decision_per_model() -> None:
    """The issue's check: on the Llama/BLOOM example with aggregated shapes, ``plan`` and ``compare`` say per
    model whether to disaggregate and what it saves (llama2_70b yes, bloom_176b partly)."""
    path = str(INSTANCES / "examples" / "llama70b-bloom176b-modes.yaml")
    out = _cli("plan", path)
    assert out.returncode == 0, out.stderr
    assert "model llama2_70b: disaggregate: yes" in out.stdout
    assert "model bloom_176b: disaggregate: partly" in out.stdout and "saving 1.3% against disaggregated only" \
        in out.stdout
    quiet = _cli("plan", path, "--no-explain-mode")
    assert "disaggregate:" not in quiet.stdout
    cmp = _cli("compare", path)
    assert cmp.returncode == 0, cmp.stderr
    assert "aggregated_only" in cmp.stdout and "disaggregated_only" in cmp.stdout
    assert "model llama2_70b: disaggregate: yes" in cmp.stdout
    assert "model bloom_176b: disaggregate: partly" in cmp.stdout

"""Shape search and calibration: layouts nobody has measured are estimated when the instance is read, the MILP
chooses among them, the plan marks and verifies them; measured shapes correct the estimates of the others."""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.estimate.base import ShapeRequest
from pdopt.estimate.calibrate import fit_corrections
from pdopt.estimate.compare import PointPair, ShapeComparison
from pdopt.estimate.roofline import estimate_roofline
from pdopt.estimate.search import expand_shapes
from pdopt.io import instance_from_dict
from pdopt.perf.capacity import capacity_table
from pdopt.verifier import verify


def search_doc(tp: list[int] | None = None, gpu_types: list[str] | None = None) -> dict[str, Any]:
    """Llama-3.1-70B on A100 and H100 (catalog specs, CoreWeave per-GPU prices as in the bundled example), nodes
    plentiful so that no inventory binds: the cheapest plan is then the cheapest shape per role, separately."""
    fam: dict[str, Any] = {"tp": tp or [1, 2, 4, 8]}
    if gpu_types is not None:
        fam["gpu_types"] = gpu_types
    return {
        "name": "search",
        "gpu_types": {"a100_80gb": {"memory_gb": 80, "price_usd_per_gpu_hour": 2.21,
                                    "spec": {"catalog": "A100-SXM-80GB"}},
                      "h100_80gb": {"memory_gb": 80, "price_usd_per_gpu_hour": 4.25,
                                    "spec": {"catalog": "H100-SXM-80GB"}}},
        "node_pools": {"a100_nodes": {"gpu_type": "a100_80gb", "gpus_per_node": 8, "node_count": 40},
                       "h100_nodes": {"gpu_type": "h100_80gb", "gpus_per_node": 8, "node_count": 40}},
        "models": {"llama": {"architecture": {"num_layers": 80, "num_kv_heads": 8, "head_dim": 128,
                                              "num_parameters_billion": 70.6, "hidden_size": 8192,
                                              "num_attention_heads": 64}}},
        "workloads": {"llama": {"demand": {"requests_per_s": 20.0}, "input_tokens_mean": 2048.0,
                                "output_tokens_mean": 256.0, "ttft": {"target_s": 1.0, "statistic": "mean"},
                                "tpot": {"target_ms": 40.0}, "ttft_overhead_s": 0.05}},
        "shape_search": {"models": {"llama": fam}},
    }


def _cheapest_cover(shapes: list[tuple[float, float]], demand: float) -> float:
    """min sum c_s n_s over whole n_s >= 0 with sum cap_s n_s >= demand, by exhaustive enumeration of the counts
    (each count up to what covers the demand alone), pruned by the best cost found."""
    best = math.inf

    def go(i: int, left: float, cost: float) -> None:
        nonlocal best
        if cost >= best:
            return
        if left <= 1e-9:
            best = cost
            return
        if i == len(shapes):
            return
        cap, price = shapes[i]
        for n in range(math.ceil(left / cap - 1e-9), -1, -1):
            go(i + 1, left - n * cap, cost + n * price)

    go(0, demand, 0.0)
    return best


def _cost(doc: dict[str, Any]) -> float | None:
    plan = pdopt.solve(instance_from_dict(doc))
    return plan.objective_usd_per_hour if plan.has_plan else None


def test_the_search_plans_the_cheapest_layout_and_marks_it() -> None:
    inst = instance_from_dict(search_doc())
    assert {(p.gpu_type, p.gpus_per_instance) for p in inst.profiles} == {
        (g, t) for g in ("a100_80gb", "h100_80gb") for t in (2, 4, 8)}  # TP1: 141 GB of weights on 80 GB
    plan = pdopt.solve(inst)
    assert plan.has_plan and all(p.estimated and p.estimated.startswith("roofline ") for p in plan.placements)
    doc = plan.to_dict()
    assert verify(inst, doc) == []
    # independent of the MILP: with no inventory binding and per-GPU prices, the optimum is, per role, the
    # cheapest cover of the demand by the capacity table's shapes (mixed shapes allowed), by enumeration
    price = {g: t.price_usd_per_gpu_hour for g, t in inst.gpu_types.items()}
    best = 0.0
    for role in ("prefill", "decode"):
        shapes = [(s.capacity_rps, s.gpus_per_instance * price[s.gpu_type]) for s in capacity_table(inst).shapes
                  if s.role == role and s.capacity_rps > 0]
        best += _cheapest_cover(shapes, 20.0)
    assert plan.objective_usd_per_hour == pytest.approx(best, rel=1e-9)
    # against planning each layout (GPU type, TP) alone: none is cheaper, and the best alone is the search's
    # cost when the search picks one layout for both roles
    alone = {(g, t): _cost(search_doc([t], [g])) for g in ("a100_80gb", "h100_80gb") for t in (2, 4, 8)}
    feasible = [c for c in alone.values() if c is not None]
    assert feasible and plan.objective_usd_per_hour <= min(feasible) + 1e-9
    chosen = {(p.gpu_type, p.gpus_per_instance) for p in plan.placements}
    if len(chosen) == 1:
        assert plan.objective_usd_per_hour == pytest.approx(alone[chosen.pop()])


def test_expansion_is_idempotent_and_survives_a_dump() -> None:
    inst = instance_from_dict(search_doc([4, 8]))
    assert expand_shapes(inst) == inst
    again = instance_from_dict(json.loads(json.dumps(inst.model_dump(mode="json"))))
    assert again.profiles == inst.profiles


def test_measured_shapes_are_kept_and_correct_the_estimates() -> None:
    """An H100 TP4 shape 'measured' as 1.3 x the roofline's TPOT and 0.8 x its prefill throughput: the search
    keeps it, estimates the others, and multiplies the other H100 estimates by the same factors (exactly: one
    shape, no noise); the A100 estimates, with no measured shape, stay as estimated."""
    base = instance_from_dict(search_doc([4, 8]))
    measured = []
    for p in base.profiles:
        if (p.gpu_type, p.gpus_per_instance) == ("h100_80gb", 4):
            d = p.model_dump(mode="json", exclude={"estimate"})
            d["source"] = "synthetic measurement"
            if p.role == "prefill":
                for pt in d["max_throughput_by_input"]:
                    pt["max_throughput_tok_per_s"] *= 0.8
            else:
                for pt in d["tpot_by_batch"]:
                    pt["tpot_ms"] *= 1.3
            measured.append(d)
    doc = search_doc([4, 8])
    doc["profiles"] = measured
    reports: list[Any] = []
    inst = instance_from_dict(doc, on_estimate=reports.append)
    corr = reports[0].corrections
    assert set(corr) == {("h100_80gb", "prefill"), ("h100_80gb", "decode")}
    assert corr[("h100_80gb", "decode")].factor == pytest.approx(1.3, rel=1e-9)
    assert corr[("h100_80gb", "prefill")].factor == pytest.approx(0.8, rel=1e-9)
    assert max(abs(r) for c in corr.values() for r in c.residuals_percent) < 1e-6
    by = {p.key: p for p in inst.profiles}
    raw = {p.key: p for p in base.profiles}
    key8 = ("llama", "decode", "h100_80gb", 8, "default")
    assert by[key8].tpot_by_batch[0].tpot_ms == pytest.approx(1.3 * raw[key8].tpot_by_batch[0].tpot_ms)
    assert by[key8].estimate is not None and by[key8].estimate.inputs["calibration_factor"] == pytest.approx(1.3)
    a100 = ("llama", "decode", "a100_80gb", 8, "default")
    assert by[a100] == raw[a100]
    assert by[("llama", "decode", "h100_80gb", 4, "default")].estimate is None  # the measurement itself
    plan = pdopt.solve(inst)
    assert verify(inst, plan.to_dict()) == []


@pytest.mark.parametrize("factor", [0.35, 1.0, 1.37, 4.2])
def test_calibration_recovers_a_known_factor_from_noisy_pairs(factor: float) -> None:
    """Synthetic pairs: estimates spread over two decades, measurements = factor x estimate x lognormal noise of
    sigma 0.1 (seed 7, fixed; 60 pairs over 3 shapes). The fitted factor's standard error is 0.1 / sqrt(60) =
    1.3%, so within 5% of the truth is a 3.8-sigma bound."""
    rng = random.Random(7)
    rows = []
    for tp in (2, 4, 8):
        pairs = []
        for i in range(20):
            est = 10.0 ** rng.uniform(0, 2)
            pairs.append(PointPair(float(i + 1), factor * est * math.exp(rng.gauss(0.0, 0.1)), est))
        rows.append(ShapeComparison(("m", "decode", "g", tp, "default"), "roofline 1", tuple(pairs)))
    corr = fit_corrections(rows)[("g", "decode")]
    assert corr.factor == pytest.approx(factor, rel=0.05)
    assert corr.pairs == 60 and 5.0 < corr.rms_residual_percent < 15.0


def test_a_time_budget_reports_the_shapes_it_did_not_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that advances one second per reading and a 2.5 s budget: the search starts (0 s), takes the first
    two of its 8 shapes (A100 TP1, which does not fit, at 1 s; A100 TP2 at 2 s) and stops at 3 s; the other 6
    shapes are gaps naming the budget, none is lost silently."""
    import pdopt.estimate.search as search

    ticks = iter(range(1000))
    monkeypatch.setattr(search.time, "perf_counter", lambda: float(next(ticks)))
    doc = search_doc()
    doc["shape_search"]["time_budget_s"] = 2.5
    reports: list[Any] = []
    instance_from_dict(doc, on_estimate=reports.append, estimate_budget=True)
    report = reports[0]
    budget = [g for g in report.gaps if "time budget of 2.5 s" in g.reason]
    assert [(p.gpu_type, p.gpus_per_instance) for p in report.profiles] == [("a100_80gb", 2)] * 2
    assert len(budget) == 6 * 2 and len(report.gaps) == 2 + 6 * 2  # A100 TP1's two roles do not fit
    assert report.remaining_s() == 0.0
    # any other reader estimates every shape, whatever the budget: a plan made within it verifies against them
    doc["shape_search"]["time_budget_s"] = 4.5  # A100 TP1 (no fit), TP2, TP4, TP8: enough to plan
    planned = instance_from_dict(doc, on_estimate=reports.append, estimate_budget=True)
    assert {p.gpu_type for p in planned.profiles} == {"a100_80gb"}
    plan = pdopt.solve(planned)
    full = instance_from_dict(doc, on_estimate=reports.append)
    assert len(reports[-1].profiles) == 12 and not any("budget" in g.reason for g in reports[-1].gaps)
    assert plan.has_plan and verify(full, plan.to_dict()) == []


def test_cli_estimate_paste_plan_calibrate_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = search_doc()
    del doc["shape_search"]
    doc["profiles"] = []
    inst_path = tmp_path / "inst.yaml"
    bad = copy.deepcopy(doc)
    inst_path.write_text(yaml.safe_dump(bad))
    assert main(["plan", str(inst_path)]) == 2  # no profile and no search
    assert "shape_search" in capsys.readouterr().err
    # the example instance: estimate the shapes, paste them, plan
    example = Path(__file__).resolve().parents[1] / "instances" / "examples" / "llama70b-bloom176b-a100-h100.yaml"
    est = tmp_path / "est.yaml"
    assert main(["profile", "estimate", str(example), "--with", "roofline", "--model", "llama2_70b", "--tp",
                 "2,4,8,16", "--decode-input-tokens", "512", "--output-tokens", "128", "--output", str(est)]) == 0
    capsys.readouterr()
    profiles = yaml.safe_load(est.read_text())["profiles"]
    assert len(profiles) == 16 and all(p["estimate"]["estimator"] == "roofline" for p in profiles)
    assert main(["profile", "estimate", str(example), "--with", "roofline", "--output", str(est)]) == 2  # kept
    assert "exists" in capsys.readouterr().err
    # pasted into the instance in place of the measurements: planned, every placement marked, verified
    pasted = yaml.safe_load(example.read_text())
    pasted["profiles"] = [p for p in pasted["profiles"] if p["model"] != "llama2_70b"] + profiles
    inst = instance_from_dict(pasted, example.parent)
    plan = pdopt.solve(inst)
    assert plan.has_plan and verify(inst, plan.to_dict()) == []
    assert {p.model for p in plan.placements if p.estimated} == {"llama2_70b"}
    # calibrated by the measured TP2/4/8 shapes: the TP16 estimates (spanning two nodes) are corrected
    cal = tmp_path / "cal.yaml"
    assert main(["profile", "calibrate", str(example), "--estimated", str(est), "--output", str(cal)]) == 0
    out = capsys.readouterr()
    assert "a100_80gb      decode" in out.err and "factor" in out.err
    fixed = yaml.safe_load(cal.read_text())["profiles"]
    assert {(p["gpus_per_instance"], p["estimate"]["inputs"]["calibrated_on"].count(";")) for p in fixed} == {(16, 2)}
    assert main(["fidelity", str(example), "--estimated", str(est), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["comparisons"]
    assert {(r["role"], r["gpus_per_instance"]) for r in rows} == {(r, t) for r in ("prefill", "decode")
                                                                   for t in (2, 4, 8)}
    assert main(["profile", "estimate", str(example), "--with", "roofline", "--tp", "2,1"]) == 2
    assert "--tp" in capsys.readouterr().err
    # decode curves at other lengths than the measurement's are not compared, and say so
    other = tmp_path / "other.yaml"
    assert main(["profile", "estimate", str(example), "--with", "roofline", "--model", "llama2_70b", "--tp", "4",
                 "--role", "decode", "--output", str(other)]) == 0
    capsys.readouterr()
    assert main(["fidelity", str(example), "--estimated", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not compared: measured at 512 in / 128 out tokens, estimated at 1154.7 / 211.1" in err


def test_estimated_shapes_the_instance_measures_are_skipped() -> None:
    inst = pdopt.load_instance(Path(__file__).resolve().parents[1] / "instances" / "examples" /
                               "llama70b-bloom176b-a100-h100.yaml")
    res = estimate_roofline(inst, [ShapeRequest(model="bloom_176b", gpu_type="h100_80gb", tp=2)])
    assert [g.reason for g in res.gaps][:1] == ["weights of 352 GB do not fit in 2 x 80 GB x 0.9 usable"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["shape_search"]["models"].update({"ghost": {}}), "shape_search.models.ghost: unknown model 'ghost'"),
    (lambda d: d["shape_search"]["models"]["llama"].update({"gpu_types": ["tpu"]}),
     "shape_search.models.llama.gpu_types: unknown GPU type 'tpu'"),
    (lambda d: d["shape_search"]["models"]["llama"].update({"tp": [2, 4], "ep": [3]}),
     "shape_search.models.llama.ep: 3 divides none of the TP sizes [2, 4]"),
    (lambda d: d["shape_search"]["models"]["llama"].update({"tp": [0]}),
     "shape_search.models.llama.tp[0]: Input should be greater than 0 (got 0)"),
    (lambda d: d["shape_search"].update({"estimator": "guess"}), "shape_search.estimator"),
    (lambda d: d["gpu_types"]["a100_80gb"]["spec"].update({"catalog": "A100-PCIE-7GB"}),
     "gpu_types.a100_80gb.spec.catalog: 'A100-PCIE-7GB' is not in pdopt's GPU catalog"),
    (lambda d: d["models"]["llama"]["architecture"].update({"num_experts": 8}),
     "num_experts, experts_per_token and expert_parameters_billion together"),
])
def test_bad_searches_exit_2_naming_the_field(edit: Any, message: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    doc = search_doc()
    edit(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    before = path.read_text()
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert path.read_text() == before


def test_the_solver_gets_what_the_search_left_of_its_budget(capsys: pytest.CaptureFixture[str]) -> None:
    """The example's 60 s budget covers estimating and solving: the solver's limit is what estimating left
    (a --time-limit below it wins); an instance without a search leaves the flag as given."""
    from pdopt.cli.common import SEARCHES, _load_instance, solver_options
    from pdopt.cli.parser import build_parser
    from pdopt.io.library import example

    parser = build_parser()
    _load_instance(str(example("llama31-search")), [], planning=True)
    spent = SEARCHES[-1].seconds
    opts = solver_options(parser.parse_args(["plan", "x.yaml", "--time-limit", "100"]))
    assert opts.time_limit_s == pytest.approx(60.0 - spent)
    assert solver_options(parser.parse_args(["plan", "x.yaml", "--time-limit", "5"])).time_limit_s == 5.0
    _load_instance(str(example("llama31-search")), [])  # not planning: the budget is not applied
    assert solver_options(parser.parse_args(["plan", "x.yaml", "--time-limit", "100"])).time_limit_s == 100.0
    _load_instance(str(example("two-models")), [])
    assert solver_options(parser.parse_args(["plan", "x.yaml", "--time-limit", "100"])).time_limit_s == 100.0
    capsys.readouterr()


def test_the_plan_json_says_what_the_search_estimated(capsys: pytest.CaptureFixture[str]) -> None:
    from pdopt.io.library import example

    assert main(["plan", str(example("llama31-search")), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)["shape_search"]
    assert doc["estimator"] == "roofline" and doc["time_budget_s"] == 60.0 and doc["corrections"] == []
    assert len(doc["estimated"]) == 12 and {g["gpus_per_instance"] for g in doc["gaps"]} == {1}
    assert all("do not fit" in g["reason"] for g in doc["gaps"])

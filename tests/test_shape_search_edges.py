"""Shape search at its edges: layouts no engine runs, searches that leave a role empty, GPU types without specs,
horizons whose periods decode at other lengths, prefix caching, `--without`, and bad values on the command line,
each refused by name (exit 2) or reported as a gap, never an internal error or a silent plan."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.estimate.calibrate import fit_corrections, format_corrections
from pdopt.estimate.compare import PointPair, ShapeComparison, shape_of
from pdopt.instance import DecodeProfile
from pdopt.io import instance_from_dict
from pdopt.verifier import verify
from tests.conftest import ROOT
from tests.test_shape_search import search_doc

EXAMPLE = ROOT / "instances" / "examples" / "llama70b-bloom176b-a100-h100.yaml"


def _run(doc: dict[str, Any], tmp_path: Path, *argv: str) -> int:
    """``pdopt COMMAND FILE FLAGS`` on the document written to a file."""
    path = tmp_path / "inst.yaml"
    path.write_text(yaml.safe_dump(doc))
    return main([argv[0], str(path), *argv[1:]])


def test_a_search_that_leaves_a_role_empty_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """EP on a dense model, or only TP1 of a 141 GB model: nothing to estimate, so no plan at 0 USD/h."""
    for fam, reason in (({"tp": [4], "ep": [2]}, "EP 2 for a model without experts"),
                        ({"tp": [1]}, "weights of 141.2 GB do not fit in 1 x 80 GB x 0.9 usable")):
        doc = search_doc()
        doc["shape_search"]["models"]["llama"] = fam
        assert _run(doc, tmp_path, "plan") == 2
        err = capsys.readouterr().err
        assert "shape_search.models.llama: no prefill profile measured or estimated" in err and reason in err
        assert "Traceback" not in err


def test_layouts_no_engine_runs_are_gaps(capsys: pytest.CaptureFixture[str]) -> None:
    """TP 3, 5, 6 and 7 split neither Llama's 64 query heads nor its 8 KV heads: gaps, and the plan uses TP 4/8."""
    doc = search_doc([3, 4, 5, 6, 7, 8])
    reports: list[Any] = []
    inst = instance_from_dict(doc, on_estimate=reports.append)
    reasons = {(g.shape.tp, g.reason) for g in reports[0].gaps}
    assert (3, "TP 3 does not divide the 64 attention heads") in reasons
    assert {p.gpus_per_instance for p in inst.profiles} == {4, 8}
    plan = pdopt.solve(inst)
    assert plan.has_plan and {p.gpus_per_instance for p in plan.placements} <= {4, 8}


def test_gpu_types_without_a_spec_are_gaps_and_calibration_stays_within_the_search(tmp_path: Path) -> None:
    """An L40S pool without a spec: reported, not fatal. A search on H100 TP16 only needs no A100 spec even though
    the instance measures A100 shapes (their corrections are not wanted)."""
    doc = search_doc([4, 8])
    doc["gpu_types"]["l40s"] = {"memory_gb": 48, "price_usd_per_gpu_hour": 1.0}
    doc["node_pools"]["l40s_nodes"] = {"gpu_type": "l40s", "gpus_per_node": 8, "node_count": 2}
    reports: list[Any] = []
    instance_from_dict(doc, on_estimate=reports.append)
    assert "GPU type l40s has no gpu_types.l40s.spec (its peak numbers)" in {g.reason for g in reports[0].gaps}
    example = yaml.safe_load(EXAMPLE.read_text())
    del example["gpu_types"]["a100_80gb"]["spec"]
    example["shape_search"] = {"models": {"llama2_70b": {"tp": [16], "gpu_types": ["h100_80gb"]}}}
    inst = instance_from_dict(example, EXAMPLE.parent, on_estimate=reports.append)
    assert set(reports[-1].corrections) == {("h100_80gb", "prefill"), ("h100_80gb", "decode")}
    assert {p.gpus_per_instance for p in inst.profiles if p.estimate is not None} == {16}


def test_without_a_gpu_type_the_search_drops_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = search_doc([4, 8], ["h100_80gb", "a100_80gb"])
    assert _run(doc, tmp_path, "plan", "--without", "h100_80gb", "--format", "json") == 0
    placements = json.loads(capsys.readouterr().out)["placements"]
    assert placements and {p["gpu_type"] for p in placements} == {"a100_80gb"}


def test_periods_decode_at_their_own_lengths_and_prefix_caching_is_covered() -> None:
    """A night of long documents (8,000 in, 1,500 out) and a day at the workload's lengths: the decode estimate is
    a 2-D table with a curve at each input length, and the night's curve is the roofline's at its own context.
    A 99% prefix cache hit rate leaves 20.48 uncached tokens of the 2,048: the prefill grid reaches below it."""
    doc = search_doc([4, 8])
    doc["horizon"] = {"periods": [{"name": "night", "hours": 8.0}, {"name": "day", "hours": 16.0}]}
    doc["workloads"]["llama"]["by_period"] = {"night": {"input_tokens_mean": 8000.0, "output_tokens_mean": 1500.0,
                                                        "demand": {"requests_per_s": 2.0}}}
    inst = instance_from_dict(doc)
    decode = next(p for p in inst.profiles if isinstance(p, DecodeProfile) and p.gpus_per_instance == 8
                  and p.gpu_type == "h100_80gb")
    assert decode.tpot_by_input is not None
    assert [c.input_tokens for c in decode.tpot_by_input] == [2048.0, 8000.0]
    night, day = decode.tpot_by_input[1].tpot_by_batch, decode.tpot_by_input[0].tpot_by_batch
    assert all(n.tpot_ms > d.tpot_ms for n, d in zip(night, day, strict=True))  # longer context, slower step
    plan = pdopt.plan_horizon(inst)
    assert plan.has_plan
    cached = search_doc([4])
    cached["workloads"]["llama"]["prefix_cache_hit_rate"] = 0.99
    inst = instance_from_dict(cached)
    prefill = next(p for p in inst.profiles if p.role == "prefill")
    assert prefill.max_throughput_by_input[0].input_tokens < (1 - 0.99) * 2048  # type: ignore[union-attr]
    plan = pdopt.solve(inst)
    assert plan.has_plan and verify(inst, plan.to_dict()) == []


@pytest.mark.parametrize(("change", "message"), [
    (("shape_search", "batches", [4, 2, 2]), "shape_search: batches: must be strictly increasing, got [4, 2, 2]"),
    (("shape_search", "batches", [4]), "shape_search.batches: List should have at least 2 items"),
])
def test_bad_batches_in_a_search_exit_2(change: tuple[str, str, Any], message: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    doc = search_doc()
    doc[change[0]][change[1]] = change[2]
    assert _run(doc, tmp_path, "plan") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(("flags", "message"), [
    (["--batches", "1"], "--batches: expected 2 or more increasing whole numbers"),
    (["--tp", "99999999999999999999"], "--tp: expected 1 or more increasing whole numbers from 1 to 1024"),
    (["--tp", "12"], "TP12: not estimated: no node pool of a100_80gb holds 12 GPUs (node sizes [8])"),
    (["--tp", "8", "--ep", "3"], "EP 3 does not divide TP 8"),
    (["--input-tokens", "100,50"], "--input-tokens: expected increasing lengths"),
    (["--input-tokens", "0.0001,1000"], "--input-tokens: expected increasing lengths from 0.001 to 1e+08 tokens"),
    (["--decode-input-tokens", "1e300"], "--decode-input-tokens: 1e+300 is outside the range 0.001 to 1e+08"),
    (["--output-tokens", "0.0001"], "--output-tokens: 0.0001 is outside the range 0.001 to 1e+08 tokens"),
])
def test_bad_estimate_flags_exit_2_naming_them(flags: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "estimate", str(EXAMPLE), "--with", "roofline", "--model", "llama2_70b",
                 "--gpu-type", "a100_80gb", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_measured_table_off_the_workload_is_left_out_of_comparisons(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A decode table measured at 2,000 and 4,000 input tokens does not reach the workload's 1,154.7: it has no
    points to compare; the other shapes are compared (no internal error)."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    prof = next(p for p in doc["profiles"] if p["role"] == "decode" and p["model"] == "llama2_70b")
    curve = prof.pop("tpot_by_batch")
    prof.pop("input_tokens", None)
    prof["tpot_by_input"] = [{"input_tokens": 2000.0, "tpot_by_batch": curve},
                             {"input_tokens": 4000.0, "tpot_by_batch": [dict(p, tpot_ms=p["tpot_ms"] * 1.5)
                                                                          for p in curve]}]
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["fidelity", str(path), "--estimate", "roofline", "--format", "json"]) == 0
    assert shape_of(instance_from_dict(doc).profile("llama2_70b", "decode", prof["gpu_type"],
                                                    prof["gpus_per_instance"]), instance_from_dict(doc)) is None


def test_an_ep_variant_is_estimated_with_its_ep() -> None:
    paper = ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"
    doc = yaml.safe_load(paper.read_text())
    for p in doc["profiles"]:
        p["variant"] = "ep8"
    inst = instance_from_dict(doc, paper.parent)
    shapes = [shape_of(p, inst) for p in inst.profiles]
    assert [s.ep for s in shapes if s is not None] == [8, 8]


def test_one_pair_says_nothing_of_residuals() -> None:
    row = ShapeComparison(("m", "prefill", "g", 8, "default"), "roofline 1", (PointPair(1.0, 2.0, 3.0),))
    text = format_corrections(fit_corrections([row]))
    assert "n/a (1 pair)" in text and "0.667" in text


def test_a_bad_estimated_file_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = {"profiles": [{"model": "llama2_70b", "role": "decode", "gpu_type": "a100_80gb", "gpus_per_instance": 4,
                         "tpot_by_batch": [{"batch": 1, "tpot_ms": -1.0}, {"batch": 2, "tpot_ms": 2.0}],
                         "estimate": {"estimator": "x", "version": "1"}}]}
    path = tmp_path / "est.yaml"
    path.write_text(yaml.safe_dump(bad))
    before = path.read_text()
    assert main(["fidelity", str(EXAMPLE), "--estimated", str(path)]) == 2
    err = capsys.readouterr().err
    assert "profiles[0]: tpot_by_batch[0].tpot_ms" in err and "function-after" not in err
    assert path.read_text() == before
    wrong = copy.deepcopy(bad)
    wrong["profiles"][0]["role"] = "aggregated"
    path.write_text(yaml.safe_dump(wrong))
    assert main(["profile", "calibrate", str(EXAMPLE), "--estimated", str(path)]) == 2
    assert "profiles[0].role: expected prefill or decode, got 'aggregated'" in capsys.readouterr().err

"""Profiles estimated by AIConfigurator 0.12.0 (pdopt/estimate/aiconfigurator.py): Llama-3.1-70B on H100 and A100
(vLLM, TP 4 and 8) estimated, planned and verified; what AIC lacks is a gap with a readable reason; AIC's serving
corrections are not in the numbers. Out of the default selection: run with ``pytest -m aiconfigurator`` once the
extra is installed (``pip install '.[aiconfigurator]'``); selected without it, every test fails."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.estimate.aiconfigurator import (
    AIC_SERVING_CORRECTIONS,
    AicSettings,
    estimate_with_aiconfigurator,
)
from pdopt.estimate.base import EstimateResult, ShapeRequest
from pdopt.instance.profiles import DecodeProfile, PrefillProfile
from pdopt.io import instance_from_dict
from pdopt.verifier import verify

pytestmark = pytest.mark.aiconfigurator

MODEL = "meta-llama/Meta-Llama-3.1-70B"
SYSTEMS = {"h100_80gb": "h100_sxm", "a100_80gb": "a100_sxm"}
SETTINGS = AicSettings(MODEL, SYSTEMS)
LENGTHS = (512.0, 1024.0, 2048.0, 4096.0, 8192.0)


@pytest.fixture(autouse=True)
def _aiconfigurator_installed() -> None:
    """Selected, these tests need AIC: its absence is a failure, not a skip."""
    try:
        importlib.import_module("aiconfigurator")
    except ImportError as exc:
        pytest.fail(f"the aiconfigurator tests were selected but AIConfigurator is not installed ({exc}): "
                    "pip install '.[aiconfigurator]'")


@pytest.fixture(scope="module")
def llama() -> tuple[EstimateResult, float]:
    """Llama-3.1-70B on both GPU types at TP 4 and 8, both roles, and the seconds the estimation took."""
    shapes = [ShapeRequest("llama31_70b", gpu, tp, input_tokens=LENGTHS, decode_input_tokens=1024, output_tokens=256)
              for gpu in SYSTEMS for tp in (4, 8)]
    start = time.perf_counter()
    result = estimate_with_aiconfigurator(shapes, SETTINGS)
    return result, time.perf_counter() - start


def _instance_doc(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """The two-GPU example's fleet (CoreWeave list prices, 6 A100 and 4 H100 nodes of 8) serving Llama-3.1-70B
    from the estimated profiles alone."""
    return {
        "name": "llama31-70b-aic",
        "description": "Llama-3.1-70B on A100 and H100, every profile estimated by AIConfigurator (vLLM)",
        "gpu_types": {"a100_80gb": {"memory_gb": 80, "price_usd_per_gpu_hour": 2.21},
                      "h100_80gb": {"memory_gb": 80, "price_usd_per_gpu_hour": 4.25}},
        "node_pools": {"a100_nodes": {"gpu_type": "a100_80gb", "gpus_per_node": 8, "node_count": 6},
                       "h100_nodes": {"gpu_type": "h100_80gb", "gpus_per_node": 8, "node_count": 4}},
        "models": {"llama31_70b": {"architecture": {
            "num_layers": 80, "num_kv_heads": 8, "head_dim": 128, "num_parameters_billion": 70.6,
            "bytes_per_parameter": 2, "kv_bytes_per_element": 2}}},
        "workloads": {"llama31_70b": {
            "demand": {"requests_per_s": 12.0}, "input_tokens_mean": 1024, "output_tokens_mean": 256,
            "ttft": {"target_s": 1.0, "statistic": "p90"}, "tpot": {"target_ms": 40.0, "statistic": "mean"},
            "ttft_overhead_s": 0.05}},
        "profiles": profiles,
    }


def test_llama70b_estimated_planned_and_verified(llama: tuple[EstimateResult, float], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    result, seconds = llama
    assert result.gaps == []
    assert len(result.profiles) == 8 and seconds < 60
    by_shape = {(p.gpu_type, p.gpus_per_instance, p.role): p for p in result.profiles}
    for gpu in SYSTEMS:
        for tp in (4, 8):
            pre, dec = by_shape[(gpu, tp, "prefill")], by_shape[(gpu, tp, "decode")]
            assert isinstance(pre, PrefillProfile) and isinstance(dec, DecodeProfile)
            assert [p.input_tokens for p in pre.max_throughput_by_input] == list(LENGTHS)
            assert [p.batch for p in dec.tpot_by_batch] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
            for prof in (pre, dec):
                assert prof.estimate is not None and prof.estimate.label() == "aiconfigurator 0.12.0"
                inputs = prof.estimate.inputs
                assert (inputs["system"], inputs["backend"], inputs["tp"]) == (SYSTEMS[gpu], "vllm", tp)
                assert inputs["latency_correction_scale"] == 1.0 and inputs["gemm_quant"] == "bfloat16"
    # H100 beats A100, and TP 8 beats TP 4, in both phases
    def tput(gpu: str, tp: int) -> float:
        pre = by_shape[(gpu, tp, "prefill")]
        assert isinstance(pre, PrefillProfile)
        return pre.max_throughput_by_input[1].max_throughput_tok_per_s

    def tpot(gpu: str, tp: int) -> float:
        dec = by_shape[(gpu, tp, "decode")]
        assert isinstance(dec, DecodeProfile)
        return dec.tpot_by_batch[4].tpot_ms

    assert tput("h100_80gb", 4) > tput("a100_80gb", 4) and tput("h100_80gb", 8) > tput("h100_80gb", 4)
    assert tpot("h100_80gb", 4) < tpot("a100_80gb", 4) and tpot("h100_80gb", 8) < tpot("h100_80gb", 4)

    doc = _instance_doc([p.model_dump(mode="json", exclude_none=True) for p in result.profiles])
    inst = instance_from_dict(doc, tmp_path)
    plan = pdopt.solve(inst)
    assert plan.has_plan and plan.placements
    assert {p.estimated for p in plan.placements} == {"aiconfigurator 0.12.0"}
    assert verify(inst, plan.to_dict()) == []

    path = tmp_path / "aic.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["plan", str(path), "--format", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["placements"] and all(p["estimated"] == "aiconfigurator 0.12.0" for p in planned["placements"])
    (tmp_path / "plan.json").write_text(json.dumps(planned))
    assert main(["verify", str(path), "--plan", str(tmp_path / "plan.json")]) == 0
    capsys.readouterr()
    assert main(["plan", str(path)]) == 0
    table = capsys.readouterr().out
    assert "default*" in table and "* estimated, not measured (aiconfigurator 0.12.0)" in table


def test_a_falling_curve_is_raised_and_said(llama: tuple[EstimateResult, float]) -> None:
    """AIC's TPOT for H100 TP4 dips at batch 4 (15.16 ms after 15.47 ms at batch 2): raised, and named."""
    dec = next(p for p in llama[0].profiles if (p.gpu_type, p.gpus_per_instance, p.role) == ("h100_80gb", 4, "decode"))
    assert isinstance(dec, DecodeProfile)
    tpots = [p.tpot_ms for p in dec.tpot_by_batch]
    assert tpots == sorted(tpots) and tpots[1] == tpots[2]
    assert "upper envelope" in dec.source and "batch 4 15.161 -> 15.468 ms" in dec.source


def _gap(settings: AicSettings, shape: ShapeRequest | None = None) -> str:
    result = estimate_with_aiconfigurator([shape or ShapeRequest("llama31_70b", "h100_80gb", 4)], settings)
    assert result.profiles == [] and [g.role for g in result.gaps] == ["prefill", "decode"]
    return result.gaps[0].message()


def test_an_unknown_model_is_a_gap_naming_the_bundled_ones() -> None:
    message = _gap(AicSettings("meta-llama/Llama-3.1-70B-Instruct", SYSTEMS))
    assert "model 'meta-llama/Llama-3.1-70B-Instruct' is not one of the" in message
    assert "bundled with AIC 0.12.0" in message and MODEL in message and "allow_download" in message


def test_an_unknown_system_is_a_gap_naming_the_known_ones() -> None:
    message = _gap(AicSettings(MODEL, {"h100_80gb": "x100_sxm"}))
    assert "AIC 0.12.0 has no data for a system 'x100_sxm'" in message and "h100_sxm" in message
    message = _gap(AicSettings(MODEL, {}))
    assert "no AIC system given for GPU type 'h100_80gb'" in message and "a100_sxm" in message


def test_an_unknown_engine_or_version_is_a_gap_naming_the_known_ones() -> None:
    message = _gap(AicSettings(MODEL, SYSTEMS, backend_version="0.99.0"))
    assert "no vllm 0.99.0 data for system 'h100_sxm'" in message and "0.24.0" in message
    assert "engine 'tgi' is not one AIC models (vllm, sglang, trtllm)" in _gap(AicSettings(MODEL, SYSTEMS, "tgi"))


def test_layouts_aic_refuses_are_gaps() -> None:
    message = _gap(SETTINGS, ShapeRequest("llama31_70b", "h100_80gb", 3))
    assert "could not estimate it: AssertionError: num_heads 64 should be divisible by tp_size 3" in message
    assert "dense model" in _gap(SETTINGS, ShapeRequest("llama31_70b", "h100_80gb", 4, ep=2))


def test_what_does_not_fit_is_left_out_or_a_gap() -> None:
    message = _gap(SETTINGS, ShapeRequest("llama31_70b", "a100_80gb", 1))
    assert "no input length fits AIC 0.12.0's memory model" in message and "more than the GPU has" in message
    result = estimate_with_aiconfigurator([ShapeRequest("llama31_70b", "a100_80gb", 2, input_tokens=(1024, 4096))],
                                          SETTINGS)
    assert result.gaps == []
    pre, dec = result.profiles
    assert isinstance(pre, PrefillProfile) and isinstance(dec, DecodeProfile)
    assert [p.input_tokens for p in pre.max_throughput_by_input] == [1024]
    assert "left out (out of memory): input 4096" in pre.source
    assert [p.batch for p in dec.tpot_by_batch] == [1, 2, 4]
    assert "batches 8, 16, 32, 64, 128, 256 left out" in dec.source


def test_aic_serving_corrections_are_not_applied() -> None:
    """AIC's disaggregated estimate of the same point reports TTFT x 1.1 x 1.8 and TPOT x 1.08, and rate-matches
    the throughputs at 0.9 and 0.92: the factors the module documents, none of them in the profiles."""
    from aiconfigurator.cli import api
    from aiconfigurator.sdk import picking, sweep, task_v2

    task = task_v2.Task
    in_aic = {
        "prefill_latency_correction": {api.DEFAULT_PREFILL_LATENCY_CORRECTION_SCALE, task.prefill_latency_correction},
        "decode_latency_correction": {api.DEFAULT_DECODE_LATENCY_CORRECTION_SCALE, task.decode_latency_correction},
        "ttft_correction_factor": {picking._AUTOSCALE_TTFT_CORRECTION_FACTOR, sweep._AUTOSCALE_TTFT_CORRECTION_FACTOR,
                                   task.autoscale_ttft_correction_factor},
        "rate_match_prefill_degradation": {picking._RATE_MATCHING_PREFILL_DEGRADATION_FACTOR,
                                           sweep._RATE_MATCH_PREFILL_DEGRADATION, task.rate_match_prefill_degradation},
        "rate_match_decode_degradation": {picking._RATE_MATCHING_DECODE_DEGRADATION_FACTOR,
                                          sweep._RATE_MATCH_DECODE_DEGRADATION, task.rate_match_decode_degradation},
    }
    assert in_aic == {name: {value} for name, value in AIC_SERVING_CORRECTIONS.items()}

    isl, osl, batch = 2048, 256, 32
    result = estimate_with_aiconfigurator([ShapeRequest("llama31_70b", "h100_80gb", 4, input_tokens=(isl,),
                                                        decode_input_tokens=isl, output_tokens=osl,
                                                        batches=(1, batch))], SETTINGS)
    pre, dec = result.profiles
    assert isinstance(pre, PrefillProfile) and isinstance(dec, DecodeProfile)
    ttft_ms = isl / pre.max_throughput_by_input[0].max_throughput_tok_per_s * 1000
    tpot_ms = dec.tpot_by_batch[1].tpot_ms
    disagg = api.cli_estimate(MODEL, "h100_sxm", mode="disagg", backend_name="vllm", isl=isl, osl=osl, tp_size=4,
                              prefill_batch_size=1, prefill_num_workers=1, decode_batch_size=batch,
                              decode_num_workers=1)
    c = AIC_SERVING_CORRECTIONS
    assert disagg.ttft / ttft_ms == pytest.approx(c["prefill_latency_correction"] * c["ttft_correction_factor"],
                                                  rel=1e-3)
    assert disagg.tpot / tpot_ms == pytest.approx(c["decode_latency_correction"], rel=1e-3)
    prefill_rps = 1000 / (ttft_ms * c["prefill_latency_correction"])
    decode_rps = batch * 1000 / (tpot_ms * c["decode_latency_correction"] * (osl - 1))
    assert disagg.raw["seq/s"] == pytest.approx(min(prefill_rps * c["rate_match_prefill_degradation"],
                                                    decode_rps * c["rate_match_decode_degradation"]), rel=1e-3)


def test_a_shape_search_with_aic_plans_the_cheapest_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TP 1/2/4/8 on A100 and H100 estimated by AIC and planned in one command (`pdopt plan`): every placement is
    marked, the plan verifies, and no layout (GPU type, TP) planned alone is cheaper."""
    from tests.test_shape_search import search_doc

    def doc(tp: list[int], gpu_types: list[str] | None = None) -> dict[str, Any]:
        d = search_doc(tp, gpu_types)
        d["shape_search"].update({"estimator": "aiconfigurator", "batches": [1, 2, 4, 8, 16, 32, 64, 128],
                                  "aiconfigurator": {"models": {"llama": MODEL}, "systems": SYSTEMS}})
        return d

    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(doc([1, 2, 4, 8])))
    assert main(["plan", str(path), "--format", "json"]) == 0
    out = capsys.readouterr()
    plan = json.loads(out.out)
    assert "shape search (aiconfigurator)" in out.err
    assert plan["placements"] and all(p["estimated"] == "aiconfigurator 0.12.0" for p in plan["placements"])
    (tmp_path / "plan.json").write_text(out.out)
    assert main(["verify", str(path), "--plan", str(tmp_path / "plan.json")]) == 0
    capsys.readouterr()
    alone = []
    for gpu in SYSTEMS:
        for tp in (2, 4, 8):
            inst = instance_from_dict(doc([tp], [gpu]))
            p = pdopt.solve(inst)
            if p.has_plan:
                alone.append(p.objective_usd_per_hour)
    assert alone and plan["objective_usd_per_hour"] <= min(alone) + 1e-9


def test_aic_against_the_papers_deepseek_measurements(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/estimates.md: AIC (SGLang, h200_sxm) against the paper's DeepSeek-V3.1 profiles on 8 x H200: prefill
    throughput 0.82 x the measured, decode TPOT 2.44 x (median; 2.75 at worst), as the issue's 52.6 ms against
    19.9 ms at batch 34 (2.6 x)."""
    root = Path(__file__).resolve().parents[1]
    assert main(["fidelity", str(root / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"), "--estimate",
                 "aiconfigurator", "--aic-model", "dsv31=deepseek-ai/DeepSeek-V3", "--system", "h200=h200_sxm",
                 "--backend", "sglang", "--format", "json"]) == 0
    rows = {r["role"]: r for r in json.loads(capsys.readouterr().out)["comparisons"]}
    assert rows["prefill"]["median_ratio"] == pytest.approx(0.82, abs=0.01)
    assert rows["decode"]["median_ratio"] == pytest.approx(2.44, abs=0.01)
    assert rows["decode"]["worst_ratio"] == pytest.approx(2.75, abs=0.01)

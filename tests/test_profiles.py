"""Profile importers: pdopt CSV, vLLM bench results, Splitwise perf_model.csv; format detection; errors."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.io import InputError, instance_from_dict
from pdopt.io.importers import detect_format, import_csv, import_splitwise, import_vllm_bench
from pdopt.verifier import verify
from tests.conftest import EXAMPLE

DATA = Path(__file__).resolve().parent / "data"
CSV = DATA / "pdopt-profiles.csv"
VLLM = DATA / "vllm-bench"
DECODE_RUNS = [VLLM / f"decode-{n}.json" for n in ("c1", "c8", "c32", "r20")]
PREFILL_RUNS = [VLLM / f"prefill-{n}.json" for n in ("r4", "r8", "rinf")]
SPLITWISE = Path(__file__).resolve().parents[2] / "shared" / "data" / "splitwise-sim" / "perf_model.csv"
needs_splitwise = pytest.mark.skipif(not SPLITWISE.exists(), reason=f"{SPLITWISE} is not present")

HEADER = "model,gpu_type,gpus_per_instance,role,input_tokens,batch,max_throughput_tok_per_s,tpot_ms"


def _write(tmp_path: Path, text: str, name: str = "bench.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _strip_source(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in p.items() if k != "source"} for p in profiles]


# ------------------------------------------------------------------------------------------------ pdopt CSV


def test_csv_groups_rows_and_averages_repeats() -> None:
    profiles = import_csv(CSV)
    assert _strip_source(profiles) == [
        {"model": "llama8b", "role": "prefill", "gpu_type": "h100", "gpus_per_instance": 1,
         "max_throughput_by_input": [{"input_tokens": 512, "max_throughput_tok_per_s": 15210.5},
                                     {"input_tokens": 2048, "max_throughput_tok_per_s": 18675.1}]},
        {"model": "llama8b", "role": "decode", "gpu_type": "h100", "gpus_per_instance": 1,
         "tpot_by_batch": [{"batch": 1, "tpot_ms": 6.91}, {"batch": 8, "tpot_ms": 7.62},
                           {"batch": 32, "tpot_ms": 9.82}],
         "input_tokens": 1024},
        {"model": "llama8b", "role": "prefill", "gpu_type": "a100", "gpus_per_instance": 1,
         "max_throughput_by_input": [{"input_tokens": 2048, "max_throughput_tok_per_s": 8900}]},
        {"model": "llama8b", "role": "decode", "gpu_type": "a100", "gpus_per_instance": 1,
         "tpot_by_batch": [{"batch": 1, "tpot_ms": 11.2}, {"batch": 16, "tpot_ms": 13.9}]},
        {"model": "llama8b", "role": "decode", "gpu_type": "h100", "gpus_per_instance": 1, "variant": "fp8",
         "tpot_by_batch": [{"batch": 1, "tpot_ms": 6.2}, {"batch": 16, "tpot_ms": 7.9}], "input_tokens": 1024},
    ]
    # provenance: the file and exactly the rows used (comments and the blank line are skipped)
    assert profiles[0]["source"] == f"{CSV} lines 4-6 (pdopt CSV; repeated points averaged)"
    assert profiles[1]["source"] == f"{CSV} lines 7-10 (pdopt CSV; repeated points averaged)"
    assert profiles[3]["source"] == f"{CSV} lines 13-14 (pdopt CSV)"


def test_csv_filters_by_model_and_gpu_type() -> None:
    profiles = import_csv(CSV, gpu_type="a100")
    assert [(p["role"], p["gpu_type"]) for p in profiles] == [("prefill", "a100"), ("decode", "a100")]
    with pytest.raises(InputError, match="no measurement rows for model 'other'"):
        import_csv(CSV, model="other")


@pytest.mark.parametrize(("body", "line", "message"), [
    ("m,h100,1,prefill,1024,,abc,", 2, "max_throughput_tok_per_s 'abc' is not a number"),
    ("m,h100,1,prefill,,,9000,", 2, "input_tokens is empty (a prefill row needs it)"),
    ("m,h100,1,decode,,2.5,,7.0", 2, "batch 2.5 must be a whole number"),
    ("m,h100,1,decode,,1,,-3", 2, "tpot_ms -3 must be positive"),
    ("m,h100,1,decode,,1,,7.0\nm,h100,1,decoder,,2,,7.5", 3, "unknown role 'decoder' (expected prefill or decode)"),
    ("M,h100,1,prefill,1024,,9000,", 2, "model 'M' is not a pdopt identifier"),
    ("m,h100,1,prefill,1024,,9000", 2, "7 cells, but the header (line 1) names 8"),
])
def test_csv_rejects_bad_cells(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = _write(tmp_path, f"{HEADER}\n{body}\n")
    with pytest.raises(InputError) as err:
        import_csv(path)
    assert f"{path} line {line}: " in str(err.value)
    assert message in str(err.value)


def test_csv_missing_column(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER.replace(",tpot_ms", "") + "\nm,h100,1,prefill,1024,,9000\n")
    with pytest.raises(InputError, match=re.escape(f"{path} line 1: missing column(s) tpot_ms")):
        import_csv(path)


def test_csv_unknown_column(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + ",tpot\nm,h100,1,prefill,1024,,9000,,\n")
    with pytest.raises(InputError, match=re.escape(f"{path} line 1: unknown column(s) tpot")):
        import_csv(path)


def test_csv_decode_curve_that_falls_names_both_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{HEADER}\n"
                            "m,h100,1,decode,,1,,7.0\n"
                            "m,h100,1,decode,,8,,8.0\n"
                            "m,h100,1,decode,,8,,8.2\n"
                            "m,h100,1,decode,,16,,7.5\n")
    with pytest.raises(InputError) as err:
        import_csv(path)
    msg = str(err.value)
    assert msg.startswith(f"{path} line 5: ")
    assert "batch 16 has tpot_ms 7.5 (mean), below batch 8's 8.1 (lines 3-4)" in msg
    assert "TPOT must not fall as the batch grows" in msg


def test_csv_decode_needs_two_batches(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{HEADER}\nm,h100,1,decode,,8,,8.0\nm,h100,1,decode,,8,,8.2\n")
    with pytest.raises(InputError, match=re.escape(f"{path} lines 2-3: the decode profile (m, h100, 1 GPUs) has 1 "
                                                   "batch size(s) (8); a TPOT curve needs at least 2")):
        import_csv(path)


def test_csv_decode_lengths_must_agree(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{HEADER}\nm,h100,1,decode,512,1,,7.0\nm,h100,1,decode,1024,8,,8.0\n")
    with pytest.raises(InputError, match="mixes input_tokens values"):
        import_csv(path)


def test_csv_given_a_file_of_another_format() -> None:
    with pytest.raises(InputError) as err:
        import_csv(DECODE_RUNS[0])
    assert f"{DECODE_RUNS[0]} line 1: missing column(s)" in str(err.value)


@needs_splitwise
def test_csv_given_splitwise_file_says_which_importer() -> None:
    with pytest.raises(InputError, match=re.escape(f"{SPLITWISE} line 1: missing column(s) gpu_type") + ".*"
                       "looks like a splitwise file: use import_splitwise"):
        import_csv(SPLITWISE)


# ------------------------------------------------------------------------------------------------ vLLM bench


def test_vllm_decode_sweep() -> None:
    profile, points = import_vllm_bench(DECODE_RUNS, "llama8b", "h100", 1, "decode")
    src = profile.pop("source")
    assert profile == {
        "model": "llama8b", "role": "decode", "gpu_type": "h100", "gpus_per_instance": 1,
        # batch 67: Little's law, 1000 / 51.0 s x 3.4318 s (mean_e2el_ms) = 67.29
        "tpot_by_batch": [{"batch": 1, "tpot_ms": 6.912}, {"batch": 8, "tpot_ms": 7.604},
                          {"batch": 32, "tpot_ms": 9.817}, {"batch": 67, "tpot_ms": 12.903}],
        "input_tokens": 1024, "output_tokens": 256,
    }
    for run in DECODE_RUNS:
        assert str(run) in src
    assert "Little's law: 19.608 req/s x 3.432 s (mean_e2el_ms) = 67.29" in src
    assert [p["request_rate_rps"] for p in points] == pytest.approx([50 / 89.6, 200 / 49.7, 400 / 32.6, 20.0])
    last = points[-1]
    assert last["rate_configured"] is True and last["max_concurrency"] is None
    assert last["ttft_mean_s"] == pytest.approx(0.1415)
    assert last["ttft_p50_s"] == pytest.approx(0.1182)
    assert last["ttft_p90_s"] == pytest.approx(0.2463)
    assert last["ttft_p99_s"] == pytest.approx(0.4028)
    assert last["source"] == str(DECODE_RUNS[-1])
    assert points[0]["rate_configured"] is False and points[0]["max_concurrency"] == 1


def test_vllm_little_law_without_e2el(tmp_path: Path) -> None:
    """By default vLLM writes no mean_e2el_ms: the latency is rebuilt as TTFT + TPOT x (output - 1)."""
    doc = json.loads(DECODE_RUNS[-1].read_text())
    for key in [k for k in doc if "e2el" in k]:
        del doc[key]
    plain = _write(tmp_path, json.dumps(doc), "r20.json")
    profile, _ = import_vllm_bench([*DECODE_RUNS[:3], plain], "llama8b", "h100", 1, "decode")
    # 19.608 req/s x (0.1415 + 0.012903 x 255) s = 67.29
    assert profile["tpot_by_batch"][-1] == {"batch": 67, "tpot_ms": 12.903}
    assert "mean_ttft_ms + mean_tpot_ms x (output - 1)" in profile["source"]


def test_vllm_append_result_file(tmp_path: Path) -> None:
    """--append-result writes one JSON object per line; each line is a run."""
    lines = [json.dumps(json.loads(p.read_text())) for p in DECODE_RUNS]
    path = _write(tmp_path, "\n".join(lines), "sweep.json")
    profile, points = import_vllm_bench(path, "llama8b", "h100", 1, "decode")
    separate, _ = import_vllm_bench(DECODE_RUNS, "llama8b", "h100", 1, "decode")
    assert profile["tpot_by_batch"] == separate["tpot_by_batch"]
    assert f"{path} line 4 (batch 67" in profile["source"]
    assert {p["source"] for p in points} == {f"{path} line {n}" for n in range(1, 5)}


def test_vllm_prefill_sweep() -> None:
    profile, points = import_vllm_bench(PREFILL_RUNS, "llama8b", "h100", 1, "prefill")
    assert profile["max_throughput_by_input"] == [{"input_tokens": 2048, "max_throughput_tok_per_s": 18703.2}]
    assert f"{PREFILL_RUNS[2]} (18703.2 tok/s), largest of 3 runs" in profile["source"]
    assert [p["request_rate_rps"] for p in points] == pytest.approx([4.0, 8.0, 200 / 21.9])
    assert [p["rate_configured"] for p in points] == [True, True, False]
    assert points[1]["ttft_mean_s"] == pytest.approx(0.4813)
    assert points[1]["ttft_p99_s"] == pytest.approx(1.104)


def test_vllm_prefill_curve_over_input_lengths(tmp_path: Path) -> None:
    doc = json.loads(PREFILL_RUNS[2].read_text())
    doc.update(total_input_tokens=4096 * 200, duration=45.0)
    longer = _write(tmp_path, json.dumps(doc), "prefill-4k.json")
    profile, _ = import_vllm_bench([*PREFILL_RUNS, longer], "llama8b", "h100", 1, "prefill")
    assert profile["max_throughput_by_input"] == [
        {"input_tokens": 2048, "max_throughput_tok_per_s": 18703.2},
        {"input_tokens": 4096, "max_throughput_tok_per_s": round(4096 * 200 / 45.0, 1)},
    ]


def test_vllm_decode_that_falls_names_the_file(tmp_path: Path) -> None:
    doc = json.loads(DECODE_RUNS[2].read_text())
    doc.update(max_concurrency=64, mean_tpot_ms=9.5)
    bad = _write(tmp_path, json.dumps(doc), "c64.json")
    with pytest.raises(InputError) as err:
        import_vllm_bench([*DECODE_RUNS[:3], bad], "llama8b", "h100", 1, "decode")
    assert str(err.value).startswith(f"{bad}: mean_tpot_ms 9.5 at batch 64 is below 9.817 at batch 32 "
                                     f"({DECODE_RUNS[2]})")


def test_vllm_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="only batch 1; a decode profile needs a sweep over at least 2"):
        import_vllm_bench(DECODE_RUNS[0], "llama8b", "h100", 1, "decode")
    doc = json.loads(DECODE_RUNS[0].read_text())
    del doc["mean_tpot_ms"]
    no_tpot = _write(tmp_path, json.dumps(doc), "no-tpot.json")
    with pytest.raises(InputError, match=re.escape(f"{no_tpot}: field 'mean_tpot_ms' is missing")):
        import_vllm_bench([no_tpot, DECODE_RUNS[1]], "llama8b", "h100", 1, "decode")
    with pytest.raises(InputError, match=re.escape(f"{CSV}: not valid JSON")):
        import_vllm_bench(CSV, "llama8b", "h100", 1, "prefill")
    with pytest.raises(InputError, match="unknown role 'both'"):
        import_vllm_bench(DECODE_RUNS, "llama8b", "h100", 1, "both")
    with pytest.raises(InputError, match="gpu_type 'H100' is not a pdopt identifier"):
        import_vllm_bench(DECODE_RUNS, "llama8b", "H100", 1, "decode")


# ------------------------------------------------------------------------------------------------ Splitwise


SPLITWISE_SHAPES = [("llama2-70b", hw, tp) for hw in ("a100-80gb", "h100-80gb") for tp in (2, 4, 8)] + [
    ("bloom-176b", hw, 8) for hw in ("a100-80gb", "h100-80gb")]


@needs_splitwise
@pytest.mark.parametrize(("model", "hardware", "tp"), SPLITWISE_SHAPES)
def test_splitwise_reproduces_the_example_instance(model: str, hardware: str, tp: int) -> None:
    """The bundled example's Splitwise profiles are exactly what import_splitwise gives (same rounding, drops)."""
    example = yaml.safe_load(EXAMPLE.read_text())["profiles"]
    imported = import_splitwise(SPLITWISE, model, hardware, tp)
    assert [p["role"] for p in imported] == ["prefill", "decode"]
    for prof in imported:
        ref = next(p for p in example if (p["model"], p["role"], p["gpu_type"], p["gpus_per_instance"])
                   == (prof["model"], prof["role"], prof["gpu_type"], prof["gpus_per_instance"]))
        curve = "max_throughput_by_input" if prof["role"] == "prefill" else "tpot_by_batch"
        assert prof[curve] == ref[curve]
        assert str(SPLITWISE) in prof["source"]
        # the example's rule is stated the same way in both sources
        assert ref["source"].split(": ")[1].split(";")[0] in prof["source"]
        if "dropped" in ref["source"]:
            assert ref["source"].split("; ")[-1].removesuffix(")") in prof["source"]


@needs_splitwise
def test_splitwise_lists_dropped_rows() -> None:
    _, decode = import_splitwise(SPLITWISE, "llama2-70b", "a100-80gb", 2)
    assert decode["tpot_by_batch"][-1] == {"batch": 32, "tpot_ms": 72.207}
    assert "batch 64 row dropped (TPOT 67.267 ms below batch 32's 72.207 ms; lines 62-66)" in decode["source"]
    _, decode = import_splitwise(SPLITWISE, "llama2-70b", "a100-80gb", 8, "a100", model_id="llama")
    assert decode["model"] == "llama" and decode["gpu_type"] == "a100" and decode["gpus_per_instance"] == 8
    assert "batch 2 row dropped (TPOT 44.526 ms below batch 1's 44.914 ms" in decode["source"]


@needs_splitwise
def test_splitwise_profiles_plan_like_the_example() -> None:
    """The example instance with every profile re-imported plans to its known optimum, 172.04 USD/h."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["profiles"] = [p for shape in SPLITWISE_SHAPES for p in import_splitwise(SPLITWISE, *shape)]
    inst = instance_from_dict(doc)
    plan = pdopt.solve(inst)
    assert plan.status.value == "optimal"
    assert plan.objective_usd_per_hour == pytest.approx(172.04, rel=1e-6)
    assert verify(inst, plan.to_dict()) == []


@needs_splitwise
def test_splitwise_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape(f"{SPLITWISE}: no rows for llama2-70b, a100-80gb, "
                                                   "tensor_parallel 1 (the file has ")):
        import_splitwise(SPLITWISE, "llama2-70b", "a100-80gb", 1)
    lines = SPLITWISE.read_text().splitlines()
    bad = _write(tmp_path, "\n".join([lines[0], lines[1].replace(",54.87951193752838,", ",fast,")]) + "\n", "pm.csv")
    with pytest.raises(InputError, match=re.escape(f"{bad} line 2: token_time 'fast' is not a number")):
        import_splitwise(bad, "llama2-70b", "a100-80gb", 2)


def test_splitwise_given_a_file_of_another_format() -> None:
    with pytest.raises(InputError, match=re.escape(f"{CSV} line 3: missing column(s) hardware") + ".*"
                       "looks like a pdopt_csv file: use import_csv"):
        import_splitwise(CSV, "llama2-70b", "a100-80gb", 2)


# ------------------------------------------------------------------------------------------------ detection


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(CSV) == "pdopt_csv"
    assert detect_format(DECODE_RUNS[0]) == "vllm_bench"
    lines = "\n".join(json.dumps(json.loads(p.read_text())) for p in DECODE_RUNS)
    assert detect_format(_write(tmp_path, lines, "appended.json")) == "vllm_bench"
    # a pdopt CSV with a column missing is still recognised, so that its importer can say which
    assert detect_format(_write(tmp_path, HEADER.replace(",tpot_ms", "") + "\n")) == "pdopt_csv"
    if SPLITWISE.exists():
        assert detect_format(SPLITWISE) == "splitwise"


@pytest.mark.parametrize("text", ["", "a,b,c\n1,2,3\n", '{"name": "x"}', "[1, 2]", "name: x\n", "\x00\x01"])
def test_detect_format_rejects_other_files(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text, "other.txt")
    with pytest.raises(InputError, match=re.escape(f"{path}: not a pdopt CSV, vLLM bench JSON or Splitwise "
                                                   "perf_model.csv")):
        detect_format(path)
    with pytest.raises(InputError, match=re.escape(f"{EXAMPLE}: not a pdopt CSV")):
        detect_format(EXAMPLE)


def test_detect_format_unreadable(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file"):
        detect_format(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------------------ into a plan


def _instance(profiles: list[dict[str, Any]], gpu_types: list[str]) -> dict[str, Any]:
    return {
        "name": "imported",
        "gpu_types": {g: {"memory_gb": 80, "price_usd_per_gpu_hour": 2.0 + i} for i, g in enumerate(gpu_types)},
        "node_pools": {f"{g}_nodes": {"gpu_type": g, "gpus_per_node": 8, "node_count": 4} for g in gpu_types},
        "models": {"llama8b": {"architecture": {"num_layers": 32, "num_kv_heads": 8, "head_dim": 128,
                                                "num_parameters_billion": 8}}},
        "workloads": {"llama8b": {"demand": {"requests_per_s": 20.0}, "input_tokens_mean": 2048,
                                  "output_tokens_mean": 256, "ttft": {"target_s": 1.0, "statistic": "p90"},
                                  "tpot": {"target_ms": 10.0, "statistic": "mean"}}},
        "profiles": profiles,
    }


def test_imported_profiles_validate_and_plan() -> None:
    """Pasted into an instance (workload at 2,048 input tokens, the prefill benchmarks' length), they plan."""
    csv_profiles = import_csv(CSV)
    vllm_profiles = [import_vllm_bench(runs, "llama8b", "h100", 1, role).profile
                     for runs, role in ((PREFILL_RUNS, "prefill"), (DECODE_RUNS, "decode"))]
    for profiles, gpus in ((csv_profiles, ["h100", "a100"]), (vllm_profiles, ["h100"])):
        doc = _instance(profiles, gpus)
        yaml_round_trip = yaml.safe_load(yaml.safe_dump(doc, sort_keys=False))  # what a pasted profile becomes
        inst = instance_from_dict(yaml_round_trip)
        assert len(inst.profiles) == len(profiles)
        plan = pdopt.solve(inst)
        assert plan.status.value == "optimal"
        assert verify(inst, plan.to_dict()) == []


def test_cli_profile_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pdopt profile import`: YAML on stdout or a new file (never overwritten), exit 2 on a file of another kind."""
    from pdopt.cli import main

    root = Path(__file__).resolve().parents[1]
    assert main(["profile", "import", str(root / "tests" / "data" / "pdopt-profiles.csv")]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert {p["role"] for p in doc["profiles"]} == {"prefill", "decode"}
    vllm = sorted(str(p) for p in (root / "tests" / "data" / "vllm-bench").glob("decode-*.json"))
    out = tmp_path / "p.yaml"
    assert main(["profile", "import", *vllm, "--model", "m", "--gpu-type", "h100", "--gpus-per-instance", "1",
                 "--role", "decode", "--output", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["profiles"][0]["role"] == "decode"
    assert main(["profile", "import", *vllm, "--model", "m", "--role", "decode", "--output", str(out)]) == 2
    assert main(["profile", "import", str(root / "README.md")]) == 2
    assert "not a pdopt CSV" in capsys.readouterr().err

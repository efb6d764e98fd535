"""Benchmark tools whose outputs are built from their source (tests/data/benchmark-formats/, README there): each
reads as the hand calculation from the one made-up run they all describe.

The run, by hand: successful requests 0-3 with TTFT 0.120, 0.150, 0.110, 0.300 s (mean 0.170 s), outputs 5, 4,
6, 3 tokens and end-to-end latencies 0.208, 0.234, 0.217, 0.375 s, so per-request TPOT (latency - TTFT) /
(output - 1) = 22.0, 28.0, 21.4, 37.5 ms (mean 27.225 ms); their first chunk gaps 20, 30, 20, 40 ms (mean
27.5 ms: EvalScope's P->D handoff); request 4 failed. genai-perf's rate: 4 requests over first send (1000.0 s)
to last response (1001.5 + 0.375 s), 4 / 1.875 = 2.1333 req/s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pdopt.io.importers.aiperf import read_aiperf
from pdopt.io.importers.evalscope import read_evalscope
from pdopt.io.importers.vllm import _vllm_runs
from pdopt.io.measurements import read_measurements

DATA = Path(__file__).resolve().parent / "data" / "benchmark-formats"
DEPLOY = "prefill=h100x1:1+decode=h100x1:1"
TTFT_S, TPOT_MS = 0.17, (22.0 + 28.0 + 21.4 + 37.5) / 4


def test_vllm_detailed_lists_and_burstiness() -> None:
    """The per-request lists give the hand values (and the summary's); burstiness 0.5 is an arrival SCV of 2."""
    run = _vllm_runs(DATA / "vllm-bench-serve-detailed.json")[0]
    detail = run.detailed()
    assert detail is not None
    ttft, tpot, ok, failed = detail
    assert (ok, failed) == (4, 1)
    assert ttft["mean"] == pytest.approx(TTFT_S) and tpot["mean"] == pytest.approx(TPOT_MS)
    assert tpot["mean"] == pytest.approx(run.doc["mean_tpot_ms"]) and run.tool == "vLLM bench serve"
    point = read_measurements([DATA / "vllm-bench-serve-detailed.json"], "llm", DEPLOY)[0]
    assert point.arrival_scv == pytest.approx(2.0) and point.rate_rps == 2.0
    assert point.ttft_s["p50"] == pytest.approx(0.135) and point.ttft_s["p95"] == pytest.approx(0.2775)


def test_sglang_reads_as_vllm_with_its_own_latency() -> None:
    """SGLang's summary TPOT (27.385 ms) stamps latency at the last SSE line ([DONE], +0.5 ms a request); the
    lists (TTFT + the chunk gaps: the last token) give the hand value 27.225 ms. Arrivals are Poisson."""
    run = _vllm_runs(DATA / "sglang-bench-serving.jsonl")[0]
    assert run.tool == "SGLang bench_serving" and run.arrival_scv == 1.0
    detail = run.detailed()
    assert detail is not None and detail[1]["mean"] == pytest.approx(TPOT_MS)
    assert run.doc["mean_tpot_ms"] == pytest.approx(TPOT_MS + 0.5 * sum(1 / (n - 1) for n in (5, 4, 6, 3)) / 4)
    point = read_measurements([DATA / "sglang-bench-serving.jsonl"], "llm", DEPLOY)[0]
    assert point.tpot_ms["mean"] == run.doc["mean_tpot_ms"]  # the summary, as the tool reports it


@pytest.mark.parametrize(("folder", "tpot_mean", "ttft_p90"), [("evalscope-c-pd", 27.32, 0.3),
                                                                ("evalscope-a", 27.3, 0.3)])
def test_evalscope_generations(folder: str, tpot_mean: float, ttft_p90: float) -> None:
    """Generation C (ms, `Avg ...` keys, PD metrics) and A (seconds, legacy keys): TTFT 0.17 s, TPOT as rounded by
    each (27.32 ms; 0.0273 s), percentiles from the file beside; the handoff is the mean first gap, 27.5 ms."""
    run = read_evalscope(DATA / folder / "benchmark_summary.json")
    assert run.ttft_s["mean"] == pytest.approx(TTFT_S) and run.tpot_ms["mean"] == pytest.approx(tpot_mean)
    assert run.ttft_s["p90"] == pytest.approx(ttft_p90)
    assert (run.completed, run.failed, run.concurrency, run.request_rate) == (4, 1, 2, None)
    assert run.pd_handoff_ms == (pytest.approx((20 + 30 + 20 + 40) / 4) if folder.endswith("pd") else None)
    point = read_measurements([DATA / folder / "benchmark_summary.json"], "llm", DEPLOY)[0]
    assert point.rate_rps == pytest.approx(2.1018)


@pytest.mark.parametrize("name", ["profile_export_genai_perf.json", "aiperf-1.0-profile_export_aiperf.json"])
def test_genai_perf_and_flat_aiperf(name: str) -> None:
    run = read_aiperf(DATA / name)
    assert run.ttft_s["mean"] == pytest.approx(TTFT_S) and run.tpot_ms["mean"] == pytest.approx(TPOT_MS)
    assert run.rate_rps == pytest.approx(4 / 1.875) and run.concurrency == 2
    assert run.input_tokens_mean == pytest.approx((128 + 256 + 128 + 512) / 4)
    assert read_measurements([DATA / name], "llm", DEPLOY)[0].tpot_ms["mean"] == pytest.approx(TPOT_MS)


def test_fidelity_predicts_with_the_runs_arrival_scv() -> None:
    """Under G/G/1 the run's SCV (vLLM burstiness 0.5: SCV 2) is the one predicted with: the capacity model's
    mean TTFT equals the one of the instance with arrival_scv 2 stated, and differs from Poisson's."""
    import pdopt
    from pdopt.comparison.fidelity import evaluate, with_models

    root = Path(__file__).resolve().parent.parent
    inst = with_models(pdopt.load_instance(root / "instances" / "tiny" / "two-periods.yaml").period_instance("day"),
                       "gg1", None)
    import dataclasses

    point = read_measurements([DATA / "vllm-bench-serve-detailed.json"], "llm",
                              "prefill=gpux1:3+decode=gpux1:2")[0]
    point = dataclasses.replace(point, input_tokens_mean=None, output_tokens_mean=None)  # the profile's lengths
    got = next(r for r in evaluate(inst, [point], simulate_runs=False)[0].rows
               if (r["metric"], r["statistic"]) == ("ttft_s", "mean"))["capacity_model"]
    stated = inst.replace(workloads={"llm": {**inst.workloads["llm"].model_dump(mode="json"), "arrival_scv": 2.0}})
    poisson = inst.replace(workloads={"llm": {**inst.workloads["llm"].model_dump(mode="json"), "arrival_scv": 1.0}})

    def predicted(i: pdopt.Instance) -> float:
        row = next(r for r in evaluate(i, [dataclasses.replace(point, arrival_scv=None)], simulate_runs=False)[0].rows
                   if (r["metric"], r["statistic"]) == ("ttft_s", "mean"))
        return float(row["capacity_model"])

    assert got == pytest.approx(predicted(stated)) and got > predicted(poisson)


def test_profile_import_of_other_tools_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """`profile import` of AIPerf, genai-perf or EvalScope runs uses vLLM's rules: a prefill point at the runs' mean
    input length with input tokens per second = mean input x request rate (the genai-perf run: 256 x 2.1333 =
    546.1 tok/s); a decode curve from runs at several concurrencies (batch = concurrency, TPOT = the run's mean).
    The two AIPerf files (the real run at concurrency 100 and the built one at 2) only exercise the rule."""
    from pdopt.cli import main

    real = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "benchmark-formats" / "aiperf"
    assert main(["profile", "import", str(DATA / "profile_export_genai_perf.json"), "--model", "llm", "--gpu-type",
                 "h100", "--gpus-per-instance", "1", "--role", "prefill"]) == 0
    import yaml

    prof = yaml.safe_load(capsys.readouterr().out)["profiles"][0]
    assert prof["max_throughput_by_input"] == [{"input_tokens": 256, "max_throughput_tok_per_s": round(256 * 4 / 1.875,
                                                                                                        1)}]
    assert prof["source"].startswith("genai-perf runs")
    if not real.is_dir():
        return
    assert main(["profile", "import", str(DATA / "aiperf-1.0-profile_export_aiperf.json"),
                 str(real / "run1_profile_export_aiperf.json"), "--model", "llm", "--gpu-type", "h100",
                 "--gpus-per-instance", "1", "--role", "decode"]) == 0
    prof = yaml.safe_load(capsys.readouterr().out)["profiles"][0]
    assert prof["tpot_by_batch"] == [{"batch": 2, "tpot_ms": 27.225}, {"batch": 100, "tpot_ms": 27.763}]


@pytest.mark.parametrize(("name", "change", "message"), [
    ("aiperf-1.0-profile_export_aiperf.json", lambda d: d.update(input_config=[1]), "not a readable AIPerf"),
    ("aiperf-1.0-profile_export_aiperf.json", lambda d: d["time_to_first_token"].update(avg=10**400),
     "a huge integer"),
    ("profile_export_genai_perf.json", lambda d: d["request_throughput"].update(avg="fast"), "got 'fast'"),
    ("evalscope-c-pd/benchmark_summary.json", lambda d: d.update({"Avg TTFT (ms)": [1]}), "Avg TTFT"),
    ("vllm-bench-serve-detailed.json", lambda d: d.update(ttfts=["a", 0.1, 0.1, 0.1, 0.0]),
     "per-request lists hold a value that is not a number"),
    ("vllm-bench-serve-detailed.json", lambda d: d.update(burstiness=1e-6), "arrival SCV of 1e\\+06"),
])
def test_hostile_benchmark_files_name_the_file(tmp_path: Path, name: str, change: object, message: str) -> None:
    import json

    doc = json.loads((DATA / name).read_text())
    change(doc)  # type: ignore[operator]
    bad = tmp_path / name
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(json.dumps(doc))
    from pdopt.errors import InputError

    with pytest.raises(InputError, match=message):
        read_measurements([bad], "llm", DEPLOY)


def test_prefill_runs_without_a_tpot_and_constant_arrivals(tmp_path: Path) -> None:
    """A run of one output token has no ITL (AIPerf writes none; EvalScope writes 0): TTFT only. vLLM's
    --burstiness inf is constant gaps: SCV 0."""
    import json

    doc = json.loads((DATA / "aiperf-1.0-profile_export_aiperf.json").read_text())
    del doc["inter_token_latency"]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    run = read_aiperf(tmp_path / "a.json")
    assert run.tpot_ms == {} and run.ttft_s["mean"] == pytest.approx(TTFT_S)
    doc = json.loads((DATA / "evalscope-a" / "benchmark_summary.json").read_text())
    doc["Average time per output token (s)"] = 0.0
    (tmp_path / "benchmark_summary.json").write_text(json.dumps(doc))
    assert read_evalscope(tmp_path / "benchmark_summary.json").tpot_ms == {}
    doc = json.loads((DATA / "vllm-bench-serve-detailed.json").read_text())
    (tmp_path / "v.json").write_text(json.dumps(doc).replace('"burstiness": 0.5', '"burstiness": Infinity'))
    assert read_measurements([tmp_path / "v.json"], "llm", DEPLOY)[0].arrival_scv == 0.0


REAL_VLLM = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmark-formats" / "vllm-bench-serve"


@pytest.mark.skipif(not REAL_VLLM.is_dir(), reason="../shared/data/benchmark-formats is not beside the project")
def test_real_vllm_runs_of_llm_d_benchmark() -> None:
    """The three real vLLM runs kept from llm-d-benchmark (exp-7, Apache-2.0), by hand from their fields: the
    H100 1P1D run at 3.6 req/s with burstiness 100 (arrival SCV 0.01), mean TTFT 0.24954 s, TPOT 17.815 ms, mean
    lengths 1,599,800 / 200 = 7,999 in and 40,000 / 200 = 200 out; as a prefill point, 1,599,800 input tokens over
    57.2657 s = 27,936.4 tok/s at 7,999 tokens. The A100 2P1D run completed 240 of 250 requests: its lengths are
    per completed request (2,400,000 / 240 = 10,000)."""
    h100 = REAL_VLLM / "llm-d-benchmark_exp-7_H100_llm-d-1p1d_benchmark_2025-05-13_04-37-51.json"
    a100 = REAL_VLLM / "llm-d-benchmark_exp-7_A100_llm-d-2p1d_benchmark_2025-05-11_23-39-15.json"
    point = read_measurements([h100], "llama8b", "prefill=h100x1:1+decode=h100x1:1")[0]
    assert point.rate_rps == 3.6 and point.arrival_scv == pytest.approx(0.01)
    assert point.ttft_s["mean"] == pytest.approx(0.2495401489) and point.tpot_ms["mean"] == pytest.approx(17.8153226)
    assert (point.input_tokens_mean, point.output_tokens_mean) == (7999.0, 200.0)
    from pdopt.io.importers import import_vllm_bench

    prof, _ = import_vllm_bench([h100], "llama8b", "h100", 1, "prefill")
    assert prof["max_throughput_by_input"] == [{"input_tokens": 7999,
                                                "max_throughput_tok_per_s": round(1599800 / 57.265733883017674, 1)}]
    assert read_measurements([a100], "llama8b", "prefill=a100x1:2+decode=a100x1:1")[0].input_tokens_mean == 10000.0


def test_fidelity_sets_the_measured_handoff_beside_the_model() -> None:
    """EvalScope's P->D handoff (27.5 ms) beside the model's: the prefill shape's transfer (two-periods.yaml's
    ttft_overhead_s, 250 ms) plus one decode iteration (the predicted mean TPOT)."""
    import dataclasses

    import pdopt
    from pdopt.comparison.fidelity import evaluate

    root = Path(__file__).resolve().parent.parent
    inst = pdopt.load_instance(root / "instances" / "tiny" / "two-periods.yaml").period_instance("day")
    point = read_measurements([DATA / "evalscope-c-pd" / "benchmark_summary.json"], "llm",
                              "prefill=gpux1:3+decode=gpux1:2")[0]
    point = dataclasses.replace(point, input_tokens_mean=None, output_tokens_mean=None)
    rows = evaluate(inst, [point], simulate_runs=False)[0].rows
    handoff = next(r for r in rows if r["metric"] == "pd_handoff_ms")
    tpot = next(r for r in rows if (r["metric"], r["statistic"]) == ("tpot_ms", "mean"))["capacity_model"]
    assert handoff["measured"] == pytest.approx(27.5)
    assert handoff["capacity_model"] == pytest.approx(250.0 + tpot)

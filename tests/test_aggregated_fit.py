"""Calibrating an aggregated instance's iteration model to measured runs (pdopt/perf/aggregated_fit.py, core in
pdopt/perf/calibrate.py): recovery of known coefficients, errors, and the wiring into the capacity table, the
plan and the verifier.

Known coefficients: DistServe's vLLM fit for OPT-66B on 4 A100-80GB (TP 4), file profiler-a100-80g.vllm.json,
model "facebook/opt-66b", key "4", mapped as docs/capacity.md says: a = max(prefill a, decode a), b = prefill b,
c = prefill c, d = decode b, e = decode c (decoding_smallbs). a, b, e are fitted, c, d held at these values.

Workload of the recovery tests: prompts of 256 tokens, 512 output tokens, token budget 2048, batch cap 1024 and
a KV cache that never binds, client overhead 0.05 s, Poisson arrivals. Of 16 (L, O, K) combinations of 256-2048
prompt tokens, 128/512 output tokens and 512/2048 budgets this one has the smallest standard error of e, the
least determined coefficient (e B is 0.3% of an unloaded iteration; it shows only in how TPOT grows with load):
3.2% with 2% noise on each mean of 8 runs at 10-85% of saturation, against 4.3-58% for the others. Runs: 8 rates
at 10%, 20%, ..., 80% of the model's saturation rate (3.067 req/s).

- Runs of the formula itself (:func:`pdopt.perf.aggregated.aggregated_load`, the analysis the fit inverts):
  without noise the fit recovers the coefficients to 1e-6; with 1% lognormal noise on each mean (standard errors
  then a 0.5%, b 1.7%, e 1.8%) each within 5%. At 2% noise the standard errors double, and all three land within
  5% in only 72% of noise seeds even on the model's own data; there the test checks that the reported standard
  errors match the spread of the fitted coefficients over 40 seeds.
- Runs of the simulator (:func:`pdopt.sim.aggregated.simulate_aggregated`, 4,000 requests per run, the first and
  last 10% by arrival left out, 2% lognormal noise): the analysis agrees with the simulated means within about
  1% in TTFT and 3% in TPOT at every load, and the fit recovers a, b and e within 5% (a strict xfail up to half
  the saturation rate alone, where e's standard error is 14%; docs/calibration.md has the table).

The seeds were fixed before the first run of these tests, not chosen because they pass.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import ValidationError

import pdopt
from pdopt.instance import AggregatedProfile, Instance, IterationModel, MeasuredRun, Workload
from pdopt.perf.aggregated import aggregated_load
from pdopt.perf.aggregated_fit import AGG_FITTED, IterationFit, fit_iteration, planner_predict
from pdopt.perf.aggregated_search import aggregated_capacity
from pdopt.perf.capacity import ShapeCapacity, capacity_table
from pdopt.sim.aggregated import simulate_aggregated
from pdopt.verifier.capacity import recompute_shape
from tests.conftest import INSTANCES

DISTSERVE = Path("/work/shared/data/distserve/profiler-a100-80g.vllm.json")
PREFILL = (42.965489361973944, 0.2128658422785494, 4.601017396226869e-05)
DECODE = (39.58178936012414, 0.0006945721692406896, 0.13580868185596764)
"""facebook/opt-66b, TP 4, A100-80GB: DistServe's prefill and decoding_smallbs [a, b, c] (ms)."""
TRUE = IterationModel(overhead_ms=max(PREFILL[0], DECODE[0]), per_prefill_token_ms=PREFILL[1],
                      prefill_quadratic_ms=PREFILL[2], per_context_token_ms=DECODE[1], per_decode_seq_ms=DECODE[2],
                      source="DistServe vLLM OPT-66B TP4 A100-80GB")
L_IN, L_OUT, BUDGET, MAX_BATCH, KV_TOKENS = 256, 512, 2048, 1024, 10_000_000
OVERHEAD_S = 0.05
LOADS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
"""Rates as shares of the model's saturation rate."""
SIM_REQUESTS = 4000
FORMULA_NOISE_SEED = 7321
SIM_SEED = 90417
SIM_NOISE_SEED = 5519
WORKLOAD = Workload.model_validate({
    "demand": {"requests_per_s": 1.0}, "input_tokens_mean": L_IN, "output_tokens_mean": L_OUT,
    "ttft": {"target_s": 1.0, "statistic": "mean"}, "tpot": {"target_ms": 150.0, "statistic": "mean"}})
PROFILE = AggregatedProfile(
    model="m", role="aggregated", gpu_type="g", gpus_per_instance=4, token_budget=BUDGET, max_batch=MAX_BATCH,
    kv_tokens=KV_TOKENS,
    iteration=TRUE.model_copy(update={"overhead_ms": 10.0, "per_prefill_token_ms": 1.0, "per_decode_seq_ms": 1.0}))
"""c and d true (held), a, b and e wrong: the fit must not start from them."""


def test_coefficients_are_distserves() -> None:
    if not DISTSERVE.is_file():
        pytest.skip(f"{DISTSERVE} is not on this machine")
    table = json.loads(DISTSERVE.read_text())["facebook/opt-66b"]["4"]
    assert tuple(table["prefill"]) == PREFILL and tuple(table["decoding_smallbs"]) == DECODE


SATURATION_RPS = 3.067327711461598
"""The largest rate at which :func:`pdopt.perf.aggregated.aggregated_load` has a steady state for TRUE (bisection
to 1e-12; it takes minutes, as the analysis slows down near saturation, so the value is stated and checked)."""


def saturation_rps() -> float:
    return SATURATION_RPS


def test_the_saturation_rate_is_the_formulas() -> None:
    assert aggregated_load(TRUE, BUDGET, WORKLOAD, SATURATION_RPS * 0.99, OVERHEAD_S) is not None
    assert aggregated_load(TRUE, BUDGET, WORKLOAD, SATURATION_RPS * 1.05, OVERHEAD_S) is None


def measured_runs(source: Literal["formula", "simulator"], noise: float, loads: tuple[float, ...] = LOADS,
                  noise_seed: int = FORMULA_NOISE_SEED) -> list[MeasuredRun]:
    """Mean TTFT and TPOT at each load of the formula or of the simulator (Poisson arrivals, seed SIM_SEED + i
    for run i, the first and last 10% of requests by arrival left out), times exp(noise N(0, 1)) per mean."""
    sat = saturation_rps()
    rng = np.random.default_rng(noise_seed)
    runs = []
    for i, load in enumerate(loads):
        rate = load * sat
        if source == "formula":
            at = aggregated_load(TRUE, BUDGET, WORKLOAD, rate, OVERHEAD_S)
            assert at is not None
            ttft, tpot = at.ttft_mean_s, at.tpot_mean_ms
        else:
            gaps = np.random.default_rng(SIM_SEED + i).exponential(1.0 / rate, SIM_REQUESTS)
            res = simulate_aggregated(TRUE, BUDGET, MAX_BATCH, KV_TOKENS, np.cumsum(gaps),
                                      np.full(SIM_REQUESTS, L_IN), np.full(SIM_REQUESTS, L_OUT))
            kept = slice(SIM_REQUESTS // 10, SIM_REQUESTS - SIM_REQUESTS // 10)
            ttft, tpot = float(np.mean(res.ttft_s[kept])) + OVERHEAD_S, float(np.mean(res.tpot_ms[kept]))
        z = np.exp(noise * rng.standard_normal(2))
        runs.append(MeasuredRun(request_rate_rps=rate, ttft_mean_s=ttft * z[0], tpot_mean_ms=tpot * z[1]))
    return runs


def errors(fit: IterationFit) -> dict[str, float]:
    """Relative error of each fitted coefficient."""
    return {k: getattr(fit.iteration, k) / getattr(TRUE, k) - 1.0 for k in fit.fitted}


def fit(runs: list[MeasuredRun]) -> IterationFit:
    return fit_iteration(runs, PROFILE, WORKLOAD, OVERHEAD_S, KV_TOKENS)


def test_noise_free_runs_of_the_formula_are_recovered_exactly() -> None:
    result = fit(measured_runs("formula", 0.0))
    assert result.fitted == AGG_FITTED
    assert result.held == ("prefill_quadratic_ms", "per_context_token_ms")
    assert all(abs(err) < 1e-6 for err in errors(result).values()), errors(result)
    assert result.iteration.prefill_quadratic_ms == TRUE.prefill_quadratic_ms
    assert result.iteration.per_context_token_ms == TRUE.per_context_token_ms
    assert result.iteration.source.startswith("calibrated to 8 measured runs")
    assert result.rms_rel_error < 1e-9 and result.at_bound == () and result.beyond_cap == ()
    assert result.n_runs == len(result.runs) == 8
    json.dumps(result.to_dict())


def test_noisy_runs_of_the_formula_are_recovered_within_5_percent() -> None:
    result = fit(measured_runs("formula", 0.01))
    assert all(abs(err) < 0.05 for err in errors(result).values()), errors(result)


def test_standard_errors_are_honest() -> None:
    """With 2% noise, over 40 noise seeds, the spread of each fitted coefficient around the truth matches the
    standard error the fit reports (their ratio within [0.7, 1.4], about 3 sd of a 40-sample spread), and the
    errors are about unbiased. (In 200 other seeds: spreads a 1.0%, b 3.5%, e 3.8% against reported 1.0%, 3.4%,
    3.6%; all three within 5% in 72% of the seeds only, hence 1% noise for the 5% check above.)"""
    errs, ses = [], []
    for i in range(40):
        result = fit(measured_runs("formula", 0.02, noise_seed=FORMULA_NOISE_SEED + 1 + i))
        errs.append(list(errors(result).values()))
        ses.append([result.std_errors[k] / getattr(TRUE, k) for k in result.fitted])
    spread, reported = np.std(errs, axis=0), np.mean(ses, axis=0)
    assert np.all((spread > 0.7 * reported) & (spread < 1.4 * reported)), (spread, reported)
    assert np.all(np.abs(np.mean(errs, axis=0)) < 3.0 * spread / math.sqrt(40)), (np.mean(errs, axis=0), spread)
    assert reported[0] < 0.02 and reported[1] < 0.06 and reported[2] < 0.06, reported


@pytest.fixture(scope="module")
def simulated() -> list[MeasuredRun]:
    return measured_runs("simulator", 0.02, noise_seed=SIM_NOISE_SEED)


def test_simulated_runs_are_reproduced_better_than_by_the_true_coefficients(simulated: list[MeasuredRun]) -> None:
    """The calibrated model reproduces the simulator's runs (2% noise) at least as well as the true coefficients."""
    result = fit(simulated)
    true_means = [aggregated_load(TRUE, BUDGET, WORKLOAD, r.request_rate_rps, OVERHEAD_S) for r in simulated]
    true_rel = [x for m, r in zip(true_means, simulated, strict=True) if m is not None
                for x in (m.ttft_mean_s / r.ttft_mean_s - 1, m.tpot_mean_ms / r.tpot_mean_ms - 1)]
    assert result.rms_rel_error <= float(np.sqrt(np.mean(np.square(true_rel))))


def test_simulated_runs_recover_every_coefficient_within_5_percent(simulated: list[MeasuredRun]) -> None:
    """8 runs at 10-80% of saturation, 4,000 simulated requests each, 2% noise: a, b, e within 5%."""
    result = fit(simulated)
    assert all(abs(err) < 0.05 for err in errors(result).values()), errors(result)


@pytest.mark.xfail(strict=True, reason="runs up to half the saturation rate leave e undetermined (its standard "
                                       "error is 14%): docs/calibration.md, Aggregated instances")
def test_simulated_runs_up_to_half_saturation_recover_every_coefficient_within_5_percent(
        simulated: list[MeasuredRun]) -> None:
    result = fit([r for r in simulated if r.request_rate_rps <= 0.5 * SATURATION_RPS * (1 + 1e-9)])
    assert all(abs(err) < 0.05 for err in errors(result).values()), errors(result)


# --- errors ---------------------------------------------------------------------------------------------------


def test_fewer_rates_than_coefficients_is_refused() -> None:
    runs = measured_runs("formula", 0.0, loads=(0.2, 0.5))
    with pytest.raises(ValueError, match="3 or more distinct request rates, got 2"):
        fit(runs)
    with pytest.raises(ValueError, match="got 2"):  # a repeated rate adds no rate
        fit([*runs, runs[0]])


def test_without_decode_iterations_a_and_b_are_fitted_from_ttft() -> None:
    """O = 1: no TPOT; e plays no part and is held, a and b are fitted on TTFT alone (two rates suffice)."""
    wl = WORKLOAD.model_copy(update={"output_tokens_mean": 1.0})
    runs = []
    for rate in (1.0, 2.0, 3.0):
        at = aggregated_load(TRUE, BUDGET, wl, rate, OVERHEAD_S)
        assert at is not None
        runs.append(MeasuredRun(request_rate_rps=rate, ttft_mean_s=at.ttft_mean_s, tpot_mean_ms=1.0))
    result = fit_iteration(runs[:2], PROFILE, wl, OVERHEAD_S, KV_TOKENS)
    assert result.fitted == ("overhead_ms", "per_prefill_token_ms")
    assert result.iteration.per_decode_seq_ms == PROFILE.iteration.per_decode_seq_ms
    assert result.iteration.overhead_ms == pytest.approx(TRUE.overhead_ms, rel=1e-6)
    assert result.iteration.per_prefill_token_ms == pytest.approx(TRUE.per_prefill_token_ms, rel=1e-6)
    assert all(math.isnan(r.tpot_predicted_ms) for r in result.runs)


def test_a_run_saturated_under_every_candidate_is_refused() -> None:
    """Held d = 0.01 ms per context token: with a = b = e = 0 a request still costs 511 x 0.01 x 512 = 2616 ms of
    decode work, so no candidate has a steady state above 0.38 req/s."""
    heavy = PROFILE.model_copy(update={"iteration": PROFILE.iteration.model_copy(
        update={"per_context_token_ms": 0.01})})
    runs = [MeasuredRun(request_rate_rps=r, ttft_mean_s=0.3, tpot_mean_ms=60.0) for r in (0.1, 0.2, 0.5)]
    with pytest.raises(ValueError, match=r"the run at 0\.5 req/s is saturated under every candidate"):
        fit_iteration(runs, heavy, WORKLOAD, OVERHEAD_S, KV_TOKENS)


@pytest.mark.parametrize("field", ["request_rate_rps", "ttft_mean_s", "tpot_mean_ms"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_non_positive_measurements_are_refused_by_the_schema(field: str, value: float) -> None:
    good = {"request_rate_rps": 1.0, "ttft_mean_s": 0.2, "tpot_mean_ms": 50.0}
    with pytest.raises(ValidationError):
        MeasuredRun.model_validate({**good, field: value})


def test_bad_arguments_are_refused() -> None:
    runs = measured_runs("formula", 0.0, loads=(0.2, 0.4, 0.6))
    with pytest.raises(ValueError, match="overhead_s"):
        fit_iteration(runs, PROFILE, WORKLOAD, -0.1, KV_TOKENS)
    with pytest.raises(ValueError, match="kv_tokens"):
        fit_iteration(runs, PROFILE, WORKLOAD, OVERHEAD_S, -1)
    with pytest.raises(ValueError, match="arrival_scv"):
        fit_iteration(runs, PROFILE, WORKLOAD, OVERHEAD_S, KV_TOKENS, arrival_scv=math.nan)


def test_runs_beyond_the_batch_cap_are_flagged() -> None:
    """max_batch 256: at 80% of saturation about 300 requests run on average."""
    capped = PROFILE.model_copy(update={"max_batch": 256})
    result = fit_iteration(measured_runs("formula", 0.0), capped, WORKLOAD, OVERHEAD_S, KV_TOKENS)
    assert len(result.beyond_cap) >= 1 and "cap 256" in result.beyond_cap[-1]


def test_the_planner_fits_with_its_own_means() -> None:
    """The planner's forward model is :func:`pdopt.perf.aggregated.aggregated_load`'s two means (None saturated)."""
    predict = planner_predict(PROFILE, WORKLOAD, OVERHEAD_S)
    for load in (0.1, 0.5, 0.9):
        at = aggregated_load(TRUE, BUDGET, WORKLOAD, load * SATURATION_RPS, OVERHEAD_S)
        assert at is not None and predict(TRUE, load * SATURATION_RPS) == (at.ttft_mean_s, at.tpot_mean_ms)
    assert predict(TRUE, 1.05 * SATURATION_RPS) is None


def test_the_verifier_fits_with_its_own_means() -> None:
    """The verifier's forward model is :func:`pdopt.verifier.aggregated.predict_means` when it exists."""
    from pdopt.verifier import aggregated as vagg
    from pdopt.verifier.capacity import _means_predictor

    if not hasattr(vagg, "predict_means"):
        pytest.skip("pdopt.verifier.aggregated.predict_means is not there yet (the stand-in is used)")
    predict = _means_predictor(PROFILE, WORKLOAD, OVERHEAD_S)
    rate = 0.5 * SATURATION_RPS
    assert predict(TRUE, rate) == vagg.predict_means(TRUE, BUDGET, WORKLOAD, rate, OVERHEAD_S)


# --- wiring: capacity table, plan, verifier ---------------------------------------------------------------------

MIXED = INSTANCES / "tiny" / "mixed-modes.yaml"
MIXED_TRUE = IterationModel(overhead_ms=20.0, per_prefill_token_ms=0.0, per_decode_seq_ms=0.5)
"""The aggregated engine of tiny/mixed-modes.yaml, whose capacity its description works out: 11.8 req/s."""


def mixed_with_runs(rates: tuple[float, ...]) -> Instance:
    """tiny/mixed-modes.yaml with the aggregated profile's coefficients stated wrong (30 ms, 0.05 ms, 1 ms) and
    measured runs of its true engine at ``rates``: only calibration gives back the instance's known answer."""
    inst = pdopt.load_instance(MIXED)
    wl = inst.workloads["llm"]
    runs = []
    for rate in rates:
        at = aggregated_load(MIXED_TRUE, 2048, wl, rate, 0.0)
        assert at is not None
        runs.append({"request_rate_rps": rate, "ttft_mean_s": at.ttft_mean_s, "tpot_mean_ms": at.tpot_mean_ms})
    doc = inst.model_dump(mode="json", exclude_none=True)
    agg = next(p for p in doc["profiles"] if p["role"] == "aggregated")
    agg["iteration"] = {"overhead_ms": 30.0, "per_prefill_token_ms": 0.05, "per_decode_seq_ms": 1.0}
    agg["measured_runs"] = runs
    return pdopt.instance_from_dict(doc)


def test_a_calibrated_profile_plans_and_verifies() -> None:
    inst = mixed_with_runs((2.0, 4.0, 6.0, 8.0, 10.0, 11.0))
    prof = next(p for p in inst.profiles if isinstance(p, AggregatedProfile))
    table = capacity_table(inst)
    (shape,) = table.for_role("llm", "aggregated")
    assert shape.capacity_rps == pytest.approx(11.8, abs=1e-4)  # the description's hand-worked value
    assert shape.detail["calibrated_runs"] == 6.0
    stated = aggregated_capacity(prof, inst.workloads["llm"], 1_000_000, 0.0)
    assert isinstance(stated, ShapeCapacity) and stated.capacity_rps < 8.0  # the stated coefficients plan less
    mine = recompute_shape(inst, "llm", "aggregated", "small", 1)
    assert mine is not None and mine.unusable is None
    assert mine.capacity_rps == pytest.approx(shape.capacity_rps, rel=1e-6)
    plan = pdopt.solve(inst)
    assert plan.objective_usd_per_hour == pytest.approx(3.6)  # the description's optimum: 2 P + 1 D + 1 aggregated
    assert pdopt.verify(inst, plan.to_dict()) == []


def test_a_profile_whose_runs_cannot_be_fitted_is_skipped() -> None:
    inst = mixed_with_runs((2.0, 4.0))
    table = capacity_table(inst)
    assert table.for_role("llm", "aggregated") == []
    (skip,) = [s for s in table.skipped if s.role == "aggregated"]
    assert "cannot calibrate the iteration model to measured_runs" in skip.reason and "got 2" in skip.reason
    mine = recompute_shape(inst, "llm", "aggregated", "small", 1)
    assert mine is not None and mine.capacity_rps == 0.0 and mine.unusable is not None
    plan = pdopt.solve(inst)
    assert plan.objective_usd_per_hour == pytest.approx(5.0)  # disaggregated only, as the description says
    assert pdopt.verify(inst, plan.to_dict()) == []


def test_vllm_bench_runs_of_an_aggregated_server_import_and_calibrate(tmp_path: Path) -> None:
    """End to end, as a user with a vLLM request-rate sweep of one aggregated server: runs simulated from the
    tiny instance's true engine (a = 20 ms, b = 0, e = 0.5 ms; 11.8 req/s by hand) at 5 rates (4,000 requests
    each, fixed seed), written as ``vllm bench serve --save-result`` JSON, imported with ``pdopt profile import
    --role aggregated``, planned: the calibrated capacity is within 5% of 11.8 req/s and the plan verifies."""
    import json

    import numpy as np
    import yaml

    from pdopt.cli import main
    from pdopt.sim.aggregated import simulate_aggregated

    rng = np.random.default_rng(11)
    files = []
    for k, rate in enumerate((2.0, 4.0, 6.0, 8.0, 10.0)):
        n = 4000
        arrivals = np.cumsum(rng.exponential(1.0 / rate, n))
        res = simulate_aggregated(MIXED_TRUE, 2048, 512, 1_000_000, arrivals, np.full(n, 1000), np.full(n, 101))
        keep = slice(n // 10, n - n // 10)
        doc = {"request_rate": rate, "completed": n, "duration": float(np.nanmax(res.finish_s)),
               "total_input_tokens": 1000 * n, "total_output_tokens": 101 * n,
               "mean_ttft_ms": float(np.mean(res.ttft_s[keep])) * 1000.0,
               "mean_tpot_ms": float(np.mean(res.tpot_ms[keep])), "max_concurrency": None}
        path = tmp_path / f"run{k}.json"
        path.write_text(json.dumps(doc))
        files.append(str(path))
    out = tmp_path / "profile.yaml"
    assert main(["profile", "import", *files, "--model", "llm", "--gpu-type", "small", "--gpus-per-instance", "1",
                 "--role", "aggregated", "--token-budget", "2048", "--max-batch", "512", "--output", str(out)]) == 0
    imported = yaml.safe_load(out.read_text())["profiles"][0]
    assert len(imported["measured_runs"]) == 5
    doc = yaml.safe_load(MIXED.read_text())
    doc["profiles"] = [p for p in doc["profiles"] if p["role"] != "aggregated"] + [{**imported, "kv_tokens": 1000000}]
    inst = pdopt.instance_from_dict(doc)
    (shape,) = capacity_table(inst).for_role("llm", "aggregated")
    assert shape.capacity_rps == pytest.approx(11.8, rel=0.05)
    plan = pdopt.solve(inst, explain_mode=False)
    assert plan.has_plan and pdopt.verify(inst, plan.to_dict()) == []

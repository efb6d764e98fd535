"""The verifier's capacity of an aggregated instance (pdopt/verifier/aggregated.py): a known answer worked by hand
from docs/capacity.md, agreement with the planner's independent implementation (pdopt/perf/aggregated.py) on
randomised cases, the two known disagreements (each a departure of the planner's from docs/capacity.md, kept as
strict expected failures until it is fixed), and the wiring into ``recompute_shape``."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest

from pdopt.instance import AggregatedProfile, Instance, Workload, validate_instance
from pdopt.perf.aggregated import (
    aggregated_capacity,
    aggregated_load,
    aggregated_max_rate,
    running_cap,
    tpot_statistic_ms,
    ttft_statistic_s,
)
from pdopt.perf.shapes import ShapeCapacity
from pdopt.verifier.aggregated import kv_tokens_of, recompute_aggregated, recompute_aggregated_detail
from pdopt.verifier.capacity import recompute_shape

STATS = ("mean", "p50", "p90", "p95", "p99")


def _profile(iteration: dict[str, float], token_budget: int = 2048, max_batch: int = 256,
             kv_tokens: int | None = 1_000_000, **extra: Any) -> AggregatedProfile:
    return AggregatedProfile.model_validate({
        "model": "m", "role": "aggregated", "gpu_type": "g", "gpus_per_instance": 2, "token_budget": token_budget,
        "max_batch": max_batch, "kv_tokens": kv_tokens, "iteration": iteration, **extra})


def _workload(**fields: Any) -> Workload:
    doc: dict[str, Any] = {"demand": {"requests_per_s": 1.0}, "input_tokens_mean": 1000.0,
                           "output_tokens_mean": 101.0, "ttft": {"target_s": 2.0}, "tpot": {"target_ms": 60.0}}
    return Workload.model_validate({**doc, **fields})


HAND = {"overhead_ms": 20.0, "per_prefill_token_ms": 0.1, "prefill_quadratic_ms": 0.0, "per_context_token_ms": 0.0,
        "per_decode_seq_ms": 0.5}
"""a = 20 ms, b = 0.1 ms/token, c = d = 0, e = 0.5 ms."""


# ---------------------------------------------------------------------------------------------------------------
# (a) A known answer, by hand.
#
# K = 2048, max_batch = 256, KV 1e6 tokens, one prompt length L = 1000, O = 101, h = 0, Poisson arrivals,
# overhead 0, mean TTFT target 2 s, mean TPOT target 60 ms. lambda in req/ms.
#
# Step 1: n = O - 1 = 100; w_p = b L = 0.1 x 1000 = 100 ms; delta = e + d (...) = 0.5 ms;
#         W = w_p + n delta = 100 + 50 = 150 ms; rho = 150 lambda.
# Step 2: tau = a / (1 - rho) = 20 / (1 - 150 lambda).
# Step 3: TPOT_mean = tau + delta = 60  <=>  1 - 150 lambda = 20 / 59.5  <=>  lambda = (39.5 / 59.5) / 150
#         = 79 / 17850 per ms = 1580 / 357 = 4.4257703 req/s, where rho = 79 / 119 = 0.66387 and tau = 59.5 ms.
# The TTFT there (steps 4-5):
#         B = lambda n TPOT_mean = (79 / 17850) x 100 x 60 = 3160 / 119 = 26.5546;
#         tau_d = a + delta B = 20 + 13.2773 = 33.2773 ms; K - B = 2021.4454;
#         S = L / (K - B) tau_d + w_p = 16.4621 + 100 = 116.4621 ms; rho_p = lambda S = 0.515435;
#         cs2 = 0 (one length), ca2 = 1: W_q = (1 + 0)/2 x rho_p / (1 - rho_p) x S = 61.9407 ms;
#         S_own = ceil(1000 / 2021.4) tau_d + w_p = 33.2773 + 100 = 133.2773 ms;
#         TTFT_mean = (1 - rho_p) tau_d / 2 + W_q + S_own = 8.0625 + 61.9407 + 133.2773 = 203.2805 ms < 2 s.
# Memory (step 7): m = lambda (n TPOT_mean + S_own) = 0.0044258 x 6133.28 = 27.14 running, cap
#         min(256, floor(1e6 / 1101) = 908) = 256: P(Poisson(27.14) <= 256) = 1 > 0.99.
# So the TPOT target binds at 1580 / 357 req/s.
# ---------------------------------------------------------------------------------------------------------------

HAND_RATE = 1580.0 / 357.0
HAND_TTFT_S = 0.2032805


def test_hand_computed_tpot_bound() -> None:
    prof, wl = _profile(HAND), _workload()
    out = recompute_aggregated_detail(prof, wl, 1_000_000, 0.0)
    assert out.unusable is None and out.binding == "tpot_target"
    assert out.capacity_rps == pytest.approx(HAND_RATE, rel=1e-9)
    assert recompute_aggregated(prof, wl, 1_000_000, 0.0) == (out.capacity_rps, None)


def test_hand_computed_ttft_at_the_tpot_bound() -> None:
    """TTFT at 1580/357 req/s is 203.2805 ms: a target just above leaves the TPOT bound, one just below binds."""
    prof = _profile(HAND)
    above = recompute_aggregated_detail(prof, _workload(ttft={"target_s": HAND_TTFT_S + 1e-6}), 1_000_000, 0.0)
    assert above.binding == "tpot_target" and above.capacity_rps == pytest.approx(HAND_RATE, rel=1e-9)
    below = recompute_aggregated_detail(prof, _workload(ttft={"target_s": HAND_TTFT_S - 1e-6}), 1_000_000, 0.0)
    assert below.binding == "ttft_target" and HAND_RATE * 0.999 < below.capacity_rps < HAND_RATE
    # with an overhead the budget shrinks by it (0.1 s here, so the 2 s target still does not bind)
    assert recompute_aggregated(prof, _workload(), 1_000_000, 0.1)[0] == pytest.approx(HAND_RATE, rel=1e-9)


def test_lightest_load_failures_are_reasons() -> None:
    prof = _profile(HAND)
    # unloaded TTFT: a / 2 + S_own = 10 + 120 ms (tau_d = a at lambda = 0)
    rate, why = recompute_aggregated(prof, _workload(ttft={"target_s": 0.12}), 1_000_000, 0.0)
    assert rate == 0.0 and why is not None and "TTFT" in why
    # unloaded TPOT: a + delta = 20.5 ms
    rate, why = recompute_aggregated(prof, _workload(tpot={"target_ms": 20.0}), 1_000_000, 0.0)
    assert rate == 0.0 and why is not None and "TPOT" in why
    rate, why = recompute_aggregated(prof, _workload(), 1100, 0.0)  # E[L] + O = 1101 tokens per request
    assert rate == 0.0 and why is not None and "KV" in why


# ---------------------------------------------------------------------------------------------------------------
# (b) Agreement with the planner on randomised cases.
# ---------------------------------------------------------------------------------------------------------------

def _random_case(rng: random.Random) -> tuple[AggregatedProfile, Workload, int, float]:
    """A profile, workload, KV tokens and overhead, with targets drawn around the unloaded TTFT and TPOT so that
    every condition binds somewhere (a factor 1e4 leaves the engine to saturate)."""
    a = 0.0 if rng.random() < 0.05 else rng.uniform(1.0, 40.0)
    b = rng.uniform(0.005, 0.3)
    c = rng.choice([0.0, rng.uniform(1e-7, 2e-5)])
    d = rng.choice([0.0, rng.uniform(1e-6, 2e-4)])
    e = rng.choice([0.0, rng.uniform(0.01, 1.0)])
    budget = rng.choice([256, 512, 1024, 2048, 4096, 8192])
    dist = None
    if rng.random() < 0.5:
        mean_len = rng.uniform(32.0, 8000.0)
    else:
        lengths = sorted(rng.sample(range(16, 16000), rng.randint(2, 6)))
        weights = [rng.uniform(0.1, 5.0) for _ in lengths]
        mean_len = sum(x * w for x, w in zip(lengths, weights, strict=True)) / sum(weights)
        dist = {"lengths": lengths, "weights": weights}
    out = rng.choice([rng.uniform(2.0, 64.0), rng.uniform(64.0, 1200.0), rng.uniform(0.5, 2.0)])
    h = rng.choice([0.0, rng.uniform(0.0, 0.95)])
    kv = rng.choice([None, int((mean_len + out) * rng.uniform(1.0, 400.0))])
    overhead = rng.choice([0.0, rng.uniform(0.0, 0.2)])
    w_p = b * (1 - h) * mean_len + c * (1 - h * h) * mean_len ** 2
    ttft0 = (a / 2 + math.ceil((1 - h) * mean_len / budget) * a + w_p) / 1000.0 + overhead
    tpot0 = max(a + e + d * (mean_len + out / 2), 0.5)
    prof = _profile({"overhead_ms": a, "per_prefill_token_ms": b, "prefill_quadratic_ms": c,
                     "per_context_token_ms": d, "per_decode_seq_ms": e},
                    token_budget=budget, max_batch=rng.randint(4, min(budget, 512)), kv_tokens=kv)
    wl = _workload(
        input_tokens_mean=mean_len, output_tokens_mean=out, input_length_distribution=dist,
        prefix_cache_hit_rate=h, arrival_scv=rng.choice([1.0, rng.uniform(0.0, 4.0)]),
        ttft={"target_s": ttft0 * rng.choice([rng.uniform(0.9, 3.0), rng.uniform(3.0, 50.0), 1e4]),
              "statistic": rng.choice(STATS)},
        tpot={"target_ms": tpot0 * rng.choice([rng.uniform(0.9, 2.0), rng.uniform(2.0, 20.0), 1e4]),
              "statistic": rng.choice(STATS)})
    return prof, wl, kv if kv is not None else 10 ** 9, overhead


def _planner_misses_a_failing_load(prof: AggregatedProfile, wl: Workload, kv: int, overhead: float, lo: float,
                                   hi: float) -> bool:
    """By the planner's own analysis, a target is missed at some load in (lo, hi): its rate hi is past a
    failure (the non-monotone TPOT percentile of test_planner_skips_a_tpot_violation_window)."""
    from scipy.stats import poisson

    cap = running_cap(prof, wl, kv)
    for i in range(1, 400):
        load = aggregated_load(prof.iteration, prof.token_budget, wl, lo + (hi - lo) * i / 400, overhead)
        assert load is not None
        if (tpot_statistic_ms(load, wl.tpot.statistic) > wl.tpot.target_ms
                or ttft_statistic_s(load, wl.ttft.statistic) > wl.ttft.target_s
                or poisson.cdf(cap, load.running_mean) < 0.99):
            return True
    return False


KNOWN_PLANNER_SKIPS: list[int] = []
"""Cases of test_agrees_with_the_planner_on_random_cases where the planner's rate would lie past a load at which
its own analysis misses the TPOT target. Before the planner took the first failing load (it bisected as if every
statistic grew with the rate) these were case 76 (0.767 req/s against the verifier's 0.661) and case 247
(O = 1.08: 2.25 req/s against 6.0e-5); now none."""


def test_agrees_with_the_planner_on_random_cases() -> None:
    rng = random.Random(20260212)
    seen: Counter[str] = Counter()
    worst = 0.0
    past_a_failure = []
    for i in range(300):
        prof, wl, kv, overhead = _random_case(rng)
        mine = recompute_aggregated_detail(prof, wl, kv, overhead)
        rate, binding = aggregated_max_rate(prof.iteration, prof, wl, kv, overhead)
        assert (mine.capacity_rps > 0) == (rate > 0), (i, mine, rate, binding)
        seen.update([f"ttft {wl.ttft.statistic}", f"tpot {wl.tpot.statistic}", f"binding {binding}",
                     "distribution" if wl.input_length_distribution else "one length"])
        seen.update(["prefix cache"] * (wl.prefix_cache_hit_rate > 0) + ["arrival scv"] * (wl.arrival_scv != 1.0)
                    + ["no decode"] * (wl.output_tokens_mean <= 1.0) + ["zero"] * (rate == 0.0))
        if rate == 0.0:
            continue
        rel = abs(mine.capacity_rps - rate) / rate
        if rel > 1e-6:
            # a known departure of the planner's from docs/capacity.md, never silently: see the strict xfail below
            assert rate > mine.capacity_rps, (i, mine, rate, binding)
            assert _planner_misses_a_failing_load(prof, wl, kv, overhead, mine.capacity_rps, rate), (i, mine, rate)
            past_a_failure.append(i)
            continue
        worst = max(worst, rel)
        assert mine.binding == binding, (i, mine, rate, binding)
        res = aggregated_capacity(prof, wl, kv, overhead)
        assert isinstance(res, ShapeCapacity) and res.capacity_rps == rate
    assert worst < 1e-8
    assert past_a_failure == KNOWN_PLANNER_SKIPS
    every = {f"{kind} {s}" for kind in ("ttft", "tpot") for s in STATS} | {
        f"binding {b}" for b in ("ttft_target", "tpot_target", "kv_memory", "saturated")} | {
        "distribution", "one length", "prefix cache", "arrival scv", "no decode", "zero"}
    assert every <= set(seen), every - set(seen)


# ---------------------------------------------------------------------------------------------------------------
# Known disagreements: the planner departs from docs/capacity.md.
# ---------------------------------------------------------------------------------------------------------------

NON_MONOTONE = _profile({"overhead_ms": 10.0, "per_prefill_token_ms": 0.25, "prefill_quadratic_ms": 1e-5,
                         "per_decode_seq_ms": 0.2}, token_budget=256, max_batch=32)
NON_MONOTONE_WL = _workload(input_tokens_mean=6800.0, output_tokens_mean=2.5, ttft={"target_s": 17.0,
                            "statistic": "p99"}, tpot={"target_ms": 60.0, "statistic": "p95"})


def test_tpot_percentile_is_not_monotone_and_the_first_failure_counts() -> None:
    """p95 TPOT (gamma with the analysis' mean and variance) rises above 60 ms from 0.0231 req/s, peaks near
    64.6 ms at 0.041 req/s, and falls under 60 ms again from 0.0639 req/s, while the mean TPOT keeps rising:
    the variance grows like (1 - rho)^-3, the squared mean like (1 - rho)^-2, so the gamma's shape tends to 0 and
    its quantiles to 0 (0.04 ms at 0.28 req/s, where the mean is 25.7 ms). The capacity is the first failure."""
    kv, overhead = 1_000_000, 0.1
    out = recompute_aggregated_detail(NON_MONOTONE, NON_MONOTONE_WL, kv, overhead)
    assert out.binding == "tpot_target" and out.capacity_rps == pytest.approx(0.0230710, rel=1e-5)
    p95 = [tpot_statistic_ms(load, "p95") for load in (
        aggregated_load(NON_MONOTONE.iteration, 256, NON_MONOTONE_WL, r, overhead) for r in (0.04, 0.1, 0.28))
        if load is not None]
    assert p95[0] > 60.0 > p95[1] > p95[2]


def test_planner_takes_the_first_failing_load() -> None:
    """Bisecting as if every statistic grew with the rate landed at 0.281 req/s, past the window where the p95
    TPOT target fails; the planner now scans for the first failure and agrees on 0.0231."""
    kv, overhead = 1_000_000, 0.1
    mine, _ = recompute_aggregated(NON_MONOTONE, NON_MONOTONE_WL, kv, overhead)
    rate, _ = aggregated_max_rate(NON_MONOTONE.iteration, NON_MONOTONE, NON_MONOTONE_WL, kv, overhead)
    assert rate == pytest.approx(mine, rel=1e-6)


def test_kv_cap_uses_the_distribution_mean() -> None:
    """E[L] = 1000 (lengths 500 and 1500), input_tokens_mean 1009, O = 100, KV 22000 tokens: the cap is
    floor(22000 / 1100) = 20 running requests (by input_tokens_mean it would be floor(22000 / 1109) = 19)."""
    prof = _profile(HAND, kv_tokens=22000)
    wl = _workload(input_tokens_mean=1009.0, output_tokens_mean=100.0, ttft={"target_s": 100.0},
                   tpot={"target_ms": 1000.0},
                   input_length_distribution={"lengths": [500.0, 1500.0], "weights": [1.0, 1.0]})
    mine = recompute_aggregated_detail(prof, wl, 22000, 0.0)
    assert mine.binding == "kv_memory"
    rate, _ = aggregated_max_rate(prof.iteration, prof, wl, 22000, 0.0)
    assert rate == pytest.approx(mine.capacity_rps, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Wiring: recompute_shape, the overhead, the KV tokens, calibrated profiles.
# ---------------------------------------------------------------------------------------------------------------

def _instance(network: bool = False, **profile_extra: Any) -> Instance:
    doc: dict[str, Any] = {
        "name": "agg-verify",
        "gpu_types": {"g": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 2.0, "nic_gbps_per_gpu": 100.0}},
        "node_pools": {"p": {"gpu_type": "g", "gpus_per_node": 8, "node_count": 2}},
        "models": {"m": {"kv_bytes_per_token": 163840.0, "weights_gb": 16.0}},
        "workloads": {"m": {"demand": {"requests_per_s": 3.0}, "input_tokens_mean": 1000.0,
                            "output_tokens_mean": 101.0, "ttft": {"target_s": 0.3, "statistic": "p90"},
                            "tpot": {"target_ms": 60.0, "statistic": "p90"}, "ttft_overhead_s": 0.02}},
        "profiles": [{"model": "m", "role": "aggregated", "gpu_type": "g", "gpus_per_instance": 2,
                      "token_budget": 2048, "max_batch": 256, "iteration": HAND, **profile_extra}],
    }
    if network:
        doc["network"] = {"switches": ["s"], "links": [{"a": "default", "b": "s", "bandwidth_gbps": 100.0}],
                          "client_io_s": 0.05}
    return validate_instance(doc)


def test_kv_tokens_from_memory() -> None:
    """(80 GB x 2 GPUs x 0.9 - 16 GB) x 1e9 / 163840 bytes per token = 128e9 / 163840 = 781250 tokens."""
    inst = _instance()
    prof = inst.profiles[0]
    assert isinstance(prof, AggregatedProfile)
    assert kv_tokens_of(inst, prof) == 781250
    stated = _instance(kv_tokens=5000)
    assert isinstance(stated.profiles[0], AggregatedProfile)
    assert kv_tokens_of(stated, stated.profiles[0]) == 5000


@pytest.mark.parametrize("network", [False, True])
def test_recompute_shape_sizes_aggregated_shapes(network: bool) -> None:
    """The overhead is the workload's ttft_overhead_s (0.02 s), or client I/O alone (0.05 s) with a network."""
    inst = _instance(network)
    prof = inst.profiles[0]
    assert isinstance(prof, AggregatedProfile)
    shape = recompute_shape(inst, "m", "aggregated", "g", 2)
    assert shape is not None and shape.unusable is None
    overhead = 0.05 if network else 0.02
    assert shape.capacity_rps == recompute_aggregated(prof, inst.workloads["m"], 781250, overhead)[0]
    other = recompute_aggregated(prof, inst.workloads["m"], 781250, 0.07 - overhead)[0]
    assert shape.capacity_rps != other  # the overhead matters here (the p90 TTFT binds)
    planned = aggregated_capacity(prof, inst.workloads["m"], 781250, overhead)
    assert isinstance(planned, ShapeCapacity)
    assert shape.capacity_rps == pytest.approx(planned.capacity_rps, rel=1e-6)


def test_calibrated_aggregated_shapes_are_not_recomputed() -> None:
    inst = _instance(measured_runs=[{"request_rate_rps": 1.0, "ttft_mean_s": 0.2, "tpot_mean_ms": 30.0}])
    shape = recompute_shape(inst, "m", "aggregated", "g", 2)
    assert shape is not None and shape.capacity_rps == 0.0
    assert shape.unusable is not None and "calibrated" in shape.unusable

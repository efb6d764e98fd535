"""The capacity of an aggregated instance: the first rate at which the analysis of :mod:`pdopt.perf.aggregated`
misses a target or a cap, searched below the engine's saturation, and the shape's :class:`ShapeCapacity`."""

from __future__ import annotations

import math

from pdopt.instance import AggregatedProfile, IterationModel, Role, Workload
from pdopt.perf.aggregated import (
    aggregated_load,
    prompt_lengths,
    running_cap,
    tpot_statistic_ms,
    ttft_statistic_s,
    violations,
)
from pdopt.perf.shapes import ShapeCapacity, SkippedShape
from pdopt.perf.shapes import skip as _skip

SCAN_POINTS = 24
"""Rates scanned, evenly spaced below the engine's saturation, for the first at which a condition fails."""


def _engine_saturation_rps(it: IterationModel, workload: Workload) -> float:
    """The rate at which the per-request work alone fills the engine, 1 / (E[w] + n delta) (req/s): no condition
    can hold at or beyond it (the prompt queue or the budget may saturate earlier)."""
    h = workload.prefix_cache_hit_rate
    out = workload.output_tokens_mean
    lengths = prompt_lengths(workload)
    mean_l = sum(x * p for x, p in lengths)
    work = sum(p * (it.per_prefill_token_ms * (1 - h) * x + it.prefill_quadratic_ms * (1 - h * h) * x * x)
               for x, p in lengths)
    delta = it.per_decode_seq_ms + it.per_context_token_ms * (mean_l + out / 2.0)
    per_request = work + max(out - 1.0, 0.0) * delta
    return 1000.0 / per_request if per_request > 0 else math.inf


def aggregated_max_rate(it: IterationModel, profile: AggregatedProfile, workload: Workload, kv_tokens: int,
                        overhead_s: float) -> tuple[float, str]:
    """The largest rate (req/s) below which every condition holds, and what fails just above it; (0, reason)
    when even the lightest load fails.

    A statistic need not grow with the rate everywhere (a percentile of a mixture can fall back near
    saturation), so the answer is the FIRST rate at which a condition fails: :data:`SCAN_POINTS` rates evenly
    spaced below the engine's saturation rate (:func:`_engine_saturation_rps`; at and beyond it the engine is
    saturated), then bisection between the first failing one and the rate before, to a relative 1e-11. A
    failure confined to a window narrower than the scan's step could be missed. Results are kept for the
    process (``_CACHE``, first in first out beyond 4,096): a plan compared with its single-mode plans sizes each
    shape once."""
    key = (it.model_dump_json(), profile.model_dump_json(), workload.model_dump_json(), kv_tokens, overhead_s)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _max_rate(it, profile, workload, kv_tokens, overhead_s)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = hit
    return hit


_CACHE: dict[tuple[str, str, str, int, float], tuple[float, str]] = {}
_CACHE_SIZE = 4096


def _max_rate(it: IterationModel, profile: AggregatedProfile, workload: Workload, kv_tokens: int,
              overhead_s: float) -> tuple[float, str]:
    cap = running_cap(profile, workload, kv_tokens)
    if cap < 1:
        return 0.0, "kv_memory"

    def fails(rate: float) -> list[str]:
        return violations(aggregated_load(it, profile.token_budget, workload, rate, overhead_s), workload, cap)

    light = fails(1e-9)
    if light:
        return 0.0, light[0]
    sat = _engine_saturation_rps(it, workload)
    if not math.isfinite(sat):
        sat = 1.0
        while not fails(sat):
            sat *= 2.0
    lo, hi = 0.0, sat
    for i in range(1, SCAN_POINTS):
        rate = sat * i / SCAN_POINTS
        if fails(rate):
            hi = rate
            break
        lo = rate
    while hi - lo > 1e-11 * hi:
        mid = (lo + hi) / 2.0
        lo, hi = (lo, mid) if fails(mid) else (mid, hi)
    binding = fails(hi)
    return lo, binding[0] if binding else "saturated"


def aggregated_capacity(profile: AggregatedProfile, workload: Workload, kv_tokens: int, overhead_s: float,
                        iteration: IterationModel | None = None) -> ShapeCapacity | SkippedShape:
    """Capacity of one aggregated instance at both targets (module docstring), with the operating point in
    ``detail``. ``iteration`` replaces the profile's model (a calibrated one)."""
    args: tuple[str, Role, str, int] = (profile.model, "aggregated", profile.gpu_type, profile.gpus_per_instance)
    it = iteration or profile.iteration
    lam, binding = aggregated_max_rate(it, profile, workload, kv_tokens, overhead_s)
    if lam <= 0.0:
        why = {"ttft_target": f"TTFT target {workload.ttft.target_s:g} s ({workload.ttft.statistic}) is not met",
               "tpot_target": f"TPOT target {workload.tpot.target_ms:g} ms ({workload.tpot.statistic}) is not met",
               "kv_memory": f"the KV cache ({kv_tokens} tokens) or max_batch {profile.max_batch} holds no request",
               "saturated": "the engine saturates"}[binding]
        return _skip(profile, f"{why} even at the lightest load")
    load = aggregated_load(it, profile.token_budget, workload, lam, overhead_s)
    assert load is not None
    return ShapeCapacity(
        *args, capacity_rps=lam, throughput_tok_per_s=lam * workload.output_tokens_mean,
        formula="aggregated: largest lambda with the TTFT and TPOT statistics within target and the running "
                "requests within the batch/KV cap (mean-value analysis of chunked prefill, docs/capacity.md)",
        detail={"iteration_ms": load.iteration_ms, "mean_batch": load.mean_batch, "engine_load": load.engine_load,
                "prefill_load": load.prefill_load, "tpot_ms": tpot_statistic_ms(load, workload.tpot.statistic),
                "ttft_s": ttft_statistic_s(load, workload.ttft.statistic), "kv_tokens": float(kv_tokens),
                "running_mean": load.running_mean},
        variant=profile.variant, spans_nodes=profile.spans_nodes, binding=binding,
    )

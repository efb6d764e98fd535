"""Aggregated instances (prefill and decode in one engine, chunked prefill): the largest arrival rate one instance
serves while meeting the TTFT and the TPOT target at their statistics.

The engine (vLLM's and SGLang's default scheduler, as :mod:`pdopt.sim.aggregated` simulates it) runs iterations
back to back. Each carries every running decode request (one token each) and, within the token budget K in all,
chunks of the admitted prompts in arrival order; its time is the profile's iteration model
t = a + b P + c Q + d C + e B (:class:`pdopt.instance.IterationModel`, ms). A mean-value analysis gives the
load-dependent quantities in closed form; docs/capacity.md states the maths and the approximations.

Notation: lambda (req/ms inside, req/s at the interface), prompt lengths L (a distribution or one value), prefix
hit rate h (prefill computes (1 - h) L tokens), O output tokens, n = O - 1 decode iterations per request.

1. Work per request, beyond the fixed cost: prefill w_p(L) = b (1 - h) L + c (1 - h^2) L^2 (the quadratic term
   telescopes over the chunks), decode w_d = n (e + d (E[L] + O/2)) (its j-th decode iteration holds L + j
   context tokens). W = E[w_p] + w_d; the engine's load is rho = lambda W < 1.
2. The engine never idles under load, so 1 = (iterations per ms) a + lambda W, and the mean iteration time is
   tau = a / (1 - rho).
3. TPOT: a decoding request sees every iteration; the batch is about Poisson, so the iterations it sees are
   size-biased by one request's decode cost delta = e + d (E[L] + O/2): TPOT_mean = tau + delta. Its variance
   (shot noise, Campbell's theorem): each other request adds its prefill work if it arrives in the tagged
   request's decode window (n tau long) and delta per iteration of overlap, so
   Var(TPOT) = lambda n tau (E[w_p^2] + E[w_p] delta n + 2/3 delta^2 n^2) / n^2, amplified by 1 / (1 - rho)^2
   (extra work lengthens the window, which admits more work).
4. Decode batch B = lambda n TPOT_mean (Little); an iteration without prefill takes
   tau_d = a + e B + d B (E[L] + O/2) and leaves K - B tokens for prefill.
5. TTFT: prompts queue for prefill tokens as an M/G/1 (G/G/1 with the workload's arrival SCV) queue whose
   service of a prompt is S(L) = (1 - h) L / (K - B) tau_d + w_p(L) (its share of iterations plus its own work),
   utilisation rho_p = lambda E[S]; the mean wait W_q is Allen-Cunneen's (Pollaczek-Khinchine for Poisson). A
   prompt's own prefill spans ceil((1 - h) L / (K - B)) iterations: S_own(L) = ceil(.) tau_d + w_p(L); an
   arrival that finds no prompt in prefill first waits for the running iteration, tau_d / 2 on average.
   TTFT = (1 - rho_p) tau_d / 2 + W_q + E[S_own] + overhead; percentiles from a gamma with the same mean and
   variance (wait: an atom at 0 and an exponential tail, as in :mod:`pdopt.perf.queueing`).
6. Memory and batch: the requests running at once (decoding, or admitted and prefilling) are about
   Poisson(lambda (n TPOT_mean + E[S_own])); with probability 0.99 they stay within min(max_batch,
   KV tokens / (E[L] + O)) (a request reserves its whole context on admission).

The capacity is the rate at which a condition first fails (:func:`aggregated_max_rate`: a percentile of TPOT
is not monotone near saturation, so "the largest rate meeting every condition" would be wrong).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pdopt.instance import AggregatedProfile, Instance, IterationModel, Role, Statistic, Workload
from pdopt.perf.queueing import QUANTILES, gamma_quantile, mean_wait_ggc
from pdopt.perf.shapes import ShapeCapacity, SkippedShape
from pdopt.perf.shapes import skip as _skip

RUNNING_WITHIN_CAP = 0.99
"""Probability with which the requests running at once must stay within the batch and KV-memory cap."""


@dataclass(frozen=True)
class AggregatedLoad:
    """The mean-value analysis of one aggregated instance at one arrival rate (times in ms unless named _s)."""

    rate_rps: float
    engine_load: float
    """rho = lambda W: the share of time spent on per-request work (the rest is per-iteration overhead)."""
    iteration_ms: float
    """tau: mean iteration time."""
    decode_iteration_ms: float
    """tau_d: an iteration with the mean decode batch and no prefill."""
    mean_batch: float
    prefill_load: float
    """rho_p: utilisation of the prompt queue."""
    tpot_mean_ms: float
    tpot_var_ms2: float
    ttft_mean_s: float
    ttft_var_s2: float
    ttft_floor_s: float
    """The smallest TTFT a prompt can see at this load (its own prefill, alone)."""
    running_mean: float
    """Mean number of requests admitted (decoding or prefilling)."""


def _lengths(workload: Workload) -> list[tuple[float, float]]:
    """(length, probability) pairs of the workload's prompt lengths."""
    dist = workload.input_length_distribution
    if dist is None:
        return [(workload.input_tokens_mean, 1.0)]
    total = sum(dist.weights)
    return [(x, w / total) for x, w in zip(dist.lengths, dist.weights, strict=True)]


def kv_token_capacity(instance: Instance, profile: AggregatedProfile) -> int:
    """KV tokens one instance holds: stated on the profile, else (memory x GPUs x usable fraction - weights) / KV
    bytes per token."""
    if profile.kv_tokens is not None:
        return profile.kv_tokens
    m = instance.models[profile.model]
    free = (instance.gpu_types[profile.gpu_type].memory_gb * profile.gpus_per_instance
            * instance.options.kv_usable_fraction - m.weights_gb_value) * 1e9
    return max(0, int(free // m.kv_bytes_per_token_value))


def aggregated_load(it: IterationModel, token_budget: int, workload: Workload, rate_rps: float,
                    overhead_s: float) -> AggregatedLoad | None:
    """The analysis of the module docstring at ``rate_rps``; None when the engine or the prompt queue is
    saturated (rho >= 1, rho_p >= 1, or no budget left for prefill)."""
    lam = rate_rps / 1000.0
    h = workload.prefix_cache_hit_rate
    out = workload.output_tokens_mean
    n = max(out - 1.0, 0.0)
    lengths = _lengths(workload)
    mean_l = sum(x * p for x, p in lengths)
    wp = [(it.per_prefill_token_ms * (1 - h) * x + it.prefill_quadratic_ms * (1 - h * h) * x * x, p)
          for x, p in lengths]
    e_wp = sum(w * p for w, p in wp)
    e_wp2 = sum(w * w * p for w, p in wp)
    ctx = mean_l + out / 2.0
    delta = it.per_decode_seq_ms + it.per_context_token_ms * ctx
    rho = lam * (e_wp + n * delta)
    if rho >= 1.0:
        return None
    tau = it.overhead_ms / (1.0 - rho)
    tpot = tau + delta
    batch = lam * n * tpot
    room = token_budget - batch
    if room <= 0.0:
        return None
    tau_d = it.overhead_ms + delta * batch
    service = [((1 - h) * x / room * tau_d + w, p) for (x, p), (w, _) in zip(lengths, wp, strict=True)]
    own = [(math.ceil((1 - h) * x / room - 1e-9) * tau_d + w, p) for (x, p), (w, _) in
           zip(lengths, wp, strict=True)]
    e_s = sum(s * p for s, p in service)
    e_s2 = sum(s * s * p for s, p in service)
    rho_p = lam * e_s
    if rho_p >= 1.0 or e_s <= 0.0:
        return None
    cs2 = max(0.0, e_s2 / (e_s * e_s) - 1.0)
    w_q = mean_wait_ggc(lam, 1.0 / e_s, 1, workload.arrival_scv, cs2) if lam > 0 else 0.0
    var_w = 2.0 * w_q * w_q / rho_p - w_q * w_q if rho_p > 0.0 else 0.0
    e_own = sum(s * p for s, p in own)
    var_own = sum(s * s * p for s, p in own) - e_own * e_own
    residual = (1.0 - rho_p) * tau_d / 2.0
    ttft = residual + w_q + e_own
    ttft_var = var_w + max(var_own, 0.0) + (1.0 - rho_p) * tau_d * tau_d / 12.0
    if n > 0:
        window = n * tau
        shot = lam * window * (e_wp2 + e_wp * delta * n + 2.0 / 3.0 * delta * delta * n * n) / (n * n)
        tpot_var = shot / (1.0 - rho) ** 2
    else:
        tpot_var = 0.0
    floor = min(s for s, _ in own)
    return AggregatedLoad(
        rate_rps=rate_rps, engine_load=rho, iteration_ms=tau, decode_iteration_ms=tau_d, mean_batch=batch,
        prefill_load=rho_p, tpot_mean_ms=tpot, tpot_var_ms2=tpot_var,
        ttft_mean_s=ttft / 1000.0 + overhead_s, ttft_var_s2=ttft_var / 1e6, ttft_floor_s=floor / 1000.0 + overhead_s,
        running_mean=lam * (n * tpot + e_own),
    )


def ttft_statistic_s(load: AggregatedLoad, statistic: Statistic) -> float:
    """TTFT mean, or its percentile from a gamma with the analysis' mean and variance (never below the floor)."""
    if statistic == "mean":
        return load.ttft_mean_s
    return max(gamma_quantile(load.ttft_mean_s, load.ttft_var_s2, QUANTILES[statistic]), load.ttft_floor_s)


def tpot_statistic_ms(load: AggregatedLoad, statistic: Statistic) -> float:
    """TPOT mean, or its percentile from a gamma with the analysis' mean and variance."""
    if statistic == "mean":
        return load.tpot_mean_ms
    return gamma_quantile(load.tpot_mean_ms, load.tpot_var_ms2, QUANTILES[statistic])


def running_cap(profile: AggregatedProfile, workload: Workload, kv_tokens: int) -> int:
    """Most requests that may run at once: the batch cap, and the KV tokens over one request's mean context
    E[L] + O (E[L] over the length distribution when given)."""
    per_request = sum(x * p for x, p in _lengths(workload)) + workload.output_tokens_mean
    return min(profile.max_batch, int(kv_tokens // per_request))


def _violations(load: AggregatedLoad | None, workload: Workload, cap: int) -> list[str]:
    """Which conditions fail at this load: ``saturated``, ``ttft_target``, ``tpot_target``, ``kv_memory``."""
    from scipy import stats  # deferred: scipy loads only when a model needs it (docs/architecture.md)

    if load is None:
        return ["saturated"]
    out = []
    if ttft_statistic_s(load, workload.ttft.statistic) > workload.ttft.target_s:
        out.append("ttft_target")
    if workload.output_tokens_mean > 1.0 and tpot_statistic_ms(load, workload.tpot.statistic) > workload.tpot.target_ms:
        out.append("tpot_target")
    if float(stats.poisson.cdf(cap, load.running_mean)) < RUNNING_WITHIN_CAP:
        out.append("kv_memory")
    return out


SCAN_POINTS = 128
"""Loads scanned, evenly spaced up to saturation, for the first at which a condition fails."""


def aggregated_max_rate(it: IterationModel, profile: AggregatedProfile, workload: Workload, kv_tokens: int,
                        overhead_s: float) -> tuple[float, str]:
    """The largest rate (req/s) below which every condition holds, and what fails just above it; (0, reason)
    when even the lightest load fails.

    A percentile of TPOT is not monotone in the rate near saturation (its variance grows like (1 - rho)^-3, its
    mean squared like (1 - rho)^-2, so the gamma's quantile falls back), so the answer is the FIRST rate at which
    a condition fails: the saturation rate lambda_sat (the engine, the prompt queue or the token budget full) by
    bisection, then :data:`SCAN_POINTS` rates evenly spaced on (0, lambda_sat) for the first failure, then
    bisection between it and the rate before, to a relative 1e-13. (A failure confined to a window narrower than
    lambda_sat / 128 could be missed.)"""
    cap = running_cap(profile, workload, kv_tokens)
    if cap < 1:
        return 0.0, "kv_memory"

    def fails(rate: float) -> list[str]:
        return _violations(aggregated_load(it, profile.token_budget, workload, rate, overhead_s), workload, cap)

    light = fails(1e-9)
    if light:
        return 0.0, light[0]
    lo, hi = 0.0, 1.0
    while aggregated_load(it, profile.token_budget, workload, hi, overhead_s) is not None:
        lo, hi = hi, hi * 2.0
    while hi - lo > 1e-12 * hi:
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if aggregated_load(it, profile.token_budget, workload, mid, overhead_s) else (lo, mid)
    sat = hi
    lo, hi = 0.0, sat
    for i in range(1, SCAN_POINTS):
        rate = sat * i / SCAN_POINTS
        if fails(rate):
            hi = rate
            break
        lo = rate
    while hi - lo > 1e-13 * hi:
        mid = (lo + hi) / 2.0
        lo, hi = (lo, mid) if fails(mid) else (mid, hi)
    binding = fails(hi)
    return lo, binding[0] if binding else "saturated"


def aggregated_overhead_s(instance: Instance, workload: Workload) -> float:
    """Fixed time added to an aggregated instance's TTFT: client I/O only (no KV moves between instances) when
    the network states it, else the workload's ``ttft_overhead_s``."""
    net = instance.network
    if net is not None and net.client_io_s is not None:
        return net.client_io_s
    return workload.ttft_overhead_s


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

"""Decode (one instance): the TPOT(batch) curve is interpolated linearly between measured points (monotone, since
the points are), never beyond them. The planned batch B* is the largest batch whose TPOT meets the target
(``whole`` rule: an integer batch; ``fractional``: where the interpolated TPOT equals the target). Every running
request emits one token per step, so throughput is B*/TPOT(B*) tok/s and, by Little's law, the request rate is
B* / (TPOT(B*) x L_out) req/s.

Under load (docs/capacity.md, "Decode calibration under load"), a profile with measured TPOT in a running system
(``measured_tpot``), a stated ``load_correction`` or a network that says the KV arrival stalls decode has its curve
mapped to (b, f t + s b / L_out) first (:func:`decode_correction`, :func:`corrected_points`; the fit is
:mod:`pdopt.perf.decode_fit`); everything above then runs on the mapped points.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from pdopt.instance import DecodePoint, DecodeProfile, Instance, Role, Statistic, Workload
from pdopt.perf.decode_fit import DecodeCorrection, fit_decode_load
from pdopt.perf.queueing import QUANTILES
from pdopt.perf.shapes import ShapeCapacity, SkippedShape
from pdopt.perf.shapes import skip as _skip


def tpot_at_batch(points: list[DecodePoint], batch: float) -> float:
    """TPOT (ms) at ``batch`` by linear interpolation; ValueError outside the measured range."""
    if batch < points[0].batch or batch > points[-1].batch:
        raise ValueError(f"batch {batch} outside the measured range [{points[0].batch}, {points[-1].batch}]")
    for lo, hi in itertools.pairwise(points):
        if lo.batch <= batch <= hi.batch:
            return lo.tpot_ms + (batch - lo.batch) / (hi.batch - lo.batch) * (hi.tpot_ms - lo.tpot_ms)
    raise AssertionError("unreachable")  # pragma: no cover


def max_batch_within_tpot(points: list[DecodePoint], target_ms: float, rule: str) -> float | None:
    """Largest batch whose interpolated TPOT is at most ``target_ms``; None if even the smallest misses it.

    The curve is non-decreasing, so the feasible batches form an interval starting at the first measured
    batch. With ``whole`` the answer is an integer; with ``fractional`` it solves TPOT(B) = target on the
    segment that crosses the target. Beyond the largest measured batch nothing is assumed: B* is capped there.
    """
    if points[0].tpot_ms > target_ms:
        return None
    if points[-1].tpot_ms <= target_ms:
        return float(points[-1].batch)
    for lo, hi in itertools.pairwise(points):
        if hi.tpot_ms > target_ms >= lo.tpot_ms:
            if rule == "fractional":
                return lo.batch + (target_ms - lo.tpot_ms) / (hi.tpot_ms - lo.tpot_ms) * (hi.batch - lo.batch)
            best = lo.batch
            for b in range(lo.batch + 1, hi.batch):
                if tpot_at_batch(points, b) <= target_ms:
                    best = b
            return float(best)
    raise AssertionError("unreachable")  # pragma: no cover


def kv_batch_bound(instance: Instance, model: str, gpu_type: str, gpus: int,
                   context_tokens: float | None = None) -> int:
    """Largest batch whose KV cache fits: (memory x GPUs x usable fraction - weights) / (KV bytes x context).

    Context = mean input + mean output tokens (a request holds its whole context at the end of its decode): the
    workload's, or ``context_tokens`` (an estimate at other lengths).
    """
    m = instance.models[model]
    if context_tokens is None:
        w = instance.workloads[model]
        context_tokens = w.input_tokens_mean + w.output_tokens_mean
    free = (instance.gpu_types[gpu_type].memory_gb * gpus * instance.options.kv_usable_fraction
            - m.weights_gb_value) * 1e9
    return max(0, int(free // (m.kv_bytes_per_token_value * context_tokens)))


def batch_cap(instance: Instance, profile: DecodeProfile) -> tuple[int, str] | str:
    """A decode instance's batch cap, min(largest measured batch at the workload's input length, KV-cache bound),
    and which binds (``benchmark`` or ``kv_memory``); or why it has none (no curve at that length, or not one
    request's KV cache beside the weights). The simulator runs instances at it and the predictions beside a
    simulation queue for it."""
    curve = profile.points_for(instance.workloads[profile.model].input_tokens_mean)
    if isinstance(curve, str):
        return curve
    kv_bound = kv_batch_bound(instance, profile.model, profile.gpu_type, profile.gpus_per_instance)
    if kv_bound < 1:
        return (f"the KV cache of one request does not fit beside the weights at usable fraction "
                f"{instance.options.kv_usable_fraction}")
    bench = curve[-1].batch
    return (bench, "benchmark") if bench <= kv_bound else (kv_bound, "kv_memory")


def kv_receive_ms(instance: Instance, profile: DecodeProfile) -> float | None:
    """Time for one decode instance to receive a prompt's KV cache, ms: KV bytes per token x L_in x 8 bits over
    GPUs x ``nic_gbps_per_gpu`` x 1e9 bit/s (as the prefill side's transfer time); None without a network or
    without the decode GPU type's NIC bandwidth."""
    nic = instance.gpu_types[profile.gpu_type].nic_gbps_per_gpu
    if instance.network is None or nic is None:
        return None
    kv_bits = (instance.models[profile.model].kv_bytes_per_token_value
               * instance.workloads[profile.model].input_tokens_mean * 8.0)
    return kv_bits / (profile.gpus_per_instance * nic * 1e9) * 1000.0


def decode_correction(instance: Instance, profile: DecodeProfile) -> DecodeCorrection | str | None:
    """The correction under load of a decode profile: fitted to its ``measured_tpot`` (at the workload's input
    length and output length), stated by its ``load_correction``, or only the KV receive time when the network
    says ``kv_arrival_stalls_decode`` (which adds that time to s in every case); None without any such data (no
    correction is made up); a reason string when the fit fails (the shape is then unusable)."""
    workload = instance.workloads[profile.model]
    kv_ms = kv_receive_ms(instance, profile)
    net = instance.network
    held = kv_ms if kv_ms is not None and net is not None and net.kv_arrival_stalls_decode else 0.0
    if profile.load_correction is not None:
        lc = profile.load_correction
        return DecodeCorrection(lc.factor, lc.join_cost_ms + held, "stated", kv_receive_ms=kv_ms)
    if profile.measured_tpot:
        curve = profile.points_for(workload.input_tokens_mean)
        if isinstance(curve, str):
            return curve
        try:
            fit = fit_decode_load(profile.measured_tpot, [p.batch for p in curve], [p.tpot_ms for p in curve],
                                  workload.output_tokens_mean, kv_ms, held)
        except ValueError as exc:
            return f"cannot calibrate decode to measured_tpot: {exc}"
        return DecodeCorrection(fit.factor, fit.total_join_ms, fit.form, fit, kv_ms)
    if held > 0.0:
        return DecodeCorrection(1.0, held, "kv_arrival", kv_receive_ms=kv_ms)
    return None


def corrected_points(points: list[DecodePoint], correction: DecodeCorrection | None,
                     output_tokens: float) -> list[DecodePoint]:
    """The curve under load: each point (b, t) becomes (b, f t + s b / L_out). Exact between the points too: both
    terms are linear in b on a segment. f, s >= 0 keep the curve non-decreasing, and they are not both 0, so every
    TPOT stays positive (the points are built without re-validation for that reason)."""
    if correction is None:
        return points
    f, s = correction.factor, correction.join_cost_ms
    return [DecodePoint.model_construct(batch=p.batch, tpot_ms=f * p.tpot_ms + s * p.batch / output_tokens)
            for p in points]


def poisson_batch_tpot_ms(pts: list[DecodePoint], mean_others: float, cap: int, statistic: Statistic) -> float:
    """TPOT a request sees when the other running requests are Poisson(mean_others): TPOT(1 + N), N clamped so
    the batch stays within [first measured batch, cap]; mean, or the quantile for a percentile statistic."""
    from scipy import stats  # deferred: scipy loads only when a model needs it (docs/architecture.md)

    n_max = max(cap, 1)
    ks = np.arange(0, n_max)
    probs = stats.poisson.pmf(ks, mean_others)
    probs = np.append(probs, max(0.0, 1.0 - probs.sum()))  # the tail sits at the cap
    batches = np.clip(np.arange(1, n_max + 2), pts[0].batch, cap)
    tpots = np.interp(batches, [p.batch for p in pts], [p.tpot_ms for p in pts])
    if statistic == "mean":
        return float(np.dot(probs, tpots))
    cdf = np.cumsum(probs)
    return float(tpots[min(int(np.searchsorted(cdf, QUANTILES[statistic])), len(tpots) - 1)])


def decode_rate_under_load(pts: list[DecodePoint], workload: Workload, cap: int) -> tuple[float, float, float]:
    """Largest arrival rate (req/s) one decode instance takes with the TPOT statistic over the fluctuating batch
    within target, and the mean batch and TPOT there.

    Under Poisson arrivals the number of running requests is about Poisson (the number in service of an M/G/inf
    queue) with mean B = lambda L_out TPOT_mean (Little's law: each request runs L_out steps); a request sees
    itself plus Poisson(B) others. For a given B the TPOT statistic follows; the largest admissible B is found
    by bisection (TPOT is non-decreasing in B), and lambda = B / (L_out TPOT_mean(B)). The batch also stays below
    the cap with probability 99% (beyond it requests would wait, which this model does not count).
    """
    from scipy import stats  # deferred: scipy loads only when a model needs it (docs/architecture.md)

    target = workload.tpot.target_ms
    stat = workload.tpot.statistic

    def ok(b: float) -> bool:
        if poisson_batch_tpot_ms(pts, b, cap, stat) > target:
            return False
        return bool(stats.poisson.cdf(cap - 1, b) >= 0.99)

    if not ok(0.0):
        return 0.0, 0.0, poisson_batch_tpot_ms(pts, 0.0, cap, "mean")
    lo, hi = 0.0, float(cap)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    mean_tpot = poisson_batch_tpot_ms(pts, lo, cap, "mean")
    return lo / (workload.output_tokens_mean * mean_tpot / 1000.0), lo, mean_tpot


def decode_capacity(profile: DecodeProfile, workload: Workload, rule: str, kv_bound: int | None = None,
                    correction: DecodeCorrection | None = None) -> ShapeCapacity | SkippedShape:
    """Capacity of one decode instance at the TPOT target.

    ``paper`` decode model: B* = the largest batch meeting the target (and the KV-cache bound), capacity
    B* / (TPOT(B*) L_out) req/s; every request sees TPOT(B*), so all TPOT statistics coincide.
    ``under_load``: see :func:`decode_rate_under_load`. The detail says which limit binds: ``tpot_target``,
    ``kv_memory`` or ``benchmark_range`` (the largest measured batch; nothing is extrapolated). With a
    ``correction`` (:func:`decode_correction`) both run on the corrected curve, and the detail records it.
    """
    args: tuple[str, Role, str, int] = (profile.model, "decode", profile.gpu_type, profile.gpus_per_instance)
    curve = profile.points_for(workload.input_tokens_mean)
    if isinstance(curve, str):
        return _skip(profile, curve)
    pts = corrected_points(curve, correction, workload.output_tokens_mean)
    result = _capacity_on(pts, profile, workload, rule, kv_bound, args)
    if correction is not None and isinstance(result, ShapeCapacity):
        result.detail.update(correction.detail())
        return replace(result, formula=f"{result.formula}; curve under load: TPOT = f T(B) + s B / L_out, "
                                       f"f = {correction.factor:.4g}, s = {correction.join_cost_ms:.4g} ms "
                                       f"({correction.origin})")
    return result


def _capacity_on(pts: list[DecodePoint], profile: DecodeProfile, workload: Workload, rule: str,
                 kv_bound: int | None, args: tuple[str, Role, str, int]) -> ShapeCapacity | SkippedShape:
    """:func:`decode_capacity` on the curve ``pts`` (corrected or not)."""
    target = workload.tpot.target_ms
    bench_cap = pts[-1].batch
    cap = bench_cap if kv_bound is None else min(bench_cap, kv_bound)
    cap_bound = "benchmark_range" if kv_bound is None or bench_cap <= kv_bound else "kv_memory"
    if cap < 1:
        return _skip(profile, "the KV cache of one request does not fit beside the weights")
    if workload.decode_model == "under_load":
        lam, mean_b, mean_tpot = decode_rate_under_load(pts, workload, cap)
        if lam <= 0:
            return _skip(profile, f"TPOT target {target:g} ms ({workload.tpot.statistic}) is not met even at "
                                  f"the lightest load ({pts[0].tpot_ms:g} ms at batch {pts[0].batch})")
        binding = "tpot_target" if poisson_batch_tpot_ms(pts, mean_b * 1.001 + 1e-6, cap,
                                                           workload.tpot.statistic) > target else cap_bound
        return ShapeCapacity(
            *args, capacity_rps=lam, throughput_tok_per_s=lam * workload.output_tokens_mean,
            formula="under_load: batch ~ 1 + Poisson(B); largest B with the TPOT statistic within target and "
                    "P(batch <= cap) >= 0.99; lambda = B / (L_out TPOT_mean)",
            detail={"mean_batch": mean_b, "tpot_ms": mean_tpot, "batch_cap": float(cap)},
            variant=profile.variant, spans_nodes=profile.spans_nodes, binding=binding,
        )
    batch = max_batch_within_tpot(pts, target, rule)
    if batch is None:
        return _skip(profile, f"TPOT target {target:g} ms is below the TPOT at the smallest benchmarked "
                              f"batch ({pts[0].tpot_ms:g} ms at batch {pts[0].batch})")
    binding = "tpot_target"
    if batch > cap:
        batch, binding = float(cap), cap_bound
    elif batch >= bench_cap and pts[-1].tpot_ms < target:
        binding = "benchmark_range"
    if batch < pts[0].batch:
        return _skip(profile, f"the KV-cache bound allows a batch of {cap}, below the smallest benchmarked batch "
                              f"{pts[0].batch} (no extrapolation)")
    tpot = tpot_at_batch(pts, batch)
    tok_s = batch / (tpot / 1000.0)
    return ShapeCapacity(
        *args, capacity_rps=tok_s / workload.output_tokens_mean, throughput_tok_per_s=tok_s,
        formula=f"tpot_curve_{rule}: B* = max batch with TPOT(B) <= target; lambda = B*/(TPOT(B*) L_out)",
        detail={"batch": batch, "tpot_ms": tpot, "batch_cap": float(cap)},
        variant=profile.variant, spans_nodes=profile.spans_nodes, binding=binding,
    )

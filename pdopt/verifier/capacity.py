"""Per-instance capacities and demand, recomputed from the instance alone (never from :mod:`pdopt.perf.capacity`).

Demand in req/s of a model: ``requests_per_s``, or ``tokens_per_min / 60 / (L_in + L_out)``; the checks multiply
it by the plan's ``scale_demand`` and ``scale``.

A shape (model, role, gpu_type, gpus_per_instance, variant) serves nothing when the model has no workload or its
weights (``weights_gb``, or parameters x bytes per parameter) need at least the instance's memory (GPU memory x
GPUs). Otherwise, per instance:

- Prefill. A request of input length L computes (1 - h) L tokens (h the prefix-cache hit rate) at the benchmarked
  max throughput X((1 - h) L), interpolated linearly between measured lengths and never beyond them, so its
  service time is t = (1 - h) L / X((1 - h) L); over the input length distribution (or the mean alone)
  mu = 1 / E[t] and the service SCV is E[t^2] / E[t]^2 - 1 (a stated ``service_scv`` wins; a single length
  gives 1 for the G/G models). The overhead is the workload's ``ttft_overhead_s`` or, with
  ``network.client_io_s``, the client I/O plus the prompt's KV cache over the instance's NICs. The TTFT target T
  must exceed the unloaded TTFT E[t] + overhead; with the budget b = T - overhead, M/M/1 (``mm1``) gives
  lambda = mu - f / b, f = 1 for the mean and ln(1 / (1 - p)) for a p-percentile; ``gg1`` and ``ggc`` take the
  largest lambda whose G/G/1 sojourn statistic meets b (:func:`pdopt.perf.queueing.max_arrival_rate`). A ``gg1``
  profile with a measured TTFT sweep first replaces the service SCV and overhead by the fit of
  :func:`pdopt.perf.calibrate.fit_gg1` at the workload's mean input length (unusable when the benchmark does not
  reach that length or the sweep cannot be fitted). Pooled ``ggc`` capacity of a group of n instances is
  evaluated exactly for the plan's n by the shape checks (:mod:`pdopt.verifier.fleet`).
- Decode. The TPOT(batch) curve (at the workload's input length for 2-D tables) is interpolated linearly. The
  batch is capped by the largest measured batch and by the KV cache: floor((memory x GPUs x
  ``kv_usable_fraction`` - weights) x 1e9 / (KV bytes per token x (L_in + L_out))). The planned batch B* is the
  largest batch (a whole one under the ``whole`` rule, the crossing point under ``fractional``) whose TPOT meets
  the target, and Little's law gives B* / (TPOT(B*) / 1000 x L_out) req/s. Under ``decode_model: under_load``
  the other requests running are Poisson(m), a request's batch is 1 + N clamped to [first batch, cap], and the
  largest m whose TPOT statistic meets the target with P(N <= cap - 1) >= 0.99 gives m / (L_out x mean TPOT).
  Under load the curve is corrected first, TPOT(b) -> f TPOT(b) + s b / L_out (docs/capacity.md, "Decode
  calibration under load"): f and s stated (``load_correction``), or fitted to ``measured_tpot`` by
  :func:`pdopt.perf.decode_fit.fit_decode_load`; with ``network.kv_arrival_stalls_decode``, s gains the KV receive
  time KV bytes per token x L_in x 8 / (GPUs x ``nic_gbps_per_gpu`` x 1e9) s.
- Aggregated (prefill and decode in one engine): the mean-value analysis of chunked prefill of
  :mod:`pdopt.verifier.aggregated`, with the KV tokens of :func:`~pdopt.verifier.aggregated.kv_tokens_of` and the
  TTFT overhead ``network.client_io_s`` when set (no KV moves between instances), else ``ttft_overhead_s``. A
  profile with ``measured_runs`` is first calibrated by :func:`pdopt.perf.calibrate.fit_aggregated` (a, b and e
  fitted to the runs, c and d held), and the capacity is recomputed at the calibrated coefficients (unusable
  when the runs cannot be fitted).

The queueing and calibration formulas are the only shared code: pure functions checked on their own against
exact distributions and the simulator, not the planner's capacity table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdopt.instance import AggregatedProfile, DecodeProfile, Instance, IterationModel, PrefillProfile, Workload
from pdopt.perf import calibrate, decode_fit, queueing
from pdopt.verifier.aggregated import kv_tokens_of, recompute_aggregated

PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
"""Percentile statistics of an SLO as probabilities (the verifier's own table)."""

DEFAULT_VARIANT = "default"
"""The variant of a placement or profile that states none."""

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class RecomputedShape:
    """What the verifier derives for one shape: capacity of one instance in req/s, or why it serves nothing."""

    capacity_rps: float
    unusable: str | None = None


def demand_rps(instance: Instance, model: str, scale_demand: float = 1.0) -> float:
    """Requests per second to serve for ``model``: stated, or tokens per minute over (L_in + L_out), scaled."""
    wl = instance.workloads[model]
    if wl.demand.requests_per_s is not None:
        base = wl.demand.requests_per_s
    else:
        assert wl.demand.tokens_per_min is not None  # the data model guarantees exactly one is given
        base = wl.demand.tokens_per_min / 60.0 / (wl.input_tokens_mean + wl.output_tokens_mean)
    return base * scale_demand


def _weights_gb(instance: Instance, model: str) -> float:
    """Weight size in GB, stated or parameters x bytes per parameter (recomputed, not the model's property)."""
    m = instance.models[model]
    if m.weights_gb is not None:
        return m.weights_gb
    assert m.architecture is not None  # the data model requires one or the other
    return m.architecture.num_parameters_billion * m.architecture.bytes_per_parameter


def prefill_service(profile: PrefillProfile, wl: Workload) -> tuple[float, float] | str:
    """Mean and SCV of a request's prefill time: (1 - h) L / X((1 - h) L) over the input lengths (the stated
    distribution, or the mean), X interpolated between measured lengths and never beyond them; or why not."""
    xs = np.array([p.input_tokens for p in profile.max_throughput_by_input], dtype=float)
    ys = np.array([p.max_throughput_tok_per_s for p in profile.max_throughput_by_input], dtype=float)
    dist = wl.input_length_distribution
    lengths = np.array(dist.lengths if dist is not None else [wl.input_tokens_mean], dtype=float)
    weights = np.array(dist.weights if dist is not None else [1.0], dtype=float)
    eff = lengths * (1.0 - wl.prefix_cache_hit_rate)
    if eff.min() < xs[0] or eff.max() > xs[-1]:
        return f"input lengths {eff.min():g}-{eff.max():g} leave the benchmarked lengths [{xs[0]:g}, {xs[-1]:g}]"
    t = eff / np.interp(eff, xs, ys)
    p = weights / weights.sum()
    mean = float(np.dot(p, t))
    return mean, max(0.0, float(np.dot(p, t * t)) / mean ** 2 - 1.0)


def service_scv(wl: Workload, derived: float) -> float:
    """The service SCV of the G/G models: stated, else derived from the length distribution, else 1."""
    if wl.service_scv is not None:
        return float(wl.service_scv)
    return derived if wl.input_length_distribution is not None else 1.0


def prefill_overhead_s(instance: Instance, profile: PrefillProfile) -> float:
    """The TTFT overhead of one prefill instance: the workload's ``ttft_overhead_s``, or, when the network states
    ``client_io_s``, the client I/O plus the prompt's KV cache over the instance's NICs,
    client_io_s + KV bytes per token x L_in x 8 / (GPUs x ``nic_gbps_per_gpu`` x 1e9) s (the first hop bounds
    the transfer; the links further on are held to their bandwidth by ``link_bandwidth``)."""
    wl = instance.workloads[profile.model]
    net = instance.network
    if net is None or net.client_io_s is None:
        return wl.ttft_overhead_s
    nic = instance.gpu_types[profile.gpu_type].nic_gbps_per_gpu
    assert nic is not None  # the data model requires it when client_io_s is set
    kv_bits = instance.models[profile.model].kv_bytes_per_token_value * wl.input_tokens_mean * 8.0
    return net.client_io_s + kv_bits / (profile.gpus_per_instance * nic * 1e9)


def _prefill_rps(profile: PrefillProfile, instance: Instance) -> RecomputedShape:
    """M/M/1: lambda = 1/E[t] - f/(T - overhead) (E[t] = L_in / X for one length); G/G/1 through queueing."""
    wl = instance.workloads[profile.model]
    wl = wl.model_copy(update={"ttft_overhead_s": prefill_overhead_s(instance, profile)})
    service = prefill_service(profile, wl)
    if isinstance(service, str):
        return RecomputedShape(0.0, service)
    mean_t, derived = service
    mu = 1.0 / mean_t
    if wl.queue_model == "gg1" and profile.measured_ttft:
        lengths = [p.input_tokens for p in profile.max_throughput_by_input]
        if not lengths[0] <= wl.input_tokens_mean <= lengths[-1]:
            return RecomputedShape(0.0, f"the measured TTFT sweep needs the max throughput at the input length "
                                        f"{wl.input_tokens_mean:g}, outside the benchmarked [{lengths[0]:g}, "
                                        f"{lengths[-1]:g}]")
        x = float(np.interp(wl.input_tokens_mean, lengths,
                            [p.max_throughput_tok_per_s for p in profile.max_throughput_by_input]))
        try:
            fit = calibrate.fit_gg1([(p.request_rate_rps, p.ttft_mean_s) for p in profile.measured_ttft],
                                    wl.input_tokens_mean, x, wl.arrival_scv)
        except ValueError as exc:  # too few distinct rates, a rate at or above the service rate, ...
            return RecomputedShape(0.0, f"cannot calibrate to the measured TTFT sweep: {exc}")
        wl = wl.model_copy(update={"service_scv": fit.service_scv, "ttft_overhead_s": fit.overhead_s})
    target, overhead = wl.ttft.target_s, wl.ttft_overhead_s
    if target <= mean_t + overhead:
        return RecomputedShape(0.0, f"TTFT target {target:g} s is not above the unloaded TTFT "
                                    f"{mean_t + overhead:.4g} s")
    if wl.queue_model != "mm1":
        lam = queueing.max_arrival_rate(mu, 1, wl.arrival_scv, service_scv(wl, derived), target - overhead,
                                        wl.ttft.statistic)
        return RecomputedShape(lam, None if lam > 0 else f"{wl.ttft.statistic} TTFT exceeds {target:g} s at any load")
    factor = 1.0 if wl.ttft.statistic == "mean" else math.log(1.0 / (1.0 - PERCENTILES[wl.ttft.statistic]))
    lam = mu - factor / (target - overhead)
    if lam <= 0.0:
        return RecomputedShape(0.0, f"{wl.ttft.statistic} TTFT exceeds {target:g} s at any load under M/M/1")
    return RecomputedShape(lam)


def _decode_batch(batches: FloatArray, tpots: FloatArray, target_ms: float, rule: str) -> float | None:
    """B*: the largest batch (integer for ``whole``) whose interpolated TPOT meets the target, capped at the
    largest measured batch; None when even the smallest measured batch misses the target."""
    if tpots[0] > target_ms:
        return None
    if tpots[-1] <= target_ms:
        return float(batches[-1])
    i = int(np.argmax(tpots > target_ms))  # first measured point above the target; i >= 1 here
    lo_b, hi_b, lo_t, hi_t = batches[i - 1], batches[i], tpots[i - 1], tpots[i]
    if rule == "fractional":
        return float(lo_b + (target_ms - lo_t) / (hi_t - lo_t) * (hi_b - lo_b))
    candidates = np.arange(lo_b, hi_b, dtype=float)  # integers in [lo, hi); hi itself misses the target
    ok = candidates[np.interp(candidates, batches, tpots) <= target_ms]
    return float(ok.max()) if ok.size else float(lo_b)


def _kv_cap(profile: DecodeProfile, instance: Instance) -> int:
    """Batches whose KV cache (KV bytes per token x (L_in + L_out) per request) fits in the memory the engine may
    use (memory x GPUs x usable fraction) beside the weights."""
    wl = instance.workloads[profile.model]
    model = instance.models[profile.model]
    usable = instance.gpu_types[profile.gpu_type].memory_gb * profile.gpus_per_instance \
        * instance.options.kv_usable_fraction
    per_request = model.kv_bytes_per_token_value * (wl.input_tokens_mean + wl.output_tokens_mean)
    return int(max(0.0, (usable - model.weights_gb_value) * 1e9) // per_request)


def _under_load_rps(batches: FloatArray, tpots: FloatArray, cap: int, instance: Instance,
                    profile: DecodeProfile) -> float:
    """Decode under load, recomputed: others running ~ Poisson(m); a request's batch is 1 + N clamped to
    [first batch, cap]; find the largest m whose TPOT statistic meets the target with P(N <= cap - 1) >= 0.99,
    then lambda = m / (L_out x mean TPOT)."""
    wl = instance.workloads[profile.model]

    def dist(m: float) -> tuple[list[float], list[float]]:
        """P(N = n) for n < cap (the rest lumped at cap) and the TPOT a request sees with N others running."""
        pmf, p = [], math.exp(-m)
        for n in range(cap):
            pmf.append(p)
            p = p * m / (n + 1)
        pmf.append(max(0.0, 1.0 - sum(pmf)))
        t = [float(np.interp(min(max(n + 1, batches[0]), cap), batches, tpots)) for n in range(cap + 1)]
        return pmf, t

    def stat(m: float, which: str) -> float:
        """The mean or a percentile of the TPOT a request sees at mean load m."""
        pmf, t = dist(m)
        if which == "mean":
            return sum(a * b for a, b in zip(pmf, t, strict=True))
        acc = 0.0
        for a, b in zip(pmf, t, strict=True):
            acc += a
            if acc >= PERCENTILES[which]:
                return b
        return t[-1]

    def ok(m: float) -> bool:
        """Load m meets the TPOT target, and the batch stays within its cap with probability 0.99."""
        return stat(m, wl.tpot.statistic) <= wl.tpot.target_ms and sum(dist(m)[0][:cap]) >= 0.99

    if not ok(0.0):
        return 0.0
    lo, hi = 0.0, float(cap)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo / (wl.output_tokens_mean * stat(lo, "mean") / 1000.0)


def _under_load(profile: DecodeProfile, instance: Instance, batches: FloatArray,
                tpots: FloatArray) -> FloatArray | str:
    """The TPOT curve under load, f t + s b / L_out at every measured batch b (both terms linear in b, so the
    linear interpolation of the mapped points is the map of the interpolated curve); the curve itself without
    a stated or measured correction or a KV stall; a reason when the measured points cannot be fitted."""
    wl = instance.workloads[profile.model]
    nic = instance.gpu_types[profile.gpu_type].nic_gbps_per_gpu
    net = instance.network
    kv_ms = None if net is None or nic is None else (
        instance.models[profile.model].kv_bytes_per_token_value * wl.input_tokens_mean * 8.0
        / (profile.gpus_per_instance * nic * 1e9) * 1000.0)
    held = kv_ms if kv_ms is not None and net is not None and net.kv_arrival_stalls_decode else 0.0
    if profile.load_correction is not None:
        f, s = profile.load_correction.factor, profile.load_correction.join_cost_ms + held
    elif profile.measured_tpot:
        try:
            fit = decode_fit.fit_decode_load(profile.measured_tpot, [float(b) for b in batches],
                                             [float(t) for t in tpots], wl.output_tokens_mean, kv_ms, held)
        except ValueError as exc:
            return f"cannot calibrate decode to measured_tpot: {exc}"
        f, s = fit.factor, fit.join_cost_ms + held
    elif held > 0.0:
        f, s = 1.0, held
    else:
        return tpots
    return np.asarray(f * tpots + s * batches / wl.output_tokens_mean, dtype=float)


def _decode_rps(profile: DecodeProfile, instance: Instance) -> RecomputedShape:
    """Little's law at the planned batch: B* / (TPOT(B*) / 1000 x L_out) req/s, B* within the KV-cache bound;
    or the under-load model when the workload asks for it."""
    wl = instance.workloads[profile.model]
    curve = profile.points_for(wl.input_tokens_mean)
    if isinstance(curve, str):
        return RecomputedShape(0.0, curve)
    batches = np.array([p.batch for p in curve], dtype=float)
    loaded = _under_load(profile, instance, batches, np.array([p.tpot_ms for p in curve], dtype=float))
    if isinstance(loaded, str):
        return RecomputedShape(0.0, loaded)
    tpots = loaded
    cap = min(int(batches[-1]), _kv_cap(profile, instance))
    if cap < 1:
        return RecomputedShape(0.0, "the KV cache of one request does not fit beside the weights")
    if wl.decode_model == "under_load":
        rate = _under_load_rps(batches, tpots, cap, instance, profile)
        return RecomputedShape(rate, None if rate > 0 else "TPOT target missed at the lightest load")
    batch = _decode_batch(batches, tpots, wl.tpot.target_ms, instance.options.decode_batch_rule)
    if batch is None:
        return RecomputedShape(0.0, f"TPOT target {wl.tpot.target_ms:g} ms is below the TPOT "
                                    f"{tpots[0]:g} ms at the smallest benchmarked batch")
    batch = min(batch, float(cap))
    if batch < batches[0]:
        return RecomputedShape(0.0, "the KV-cache bound is below the smallest benchmarked batch")
    tpot = float(np.interp(batch, batches, tpots))
    return RecomputedShape(batch / (tpot / 1000.0 * wl.output_tokens_mean))


def aggregated_overhead_s(instance: Instance, profile: AggregatedProfile) -> float:
    """The TTFT overhead of one aggregated instance: client I/O only (no KV moves between instances),
    ``network.client_io_s`` when the network states it, else the workload's ``ttft_overhead_s``."""
    net = instance.network
    if net is not None and net.client_io_s is not None:
        return net.client_io_s
    return instance.workloads[profile.model].ttft_overhead_s


def _means_predictor(profile: AggregatedProfile, workload: Workload, overhead_s: float) -> calibrate.Predict:
    """The forward model the calibrated aggregated path fits with: (iteration, rate req/s) -> (mean TTFT s, mean
    TPOT ms), or None when saturated, by this verifier's own analysis
    (:func:`pdopt.verifier.aggregated.predict_means`) at the profile's token budget, ``workload`` and
    ``overhead_s``."""
    from pdopt.verifier.aggregated import predict_means

    def predict(iteration: IterationModel, rate_rps: float) -> tuple[float, float] | None:
        return predict_means(iteration, profile.token_budget, workload, rate_rps, overhead_s)
    return predict


def _aggregated_rps(profile: AggregatedProfile, instance: Instance) -> RecomputedShape:
    """The mean-value analysis of chunked prefill (:mod:`pdopt.verifier.aggregated`) at the profile's iteration
    model, or, with ``measured_runs``, at the coefficients :func:`pdopt.perf.calibrate.fit_aggregated` calibrates
    to them (the shared fit; the capacity is then this module's own)."""
    workload = instance.workloads[profile.model]
    kv_tokens = kv_tokens_of(instance, profile)
    overhead = aggregated_overhead_s(instance, profile)
    if profile.measured_runs:
        try:
            fit = calibrate.fit_aggregated(profile.measured_runs, profile, workload, overhead,
                                           _means_predictor(profile, workload, overhead))
        except ValueError as exc:
            return RecomputedShape(0.0, f"the calibrated aggregated shape (measured_runs) cannot be fitted: {exc}")
        profile = profile.model_copy(update={"iteration": fit.iteration})
    rate, why = recompute_aggregated(profile, workload, kv_tokens, overhead)
    return RecomputedShape(rate, why)


def find_profile(instance: Instance, model: str, role: str, gpu_type: str, gpus_per_instance: int,
                 variant: str) -> PrefillProfile | DecodeProfile | AggregatedProfile | None:
    """The profile with this full key (model, role, gpu_type, gpus_per_instance, variant), or None."""
    key = (model, role, gpu_type, gpus_per_instance, variant)
    return next((p for p in instance.profiles
                 if (p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant) == key), None)


def recompute_shape(instance: Instance, model: str, role: str, gpu_type: str, gpus_per_instance: int,
                    variant: str = DEFAULT_VARIANT) -> RecomputedShape | None:
    """Per-instance capacity of a shape, recomputed; None when the instance has no such profile."""
    prof = find_profile(instance, model, role, gpu_type, gpus_per_instance, variant)
    if prof is None:
        return None
    if model not in instance.workloads:
        return RecomputedShape(0.0, f"model '{model}' has no workload, so no SLO to size it at")
    need = _weights_gb(instance, model)
    have = instance.gpu_types[gpu_type].memory_gb * gpus_per_instance
    if need >= have:
        return RecomputedShape(0.0, f"weights {need:g} GB do not fit in {gpus_per_instance} x "
                                    f"{instance.gpu_types[gpu_type].memory_gb:g} GB")
    if isinstance(prof, PrefillProfile):
        return _prefill_rps(prof, instance)
    if isinstance(prof, AggregatedProfile):
        return _aggregated_rps(prof, instance)
    return _decode_rps(prof, instance)


def single_capacity(instance: Instance, model: str, role: str, gpu_type: str, gpus_per_instance: int,
                    variant: str) -> float:
    """One instance's recomputed capacity, 0 for an unknown or unusable shape (what the demand reserve, the flow
    and the domain-loss checks count per instance; pooled prefill is not credited there)."""
    shape = recompute_shape(instance, model, role, gpu_type, gpus_per_instance, variant)
    return shape.capacity_rps if shape is not None and shape.unusable is None else 0.0


def largest_usable_capacity(instance: Instance, model: str, role: str) -> float:
    """The largest per-instance capacity among the usable shapes of a model's role (0 when none is usable):
    what one lost instance can take away, so ``k`` spares hold ``k`` times it in reserve."""
    best = 0.0
    for p in instance.profiles:
        if p.model != model or p.role != role:
            continue
        shape = recompute_shape(instance, p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)
        if shape is not None and shape.unusable is None:
            best = max(best, shape.capacity_rps)
    return best


def pooled_capacity_rps(instance: Instance, profile: PrefillProfile, n: int) -> float | None:
    """Exact capacity of ``n`` pooled prefill instances of a ``ggc`` shape (one queue in front of all n):
    :func:`pdopt.perf.queueing.max_arrival_rate` with c = n, not the MILP's linearisation; None when its service time
    cannot be computed."""
    wl = instance.workloads[profile.model]
    service = prefill_service(profile, wl)
    if isinstance(service, str):
        return None
    budget = wl.ttft.target_s - prefill_overhead_s(instance, profile)
    return queueing.max_arrival_rate(1.0 / service[0], n, wl.arrival_scv, service_scv(wl, service[1]), budget,
                                     wl.ttft.statistic)

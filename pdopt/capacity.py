"""Per-instance capacities at the SLOs: the paper's M/M/1 prefill and TPOT-curve decode (Li et al. 2026).

Prefill (one instance, shape s): benchmarked max prefill throughput ``X`` tok/s at the workload's mean input
length ``L_in`` gives the service rate ``mu = X / L_in`` req/s (eq. 9). Requests arrive as a Poisson stream and
are served FCFS with exponential service: an M/M/1 queue, whose time in system ``W`` is exponential with rate
``mu - lambda``. TTFT = W + T_overhead. Hence, with the budget ``b = T - T_overhead``:

- mean TTFT <= T   <=>  1 / (mu - lambda) <= b         <=>  lambda <= mu - 1 / b             (eq. 12-13)
- p-quantile TTFT <= T  <=>  ln(1/(1-p)) / (mu - lambda) <= b  <=>  lambda <= mu - ln(1/(1-p)) / b

In tokens, the paper's eq. (13): TP_prefill = X - L_in / (T - T_overhead). A shape is usable only if the target
exceeds the unloaded TTFT ``L_in / X + T_overhead`` and the capacity at the target's statistic is positive.

Decode (one instance): the TPOT(batch) curve is interpolated linearly between measured points (monotone, since
the points are), never beyond them. The planned batch B* is the largest batch whose TPOT meets the target
(``whole`` rule: an integer batch; ``fractional``: where the interpolated TPOT equals the target). Every running
request emits one token per step, so throughput is B*/TPOT(B*) tok/s and, by Little's law, the request rate is
B* / (TPOT(B*) x L_out) req/s.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from pdopt.calibrate import fit_gg1
from pdopt.instance import (
    DecodePoint,
    DecodeProfile,
    Instance,
    PrefillPoint,
    PrefillProfile,
    Role,
    Statistic,
    Workload,
)
from pdopt.queueing import QUANTILES as QUANTILES  # re-exported: pdopt.capacity.QUANTILES stays importable
from pdopt.queueing import max_arrival_rate


def sojourn_factor(statistic: Statistic) -> float:
    """The multiple of the M/M/1 mean sojourn time 1/(mu - lambda) that equals the statistic.

    The M/M/1 FCFS sojourn time is exponential, so its mean is 1/(mu - lambda) (factor 1) and its
    p-quantile is ln(1/(1-p)) / (mu - lambda) (factor ln(1/(1-p)), e.g. 4.605 for p99).
    """
    if statistic == "mean":
        return 1.0
    return math.log(1.0 / (1.0 - QUANTILES[statistic]))


def mm1_max_arrival_rate(service_rate_rps: float, budget_s: float, statistic: Statistic) -> float:
    """Largest Poisson arrival rate an M/M/1 queue takes with its sojourn statistic within ``budget_s``.

    lambda_max = mu - f / b with f = :func:`sojourn_factor`. May be zero or negative: the caller decides.
    """
    if budget_s <= 0.0:
        return -math.inf
    return service_rate_rps - sojourn_factor(statistic) / budget_s


def interpolate_prefill_throughput(points: list[PrefillPoint], input_tokens: float) -> float | None:
    """Max prefill throughput at ``input_tokens``, linear between measured lengths; None outside them."""
    xs = [p.input_tokens for p in points]
    ys = [p.max_throughput_tok_per_s for p in points]
    if input_tokens < xs[0] or input_tokens > xs[-1]:
        return None
    for i in range(len(xs)):
        if input_tokens == xs[i]:
            return ys[i]
        if input_tokens < xs[i]:
            t = (input_tokens - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + t * (ys[i] - ys[i - 1])
    return None  # pragma: no cover - unreachable, xs[-1] >= input_tokens


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


@dataclass(frozen=True)
class ShapeCapacity:
    """What one instance of a shape serves for one model and role at the SLO, with how it was obtained."""

    model: str
    role: Role
    gpu_type: str
    gpus_per_instance: int
    capacity_rps: float
    """Max request rate one instance serves while meeting the SLO (0 when unusable)."""
    throughput_tok_per_s: float
    """The same in tokens of the role (input tokens for prefill, output tokens for decode)."""
    formula: str
    detail: dict[str, float] = field(default_factory=dict)
    variant: str = "default"
    spans_nodes: bool = False
    binding: str = "tpot_target"
    """What limits the capacity: ``ttft_target``, ``tpot_target``, ``kv_memory`` or ``benchmark_range``."""
    pooled_gains: tuple[float, ...] = ()
    """``ggc`` prefill: marginal capacity of the 1st, 2nd, ... pooled instance; the last repeats for every further
    instance. Empty when instances queue independently (capacity_rps each)."""

    def pooled_capacity_rps(self, count: int) -> float:
        """Capacity of ``count`` instances of this shape: pooled gains summed, else count x capacity_rps."""
        if not self.pooled_gains:
            return count * self.capacity_rps
        g = self.pooled_gains
        return sum(g[:count]) + max(0, count - len(g)) * g[-1]

    @property
    def shape_id(self) -> str:
        """``<model>__<role>__<gpu_type>__g<gpus>[__<variant>]``: legal in solver names."""
        base = f"{self.model}__{self.role}__{self.gpu_type}__g{self.gpus_per_instance}"
        return base if self.variant == "default" else f"{base}__{self.variant}"


@dataclass(frozen=True)
class SkippedShape:
    """A benchmarked shape that cannot meet the SLO, and why."""

    model: str
    role: Role
    gpu_type: str
    gpus_per_instance: int
    reason: str
    variant: str = "default"


def _skip(profile: PrefillProfile | DecodeProfile, reason: str) -> SkippedShape:
    return SkippedShape(profile.model, profile.role, profile.gpu_type, profile.gpus_per_instance, reason,
                        profile.variant)


def prefill_service(profile: PrefillProfile, workload: Workload) -> tuple[float, float] | str:
    """Mean and SCV of one request's prefill service time, or why it cannot be computed.

    A request of input length L computes (1 - h) L tokens (h the prefix-cache hit rate) at the benchmarked max
    throughput X((1 - h) L), interpolated linearly between measured lengths and never beyond them, so
    t(L) = (1 - h) L / X((1 - h) L). With one length (the mean), t is fixed (SCV 0 from the lengths); with an
    ``input_length_distribution``, E[t] and SCV = E[t^2]/E[t]^2 - 1 over it. The paper's mu = X / L_in is 1/E[t].
    """
    h = workload.prefix_cache_hit_rate
    dist = workload.input_length_distribution
    lengths, weights = (dist.lengths, dist.weights) if dist is not None else ([workload.input_tokens_mean], [1.0])
    pts = profile.max_throughput_by_input
    times = []
    for length in lengths:
        eff = (1.0 - h) * length
        x = interpolate_prefill_throughput(pts, eff)
        if x is None:
            what = "uncached input length" if h else "input length"
            return (f"{what} {eff:g} is outside the benchmarked range [{pts[0].input_tokens:g}, "
                    f"{pts[-1].input_tokens:g}] tokens (no extrapolation)")
        times.append(eff / x)
    total = sum(weights)
    mean_t = sum(w * t for w, t in zip(weights, times, strict=True)) / total
    second = sum(w * t * t for w, t in zip(weights, times, strict=True)) / total
    return mean_t, max(0.0, second / (mean_t * mean_t) - 1.0)


def service_scv(workload: Workload, derived: float) -> float:
    """The prefill service SCV a G/G model uses: stated, else derived from the length distribution, else 1."""
    if workload.service_scv is not None:
        return workload.service_scv
    return derived if workload.input_length_distribution is not None else 1.0


def pooled_gains(mu: float, budget: float, workload: Workload, epsilon: float, max_steps: int,
                 cs2: float) -> tuple[float, ...]:
    """Marginal capacity gains of a pooled queue: g_c = lambda_c - lambda_{c-1}, lambda_c the G/G/c capacity.

    Computed for c = 1, 2, ... until two successive gains agree within ``epsilon`` (relative) or ``max_steps``
    are reached; the last gain is then the gain of every further instance (the affine tail of the MILP's
    linearisation, formulations/f1.yaml). lambda_c / c grows with c (pooling), so the gains rise, then flatten.
    """
    ca2, stat = workload.arrival_scv, workload.ttft.statistic
    gains: list[float] = []
    prev = 0.0
    for c in range(1, max_steps + 1):
        lam = max_arrival_rate(mu, c, ca2, cs2, budget, stat)
        gains.append(lam - prev)
        prev = lam
        if len(gains) >= 2 and abs(gains[-1] - gains[-2]) <= epsilon * max(abs(gains[-1]), 1e-12):
            break
    return tuple(gains)


def prefill_capacity(profile: PrefillProfile, workload: Workload, epsilon: float = 1e-3,
                     max_steps: int = 32) -> ShapeCapacity | SkippedShape:
    """Capacity of one prefill instance at the workload's TTFT target and statistic.

    ``mm1`` (the paper): closed form above. ``gg1``: the largest rate whose G/G/1 sojourn statistic meets the
    budget (:func:`pdopt.queueing.max_arrival_rate`, Allen-Cunneen mean, two-moment gamma percentiles). ``ggc``:
    the same for c pooled instances; ``capacity_rps`` is then the c = 1 value and ``pooled_gains`` the marginal
    gains the MILP uses.
    """
    args: tuple[str, Role, str, int] = (profile.model, "prefill", profile.gpu_type, profile.gpus_per_instance)
    service = prefill_service(profile, workload)
    if isinstance(service, str):
        return _skip(profile, service)
    mean_t, derived_scv = service
    l_in = workload.input_tokens_mean * (1.0 - workload.prefix_cache_hit_rate)
    x = l_in / mean_t  # effective throughput: X(L) at one length; E[L]/E[L/X(L)] over a distribution
    mu = 1.0 / mean_t
    target, stat = workload.ttft.target_s, workload.ttft.statistic
    unloaded = mean_t + workload.ttft_overhead_s
    if target <= unloaded:
        return _skip(profile, f"TTFT target {target:g} s is not above the unloaded TTFT {unloaded:.4g} s "
                              f"(mean service {mean_t:.4g} s + overhead {workload.ttft_overhead_s:g} s)")
    budget = target - workload.ttft_overhead_s
    if workload.queue_model != "mm1":
        ca2, cs2 = workload.arrival_scv, service_scv(workload, derived_scv)
        lam = max_arrival_rate(mu, 1, ca2, cs2, budget, stat)
        gains = pooled_gains(mu, budget, workload, epsilon, max_steps, cs2) if workload.queue_model == "ggc" else ()
        if (gains[-1] if gains else lam) <= 0.0:
            return _skip(profile, f"under {workload.queue_model.upper()} (arrival SCV {ca2:g}, service SCV {cs2:g}) "
                                  f"the {stat} TTFT at any load exceeds {target:g} s")
        return ShapeCapacity(
            *args, capacity_rps=lam, throughput_tok_per_s=lam * l_in,
            formula=f"{workload.queue_model}_{stat}: largest lambda with the G/G/{'c' if gains else '1'} sojourn "
                    f"{stat} <= T - T_overhead (Allen-Cunneen mean, two-moment gamma percentiles; ca2 {ca2:g}, "
                    f"cs2 {cs2:g})",
            detail={"max_throughput_tok_per_s": x, "service_rate_rps": mu, "ttft_budget_s": budget,
                    "unloaded_ttft_s": unloaded, "utilisation_at_capacity": lam / mu},
            variant=profile.variant, spans_nodes=profile.spans_nodes, binding="ttft_target", pooled_gains=gains,
        )
    lam = mm1_max_arrival_rate(mu, budget, stat)
    if lam <= 0.0:
        return _skip(profile, f"under M/M/1 the {stat} TTFT at any load exceeds {target:g} s: "
                                   f"{sojourn_factor(stat):.4g} / (T - overhead) = "
                                   f"{sojourn_factor(stat) / budget:.4g} req/s >= mu = {mu:.4g} req/s")
    return ShapeCapacity(
        *args, capacity_rps=lam, throughput_tok_per_s=lam * l_in,
        formula=f"mm1_{stat}: lambda = X/L_in - {sojourn_factor(stat):.6g}/(T - T_overhead)",
        detail={"max_throughput_tok_per_s": x, "service_rate_rps": mu, "ttft_budget_s": budget,
                "unloaded_ttft_s": unloaded, "utilisation_at_capacity": lam / mu},
        variant=profile.variant, spans_nodes=profile.spans_nodes, binding="ttft_target",
    )


def kv_batch_bound(instance: Instance, model: str, gpu_type: str, gpus: int) -> int:
    """Largest batch whose KV cache fits: (memory x GPUs x usable fraction - weights) / (KV bytes x context).

    Context = mean input + mean output tokens (a request holds its whole context at the end of its decode).
    """
    m = instance.models[model]
    w = instance.workloads[model]
    free = (instance.gpu_types[gpu_type].memory_gb * gpus * instance.options.kv_usable_fraction
            - m.weights_gb_value) * 1e9
    return max(0, int(free // (m.kv_bytes_per_token_value * (w.input_tokens_mean + w.output_tokens_mean))))


def _poisson_batch_tpot_ms(pts: list[DecodePoint], mean_others: float, cap: int, statistic: Statistic) -> float:
    """TPOT a request sees when the other running requests are Poisson(mean_others): TPOT(1 + N), N clamped so
    the batch stays within [first measured batch, cap]; mean, or the quantile for a percentile statistic."""
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
    target = workload.tpot.target_ms
    stat = workload.tpot.statistic

    def ok(b: float) -> bool:
        if _poisson_batch_tpot_ms(pts, b, cap, stat) > target:
            return False
        return bool(stats.poisson.cdf(cap - 1, b) >= 0.99)

    if not ok(0.0):
        return 0.0, 0.0, _poisson_batch_tpot_ms(pts, 0.0, cap, "mean")
    lo, hi = 0.0, float(cap)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    mean_tpot = _poisson_batch_tpot_ms(pts, lo, cap, "mean")
    return lo / (workload.output_tokens_mean * mean_tpot / 1000.0), lo, mean_tpot


def decode_capacity(profile: DecodeProfile, workload: Workload, rule: str,
                    kv_bound: int | None = None) -> ShapeCapacity | SkippedShape:
    """Capacity of one decode instance at the TPOT target.

    ``paper`` decode model: B* = the largest batch meeting the target (and the KV-cache bound), capacity
    B* / (TPOT(B*) L_out) req/s; every request sees TPOT(B*), so all TPOT statistics coincide.
    ``under_load``: see :func:`decode_rate_under_load`. The detail says which limit binds: ``tpot_target``,
    ``kv_memory`` or ``benchmark_range`` (the largest measured batch; nothing is extrapolated).
    """
    args: tuple[str, Role, str, int] = (profile.model, "decode", profile.gpu_type, profile.gpus_per_instance)
    target = workload.tpot.target_ms
    curve = profile.points_for(workload.input_tokens_mean)
    if isinstance(curve, str):
        return _skip(profile, curve)
    pts = curve
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
        binding = "tpot_target" if _poisson_batch_tpot_ms(pts, mean_b * 1.001 + 1e-6, cap,
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


def weights_fit(instance: Instance, model: str, gpu_type: str, gpus: int) -> str | None:
    """None when the model's weights fit in the instance's GPU memory, else the reason they do not."""
    need = instance.models[model].weights_gb_value
    have = instance.gpu_types[gpu_type].memory_gb * gpus
    if need >= have:
        return f"weights {need:g} GB do not fit in {gpus} x {instance.gpu_types[gpu_type].memory_gb:g} GB"
    return None


@dataclass(frozen=True)
class CapacityTable:
    """Every usable shape per (model, role) with its capacity, and every skipped shape with its reason."""

    shapes: tuple[ShapeCapacity, ...]
    skipped: tuple[SkippedShape, ...]

    def for_role(self, model: str, role: str) -> list[ShapeCapacity]:
        """Usable shapes of one model and role."""
        return [s for s in self.shapes if s.model == model and s.role == role]


def transfer_overhead_s(instance: Instance, model: str, gpu_type: str, gpus: int) -> float | None:
    """TTFT overhead of a prefill shape when the network states it: client I/O + the prompt's KV bytes over the
    instance's NIC bandwidth (GPUs x nic_gbps_per_gpu), the first hop being the bottleneck of the transfer; links
    further on are held to their bandwidth by the MILP's flow constraints. None: use ``ttft_overhead_s``."""
    net = instance.network
    if net is None or net.client_io_s is None:
        return None
    nic = instance.gpu_types[gpu_type].nic_gbps_per_gpu
    assert nic is not None  # checked when the instance is read
    kv_bits = instance.models[model].kv_bytes_per_token_value * instance.workloads[model].input_tokens_mean * 8.0
    return net.client_io_s + kv_bits / (gpus * nic * 1e9)


def calibrated_fields(profile: PrefillProfile, workload: Workload) -> dict[str, object] | str:
    """With ``queue_model: gg1`` and a measured TTFT sweep on the profile: the fitted service SCV and TTFT
    overhead (pdopt/calibrate.py, max throughput from the profile at the workload's length); {} otherwise; a
    reason string when the fit fails."""
    if workload.queue_model != "gg1" or not profile.measured_ttft:
        return {}
    x = interpolate_prefill_throughput(profile.max_throughput_by_input, workload.input_tokens_mean)
    if x is None:
        return "the measured TTFT sweep needs the max throughput at the workload's input length"
    try:
        fit = fit_gg1([(p.request_rate_rps, p.ttft_mean_s) for p in profile.measured_ttft],
                      workload.input_tokens_mean, x, workload.arrival_scv)
    except ValueError as exc:
        return f"cannot calibrate to the measured TTFT sweep: {exc}"
    return {"service_scv": fit.service_scv, "ttft_overhead_s": fit.overhead_s}


def capacity_table(instance: Instance) -> CapacityTable:
    """Capacities of every benchmarked shape of every model that has a workload."""
    usable: list[ShapeCapacity] = []
    skipped: list[SkippedShape] = []
    for prof in instance.profiles:
        if prof.model not in instance.workloads:
            continue
        workload = instance.workloads[prof.model]
        misfit = weights_fit(instance, prof.model, prof.gpu_type, prof.gpus_per_instance)
        result: ShapeCapacity | SkippedShape
        if misfit is not None:
            result = _skip(prof, misfit)
        elif isinstance(prof, PrefillProfile):
            transfer = transfer_overhead_s(instance, prof.model, prof.gpu_type, prof.gpus_per_instance)
            if transfer is not None:
                workload = workload.model_copy(update={"ttft_overhead_s": transfer})
            fitted = calibrated_fields(prof, workload)
            if isinstance(fitted, str):
                skipped.append(_skip(prof, fitted))
                continue
            workload = workload.model_copy(update=fitted)
            result = prefill_capacity(prof, workload, instance.options.pooled_gain_epsilon,
                                      instance.options.pooled_max_steps)
            if transfer is not None and isinstance(result, ShapeCapacity):
                result.detail["transfer_s"] = transfer
        else:
            result = decode_capacity(prof, workload, instance.options.decode_batch_rule,
                                     kv_batch_bound(instance, prof.model, prof.gpu_type, prof.gpus_per_instance))
        if isinstance(result, ShapeCapacity):
            usable.append(result)
        else:
            skipped.append(result)
    return CapacityTable(tuple(usable), tuple(skipped))


@dataclass(frozen=True)
class PaperPlan:
    """The paper's closed-form P/D sizing for one shape pair (eqs. 1, 5, 6, 7), unrounded."""

    total_throughput_tok_per_s: float
    request_rate_rps: float
    prefill_throughput_tok_per_s: float
    decode_throughput_tok_per_s: float
    n_prefill: float
    n_decode: float
    pd_ratio: float


def paper_closed_form(
    total_throughput_tok_per_s: float,
    input_tokens: float,
    output_tokens: float,
    prefill_throughput_tok_per_s: float,
    decode_throughput_tok_per_s: float,
) -> PaperPlan:
    """Token-flow balance of the paper.

    (1) N_req = TP_total / (L_in + L_out); (5) N_P = TP_total L_in / ((L_in + L_out) TP_P);
    (6) N_D = TP_total L_out / ((L_in + L_out) TP_D); (7) R_P/D = N_P / N_D = L_in TP_D / (L_out TP_P).
    """
    total_len = input_tokens + output_tokens
    n_p = total_throughput_tok_per_s * input_tokens / (total_len * prefill_throughput_tok_per_s)
    n_d = total_throughput_tok_per_s * output_tokens / (total_len * decode_throughput_tok_per_s)
    return PaperPlan(
        total_throughput_tok_per_s=total_throughput_tok_per_s,
        request_rate_rps=total_throughput_tok_per_s / total_len,
        prefill_throughput_tok_per_s=prefill_throughput_tok_per_s,
        decode_throughput_tok_per_s=decode_throughput_tok_per_s,
        n_prefill=n_p,
        n_decode=n_d,
        pd_ratio=input_tokens * decode_throughput_tok_per_s / (output_tokens * prefill_throughput_tok_per_s),
    )


def closed_form_for_model(instance: Instance, model: str, prefill: ShapeCapacity | None = None,
                          decode: ShapeCapacity | None = None, scale_demand: float = 1.0) -> PaperPlan:
    """The paper's unrounded P/D counts for one model and one prefill and one decode shape.

    Without explicit shapes the model must have exactly one usable shape per role (the paper's setting).
    """
    table = capacity_table(instance)
    chosen: dict[str, ShapeCapacity] = {}
    for role, given in (("prefill", prefill), ("decode", decode)):
        if given is not None:
            chosen[role] = given
            continue
        shapes = table.for_role(model, role)
        if len(shapes) != 1:
            raise ValueError(f"model '{model}' has {len(shapes)} usable {role} shapes; pass the one to use")
        chosen[role] = shapes[0]
    w = instance.workloads[model]
    total = w.demand_rps() * scale_demand * (w.input_tokens_mean + w.output_tokens_mean)
    return paper_closed_form(total, w.input_tokens_mean, w.output_tokens_mean,
                             chosen["prefill"].throughput_tok_per_s, chosen["decode"].throughput_tok_per_s)

"""Per-instance capacities at the SLOs: the paper's M/M/1 prefill and TPOT-curve decode (Li et al. 2026).

Prefill (one instance, shape s): benchmarked max prefill throughput ``X`` tok/s at the workload's mean input
length ``L_in`` gives the service rate ``mu = X / L_in`` req/s (eq. 9). Requests arrive as a Poisson stream and
are served FCFS with exponential service: an M/M/1 queue, whose time in system ``W`` is exponential with rate
``mu - lambda``. TTFT = W + T_overhead. Hence, with the budget ``b = T - T_overhead``:

- mean TTFT <= T   <=>  1 / (mu - lambda) <= b         <=>  lambda <= mu - 1 / b             (eq. 12-13)
- p-quantile TTFT <= T  <=>  ln(1/(1-p)) / (mu - lambda) <= b  <=>  lambda <= mu - ln(1/(1-p)) / b

In tokens, the paper's eq. (13): TP_prefill = X - L_in / (T - T_overhead). A shape is usable only if the target
exceeds the unloaded TTFT ``L_in / X + T_overhead`` and the capacity at the target's statistic is positive.
"""

from __future__ import annotations

import math

from pdopt.instance import Instance, PrefillPoint, PrefillProfile, Role, Statistic, Workload
from pdopt.perf.calibrate import fit_gg1
from pdopt.perf.queueing import QUANTILES, max_arrival_rate
from pdopt.perf.shapes import ShapeCapacity, SkippedShape
from pdopt.perf.shapes import skip as _skip


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
    budget (:func:`pdopt.perf.queueing.max_arrival_rate`, Allen-Cunneen mean, two-moment gamma percentiles). ``ggc``:
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
    overhead (pdopt/perf/calibrate.py, max throughput from the profile at the workload's length); {} otherwise; a
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


def shape_workload(instance: Instance, profile: PrefillProfile) -> Workload | str:
    """The workload as the capacity model sees it for one prefill shape, or why it cannot be sized.

    Two things differ per shape from the instance's workload: the TTFT overhead, which is the shape's transfer time
    when the network states it (:func:`transfer_overhead_s`), and, with ``queue_model: gg1`` and a measured TTFT
    sweep, the service SCV and overhead fitted to the sweep (:func:`calibrated_fields`). The planner, the
    simulator's defaults and the predictions set beside a simulation all read the shape through this one function,
    so they rest on the same assumptions.
    """
    workload = instance.workloads[profile.model]
    transfer = transfer_overhead_s(instance, profile.model, profile.gpu_type, profile.gpus_per_instance)
    if transfer is not None:
        workload = workload.model_copy(update={"ttft_overhead_s": transfer})
    fitted = calibrated_fields(profile, workload)
    if isinstance(fitted, str):
        return fitted
    return workload.model_copy(update=fitted) if fitted else workload

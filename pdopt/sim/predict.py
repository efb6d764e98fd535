"""What the planner's capacity model predicts for a plan at its load, to set beside the simulated metrics.

Arrivals to a model are split over its instances in proportion to their planned capacity (Poisson splitting).
Prefill instance i with service rate mu_i = X_i / L_in and arrival rate lambda_i is an M/M/1 queue: its sojourn
time is exponential with rate mu_i - lambda_i, so TTFT is overhead + a mixture of exponentials with weights
lambda_i / lambda. Decode instance i runs the batch B_i solving B / TPOT(B) = lambda_i L_out (Little's law with
the constant-batch model), and every request it serves sees TPOT(B_i).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pdopt.instance import AggregatedProfile, DecodeProfile, Instance, PrefillProfile, Workload
from pdopt.perf.capacity import (
    QUANTILES,
    corrected_points,
    decode_correction,
    prefill_service,
    service_scv,
    tpot_at_batch,
)
from pdopt.plan import Placement, Plan
from pdopt.sim.modes import aggregated_share


def _mixture_quantile(weights: list[float], rates: list[float], p: float) -> float:
    """t with sum_i w_i (1 - exp(-r_i t)) = p."""
    from scipy.optimize import brentq  # deferred: scipy loads only when predictions are made

    def f(t: float) -> float:
        return sum(w * (1.0 - math.exp(-r * t)) for w, r in zip(weights, rates, strict=True)) - p
    hi = 1.0 / min(rates)
    while f(hi) < 0:
        hi *= 2.0
    return float(brentq(f, 0.0, hi, xtol=1e-12))


def _decode_tpot_ms(profile: DecodeProfile, input_tokens: float, tokens_per_s: float,
                    instance: Instance) -> float | None:
    """TPOT of a decode instance emitting ``tokens_per_s``: the batch B with B / TPOT(B) = that rate, on the curve
    corrected under load (:func:`pdopt.perf.capacity.decode_correction`); None beyond the curve, or when the
    correction cannot be fitted."""
    from scipy.optimize import brentq  # deferred: scipy loads only when predictions are made

    curve = profile.points_for(input_tokens)
    correction = decode_correction(instance, profile)
    if isinstance(curve, str) or isinstance(correction, str):
        return None
    pts = corrected_points(curve, correction, instance.workloads[profile.model].output_tokens_mean)
    lo, hi = float(pts[0].batch), float(pts[-1].batch)

    def rate(b: float) -> float:
        return b / (tpot_at_batch(pts, b) / 1000.0)

    if tokens_per_s > rate(hi):
        return None
    if tokens_per_s <= rate(lo):
        return pts[0].tpot_ms
    b = brentq(lambda x: rate(x) - tokens_per_s, lo, hi, xtol=1e-9)
    return tpot_at_batch(pts, b)


def _general_prefill(w: Workload, lam: float, pre: list[tuple[Placement, float]],
                     mus: list[float], derived_scv: float) -> dict[str, float] | None:
    """G/G/1 per instance (capacity-weighted split; the percentile of the worst-loaded instance, a bound), or,
    for ``ggc`` with one shape, one G/G/c queue over all instances."""
    from pdopt.perf.queueing import sojourn_statistic

    if not mus:
        return None
    if w.queue_model == "ggc" and len({round(m, 12) for m in mus}) == 1:
        c = len(mus)
        cs2 = service_scv(w, derived_scv)
        out = {k: w.ttft_overhead_s + sojourn_statistic(lam, mus[0], c, w.arrival_scv, cs2, k)
               for k in ("mean", *QUANTILES)}
        return None if any(math.isinf(v) for v in out.values()) else out
    total = sum(cap for _, cap in pre)
    shares = [cap / total for _, cap in pre]
    cs2 = service_scv(w, derived_scv)
    per = [{k: sojourn_statistic(lam * sh, mu, 1, w.arrival_scv, cs2, k) for k in ("mean", *QUANTILES)}
           for sh, mu in zip(shares, mus, strict=True)]
    if any(math.isinf(v) for d in per for v in d.values()):
        return None
    out = {"mean": w.ttft_overhead_s + sum(sh * d["mean"] for sh, d in zip(shares, per, strict=True))}
    for k in QUANTILES:
        out[k] = w.ttft_overhead_s + max(d[k] for d in per)
    return out


def predicted_metrics(instance: Instance, plan: Plan) -> dict[str, dict[str, Any]]:
    """Per model: predicted ``ttft_s`` and ``tpot_ms`` statistics (None where an instance would be overloaded)."""
    out: dict[str, dict[str, Any]] = {}
    served = plan.served_demand_rps(instance)
    for m, w in instance.workloads.items():
        share = aggregated_share(plan, m)
        agg = _aggregated_prediction(instance, plan, m, served[m] * share) if share > 0 else None
        if share >= 1.0:
            out[m] = agg or {}
            continue
        lam = served[m] * (1.0 - share)
        pl = [p for p in plan.placements if p.model == m]
        prefill_model = {"mm1": "M/M/1 prefill with capacity-weighted Poisson splitting",
                         "gg1": "G/G/1 prefill per instance (Allen-Cunneen; gamma percentiles)",
                         "ggc": "one pooled G/G/c prefill queue"}[w.queue_model]
        result: dict[str, Any] = {"model": f"{prefill_model}; constant-batch decode at Little's-law batch"}
        pre = [(p, p.capacity_rps) for p in pl if p.role == "prefill" for _ in range(p.count)]
        total = sum(c for _, c in pre)
        weights, rates = [], []
        for p, c in pre:
            prof = instance.profile(m, "prefill", p.gpu_type, p.gpus_per_instance, p.variant)
            assert isinstance(prof, PrefillProfile)
            service = prefill_service(prof, w)
            lam_i = lam * c / total
            mu = 1.0 / service[0] if not isinstance(service, str) else 0.0
            weights.append(c / total)
            rates.append(mu - lam_i)
        if w.queue_model != "mm1":
            derived = 0.0
            if pre:
                first = instance.profile(m, "prefill", pre[0][0].gpu_type, pre[0][0].gpus_per_instance,
                                         pre[0][0].variant)
                assert isinstance(first, PrefillProfile)
                svc = prefill_service(first, w)
                derived = svc[1] if not isinstance(svc, str) else 0.0
            mus = [r + lam * wt for r, wt in zip(rates, weights, strict=True)]
            result["ttft_s"] = _general_prefill(w, lam, pre, mus, derived)
        elif rates and min(rates) > 0:
            ttft = {"mean": w.ttft_overhead_s + sum(a / r for a, r in zip(weights, rates, strict=True))}
            for key, q in QUANTILES.items():
                ttft[key] = w.ttft_overhead_s + _mixture_quantile(weights, rates, q)
            result["ttft_s"] = ttft
        else:
            result["ttft_s"] = None
        dec = [(p, p.capacity_rps) for p in pl if p.role == "decode" for _ in range(p.count)]
        total = sum(c for _, c in dec)
        tp: list[float] = []
        for p, c in dec:
            prof = instance.profile(m, "decode", p.gpu_type, p.gpus_per_instance, p.variant)
            assert isinstance(prof, DecodeProfile)
            value = _decode_tpot_ms(prof, w.input_tokens_mean, lam * c / total * w.output_tokens_mean, instance)
            if value is None:
                tp = []
                break
            tp.append(value * c / total)
        result["tpot_ms"] = {k: float(np.sum(tp)) for k in ("mean", "p50", "p90", "p95", "p99")} if tp else None
        if agg is not None:
            result["model"] += f"; the P/D part ({1 - share:.1%} of requests)"
            result["aggregated"] = agg
        out[m] = result
    return out


def _aggregated_prediction(instance: Instance, plan: Plan, model: str, lam: float) -> dict[str, Any]:
    """The aggregated instances' predicted TTFT and TPOT at the rate the router sends them (split by capacity):
    the capacity analysis per placement (:mod:`pdopt.perf.aggregated`; every instance of a placement gets the same
    rate), request-weighted over instances for the mean; the percentiles are the worst instance's (None where one
    saturates)."""
    from pdopt.instance import Statistic
    from pdopt.perf.aggregated import aggregated_load, aggregated_overhead_s, tpot_statistic_ms, ttft_statistic_s
    from pdopt.perf.aggregated_fit import planned_iteration

    w = instance.workloads[model]
    mine = [p for p in plan.placements if p.model == model and p.role == "aggregated"]
    total = sum(p.capacity_rps * p.count for p in mine)
    loads = []
    for p in mine:
        prof = instance.profile(model, "aggregated", p.gpu_type, p.gpus_per_instance, p.variant)
        assert isinstance(prof, AggregatedProfile)
        load = aggregated_load(planned_iteration(instance, prof), prof.token_budget, w, lam * p.capacity_rps / total,
                               aggregated_overhead_s(instance, w))
        loads.append((p.count * p.capacity_rps / total, load))
    result: dict[str, Any] = {"model": "aggregated engine: the capacity analysis of chunked prefill per instance"}
    ok = [(wt, load) for wt, load in loads if load is not None]
    if len(ok) < len(loads):
        return {**result, "ttft_s": None, "tpot_ms": None}
    stats: tuple[Statistic, ...] = ("mean", "p50", "p90", "p95", "p99")
    result["ttft_s"] = {k: (sum(wt * ttft_statistic_s(ld, "mean") for wt, ld in ok) if k == "mean"
                            else max(ttft_statistic_s(ld, k) for _, ld in ok)) for k in stats}
    result["tpot_ms"] = {k: (sum(wt * tpot_statistic_ms(ld, "mean") for wt, ld in ok) if k == "mean"
                             else max(tpot_statistic_ms(ld, k) for _, ld in ok)) for k in stats}
    return result

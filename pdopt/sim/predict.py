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
    kv_batch_bound,
    prefill_service,
    service_scv,
    shape_workload,
    tpot_at_batch,
)
from pdopt.plan import Placement, Plan
from pdopt.sim.modes import aggregated_share


def _mixture_quantile(weights: list[float], rates: list[float], p: float, shifts: list[float]) -> float:
    """t with sum_i w_i P(s_i + Exp(r_i) <= t) = p: the percentile of a mixture of shifted exponentials."""
    from scipy.optimize import brentq  # deferred: scipy loads only when predictions are made

    def f(t: float) -> float:
        return sum(w * (1.0 - math.exp(-r * max(0.0, t - s)))
                   for w, r, s in zip(weights, rates, shifts, strict=True)) - p
    hi = max(shifts) + 1.0 / min(rates)
    while f(hi) < 0:
        hi *= 2.0
    return float(brentq(f, 0.0, hi, xtol=1e-12))


def _decode_tpot_ms(profile: DecodeProfile, input_tokens: float, tokens_per_s: float, cap: int,
                    instance: Instance) -> float | None:
    """TPOT of a decode instance emitting ``tokens_per_s``: the batch B with B / TPOT(B) = that rate (Little's
    law), on the curve corrected under load (:func:`pdopt.perf.capacity.decode_correction`); None when even the
    batch cap (the largest measured batch or the KV bound) cannot carry that token rate (the instance is
    overloaded), or when the correction cannot be fitted."""
    from scipy.optimize import brentq  # deferred: scipy loads only when predictions are made

    curve = profile.points_for(input_tokens)
    correction = decode_correction(instance, profile)
    if isinstance(curve, str) or isinstance(correction, str):
        return None
    pts = corrected_points(curve, correction, instance.workloads[profile.model].output_tokens_mean)
    lo, hi = float(pts[0].batch), float(min(pts[-1].batch, max(cap, pts[0].batch)))

    def rate(b: float) -> float:
        return b / (tpot_at_batch(pts, b) / 1000.0)

    if tokens_per_s > rate(hi):
        return None
    if tokens_per_s <= rate(lo):
        return pts[0].tpot_ms
    b = brentq(lambda x: rate(x) - tokens_per_s, lo, hi, xtol=1e-9)
    return tpot_at_batch(pts, b)


def _largest_batch(profile: DecodeProfile, input_tokens: float) -> int:
    pts = profile.points_for(input_tokens)
    return pts[-1].batch if not isinstance(pts, str) else 1


def _slot_wait_s(lam: float, service_s: float, slots: int) -> float:
    """Mean wait for a batch slot: a decode instance holds at most ``slots`` requests (its batch cap), each for
    its decode time L_out x TPOT, so it is a queue with ``slots`` servers; Allen-Cunneen's M/G/c mean wait with
    Poisson arrivals and the decode time taken as fixed (service SCV 0: every request runs L_out iterations).
    With least-loaded dispatch (the default for the constant-batch decode model) identical instances (one
    placement) share their slots as one pool: the least loaded of them has a free slot if any has; instances of
    different shapes are balanced by load relative to capacity, not by free slots, so each shape queues apart.
    With random dispatch (``under_load``) each instance queues alone. Negligible while the planned batch is well
    below the cap; it grows without bound as the batch nears it, which the constant-batch decode model alone
    does not see."""
    from pdopt.perf.queueing import mean_wait_ggc

    if lam <= 0 or slots < 1:
        return 0.0
    return mean_wait_ggc(lam, 1.0 / service_s, slots, 1.0, 0.0)


def _prefill_queues(instance: Instance, model: str, lam: float,
                    pre: list[Placement]) -> list[tuple[float, float, float, Workload]] | str:
    """Per prefill instance: its share of the arrivals (capacity-weighted), service rate mu, service SCV and the
    workload as its capacity model sees it (:func:`pdopt.perf.prefill.shape_workload`); or why not."""
    total = sum(p.capacity_rps for p in pre)
    out = []
    for p in pre:
        prof = instance.profile(model, "prefill", p.gpu_type, p.gpus_per_instance, p.variant)
        assert isinstance(prof, PrefillProfile)
        shaped = shape_workload(instance, prof)
        service = prefill_service(prof, shaped) if not isinstance(shaped, str) else shaped
        if isinstance(service, str) or isinstance(shaped, str):
            return str(service)
        out.append((lam * p.capacity_rps / total, 1.0 / service[0], service_scv(shaped, service[1]), shaped))
    return out


def _prefill_prediction(w: Workload, lam: float, queues: list[tuple[float, float, float, Workload]]
                        ) -> dict[str, float] | None:
    """TTFT statistics of the prefill stage (None: an instance is overloaded).

    ``mm1``: instance i is M/M/1 with sojourn Exp(mu_i - lambda_i); TTFT = overhead_i + that, a mixture over
    instances with weights lambda_i / lambda. ``gg1``: G/G/1 per instance (Allen-Cunneen mean, gamma percentiles);
    the mean is request-weighted, a percentile the worst instance's (a bound). ``ggc`` with one shape: one pooled
    G/G/c queue over all instances.
    """
    from pdopt.perf.queueing import sojourn_statistic

    if not queues or any(lam_i >= mu for lam_i, mu, _, _ in queues):
        return None
    weights = [lam_i / lam for lam_i, _, _, _ in queues]
    shifts = [sw.ttft_overhead_s for _, _, _, sw in queues]
    if w.queue_model == "mm1":
        rates = [mu - lam_i for lam_i, mu, _, _ in queues]
        out = {"mean": sum(wt * (s + 1.0 / r) for wt, r, s in zip(weights, rates, shifts, strict=True))}
        for key, q in QUANTILES.items():
            out[key] = _mixture_quantile(weights, rates, q, shifts)
        return out
    mus = [mu for _, mu, _, _ in queues]
    if w.queue_model == "ggc" and len({round(m, 12) for m in mus}) == 1 and len(set(shifts)) == 1:
        cs2 = queues[0][2]
        pooled = {k: shifts[0] + sojourn_statistic(lam, mus[0], len(mus), w.arrival_scv, cs2, k)
                  for k in ("mean", *QUANTILES)}
        return None if any(math.isinf(v) for v in pooled.values()) else pooled
    # a renewal stream of SCV ca2 split at random with probability p gives each instance a renewal stream of SCV
    # p ca2 + 1 - p (the gap is a geometric sum of gaps); the capacity model, which cannot know the count when it
    # sizes one instance, takes ca2 itself (conservative for ca2 > 1)
    per = [{k: s + sojourn_statistic(lam_i, mu, 1, wt * sw.arrival_scv + 1.0 - wt, cs2, k)
            for k in ("mean", *QUANTILES)}
           for (lam_i, mu, cs2, sw), s, wt in zip(queues, shifts, weights, strict=True)]
    if any(math.isinf(v) for d in per for v in d.values()):
        return None
    out = {"mean": sum(wt * d["mean"] for wt, d in zip(weights, per, strict=True))}
    for k in QUANTILES:
        out[k] = max(d[k] for d in per)
    return out


def predicted_metrics(instance: Instance, plan: Plan) -> dict[str, dict[str, Any]]:
    """Per model: predicted ``ttft_s`` and ``tpot_ms`` statistics, None where a stage cannot keep up, with
    ``overloaded`` saying which: a decode stage that cannot carry its token rate leaves requests waiting for a
    batch slot without bound, so the TTFT is unbounded too, never the prefill stage's finite number."""
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
        pre = [p for p in pl if p.role == "prefill" for _ in range(p.count)]
        queues = _prefill_queues(instance, m, lam, pre) if pre else []
        overloaded = []
        result["ttft_s"] = None if isinstance(queues, str) else _prefill_prediction(w, lam, queues)
        if result["ttft_s"] is None and pre:  # (a decode-only deployment has no prefill stage to predict)
            overloaded.append("prefill: an instance's arrival rate reaches its service rate" if not
                              isinstance(queues, str) else f"prefill: {queues}")
        dec = [p for p in pl if p.role == "decode" for _ in range(p.count)]
        total = sum(p.capacity_rps for p in dec)
        tp: list[float] = []
        slot_wait = 0.0
        for p in dec:
            prof = instance.profile(m, "decode", p.gpu_type, p.gpus_per_instance, p.variant)
            assert isinstance(prof, DecodeProfile)
            cap = kv_batch_bound(instance, m, p.gpu_type, p.gpus_per_instance)
            value = _decode_tpot_ms(prof, w.input_tokens_mean, lam * p.capacity_rps / total * w.output_tokens_mean,
                                    cap, instance)
            if value is None:
                tp = []
                overloaded.append(f"decode: a {p.gpu_type} x{p.gpus_per_instance} instance cannot carry "
                                  f"{lam * p.capacity_rps / total * w.output_tokens_mean:,.0f} tok/s even at its "
                                  "batch cap, so requests wait for a slot without bound (TTFT unbounded)")
                result["ttft_s"] = None
                break
            tp.append(value * p.capacity_rps / total)
            n = p.count if w.decode_model == "paper" else 1  # least-loaded: a placement's instances pool slots
            slot_wait += p.capacity_rps / total * _slot_wait_s(n * lam * p.capacity_rps / total,
                                                               w.output_tokens_mean * value / 1000.0,
                                                               n * min(cap, _largest_batch(prof, w.input_tokens_mean)))
        result["tpot_ms"] = {k: float(np.sum(tp)) for k in ("mean", "p50", "p90", "p95", "p99")} if tp else None
        if tp and result["ttft_s"] is not None:
            # a request ready for decode joins a running batch at its next iteration boundary: for iterations of
            # a fixed length TPOT, a ready time falling at random in one waits TPOT / 2 on average (at most TPOT)
            join = float(np.sum(tp)) / 2000.0
            result["ttft_s"] = {k: v + join + slot_wait for k, v in result["ttft_s"].items()}
            result["decode_join_s"] = join
            result["decode_slot_wait_s"] = slot_wait
        if overloaded:
            result["overloaded"] = "; ".join(overloaded)
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

"""What the planner's capacity model predicts for a plan at its load, to set beside the simulated metrics.

Arrivals to a model are split over its instances in proportion to their planned capacity (Poisson splitting).
Each prefill instance (or, under ``ggc``, each shape's pool) is the queue its capacity model assumes, with the
shape's own overhead and, when calibrated, its fitted service SCV (:func:`pdopt.perf.prefill.shape_workload`):
under M/M/1, instance i with service rate mu_i and arrival rate lambda_i has an exponential sojourn of rate
mu_i - lambda_i, so TTFT = overhead_i + that, a mixture with weights lambda_i / lambda. Decode instance i runs
the batch B_i solving B / TPOT(B) = lambda_i L_out (Little's law; under ``decode_model: under_load`` over a
Poisson batch), on the curve corrected under load when the profile has a correction. TTFT adds the waits to join
a running batch and for a free batch slot.
"""

from __future__ import annotations

import math
from typing import Any

from pdopt.instance import AggregatedProfile, DecodePoint, DecodeProfile, Instance, PrefillProfile, Workload
from pdopt.perf.capacity import (
    QUANTILES,
    corrected_points,
    decode_correction,
    prefill_service,
    service_scv,
    shape_workload,
    tpot_at_batch,
)
from pdopt.perf.decode import batch_cap
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


def _decode_curve(profile: DecodeProfile, instance: Instance) -> list[DecodePoint] | None:
    """The decode curve at the workload's input length, corrected under load
    (:func:`pdopt.perf.capacity.decode_correction`); None when it cannot be had."""
    w = instance.workloads[profile.model]
    curve = profile.points_for(w.input_tokens_mean)
    correction = decode_correction(instance, profile)
    if isinstance(curve, str) or isinstance(correction, str):
        return None
    return corrected_points(curve, correction, w.output_tokens_mean)


def _decode_tpot_ms(pts: list[DecodePoint], tokens_per_s: float, cap: int,
                    decode_model: str) -> dict[str, float] | None:
    """TPOT statistics of a decode instance emitting ``tokens_per_s``, or None when even its batch cap (the
    largest measured batch or the KV bound) cannot carry that token rate: the instance is overloaded.

    ``paper``: the batch B with B / TPOT(B) = the token rate (Little's law); every request sees TPOT(B), so every
    statistic is TPOT(B). ``under_load``: the running batch is 1 + Poisson(B) as a request sees it
    (:func:`pdopt.perf.decode.poisson_batch_tpot_ms`), B solving B / TPOT_mean(B) = the token rate, and each
    statistic is taken over that batch, as the capacity model does.
    """
    from scipy.optimize import brentq  # deferred: scipy loads only when predictions are made

    from pdopt.perf.decode import poisson_batch_tpot_ms

    stats = ("mean", *QUANTILES)
    lo, hi = float(pts[0].batch), float(min(pts[-1].batch, max(cap, pts[0].batch)))
    if decode_model == "under_load":
        top = max(cap, 1)

        def load_rate(b: float) -> float:
            return b / (poisson_batch_tpot_ms(pts, b, top, "mean") / 1000.0)

        if tokens_per_s >= load_rate(float(top)):
            return None
        b = brentq(lambda x: load_rate(x) - tokens_per_s, 0.0, float(top), xtol=1e-9)
        return {k: poisson_batch_tpot_ms(pts, b, top, k) for k in stats}  # type: ignore[arg-type]

    def rate(b: float) -> float:
        return b / (tpot_at_batch(pts, b) / 1000.0)

    if tokens_per_s > rate(hi):
        return None
    if tokens_per_s <= rate(lo):
        return dict.fromkeys(stats, pts[0].tpot_ms)
    b = brentq(lambda x: rate(x) - tokens_per_s, lo, hi, xtol=1e-9)
    return dict.fromkeys(stats, tpot_at_batch(pts, b))


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


Queue = tuple[int, float, float, float, Workload]
"""A prefill placement: its instance count, the arrival rate to it, the service rate mu of one instance, the
service SCV and the workload as its capacity model sees it."""


def _prefill_queues(instance: Instance, model: str, lam: float, pre: list[Placement]) -> list[Queue] | str:
    """Per prefill placement: count, its share of the arrivals (capacity-weighted), mu, service SCV and the
    workload as its capacity model sees it (:func:`pdopt.perf.prefill.shape_workload`); or why not."""
    total = sum(p.capacity_rps * p.count for p in pre)
    out = []
    for p in pre:
        prof = instance.profile(model, "prefill", p.gpu_type, p.gpus_per_instance, p.variant)
        assert isinstance(prof, PrefillProfile)
        shaped = shape_workload(instance, prof)
        service = prefill_service(prof, shaped) if not isinstance(shaped, str) else shaped
        if isinstance(service, str) or isinstance(shaped, str):
            return str(service)
        out.append((p.count, lam * p.capacity_rps * p.count / total, 1.0 / service[0],
                    service_scv(shaped, service[1]), shaped))
    return out


def _prefill_prediction(w: Workload, lam: float, queues: list[Queue]) -> dict[str, float] | None:
    """TTFT statistics of the prefill stage (None: an instance, or a pool, is overloaded).

    ``mm1``: instance i is M/M/1 with sojourn Exp(mu_i - lambda_i); TTFT = overhead_i + that, a mixture over
    instances with weights lambda_i / lambda. ``gg1``: G/G/1 per instance (Allen-Cunneen mean, gamma percentiles).
    ``ggc``: one pooled G/G/c queue per shape (placement), the arrivals split between shapes by capacity, as the
    simulator's default dispatch does. For ``gg1`` and ``ggc`` the mean is request-weighted and a percentile the
    worst queue's (a bound). A renewal stream of SCV ca2 split at random with probability p gives each part a
    renewal stream of SCV p ca2 + 1 - p (the gap is a geometric sum of gaps); the capacity model, which cannot know
    the count when it sizes one instance, takes ca2 itself (conservative for ca2 > 1).
    """
    from pdopt.perf.queueing import sojourn_statistic

    pooled = w.queue_model == "ggc"
    if not queues or any(lam_p >= n * mu for n, lam_p, mu, _, _ in queues):  # an instance, or a pool, saturated
        return None
    weights = [lam_p / lam for _, lam_p, _, _, _ in queues]
    shifts = [sw.ttft_overhead_s for _, _, _, _, sw in queues]
    if w.queue_model == "mm1":
        rates = [mu - lam_p / n for n, lam_p, mu, _, _ in queues]
        out = {"mean": sum(wt * (s + 1.0 / r) for wt, r, s in zip(weights, rates, shifts, strict=True))}
        for key, q in QUANTILES.items():
            out[key] = _mixture_quantile(weights, rates, q, shifts)
        return out
    per = []
    for (n, lam_p, mu, cs2, sw), s, wt in zip(queues, shifts, weights, strict=True):
        part = wt if pooled else wt / n  # the share of the model's stream one queue receives
        ca2 = part * sw.arrival_scv + 1.0 - part
        servers, lam_q = (n, lam_p) if pooled else (1, lam_p / n)
        per.append({k: s + sojourn_statistic(lam_q, mu, servers, ca2, cs2, k) for k in ("mean", *QUANTILES)})
    if any(math.isinf(v) for d in per for v in d.values()):
        return None
    out = {"mean": sum(wt * d["mean"] for wt, d in zip(weights, per, strict=True))}
    for k in QUANTILES:
        out[k] = max(d[k] for d in per)
    return out


def _decode_prediction(instance: Instance, model: str, lam: float, dec: list[Placement]
                       ) -> tuple[dict[str, float] | None, float, str | None]:
    """TPOT statistics of the decode stage (request-weighted mean, worst placement's percentiles), the mean
    wait for a batch slot, and why the stage is overloaded (None when it is not)."""
    w = instance.workloads[model]
    total = sum(p.capacity_rps * p.count for p in dec)
    tp: dict[str, float] = {}
    slot_wait = 0.0
    for p in dec:
        share = p.capacity_rps * p.count / total
        prof = instance.profile(model, "decode", p.gpu_type, p.gpus_per_instance, p.variant)
        assert isinstance(prof, DecodeProfile)
        capped = batch_cap(instance, prof)
        cap = capped[0] if not isinstance(capped, str) else 0
        pts = _decode_curve(prof, instance) if cap else None
        tokens = lam * share / p.count * w.output_tokens_mean
        value = None if pts is None else _decode_tpot_ms(pts, tokens, cap, w.decode_model)
        if value is None:
            return None, 0.0, (f"decode: a {p.gpu_type} x{p.gpus_per_instance} instance cannot carry {tokens:,.0f} "
                               "tok/s even at its batch cap, so requests wait for a slot without bound (TTFT "
                               "unbounded)")
        tp["mean"] = tp.get("mean", 0.0) + share * value["mean"]
        for k in QUANTILES:
            tp[k] = max(tp.get(k, 0.0), value[k])
        n = p.count if w.decode_model == "paper" else 1  # least-loaded: a placement's instances pool slots
        slot_wait += share * _slot_wait_s(lam * share * n / p.count, w.output_tokens_mean * value["mean"] / 1000.0,
                                          n * cap)
    return tp, slot_wait, None


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
                         "ggc": "one pooled G/G/c prefill queue per shape"}[w.queue_model]
        decode_model = {"paper": "constant-batch decode at Little's-law batch",
                        "under_load": "decode over a Poisson batch"}[w.decode_model]
        result: dict[str, Any] = {"model": f"{prefill_model}; {decode_model}"}
        pre = [p for p in pl if p.role == "prefill"]
        queues = _prefill_queues(instance, m, lam, pre) if pre else []
        overloaded = []
        result["ttft_s"] = None if isinstance(queues, str) else _prefill_prediction(w, lam, queues)
        if result["ttft_s"] is None and pre:  # (a decode-only deployment has no prefill stage to predict)
            overloaded.append("prefill: an instance's arrival rate reaches its service rate" if not
                              isinstance(queues, str) else f"prefill: {queues}")
        dec = [p for p in pl if p.role == "decode"]
        tp, slot_wait, why = _decode_prediction(instance, m, lam, dec) if dec else (None, 0.0, None)
        result["tpot_ms"] = tp
        if why is not None:
            overloaded.append(why)
            result["ttft_s"] = None
        if tp is not None and result["ttft_s"] is not None:
            # a request ready for decode joins a running batch at its next iteration boundary: for iterations of
            # a fixed length TPOT, a ready time falling at random in one waits TPOT / 2 on average (at most TPOT)
            join = tp["mean"] / 2000.0
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

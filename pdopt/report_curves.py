"""The numbers behind each figure of the HTML report (``pdopt report``), as plain JSON-ready dicts.

Kept apart from the drawing (:mod:`pdopt.report_figures`) and the page (:mod:`pdopt.report_html`) so that the
numbers a reader sees plotted are the numbers embedded beside each image, and so that tests can compare them
with the plan and with pdopt's own capacity functions without drawing anything.

The operating point of a shape is where the plan runs one instance of it: the demand the plan serves (less the
share the router sends to aggregated instances) split over the role's instances in proportion to their planned
capacity, as the simulator's default dispatch and its predictions do (:mod:`pdopt.sim.predict`). Its TTFT or
TPOT is the capacity model's at that rate, read from the same functions the planner sized the shape with, so at
the shape's capacity the curve meets the SLO line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pdopt.errors import InputError
from pdopt.instance import AggregatedProfile, DecodePoint, DecodeProfile, Instance, PrefillProfile, Workload
from pdopt.perf.capacity import (
    corrected_points,
    decode_correction,
    prefill_service,
    service_scv,
    shape_workload,
    sojourn_factor,
    tpot_at_batch,
)
from pdopt.perf.decode import batch_cap, poisson_batch_tpot_ms
from pdopt.plan import Placement, Plan
from pdopt.sim.modes import aggregated_share

CURVE_POINTS = 60
"""Points per drawn curve: smooth enough at the figures' size, small enough to embed."""

ShapeKey = tuple[str, str, str, int, str]
"""(model, role, GPU type, GPUs per instance, variant): one capacity curve, whatever pools its instances use."""


def shapes_used(plan: Plan) -> dict[ShapeKey, list[Placement]]:
    """The plan's placements grouped by shape, in plan order (a shape placed in two pools is one curve)."""
    out: dict[ShapeKey, list[Placement]] = {}
    for p in plan.placements:
        out.setdefault((p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant), []).append(p)
    return out


def per_instance_rates(instance: Instance, plan: Plan) -> dict[ShapeKey, float]:
    """Requests/s one instance of each shape receives under the plan: the model's rate to the role (the P/D part
    or the aggregated part) split by planned capacity (``capacity_rps x count``), as :mod:`pdopt.sim.predict`
    splits it."""
    served = plan.served_demand_rps(instance)
    out: dict[ShapeKey, float] = {}
    for m in instance.workloads:
        share = aggregated_share(plan, m)
        for role, lam in (("prefill", served[m] * (1 - share)), ("decode", served[m] * (1 - share)),
                          ("aggregated", served[m] * share)):
            mine = [p for p in plan.placements if p.model == m and p.role == role]
            total = sum(p.capacity_rps * p.count for p in mine)
            for p in mine:
                out[(m, role, p.gpu_type, p.gpus_per_instance, p.variant)] = lam * p.capacity_rps / total
    return out


def _finite(value: float) -> float | None:
    """JSON holds no infinity: an unbounded statistic (a saturated queue) is null."""
    return value if math.isfinite(value) else None


def _shape_header(key: ShapeKey, placements: list[Placement], rate: float) -> dict[str, Any]:
    """What every curve's data starts with: the shape, its pools and instance count, its planned capacity per
    instance and the rate one instance receives (so each figure's JSON stands on its own)."""
    model, role, gpu, gpus, variant = key
    return {"model": model, "role": role, "gpu_type": gpu, "gpus_per_instance": gpus, "variant": variant,
            "pools": [p.pool for p in placements], "instances": sum(p.count for p in placements),
            "capacity_rps": placements[0].capacity_rps, "rate_per_instance_rps": rate}


def prefill_ttft_s(workload: Workload, mu: float, cs2: float, rate: float, servers: int = 1) -> float:
    """The TTFT statistic the SLO names for one prefill queue at ``rate`` req/s per instance, as the capacity model
    computes it: overhead + the M/M/1 sojourn statistic (``mm1``, closed form) or the G/G/c one (``gg1`` with one
    server, ``ggc`` pooled over ``servers`` instances); infinite at or past saturation."""
    from pdopt.perf.queueing import sojourn_statistic

    stat = workload.ttft.statistic
    if workload.queue_model == "mm1":
        return workload.ttft_overhead_s + (sojourn_factor(stat) / (mu - rate) if rate < mu else math.inf)
    c = servers if workload.queue_model == "ggc" else 1
    return workload.ttft_overhead_s + sojourn_statistic(rate * c, mu, c, workload.arrival_scv, cs2, stat)


def prefill_curve(instance: Instance, key: ShapeKey, placements: list[Placement], rate: float) -> dict[str, Any]:
    """TTFT (the SLO's statistic) against the arrival rate to one instance, from zero to near saturation, with the
    SLO line, the capacity and the operating point (module docstring)."""
    model, _, gpu, gpus, variant = key
    prof = instance.profile(model, "prefill", gpu, gpus, variant)
    assert isinstance(prof, PrefillProfile)
    shaped = shape_workload(instance, prof)
    service = prefill_service(prof, shaped) if not isinstance(shaped, str) else shaped
    if isinstance(service, str) or isinstance(shaped, str):
        raise InputError(f"plan: prefill of model '{model}' on {gpu} x{gpus}: {service}")
    mu = 1.0 / service[0]
    cs2 = service_scv(shaped, service[1])
    count = sum(p.count for p in placements)
    target = shaped.ttft.target_s
    op_ttft = prefill_ttft_s(shaped, mu, cs2, rate, count)
    top = max(2.5 * target, 1.2 * op_ttft if math.isfinite(op_ttft) else 0.0)
    rates, ttfts = [], []
    for i in range(CURVE_POINTS + 1):
        r = mu * 0.995 * i / CURVE_POINTS
        t = prefill_ttft_s(shaped, mu, cs2, r, count)
        if not t <= top:
            break
        rates.append(r)
        ttfts.append(t)
    return {**_shape_header(key, placements, rate), "queue_model": shaped.queue_model,
            "statistic": shaped.ttft.statistic, "service_rate_rps": mu, "service_scv": cs2,
            "arrival_scv": shaped.arrival_scv, "overhead_s": shaped.ttft_overhead_s,
            "curve": {"rate_rps": rates, "ttft_s": ttfts}, "slo_ttft_s": target,
            "operating_point": {"rate_rps": rate, "ttft_s": _finite(op_ttft)},
            "capacity_point": {"rate_rps": placements[0].capacity_rps,
                               "ttft_s": _finite(prefill_ttft_s(shaped, mu, cs2, placements[0].capacity_rps, count))}}


def _decode_points(instance: Instance, prof: DecodeProfile) -> list[DecodePoint]:
    """The TPOT(batch) curve the capacity model sized the shape on: the profile's at the workload's input length,
    corrected under load where the profile has a correction."""
    w = instance.workloads[prof.model]
    curve = prof.points_for(w.input_tokens_mean)
    correction = decode_correction(instance, prof)
    if isinstance(curve, str) or isinstance(correction, str):
        raise InputError(f"plan: decode of model '{prof.model}' on {prof.gpu_type} x{prof.gpus_per_instance}: "
                         f"{curve if isinstance(curve, str) else correction}")
    return corrected_points(curve, correction, w.output_tokens_mean)


def _solve_increasing(f: Callable[[float], float], target: float, lo: float, hi: float) -> float:
    """x in [lo, hi] with f(x) = target for a non-decreasing f (bisection; hi when f(hi) < target)."""
    if f(hi) <= target:
        return hi
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


def decode_operating_point(pts: list[DecodePoint], workload: Workload, cap: int, rate: float) -> dict[str, Any]:
    """The batch and TPOT of one decode instance receiving ``rate`` req/s.

    ``paper``: the batch B with B / TPOT(B) = rate x L_out (Little's law), TPOT(B) for every statistic (below the
    first measured batch the TPOT is held at the first point's, as the predictions do). ``under_load``: B is the
    mean number of other running requests, solving B / (L_out TPOT_mean(B)) = rate, and the TPOT is the SLO's
    statistic over 1 + Poisson(B) (:func:`pdopt.perf.decode.poisson_batch_tpot_ms`). ``saturated`` when even the
    batch cap cannot carry the rate."""
    tokens = rate * workload.output_tokens_mean
    if workload.decode_model == "under_load":
        def load(b: float) -> float:
            return b / (poisson_batch_tpot_ms(pts, b, cap, "mean") / 1000.0)
        b = _solve_increasing(load, tokens, 0.0, float(cap))
        return {"batch": b, "tpot_ms": poisson_batch_tpot_ms(pts, b, cap, workload.tpot.statistic),
                "saturated": load(float(cap)) < tokens}
    lo, hi = float(pts[0].batch), float(min(pts[-1].batch, cap))

    def emitted(b: float) -> float:
        return b / (tpot_at_batch(pts, b) / 1000.0)
    if tokens <= emitted(lo):
        return {"batch": tokens * pts[0].tpot_ms / 1000.0, "tpot_ms": pts[0].tpot_ms, "saturated": False}
    b = _solve_increasing(emitted, tokens, lo, hi)
    return {"batch": b, "tpot_ms": tpot_at_batch(pts, b), "saturated": emitted(hi) < tokens}


def decode_curve(instance: Instance, key: ShapeKey, placements: list[Placement], rate: float) -> dict[str, Any]:
    """TPOT against the running batch from the profile (as the capacity model reads it), with the SLO line, the
    batch cap and the operating batch; under ``decode_model: under_load`` also the SLO's statistic over a Poisson
    batch against its mean."""
    model, _, gpu, gpus, variant = key
    prof = instance.profile(model, "decode", gpu, gpus, variant)
    assert isinstance(prof, DecodeProfile)
    w = instance.workloads[model]
    pts = _decode_points(instance, prof)
    capped = batch_cap(instance, prof)
    if isinstance(capped, str):
        raise InputError(f"plan: decode of model '{model}' on {gpu} x{gpus}: {capped}")
    cap, bound = capped
    corrected = decode_correction(instance, prof) is not None
    out = {**_shape_header(key, placements, rate), "decode_model": w.decode_model, "statistic": w.tpot.statistic,
           "corrected_under_load": corrected,
           "output_tokens_mean": w.output_tokens_mean, "batch_cap": cap, "batch_cap_bound": bound,
           "curve": {"batch": [float(p.batch) for p in pts], "tpot_ms": [p.tpot_ms for p in pts]},
           "slo_tpot_ms": w.tpot.target_ms, "operating_point": decode_operating_point(pts, w, cap, rate),
           "capacity_point": decode_operating_point(pts, w, cap, placements[0].capacity_rps)}
    if w.decode_model == "under_load":
        bs = [cap * i / CURVE_POINTS for i in range(CURVE_POINTS + 1)]
        out["under_load_curve"] = {"mean_batch": bs,
                                   "tpot_ms": [poisson_batch_tpot_ms(pts, b, cap, w.tpot.statistic) for b in bs]}
    return out


def aggregated_curve(instance: Instance, key: ShapeKey, placements: list[Placement], rate: float) -> dict[str, Any]:
    """An aggregated instance's TTFT and TPOT statistics against its arrival rate (the capacity analysis of chunked
    prefill, :mod:`pdopt.perf.aggregated`), up to past its capacity or its saturation, with both SLO lines and the
    operating point."""
    from pdopt.perf.aggregated import aggregated_load, aggregated_overhead_s, tpot_statistic_ms, ttft_statistic_s
    from pdopt.perf.aggregated_fit import planned_iteration

    model, _, gpu, gpus, variant = key
    prof = instance.profile(model, "aggregated", gpu, gpus, variant)
    assert isinstance(prof, AggregatedProfile)
    w = instance.workloads[model]
    it, overhead = planned_iteration(instance, prof), aggregated_overhead_s(instance, w)
    cap = placements[0].capacity_rps

    def at(r: float) -> tuple[float, float] | None:
        load = aggregated_load(it, prof.token_budget, w, r, overhead)
        if load is None:
            return None
        return ttft_statistic_s(load, w.ttft.statistic), tpot_statistic_ms(load, w.tpot.statistic)

    rates, ttfts, tpots = [], [], []
    steps = 24
    for i in range(1, steps + 1):
        r = 1.5 * max(cap, rate) * i / steps
        got = at(r)
        if got is None:
            break
        rates.append(r)
        ttfts.append(got[0])
        tpots.append(got[1])
    op = at(rate)
    return {**_shape_header(key, placements, rate), "ttft_statistic": w.ttft.statistic,
            "tpot_statistic": w.tpot.statistic, "curve": {"rate_rps": rates, "ttft_s": ttfts, "tpot_ms": tpots},
            "slo_ttft_s": w.ttft.target_s, "slo_tpot_ms": w.tpot.target_ms,
            "operating_point": {"rate_rps": rate, "ttft_s": None if op is None else op[0],
                                "tpot_ms": None if op is None else op[1]}}


def capacity_curves(instance: Instance, plan: Plan) -> list[dict[str, Any]]:
    """One curve per shape the plan uses: by model, then prefill, decode and aggregated."""
    rates = per_instance_rates(instance, plan)
    make = {"prefill": prefill_curve, "decode": decode_curve, "aggregated": aggregated_curve}
    order = {"prefill": 0, "decode": 1, "aggregated": 2}
    shapes = sorted(shapes_used(plan).items(), key=lambda kv: (kv[0][0], order[kv[0][1]], *kv[0][2:]))
    return [make[key[1]](instance, key, placements, rates[key]) for key, placements in shapes]


def cost_data(plan: Plan) -> dict[str, Any]:
    """The plan's hourly cost by model, role and GPU type (each axis sums to the total), rounded to the cent as
    the plan states it (so that no bar carries float noise)."""
    b = plan.cost_breakdown
    axes = {"by_model": b.by_model, "by_role": b.by_role, "by_gpu_type": b.by_gpu_type}
    return {"total_usd_per_hour": plan.objective_usd_per_hour,
            **{k: {key: round(v, 6) for key, v in sorted(d.items())} for k, d in axes.items()}}


def fleet_data(plan: Plan) -> dict[str, Any]:
    """Instances per placement, with their GPUs and cost."""
    return {"placements": [{"model": p.model, "role": p.role, "gpu_type": p.gpu_type,
                            "gpus_per_instance": p.gpus_per_instance, "pool": p.pool, "variant": p.variant,
                            "count": p.count, "gpus": p.count * p.gpus_per_instance,
                            "cost_usd_per_hour": p.cost_usd_per_hour} for p in plan.placements]}


SIM_STATS = ("mean", "p50", "p90", "p95", "p99")
"""The statistics ``pdopt simulate --format json`` reports per metric (it keeps no per-request samples)."""


def _number(doc: object, where: str) -> float:
    """A finite number from an untrusted file, else an :class:`InputError` naming where it is (no NaN can reach a
    figure, and JSON cannot carry one back out)."""
    if isinstance(doc, bool) or not isinstance(doc, int | float) or not math.isfinite(doc):
        raise InputError(f"{where}: expected a finite number, got {doc!r}")
    return float(doc)


def _stats(doc: object, where: str, allow_null: bool = False) -> dict[str, float] | None:
    """A simulated or predicted metric: ``{mean, p50, p90, p95, p99}`` of finite numbers (others ignored)."""
    if doc is None and allow_null:
        return None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected an object with {', '.join(SIM_STATS)}, got {type(doc).__name__}")
    return {k: _number(doc.get(k), f"{where}.{k}") for k in SIM_STATS}


def simulation_data(instance: Instance, doc: object, source: str) -> list[dict[str, Any]]:
    """Per model, the simulated TTFT and TPOT statistics, the capacity model's predictions beside them, the share
    of requests meeting each SLO (``attainment``) and the SLOs, read from ``pdopt simulate --format json`` output.
    Untrusted input: anything missing or not a finite number is an :class:`InputError` naming the field."""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: a simulation must be a JSON object, got {type(doc).__name__}")
    if doc.get("instance") != instance.name:
        raise InputError(f"{source}: instance: a simulation of {doc.get('instance')!r}, not '{instance.name}'")
    models = doc.get("models")
    if not isinstance(models, dict):
        raise InputError(f"{source}: models: expected an object per model")
    unknown = sorted(set(models) - set(instance.workloads))
    if unknown:
        raise InputError(f"{source}: models: unknown model '{unknown[0]}' (not in instance '{instance.name}')")
    out = []
    for m in instance.workloads:
        if m not in models:
            raise InputError(f"{source}: models: no results for model '{m}'")
        got = models[m]
        where = f"{source}: models.{m}"
        if not isinstance(got, dict):
            raise InputError(f"{where}: expected an object")
        raw_pred = got.get("predicted")
        pred: dict[str, Any] = raw_pred if isinstance(raw_pred, dict) else {}
        att = got.get("attainment")
        if not isinstance(att, dict):
            raise InputError(f"{where}.attainment: expected an object with ttft, tpot, both")
        w = instance.workloads[m]
        out.append({"model": m, "requests": got.get("requests") if isinstance(got.get("requests"), int) else None,
                    "partial": doc.get("partial") is True,
                    "ttft_s": _stats(got.get("ttft_s"), f"{where}.ttft_s"),
                    "tpot_ms": _stats(got.get("tpot_ms"), f"{where}.tpot_ms"),
                    "predicted_ttft_s": _stats(pred.get("ttft_s"), f"{where}.predicted.ttft_s", True),
                    "predicted_tpot_ms": _stats(pred.get("tpot_ms"), f"{where}.predicted.tpot_ms", True),
                    "attainment": {k: _number(att.get(k), f"{where}.attainment.{k}") for k in ("ttft", "tpot")},
                    "slo_ttft_s": w.ttft.target_s, "ttft_statistic": w.ttft.statistic,
                    "slo_tpot_ms": w.tpot.target_ms, "tpot_statistic": w.tpot.statistic})
    return out


def baseline_data(instance: Instance, plan: Plan) -> dict[str, Any]:
    """This plan's cost beside each heuristic baseline's (:mod:`pdopt.comparison.baselines`), each checked by the
    verifier; a baseline with no plan, or one the verifier rejects, is marked infeasible with the reason. The
    baselines size the instance's own demand, so a plan for a scaled demand is not compared (``skipped`` says
    why)."""
    from pdopt.comparison.baselines import all_baselines
    from pdopt.verifier import verify

    if plan.demand_multiplier != 1.0:
        return {"plan_usd_per_hour": plan.objective_usd_per_hour, "rows": [],
                "skipped": f"the plan serves {plan.demand_multiplier:g} x the instance's demand; the baselines "
                           "size the instance's demand"}
    rows: list[dict[str, Any]] = [{"name": "this plan (MILP)", "cost_usd_per_hour": plan.objective_usd_per_hour,
                                   "feasible": True, "reason": None}]
    for b in all_baselines(instance):
        if b.plan is None:
            rows.append({"name": b.name, "cost_usd_per_hour": None, "feasible": False,
                         "reason": (b.reason or "no plan").splitlines()[0]})
            continue
        violations = verify(instance, b.plan.to_dict())
        rows.append({"name": b.name, "cost_usd_per_hour": b.plan.objective_usd_per_hour, "feasible": not violations,
                     "reason": "; ".join(sorted({v.check for v in violations})) or None})
    return {"plan_usd_per_hour": plan.objective_usd_per_hour, "rows": rows, "skipped": None}


def assumptions(instance: Instance, plan: Plan) -> list[tuple[str, str, str]]:
    """(what, value, where it comes from) rows: per model the queue model, the SCVs, each SLO and its statistic,
    the decode model; per GPU type and pool its price and the price's source as the instance states it."""
    rows: list[tuple[str, str, str]] = []
    for m, w in instance.workloads.items():
        rows += [
            (f"{m}: TTFT SLO", f"{w.ttft.statistic} TTFT <= {w.ttft.target_s:g} s", "workload"),
            (f"{m}: TPOT SLO", f"{w.tpot.statistic} TPOT <= {w.tpot.target_ms:g} ms", "workload"),
            (f"{m}: prefill queue model", {"mm1": "M/M/1 per instance (Poisson arrivals, exponential service)",
                                           "gg1": "G/G/1 per instance", "ggc": "G/G/c pooled per shape"}
             [w.queue_model], "workload queue_model"),
            (f"{m}: arrival SCV", f"{w.arrival_scv:g}" if w.queue_model != "mm1" else "1 (Poisson, M/M/1)",
             "workload arrival_scv"),
            (f"{m}: service SCV", "1 (exponential, M/M/1)" if w.queue_model == "mm1" else
             (f"{w.service_scv:g}" if w.service_scv is not None else "derived from the length distribution, else 1"),
             "workload service_scv"),
            (f"{m}: decode model", {"paper": "constant batch from the TPOT curve (every TPOT statistic equal)",
                                    "under_load": "TPOT over a Poisson running batch"}[w.decode_model],
             "workload decode_model"),
            (f"{m}: lengths, overhead", f"{w.input_tokens_mean:g} in / {w.output_tokens_mean:g} out tokens; TTFT "
             f"overhead {w.ttft_overhead_s:g} s", "workload"),
            (f"{m}: demand served", f"{plan.served_demand_rps(instance)[m]:g} req/s", "instance demand x plan scale"),
        ]
    rows.append(("decode batch rule", instance.options.decode_batch_rule, "options"))
    for g, gt in instance.gpu_types.items():
        rows.append((f"price {g}", f"{gt.price_usd_per_gpu_hour:g} USD per GPU-hour",
                     (gt.description or "not stated in the instance").strip()))
    for pid, pool in instance.node_pools.items():
        if pool.price_usd_per_node_hour is not None:
            rows.append((f"price pool {pid}", f"{pool.price_usd_per_node_hour:g} USD per node-hour", "node pool"))
    return rows

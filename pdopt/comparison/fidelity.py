"""``pdopt fidelity``: the capacity model's and the simulator's predictions set against the user's measurements.

For each measured point (:mod:`pdopt.io.measurements`) the deployment it measured becomes a plan of a one-model
copy of the instance whose workload has the measured rate as its demand and the run's mean lengths where the run
gives them. Then:

- a run at rate r (of a whole deployment, or of one role alone: prefill instances measured for TTFT, decode
  instances for TPOT, which the capacity model alone predicts): the capacity model's prediction
  (:func:`pdopt.sim.predict.predicted_metrics`, the numbers ``pdopt simulate`` prints as ``predicted``) and the
  simulator's (default options, which follow the capacity model; N requests at a fixed seed) of each statistic
  the run reports; error = (predicted - measured) / measured;
- an SLO throughput (the largest rate at which the deployment met both SLOs): the capacity model's is the
  deployment's capacity at the SLOs, min(sum of prefill capacities, sum of decode capacities), or the sum of
  aggregated capacities (pooled ``ggc`` prefill: the sum of its marginal gains up to the count); the simulator's
  is the largest rate at which the simulated statistics meet both targets, found by bisection (8 steps from
  [0.5, 1.5] x the capacity model's rate, each step a simulation of N requests; the answer is the bracket's
  middle, so its resolution is about 0.4% of the capacity model's rate; an answer at an edge of the bracket is
  noted as a bound).

The summary gives, per route, metric and statistic, the median absolute error over the points: "pdopt is
within X% on my hardware".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from pdopt.errors import InputError
from pdopt.instance import Demand, Instance
from pdopt.io.measurements import MeasuredPoint
from pdopt.perf.capacity import ShapeCapacity, capacity_table
from pdopt.plan import Placement, Plan, SolveStatus

ROUTES = ("capacity_model", "simulator")


@dataclass
class PointResult:
    """One measured point with what each route predicts."""

    point: MeasuredPoint
    rate_rps: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Per metric and statistic: measured, each route's prediction and relative error."""


def with_models(instance: Instance, queue_model: str | None, decode_model: str | None) -> Instance:
    """The instance with every workload's queue and decode model replaced where one is given (what-if: which
    model predicts my measurements best)."""
    update = {k: v for k, v in (("queue_model", queue_model), ("decode_model", decode_model)) if v is not None}
    if not update:
        return instance
    return instance.model_copy(update={"workloads": {m: w.model_copy(update=update)
                                                     for m, w in instance.workloads.items()}})


def _workload_copy(instance: Instance, point: MeasuredPoint, rate: float) -> Instance:
    """A copy of ``instance`` with the point's model only, its demand the given rate and the run's lengths."""
    _check_models(instance, [point])
    w = instance.workloads[point.model]
    if not 1e-9 <= rate <= 1e7:  # the instance format's range of requests_per_s
        raise InputError(f"{point.where}: a rate of {rate:g} req/s is outside 1e-09 to 1e+07")
    update: dict[str, Any] = {"demand": Demand(requests_per_s=rate)}
    if point.input_tokens_mean is not None and abs(point.input_tokens_mean - w.input_tokens_mean) > 1e-9:
        update.update(input_tokens_mean=point.input_tokens_mean, input_length_distribution=None)
    if point.output_tokens_mean is not None:
        update["output_tokens_mean"] = point.output_tokens_mean
    if point.arrival_scv is not None:  # the run's client drew gaps of this SCV (vLLM --burstiness)
        update["arrival_scv"] = point.arrival_scv
    return instance.model_copy(update={"workloads": {point.model: w.model_copy(update=update)}})


def _capacities(instance: Instance, point: MeasuredPoint) -> list[tuple[Any, ShapeCapacity]]:
    table = capacity_table(instance)
    out = []
    for s in point.deployment.shapes:
        cap = next((c for c in table.shapes if (c.model, c.role, c.gpu_type, c.gpus_per_instance, c.variant)
                    == (point.model, s.role, s.gpu_type, s.gpus_per_instance, s.variant)), None)
        if cap is None:
            skipped = next((k.reason for k in table.skipped if (k.model, k.role, k.gpu_type, k.gpus_per_instance)
                            == (point.model, s.role, s.gpu_type, s.gpus_per_instance)), None)
            raise InputError(f"{point.where}: deployment '{point.deployment.text}': model "
                         f"'{point.model}' has no usable "
                         f"{s.role} shape {s.gpu_type} x{s.gpus_per_instance}"
                         + (f" ({skipped})" if skipped else " (no such profile in the instance)"))
        out.append((s, cap))
    return out


def deployment_plan(instance: Instance, point: MeasuredPoint, rate: float) -> tuple[Instance, Plan]:
    """The one-model instance at ``rate`` and the deployment as a plan of it."""
    sub = _workload_copy(instance, point, rate)
    placements = []
    for s, cap in _capacities(sub, point):
        pool = next((name for name, pool in sub.node_pools.items() if pool.gpu_type == s.gpu_type), "measured")
        placements.append(Placement(point.model, s.role, s.gpu_type, s.gpus_per_instance, pool, s.count,
                                    cap.capacity_rps, 0.0, s.variant))
    return sub, Plan(sub.name, SolveStatus.FEASIBLE, tuple(placements), objective_usd_per_hour=0.0)


def capacity_rate(instance: Instance, point: MeasuredPoint, rate: float) -> float:
    """The deployment's capacity at the SLOs (req/s) under the capacity model, at the lengths of ``point``."""
    sub = _workload_copy(instance, point, rate)
    by_role: dict[str, float] = {}
    for s, cap in _capacities(sub, point):
        by_role[s.role] = by_role.get(s.role, 0.0) + cap.pooled_capacity_rps(s.count)
    return min(by_role.values())


def _slo_rate(point: MeasuredPoint, instance: Instance) -> float:
    if point.slo_rate_rps is not None:
        return point.slo_rate_rps
    assert point.slo_tokens_per_min is not None
    w = instance.workloads[point.model]
    tokens = (point.input_tokens_mean or w.input_tokens_mean) + (point.output_tokens_mean or w.output_tokens_mean)
    return point.slo_tokens_per_min / 60.0 / tokens


def _meets(res: dict[str, Any]) -> bool:
    return bool(res["slo_met"])


def simulated_slo_rate(instance: Instance, point: MeasuredPoint, start: float, requests: int,
                       seed: int) -> tuple[float, str | None]:
    """Largest rate whose simulation meets both SLOs: bisection on [0.5, 1.5] x ``start`` (8 steps), and a note
    when the answer is an edge of that bracket (the SLOs missed at its low end, or met at its high end)."""
    from pdopt.sim.options import SimOptions
    from pdopt.sim.run import simulate

    sub, plan = deployment_plan(instance, point, start)  # capacities once; each rate scales the plan's demand

    def ok(rate: float) -> bool:
        scaled = plan.replace(scale_demand=rate / start)
        return _meets(simulate(sub, scaled, SimOptions(requests=requests, seed=seed)).models[point.model])

    lo, hi = 0.5 * start, 1.5 * start
    if not ok(lo):
        return lo, "the simulation misses the SLOs already at half the capacity model's rate: at most this"
    if ok(hi):
        return hi, "the simulation meets the SLOs at 1.5 x the capacity model's rate: at least this"
    for _ in range(8):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return (lo + hi) / 2, None


def _error(pred: float | None, measured: float) -> float | None:
    if pred is None or not math.isfinite(pred):
        return None
    err = (pred - measured) / measured
    return err if math.isfinite(err) else None


def _check_models(instance: Instance, points: list[MeasuredPoint]) -> None:
    for point in points:
        if point.model not in instance.workloads:
            raise InputError(f"{point.where}: model '{point.model}' has no workload in instance '{instance.name}' "
                             f"(it has {', '.join(instance.workloads)})")


def evaluate(instance: Instance, points: list[MeasuredPoint], requests: int = 20000, seed: int = 0,
             simulate_runs: bool = True) -> list[PointResult]:
    """Each point with the capacity model's and (unless ``simulate_runs`` is False) the simulator's
    predictions."""
    from pdopt.sim.options import SimOptions
    from pdopt.sim.predict import predicted_metrics
    from pdopt.sim.run import simulate

    _check_models(instance, points)
    results = []
    for point in points:
        if point.rate_rps is None:
            measured = _slo_rate(point, instance)
            model_rate = capacity_rate(instance, point, measured)
            sim_rate, note = (simulated_slo_rate(instance, point, model_rate, requests, seed)
                              if simulate_runs and point.deployment.whole else (None, None))
            w = instance.workloads[point.model]
            tokens = 60.0 * ((point.input_tokens_mean or w.input_tokens_mean)
                             + (point.output_tokens_mean or w.output_tokens_mean))
            row = {"metric": "slo_throughput", "statistic": "rate_rps", "measured": measured,
                   "capacity_model": model_rate, "capacity_model_error": _error(model_rate, measured),
                   "simulator": sim_rate, "simulator_error": _error(sim_rate, measured),
                   "tokens_per_min": {"measured": measured * tokens, "capacity_model": model_rate * tokens,
                                      "simulator": None if sim_rate is None else sim_rate * tokens},
                   **({"simulator_note": note} if note else {})}
            results.append(PointResult(point, measured, [row]))
            continue
        sub, plan = deployment_plan(instance, point, point.rate_rps)
        pred = predicted_metrics(sub, plan)[point.model]
        sim = (simulate(sub, plan, SimOptions(requests=requests, seed=seed)).models[point.model]
               if simulate_runs and point.deployment.whole else None)
        if "ttft_s" not in pred and "aggregated" in pred:
            pred = pred["aggregated"]
        rows = []
        for metric, measured_stats in (("ttft_s", point.ttft_s), ("tpot_ms", point.tpot_ms)):
            for stat, value in measured_stats.items():
                p = (pred.get(metric) or {}).get(stat)
                s = sim[metric][stat] if sim is not None else None
                half = sim[metric].get("ci99_half_width") if sim is not None and stat == "mean" else None
                rows.append({"metric": metric, "statistic": stat, "measured": value,
                             "capacity_model": p, "capacity_model_error": _error(p, value),
                             "simulator": s, "simulator_error": _error(s, value),
                             "simulator_ci99_half_width": half,
                             **({"overloaded": pred["overloaded"]} if pred.get("overloaded") else {})})
        if point.pd_handoff_ms is not None:
            rows.append(_handoff_row(sub, point, pred))
        results.append(PointResult(point, point.rate_rps, rows))
    return results


def _handoff_row(sub: Instance, point: MeasuredPoint, pred: dict[str, Any]) -> dict[str, Any]:
    """The measured P->D handoff (EvalScope: the gap between a request's first and second streamed chunk) beside
    the model's: the KV transfer of its prefill shapes (each shape's TTFT overhead: the network's transfer time
    when the instance states a network, else the workload's ``ttft_overhead_s``; weighted by the instances of each
    shape) plus one decode iteration (the predicted mean TPOT), in ms."""
    from pdopt.instance import PrefillProfile
    from pdopt.perf.prefill import shape_workload

    total, count = 0.0, 0
    for s in point.deployment.shapes:
        if s.role != "prefill":
            continue
        prof = sub.profile(point.model, "prefill", s.gpu_type, s.gpus_per_instance, s.variant)
        shaped = shape_workload(sub, prof) if isinstance(prof, PrefillProfile) else None
        if shaped is not None and not isinstance(shaped, str):
            total += s.count * shaped.ttft_overhead_s * 1000.0
            count += s.count
    tpot = (pred.get("tpot_ms") or {}).get("mean")
    model = total / count + tpot if count and tpot is not None else None
    measured = point.pd_handoff_ms
    assert measured is not None  # called for points that measured it
    return {"metric": "pd_handoff_ms", "statistic": "mean", "measured": measured, "capacity_model": model,
            "capacity_model_error": _error(model, measured), "simulator": None, "simulator_error": None,
            "simulator_ci99_half_width": None}


def summary(results: list[PointResult]) -> dict[str, dict[str, dict[str, float | None]]]:
    """route -> "metric statistic" -> median absolute relative error over the points (None: no finite one)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for route in ROUTES:
        groups: dict[str, list[float]] = {}
        counts: dict[str, int] = {}
        for r in results:
            for row in r.rows:
                key = f"{row['metric']} {row['statistic']}"
                counts[key] = counts.get(key, 0) + 1
                err = row.get(f"{route}_error")
                if err is not None:
                    groups.setdefault(key, []).append(abs(err))
        out[route] = {k: {"median_abs_error": statistics.median(groups[k]) if k in groups else None,
                          "points": float(counts[k]), "predicted": float(len(groups.get(k, [])))}
                      for k in counts}
    return out


def to_dict(results: list[PointResult]) -> dict[str, Any]:
    """The JSON form: ``points`` (source, model, deployment, rate, rows) and ``summary``."""
    return {"points": [{"source": r.point.source, "model": r.point.model, "deployment": r.point.deployment.text,
                        "rate_rps": r.rate_rps, "rows": r.rows} for r in results],
            "summary": summary(results)}

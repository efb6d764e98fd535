"""Simulate a plan over a horizon: each period's traffic against each period's fleet, one run with the transitions.

The run is a sequence of epochs, one per period in the horizon's order; a cyclic horizon is preceded by its last
period (a warm-up: the first period starts from the state the day's end leaves) and followed by its first (a
cool-down: the last period's requests meet the next period's traffic, not an emptying system); neither is
measured. Each epoch holds at least ``requests_per_period`` requests: generated (Poisson, or the gamma renewal
stream its capacity model assumes) at the rate the period's plan serves, for as long as that many requests take;
or, with a trace and ``trace_s_per_hour``, the period's own seconds of the trace (hours x trace_s_per_hour from
the trace's first request, as ``demand_trace`` maps them with ``start_s`` 0) replayed at their own speed,
repeated until there are enough.
So an epoch is not the period's real length: it is long enough to measure the period's steady state and short
enough to keep the run small, and the transitions happen at each epoch's start.

The fleet changes at each epoch's start (the lead time's ramp made the new instances ready, formulations/
horizon.yaml): per placement the first c_t instances serve in period t, an instance kept from the period before
keeps its queue and batch, an instance that leaves finishes what it holds and takes nothing new, and a new one
starts idle. Each server is built (throughput curve, batch cap, steps) from the period in which it first serves
(a server kept into the next period keeps them: an approximation where periods differ in lengths);
its dispatch weight in each period is the capacity that period's plan gives it. Per period and model the result
gives TTFT and TPOT statistics over the requests arriving in the period, each model's SLOs of that period,
attainment, whether a miss is beyond the 99% confidence interval (``ci99``, ``slo_not_refuted``), and the same
statistics over the first tenth of the period's requests (``after_boundary``: the transition itself).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pdopt.errors import InputError
from pdopt.instance import Instance
from pdopt.interrupt import Interruption
from pdopt.io.traces import Trace
from pdopt.optimize.horizon import HorizonPlan, PeriodPlan
from pdopt.sim.assumptions import ServiceRule, decode_dispatch, draw_factors, prefill_dispatch
from pdopt.sim.engine import DecodeServer, FloatArray, PrefillServer, RequestArrays, simulate_engine
from pdopt.sim.options import SimOptions
from pdopt.sim.run import (
    BATCH_MEANS,
    PlannedInstance,
    ServerFactory,
    _summary,
    check_plan_matches,
    planned_instances,
)
from pdopt.sim.traffic import traffic

__all__ = ["HorizonSimResult", "simulate_horizon"]

BOUNDARY_FRACTION = 0.1
"""The share of a period's requests (the first by arrival) reported apart as ``after_boundary``."""


@dataclass
class HorizonSimResult:
    """Simulated SLO metrics of a plan over a horizon, period by period."""

    instance: str
    periods: list[dict[str, Any]]
    requests_simulated: int
    wall_s: float
    seed: int
    options: dict[str, Any]
    traffic: str
    partial: bool = False
    warnings: list[str] = field(default_factory=list)

    def slo_met(self) -> bool:
        """True when every model meets its SLOs in every period (point estimates)."""
        return all(m["slo_met"] for p in self.periods for m in p["models"].values())

    def slo_not_refuted(self) -> bool:
        """True when no period's SLO is missed beyond its 99% confidence interval (``ci99``)."""
        return all(m["slo_not_refuted"] for p in self.periods for m in p["models"].values())

    def to_dict(self) -> dict[str, Any]:
        """JSON form: per period its name, fleet, requests and per model the statistics and verdicts."""
        return {"instance": self.instance, "requests_simulated": self.requests_simulated, "wall_s": self.wall_s,
                "seed": self.seed, "options": self.options, "traffic": self.traffic, "slo_met": self.slo_met(),
                "slo_not_refuted": self.slo_not_refuted(),
                "partial": self.partial, "warnings": self.warnings, "periods": self.periods}


Key = tuple[str, str, str, int, str, str]


def _key(pi: PlannedInstance) -> Key:
    return (pi.model, pi.role, pi.gpu_type, pi.gpus_per_instance, pi.pool, pi.variant)


def _looped(trace: Trace, start_s: float, length_s: float, at_least: int) -> tuple[Trace, int]:
    """Trace seconds [start_s, start_s + length_s) from 0, repeated (each copy length_s later) until at least
    ``at_least`` requests; and the number of copies."""
    keep = (trace.arrival_s >= start_s) & (trace.arrival_s < start_s + length_s)
    if keep.sum() < 2:
        raise InputError(f"trace: seconds [{start_s:g}, {start_s + length_s:g}) hold {int(keep.sum())} request(s); "
                         "a period needs at least 2 (check --trace-s-per-hour)")
    times = trace.arrival_s[keep] - start_s
    copies = math.ceil(at_least / len(times))
    arrival = np.concatenate([times + k * length_s for k in range(copies)])
    return Trace(arrival, np.tile(trace.input_tokens[keep], copies), np.tile(trace.output_tokens[keep], copies),
                 trace.source), copies


def _epochs(plan: HorizonPlan, cyclic: bool, static: bool) -> tuple[list[PeriodPlan], list[bool]]:
    """The periods run in order, and which are measured (a cyclic horizon: last first, first again at the end)."""
    periods = list(plan.static_peak if static else plan.periods)
    if not cyclic or len(periods) == 1:
        return periods, [True] * len(periods)
    return [periods[-1], *periods, periods[0]], [False, *([True] * len(periods)), False]


def simulate_horizon(instance: Instance, plan: HorizonPlan, options: SimOptions | None = None,
                     trace: Trace | None = None, trace_s_per_hour: float | None = None,
                     requests_per_period: int = 2000, static: bool = False) -> HorizonSimResult:
    """Simulate ``plan`` (or with ``static`` its static plan for the peak) period by period; see the module
    docstring."""
    opts = options or SimOptions()
    opts.validate()
    if instance.horizon is None:
        raise InputError("simulate over a horizon: the instance has no horizon")
    if trace is not None and len(instance.workloads) > 1:
        raise InputError(f"trace: one trace replays one model's traffic; the instance has {len(instance.workloads)} "
                         "models (simulate without --trace, at each period's planned rates)")
    if not plan.has_plan or (static and not plan.static_peak):
        raise InputError(f"plan: status '{plan.status.value}' has no {'static ' if static else ''}fleet to simulate")
    simulated = plan.static_peak if static else plan.periods
    if [p.name for p in simulated] != instance.horizon.names:
        raise InputError(f"plan: its {'static_peak ' if static else ''}periods {[p.name for p in simulated]} are "
                         f"not the instance's {instance.horizon.names}")
    if requests_per_period < 100:
        raise InputError(f"requests per period: at least 100, got {requests_per_period}")
    if trace is not None and (trace_s_per_hour is None or not 0 < trace_s_per_hour <= 3600 * 24 * 366):
        raise InputError(f"trace_s_per_hour: give the trace seconds of one hour of the horizon (0 to 31,622,400), got "
                         f"{trace_s_per_hour!r}")
    start = time.perf_counter()
    rng = np.random.default_rng(opts.seed)
    models = list(instance.workloads)
    epochs, measured = _epochs(plan, instance.horizon.cyclic, static)
    offsets = {p.name: sum(q.hours for q in instance.horizon.periods[:i]) for i, p in
               enumerate(instance.horizon.periods)}
    insts = {p.name: instance.period_instance(p.name) for p in plan.periods}
    parts = []
    begin = 0.0
    for period in epochs:
        inst = insts[period.name]
        check_plan_matches(inst, period.plan)
        if any(pl.role == "aggregated" for pl in period.plan.placements):
            raise InputError(f"period {period.name}: aggregated instances are not simulated over a horizon (plan "
                             "the period alone and simulate it)")
        rates = list(period.plan.served_demand_rps(inst).values())
        if trace is None:
            arrival, model, lin, lout = traffic(inst, models, rates, dataclasses.replace(
                opts, requests=requests_per_period), rng, None)
            length = float(arrival[-1]) + 1.0 / sum(rates)
        else:
            assert trace_s_per_hour is not None
            seg_len = period.hours * trace_s_per_hour
            seg, copies = _looped(trace, offsets[period.name] * trace_s_per_hour, seg_len, requests_per_period)
            arrival, model, lin, lout = traffic(inst, models, rates, dataclasses.replace(
                opts, requests=len(seg.arrival_s) * len(models), trace_rate="native"), rng, seg)
            length = copies * seg_len
        hit = np.array([inst.workloads[m].prefix_cache_hit_rate for m in models])[model.astype(int)]
        parts.append((begin, arrival + begin, model, lin * (1.0 - hit), lout))
        begin += length
    arrival = np.concatenate([p[1] for p in parts])
    model = np.concatenate([p[2] for p in parts])
    cached = np.concatenate([p[3] for p in parts])
    lout = np.concatenate([p[4] for p in parts])
    epoch_of = np.concatenate([np.full(len(p[1]), e) for e, p in enumerate(parts)])
    # servers: per placement key the first c_t instances serve in epoch t, built from their first period
    counts: dict[Key, list[int]] = {}
    first: dict[Key, dict[int, tuple[str, PlannedInstance]]] = {}
    capacity: dict[Key, dict[int, float]] = {}
    for e, period in enumerate(epochs):
        for pi in planned_instances(period.plan):
            k = _key(pi)
            row = counts.setdefault(k, [0] * len(epochs))
            first.setdefault(k, {}).setdefault(row[e], (period.name, pi))
            capacity.setdefault(k, {})[e] = pi.capacity_rps
            row[e] += 1
    factory = ServerFactory(models, opts)
    prefill: list[PrefillServer] = []
    decode: list[DecodeServer] = []
    for k in sorted(counts):
        for i in range(max(counts[k])):
            name, pi = first[k][i]
            srv, _ = factory.make(insts[name], pi, cached, model)
            srv.epochs = frozenset(e for e, c in enumerate(counts[k]) if i < c)
            srv.epoch_weights = capacity[k]
            if isinstance(srv, PrefillServer):
                prefill.append(srv)
            else:
                decode.append(srv)
    rules = factory.rule_list or [ServiceRule("deterministic", 0.0, None, 0.0)]
    n = len(arrival)
    factors = np.vstack([draw_factors(rng, n, r) for r in rules])
    req = RequestArrays(model=model.astype(np.int64), arrival_s=arrival, input_tokens=cached,
                        decode_steps=np.maximum(1, np.round(lout)).astype(np.int64),
                        service_factor=factors[0] if len(rules) == 1 else factors, dispatch_u=rng.random(n))
    overhead = [instance.workloads[m].ttft_overhead_s for m in models]
    with Interruption() as interruption:
        try:
            eng = simulate_engine(req, prefill, decode, overhead,
                                  [prefill_dispatch(instance, m, opts) for m in models],
                                  [decode_dispatch(instance, m, opts) for m in models],
                                  stop=lambda: interruption.requested, epoch_starts=[p[0] for p in parts[1:]])
        except ValueError as exc:
            raise InputError(f"plan: {exc}") from None
    ttft = req.join_s - req.arrival_s
    tpot = (req.finish_s - req.join_s) / req.decode_steps
    out = []
    for e, period in enumerate(epochs):
        if not measured[e]:
            continue
        inst = insts[period.name]
        mine = (epoch_of == e) & ~np.isnan(req.finish_s)
        per_model: dict[str, Any] = {}
        for i, m in enumerate(models):
            sel = mine & (req.model == i)
            if not sel.any():
                continue
            idx = np.flatnonzero(sel)
            head = idx[: max(1, int(len(idx) * BOUNDARY_FRACTION))]
            per_model[m] = _metrics(inst, m, ttft, tpot, idx, head)
        out.append({"name": period.name, "hours": period.hours, "requests": int(mine.sum()),
                    "simulated_s": float(parts[e + 1][0] - parts[e][0]) if e + 1 < len(parts) else None,
                    "instances": {f"{m} {r}": sum(p.count for p in period.plan.placements
                                                  if (p.model, p.role) == (m, r))
                                  for m in models for r in ("prefill", "decode")},
                    "models": per_model})
    kind = (f"trace {trace.source}, {trace_s_per_hour:g} trace seconds per hour" if trace is not None
            else "generated at each period's planned rate")
    opt_dict = {k: getattr(opts, k) for k in opts.__dataclass_fields__}
    opt_dict.update(requests_per_period=requests_per_period, static=static)
    return HorizonSimResult(instance.name, out, n, time.perf_counter() - start, opts.seed, opt_dict, kind,
                            eng.stopped)


def _batch_ci99(values: FloatArray) -> float:
    """Half-width of the 99% confidence interval of a mean by batch means (``BATCH_MEANS`` consecutive batches,
    Student t): the requests of a period are correlated through the queues, so the batches, not the requests,
    are the independent-enough samples."""
    k = min(BATCH_MEANS, len(values))
    if k < 2:
        return math.inf
    from scipy import stats  # deferred, as in pdopt.sim.run

    means = np.array([b.mean() for b in np.array_split(values, k)])
    return float(stats.t.ppf(0.995, k - 1) * means.std(ddof=1) / np.sqrt(k))


def _within_ci(values: FloatArray, target: float, statistic: str) -> dict[str, Any]:
    """Is the SLO (``statistic`` of ``values`` <= ``target``) met, or at least not refuted at 99%? A mean: its
    batch-means interval reaches down to the target. A percentile pXX: the attainment (share of values within
    the target) has an interval reaching up to XX%. A plan sized exactly at its SLO, as a cost-optimal plan is,
    lands on either side of it in any finite run; only a miss beyond the interval refutes it."""
    if statistic == "mean":
        mean, hw = float(values.mean()), _batch_ci99(values)
        return {"measure": "mean", "value": mean, "ci99_half_width": hw, "not_refuted": mean - hw <= target}
    share = float(statistic.removeprefix("p")) / 100.0
    hits = (values <= target).astype(float)
    att, hw = float(hits.mean()), _batch_ci99(hits)
    return {"measure": "attainment", "value": att, "needed": share, "ci99_half_width": hw,
            "not_refuted": att + hw >= share}


def _metrics(inst: Instance, m: str, ttft: FloatArray, tpot: FloatArray, idx: Any, head: Any) -> dict[str, Any]:
    """One model's statistics in one period, its SLO verdicts and attainment; the same over ``head``."""
    w = inst.workloads[m]
    t_s, p_ms = _summary(ttft[idx]), _summary(tpot[idx], 1000.0)
    ttft_ok = t_s[w.ttft.statistic] <= w.ttft.target_s
    tpot_ok = p_ms[w.tpot.statistic] <= w.tpot.target_ms
    h_t, h_p = _summary(ttft[head]), _summary(tpot[head], 1000.0)
    ttft_ci = _within_ci(ttft[idx], w.ttft.target_s, w.ttft.statistic)
    tpot_ci = _within_ci(tpot[idx] * 1000.0, w.tpot.target_ms, w.tpot.statistic)
    return {"requests": len(idx), "ttft_s": t_s, "tpot_ms": p_ms,
            "slo": {"ttft_target_s": w.ttft.target_s, "ttft_statistic": w.ttft.statistic,
                    "tpot_target_ms": w.tpot.target_ms, "tpot_statistic": w.tpot.statistic},
            "slo_met": bool(ttft_ok and tpot_ok), "ttft_slo_met": bool(ttft_ok), "tpot_slo_met": bool(tpot_ok),
            "attainment": {"ttft": float(np.mean(ttft[idx] <= w.ttft.target_s)),
                           "tpot": float(np.mean(tpot[idx] * 1000.0 <= w.tpot.target_ms))},
            "ci99": {"ttft": ttft_ci, "tpot": tpot_ci},
            "slo_not_refuted": bool(ttft_ci["not_refuted"] and tpot_ci["not_refuted"]),
            "after_boundary": {"requests": len(head), "ttft_s": h_t[w.ttft.statistic],
                               "tpot_ms": h_p[w.tpot.statistic],
                               "slo_met": bool(h_t[w.ttft.statistic] <= w.ttft.target_s
                                               and h_p[w.tpot.statistic] <= w.tpot.target_ms)}}


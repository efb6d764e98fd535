"""Plans that serve a model aggregated, disaggregated or both: the router's split, and the aggregated engines.

The router sends each request of a model to its aggregated instances with probability
``models.<m>.aggregated_rps / models.<m>.demand_rps`` (the split the plan chose; 1 when the model has no P/D
pair, 0 when it has no aggregated instance), independently of everything else, and the rest to the P/D pairs;
among its aggregated instances a request goes to one drawn with probability proportional to the instance's
planned capacity (Poisson splitting, which the capacity model assumes). Each aggregated instance is then one
engine of :mod:`pdopt.sim.aggregated`, fed its requests in arrival order. The draws use their own random stream
(seeded by the run's seed), so a plan without aggregated instances is simulated exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdopt.instance import AggregatedProfile, Instance, IterationModel
from pdopt.io import InputError
from pdopt.perf.aggregated import aggregated_overhead_s, kv_token_capacity
from pdopt.perf.aggregated_fit import planned_iteration
from pdopt.plan import Placement, Plan
from pdopt.sim.aggregated import simulate_aggregated
from pdopt.sim.engine import BoolArray, FloatArray, IntArray

ROUTER_STREAM = 7
"""Second word of the router's random seed ``[seed, 7]``."""


def aggregated_share(plan: Plan, model: str) -> float:
    """Share of a model's requests the router sends to its aggregated instances."""
    roles = {p.role for p in plan.placements if p.model == model}
    if "aggregated" not in roles:
        return 0.0
    if not {"prefill", "decode"} <= roles:
        return 1.0
    mp = plan.models.get(model)
    if mp is None or mp.demand_rps <= 0:
        return 0.0
    return min(max(mp.aggregated_rps / mp.demand_rps, 0.0), 1.0)


def route(plan: Plan, models: list[str], model_of: IntArray, seed: int) -> tuple[BoolArray, np.random.Generator]:
    """Which requests go to aggregated instances, and the router's random stream (for the instance draws)."""
    rng = np.random.default_rng([seed, ROUTER_STREAM])
    share = np.array([aggregated_share(plan, m) for m in models])
    if not share.any():
        return np.zeros(len(model_of), dtype=bool), rng
    return rng.random(len(model_of)) < share[model_of], rng


@dataclass
class AggregatedRun:
    """Outcomes of the requests served by aggregated instances (NaN where the run stopped first)."""

    ttft_s: FloatArray
    tpot_s: FloatArray
    finish_s: FloatArray
    makespan_s: float
    stopped: bool
    described: list[dict[str, Any]]


def _engine(instance: Instance, p: Placement) -> tuple[AggregatedProfile, IterationModel, int]:
    """A placement's aggregated profile, the iteration model it was planned with, and its KV tokens."""
    prof = instance.profile(p.model, "aggregated", p.gpu_type, p.gpus_per_instance, p.variant)
    assert isinstance(prof, AggregatedProfile)
    return prof, planned_iteration(instance, prof), kv_token_capacity(instance, prof)


def run_aggregated(instance: Instance, plan: Plan, models: list[str], to_agg: BoolArray, rng: np.random.Generator,
                   arrival_s: FloatArray, model_of: IntArray, lin: FloatArray, lout: FloatArray,
                   stop: Callable[[], bool]) -> AggregatedRun:
    """Simulate every aggregated instance of the plan on the requests routed to aggregated instances."""
    n = len(arrival_s)
    ttft = np.full(n, np.nan)
    tpot = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    makespan, stopped = 0.0, False
    described: list[dict[str, Any]] = []
    for i, m in enumerate(models):
        mine = [p for p in plan.placements if p.model == m and p.role == "aggregated"]
        if not mine:
            continue
        insts = [p for p in mine for _ in range(p.count)]
        caps = np.array([p.capacity_rps for p in insts], dtype=float)
        idx = np.flatnonzero(to_agg & (model_of == i))
        pick = rng.choice(len(insts), size=len(idx), p=caps / caps.sum()) if len(idx) else np.zeros(0, dtype=int)
        w = instance.workloads[m]
        overhead = aggregated_overhead_s(instance, w)
        engines = {id(p): _engine(instance, p) for p in mine}  # per placement: its profile, model and KV tokens
        for k, p in enumerate(insts):
            prof, iteration, kv = engines[id(p)]
            sel = idx[pick == k]
            prompts = np.maximum(1, np.round(lin[sel])).astype(np.int64)
            outs = np.maximum(1, np.round(lout[sel])).astype(np.int64)
            try:
                res = simulate_aggregated(iteration, prof.token_budget, prof.max_batch, kv,
                                          arrival_s[sel], prompts, outs, w.prefix_cache_hit_rate, stop=stop)
            except ValueError as exc:
                raise InputError(f"model '{m}', aggregated instance on {p.gpu_type} x{p.gpus_per_instance}: "
                                 f"{exc}") from None
            ttft[sel] = res.ttft_s + overhead
            tpot[sel] = np.nan_to_num(res.tpot_ms, nan=0.0) / 1000.0
            tpot[sel[np.isnan(res.finish_s)]] = np.nan
            finish[sel] = res.finish_s
            end = float(np.nanmax(res.finish_s)) if np.isfinite(res.finish_s).any() else 0.0
            makespan = max(makespan, end)
            stopped = stopped or res.stopped
            described.append({"model": m, "role": "aggregated", "gpu_type": p.gpu_type,
                              "gpus_per_instance": p.gpus_per_instance, "pool": p.pool, "served": len(sel),
                              "busy_s": res.busy_ms / 1000.0, "iterations": res.iterations,
                              "mean_batch": res.decode_batch_sum / res.iterations if res.iterations else 0.0,
                              "kv_tokens": kv})
    for d in described:
        d["utilisation"] = d.pop("busy_s") / makespan if makespan > 0 else 0.0
    return AggregatedRun(ttft, tpot, finish, makespan, stopped, described)

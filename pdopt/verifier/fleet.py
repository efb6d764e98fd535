"""The fleet against the instance: shapes and pools exist and agree, capacities, demand cover, domain loss.

- Every placement's pool must exist and hold its GPU type (``unknown_pool``, ``pool_gpu_type``); its shape must be
  a profile (``unknown_shape``) that serves something at the SLOs (``unusable_shape``). An unknown or unusable
  shape is credited with no capacity.
- The plan's per-instance ``capacity_rps`` must equal the recomputed one (``capacity_mismatch``; an aggregated
  shape within :data:`AGGREGATED_TOLERANCE`, the figure then credited being the plan's). For pooled
  prefill (``queue_model: ggc``) all instances of a shape share one queue, so each is credited with the exact
  G/G/c capacity of the group, lambda(n) / n with n the group's total count, and the plan's figure may not
  exceed it (the planner's linearised gains are at most the exact curve).
- Demand cover (``demand_cover``): per model with a workload, each role's net capacity is
  sum(credited capacity x count) - k x c_max, where k = ``spare_instances[role]`` and c_max is the largest
  single-instance capacity among the role's usable shapes (N+k: losing any k instances still leaves the rest);
  a role with no instance holds no spares only when its serving mode is unused. The demand x ``scale_demand`` x
  ``scale`` must be served: a model served disaggregated needs min(net prefill, net decode) >= demand; one served
  aggregated, net aggregated >= demand; one served both ways, net aggregated + min(net prefill, net decode) >=
  demand (a router can split it so), and the split the plan states (``models.<m>.aggregated_rps``) must fit each
  part (``mode_split``). Aggregated instances of a model whose workload excludes that mode, or P/D instances of
  one limited to aggregated, are ``mode_not_allowed``.
- Domain loss (``domain_loss_cover``, with ``resilience``): for every failure domain D of the pools, every model
  keeps, over placements outside D (single-instance capacities), aggregated + min(prefill, decode) >= fraction x
  demand.
"""

from __future__ import annotations

from pdopt.instance import PrefillProfile
from pdopt.verifier.capacity import (
    DEFAULT_VARIANT,
    demand_rps,
    find_profile,
    largest_usable_capacity,
    pooled_capacity_rps,
    recompute_shape,
    single_capacity,
)
from pdopt.verifier.parse import ROLE_NAMES, Placement, PlanContext, close
from pdopt.verifier.registry import Violation

AGGREGATED_TOLERANCE = 1e-3
"""Relative tolerance between the plan's and the recomputed capacity of an aggregated shape. Both come from one
analysis (docs/capacity.md) computed by two independent implementations whose numerical schemes differ
(Poisson truncations, the FFT lattice of the TPOT law, root finders); on the bundled instances they agree within
1e-4 (tests/test_verifier_aggregated.py). Within it the plan's figure is credited."""


def check_shapes(ctx: PlanContext) -> None:
    """Shapes and pools exist and agree; per-instance capacity recomputed into ``ctx.capacity``."""
    instance, out, tol = ctx.instance, ctx.out, ctx.tol
    for p in ctx.placements:
        if p.pool not in instance.node_pools:
            out.append(Violation("unknown_pool", f"{p.label}: the instance has no node pool '{p.pool}' "
                                                 f"(pools: {', '.join(sorted(instance.node_pools))})"))
        elif instance.node_pools[p.pool].gpu_type != p.gpu_type:
            out.append(Violation("pool_gpu_type", f"{p.label}: pool '{p.pool}' holds "
                                                  f"{instance.node_pools[p.pool].gpu_type} GPUs, not {p.gpu_type}"))
        shape = recompute_shape(instance, *p.shape)
        if shape is None:
            out.append(Violation("unknown_shape", f"{p.label}: no {p.role} profile for model '{p.model}' on "
                                                  f"{p.gpu_type} with {p.gpus} GPUs per instance and variant "
                                                  f"'{p.variant}'"))
            continue
        ctx.capacity[id(p)] = shape.capacity_rps
        if shape.unusable is not None:
            out.append(Violation("unusable_shape", f"{p.label}: this shape serves nothing at the SLOs "
                                                   f"({shape.unusable})"))
        pooled = _pooled_per_instance(ctx, p)
        if pooled is not None and shape.unusable is None:
            ctx.capacity[id(p)] = pooled
            if p.capacity_rps is not None and p.capacity_rps > pooled * (1.0 + tol):
                out.append(Violation("capacity_mismatch", f"{p.label}: capacity_rps {p.capacity_rps:.10g} per "
                                                          f"instance over-states the pooled G/G/c capacity "
                                                          f"{pooled:.10g} of its group"))
            continue
        within = max(tol, AGGREGATED_TOLERANCE) if p.role == "aggregated" else tol
        if p.capacity_rps is not None and not close(p.capacity_rps, shape.capacity_rps, within):
            out.append(Violation("capacity_mismatch", f"{p.label}: capacity_rps {p.capacity_rps:.10g} per instance, "
                                                      f"recomputed {shape.capacity_rps:.10g} req/s"))
        elif p.capacity_rps is not None and p.role == "aggregated" and shape.unusable is None:
            ctx.capacity[id(p)] = p.capacity_rps  # confirmed within AGGREGATED_TOLERANCE: the plan's figure counts


def _pooled_per_instance(ctx: PlanContext, p: Placement) -> float | None:
    """For a ``ggc`` prefill placement: the pooled capacity of all instances of its shape (one queue in front of
    n = their total count) over n. None for any other placement."""
    wl = ctx.instance.workloads.get(p.model)
    if wl is None or p.role != "prefill" or wl.queue_model != "ggc":
        return None
    prof = find_profile(ctx.instance, *p.shape)
    if not isinstance(prof, PrefillProfile):
        return None
    n = int(sum(q.count for q in ctx.placements if q.shape == p.shape))
    if n < 1:
        return None
    pooled = pooled_capacity_rps(ctx.instance, prof, n)
    return None if pooled is None else pooled / n


def stated_aggregated_rps(ctx: PlanContext, model: str) -> float:
    """The req/s the plan routes to a model's aggregated instances (``models.<m>.aggregated_rps``; 0 when a plan
    from an earlier version does not state it)."""
    entry = ctx.plan.get("models", {}).get(model) if isinstance(ctx.plan.get("models"), dict) else None
    value = entry.get("aggregated_rps") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _role_supply(ctx: PlanContext, model: str, role: str) -> tuple[float, float, int, list[Placement]]:
    """(capacity, spare reserve, spares k, placements) of one model's role; the reserve is 0 for a role whose
    serving mode the model may not use, and for a role with no instance of a mode the model may leave unused."""
    served = [p for p in ctx.placements if p.model == model and p.role == role]
    supply = sum(ctx.capacity.get(id(p), 0.0) * p.count for p in served)
    wl = ctx.instance.workloads[model]
    k = next((n for r, n in wl.spare_instances.items() if r == role), 0)
    modes = ctx.instance.serving_modes(model)
    mode = "aggregated" if role == "aggregated" else "disaggregated"
    optional = mode not in modes or (len(modes) == 2 and not served)
    reserve = k * largest_usable_capacity(ctx.instance, model, role) if k and not optional else 0.0
    return supply, reserve, k if reserve else 0, served


def _parts(served: list[Placement], ctx: PlanContext) -> str:
    text = ", ".join(f"{p.count:g} x {ctx.capacity.get(id(p), 0.0):.6g} ({p.gpu_type} x{p.gpus}"
                     + ("" if p.variant == DEFAULT_VARIANT else f" {p.variant}") + ")" for p in served)
    return text or "no instances"


def check_demand_cover(ctx: PlanContext) -> None:
    """Each model's demand x every multiplier of the plan is served by its roles' capacity net of spares: P/D
    pairs (the smaller of prefill and decode), aggregated instances, or both split by the router."""
    instance, out, tol = ctx.instance, ctx.out, ctx.tol
    for model in instance.workloads:
        demand = demand_rps(instance, model, ctx.scale)
        modes = ctx.instance.serving_modes(model)
        net: dict[str, float] = {}
        for role in (*ROLE_NAMES, "aggregated"):
            supply, reserve, k, served = _role_supply(ctx, model, role)
            mode = "aggregated" if role == "aggregated" else "disaggregated"
            if served and mode not in modes:
                out.append(Violation("mode_not_allowed", f"model '{model}': {len(served)} {role} placement(s), "
                                                         f"but the workload does not allow {mode} serving"))
            net[role] = supply - reserve
            alone = demand if len(modes) == 1 and mode in modes else 0.0
            if supply < (alone + reserve) * (1.0 - tol):
                spare = (f" plus {k} spare(s) x {reserve / k:.6g} req/s (its largest usable instance) = "
                         f"{alone + reserve:.6g} req/s" if k else "")
                out.append(Violation("demand_cover", f"model '{model}', role {role}: capacity {supply:.6g} req/s "
                                                     f"({_parts(served, ctx)}) is below the demand "
                                                     f"{alone:.6g} req/s{spare}"))
        if len(modes) < 2:
            continue
        pairs = max(0.0, min(net["prefill"], net["decode"]))
        both = max(0.0, net["aggregated"]) + pairs
        if both < demand * (1.0 - tol):
            out.append(Violation("demand_cover", f"model '{model}': aggregated capacity {net['aggregated']:.6g} "
                                                 f"plus P/D capacity {pairs:.6g} req/s (net of spares) is below "
                                                 f"the demand {demand:.6g} req/s"))
            continue
        share = stated_aggregated_rps(ctx, model)
        if share < -tol * demand or share > demand * (1.0 + tol) or share > max(net["aggregated"], 0.0) * (
                1.0 + tol) + 1e-9 or demand - share > pairs * (1.0 + tol) + 1e-9:
            out.append(Violation("mode_split", f"model '{model}': the plan routes {share:.6g} of {demand:.6g} "
                                               f"req/s to aggregated instances (net capacity "
                                               f"{net['aggregated']:.6g}) and the rest to P/D pairs (net "
                                               f"capacity {pairs:.6g})"))


def check_domain_loss(ctx: PlanContext) -> None:
    """After losing every instance in any one domain, each model and role keeps the stated share of demand."""
    instance = ctx.instance
    if instance.resilience is None:
        return
    fraction = instance.resilience.domain_loss_fraction
    dom = {pid: pool.domain for pid, pool in instance.node_pools.items()}
    for lost in sorted(set(dom.values())):
        for model in instance.workloads:
            need = fraction * demand_rps(instance, model, ctx.scale)
            left = {role: sum(single_capacity(instance, *p.shape) * p.count for p in ctx.placements
                              if p.model == model and p.role == role and dom.get(p.pool) != lost)
                    for role in (*ROLE_NAMES, "aggregated")}
            kept = left["aggregated"] + min(left["prefill"], left["decode"])
            if kept < need * (1.0 - ctx.tol):
                ctx.out.append(Violation("domain_loss_cover", f"losing domain '{lost}' leaves model '{model}' "
                                                              f"{kept:.6g} req/s (prefill {left['prefill']:.6g}, "
                                                              f"decode {left['decode']:.6g}, aggregated "
                                                              f"{left['aggregated']:.6g}), below {need:.6g}"))

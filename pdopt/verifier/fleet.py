"""The fleet against the instance: shapes and pools exist and agree, capacities, demand cover, domain loss.

- Every placement's pool must exist and hold its GPU type (``unknown_pool``, ``pool_gpu_type``); its shape must be
  a profile (``unknown_shape``) that serves something at the SLOs (``unusable_shape``). An unknown or unusable
  shape is credited with no capacity.
- The plan's per-instance ``capacity_rps`` must equal the recomputed one (``capacity_mismatch``). For pooled
  prefill (``queue_model: ggc``) all instances of a shape share one queue, so each is credited with the exact
  G/G/c capacity of the group, lambda(n) / n with n the group's total count, and the plan's figure may not
  exceed it (the planner's linearised gains are at most the exact curve).
- Demand cover (``demand_cover``): for each model with a workload and each role,
  sum(credited capacity x count) >= (demand x ``scale_demand`` x ``scale`` + k x c_max) x (1 - tol), where
  k = ``spare_instances[role]`` and c_max is the largest single-instance capacity among the role's usable
  shapes: N+k redundancy holds when losing any k instances still leaves the demand covered.
- Domain loss (``domain_loss_cover``, with ``resilience``): for every failure domain D of the pools, every model
  and role keeps sum over placements outside D of single-instance capacity x count >= fraction x demand.
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
        if p.capacity_rps is not None and not close(p.capacity_rps, shape.capacity_rps, tol):
            out.append(Violation("capacity_mismatch", f"{p.label}: capacity_rps {p.capacity_rps:.10g} per instance, "
                                                      f"recomputed {shape.capacity_rps:.10g} req/s"))


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


def check_demand_cover(ctx: PlanContext) -> None:
    """Credited capacity x count over each model's role, less k spares x its largest usable instance, must
    reach its demand x every multiplier of the plan."""
    instance, out, tol = ctx.instance, ctx.out, ctx.tol
    for model, wl in instance.workloads.items():
        demand = demand_rps(instance, model, ctx.scale)
        for role in ROLE_NAMES:
            served = [p for p in ctx.placements if p.model == model and p.role == role]
            supply = sum(ctx.capacity.get(id(p), 0.0) * p.count for p in served)
            k = next((n for r, n in wl.spare_instances.items() if r == role), 0)
            reserve = k * largest_usable_capacity(instance, model, role) if k else 0.0
            if supply < (demand + reserve) * (1.0 - tol):
                parts = ", ".join(f"{p.count:g} x {ctx.capacity.get(id(p), 0.0):.6g} ({p.gpu_type} x{p.gpus}"
                                  + ("" if p.variant == DEFAULT_VARIANT else f" {p.variant}") + ")"
                                  for p in served) or "no instances"
                spare = (f" plus {k} spare(s) x {reserve / k:.6g} req/s (its largest usable instance) = "
                         f"{demand + reserve:.6g} req/s" if k else "")
                out.append(Violation("demand_cover", f"model '{model}', role {role}: capacity {supply:.6g} req/s "
                                                     f"({parts}) is below the demand {demand:.6g} req/s{spare}"))


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
            for role in ROLE_NAMES:
                left = sum(single_capacity(instance, *p.shape) * p.count for p in ctx.placements
                           if p.model == model and p.role == role and dom.get(p.pool) != lost)
                if left < need * (1.0 - ctx.tol):
                    ctx.out.append(Violation("domain_loss_cover", f"losing domain '{lost}' leaves model '{model}' "
                                                                  f"{left:.6g} req/s of {role}, below {need:.6g}"))

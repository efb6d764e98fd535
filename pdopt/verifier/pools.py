"""Pools and GPU types: GPUs, nodes in use, the packing of instances onto nodes, and availability caps.

Per pool of ``node_count`` nodes of ``gpus_per_node`` = K GPUs:

- ``pool_gpu_capacity``: the instances' GPUs, sum(gpus_per_instance x count), must not exceed K x node_count.
- ``pool_node_limit``: the plan's ``nodes_used`` must not exceed ``node_count``.
- ``node_packing``: an instance of at most K GPUs sits inside one node; a larger one takes size / K whole nodes
  of its own, allowed only when its profile ``spans_nodes`` and its size is a multiple of K. The instances must
  fit on ``node_count`` nodes and, when the plan uses fewer, on its ``nodes_used`` (the nodes it pays for), each
  decided exactly by :func:`pdopt.verifier.packing.fits_in_nodes` (fractional counts rounded up: a fraction of an
  instance still needs a slot). A failure says how many nodes the instances need (exact when the search is
  cheap, else the LP lower bound). ``node_packing_undecided`` when the search gives up.

Per GPU type with ``max_gpus`` (``gpu_type_availability``): the GPUs rented, that is whole nodes
(``nodes_used`` x K, or the fewest nodes their GPU volume needs when ``nodes_used`` is unreadable) in node-billed
pools and the instances' GPUs in GPU-billed pools, plus instances placed outside any known pool, must not exceed
the cap. The plan's ``gpus_used`` per type must equal its placements' GPUs, counted by the pool's GPU type
(``summary_mismatch``).
"""

from __future__ import annotations

import math

from pdopt.instance import Instance
from pdopt.verifier.capacity import find_profile
from pdopt.verifier.costs import billed_per_node
from pdopt.verifier.packing import fits_in_nodes, min_nodes, node_lower_bound
from pdopt.verifier.parse import Placement, PlanContext, PoolUse, is_number
from pdopt.verifier.registry import Violation


def _spans(instance: Instance, p: Placement, node_gpus: int) -> bool:
    """Whether an instance larger than a node may take ``size / node`` whole nodes: its profile spans nodes and
    the size is a multiple of the node size (an unknown shape, already reported, gets the benefit of the doubt)."""
    if p.gpus % node_gpus:
        return False
    prof = find_profile(instance, *p.shape)
    return prof is None or prof.spans_nodes


def check_pools(ctx: PlanContext) -> None:
    """Per pool: GPUs in total, the plan's node count against the inventory, then an exact packing of the
    instances into whole nodes (spanning instances take whole nodes of their own) within both."""
    instance, out = ctx.instance, ctx.out
    for pid, use in ctx.pools.items():
        pool = instance.node_pools[pid]
        k = pool.gpus_per_node
        total = k * pool.node_count
        gpus = use.instance_gpus
        if gpus > total:
            out.append(Violation("pool_gpu_capacity", f"pool '{pid}': instances use {gpus:g} GPUs but its "
                                                      f"{pool.node_count} nodes x {k} GPUs hold {total}"))
        if use.nodes_used is not None and use.nodes_used > pool.node_count:
            out.append(Violation("pool_node_limit", f"pool '{pid}': the plan uses {use.nodes_used} nodes, but the "
                                                    f"pool holds {pool.node_count}"))
        small: dict[int, int] = {}
        spanning_nodes = 0
        for p in use.placements:  # a fractional count still needs a whole slot: round up for packing
            n = math.ceil(p.count)
            if p.gpus <= k:
                small[p.gpus] = small.get(p.gpus, 0) + n
            elif _spans(instance, p, k):
                spanning_nodes += n * (p.gpus // k)
            else:
                why = "its profile does not span nodes" if p.gpus % k == 0 else "it is no multiple of the node size"
                out.append(Violation("node_packing", f"{p.label}: an instance of {p.gpus} GPUs cannot be placed on "
                                                     f"pool '{pid}' ({k}-GPU nodes): {why}"))
        limits = [("its", pool.node_count)]
        if use.nodes_used is not None and use.nodes_used < pool.node_count:
            limits.append(("the plan's nodes_used:", use.nodes_used))
        for label, limit in limits:
            ok = fits_in_nodes(small, k, limit - spanning_nodes)
            if ok:
                continue
            what = _describe_pool(use, small, spanning_nodes)
            if ok is None:
                out.append(Violation("node_packing_undecided", f"pool '{pid}': could not decide within the search "
                                                               f"limit whether {what} fit in {label} {limit} nodes"))
            else:
                out.append(Violation("node_packing", f"pool '{pid}' ({k}-GPU nodes): {what} do not fit in {label} "
                                                     f"{limit} nodes, each instance inside one node"
                                                     + _need_nodes(small, k, spanning_nodes)))
            break


def _describe_pool(use: PoolUse, small: dict[int, int], spanning_nodes: int) -> str:
    """The pool's instances by size, with the models and roles of each size, for a packing message."""
    parts = [f"{n} x {g} GPUs (" + ", ".join(sorted({f"{p.model} {p.role}" for p in use.placements
                                                      if p.gpus == g})) + ")"
             for g, n in sorted(small.items(), reverse=True)]
    if spanning_nodes:
        parts.append(f"instances spanning {spanning_nodes} whole node(s)")
    return "the instances " + "; ".join(parts) if parts else "no instances"


def _need_nodes(small: dict[int, int], k: int, spanning_nodes: int) -> str:
    """`` (they need N nodes)``: exact when the instances are few enough to search, else a lower bound."""
    if sum(small.values()) <= 10_000:
        need = min_nodes(small, k)
        if need is not None:
            return f" (they need {need + spanning_nodes})"
    return f" (they need at least {node_lower_bound(small, k) + spanning_nodes})"


def _gpu_type_of(instance: Instance, p: Placement) -> str:
    """The GPUs a placement occupies: its pool's type when the pool exists (physical truth), else its own."""
    pool = instance.node_pools.get(p.pool)
    return pool.gpu_type if pool is not None else p.gpu_type


def check_gpu_types(ctx: PlanContext) -> None:
    """Availability caps per GPU type on GPUs rented, and the plan's ``gpus_used`` against its placements."""
    instance, out, placements = ctx.instance, ctx.out, ctx.placements
    used: dict[str, float] = {}
    for p in placements:
        g = _gpu_type_of(instance, p)
        used[g] = used.get(g, 0.0) + p.gpus_total
    rented: dict[str, float] = {}
    how: dict[str, list[str]] = {}
    for p in placements:  # instances outside any known pool still take GPUs of their type
        if p.pool not in instance.node_pools:
            rented[p.gpu_type] = rented.get(p.gpu_type, 0.0) + p.gpus_total
    for pid, use in ctx.pools.items():
        pool = instance.node_pools[pid]
        if billed_per_node(pool):
            # whole nodes are rented; without a readable nodes_used, the GPU volume is a lower bound
            nodes = use.nodes_used if use.nodes_used is not None else math.ceil(use.instance_gpus / pool.gpus_per_node)
            n = float(nodes * pool.gpus_per_node)
            how.setdefault(pool.gpu_type, []).append(f"{pid}: {nodes} node(s) x {pool.gpus_per_node}")
        else:
            n = use.instance_gpus
            how.setdefault(pool.gpu_type, []).append(f"{pid}: {n:g} instance GPUs")
        rented[pool.gpu_type] = rented.get(pool.gpu_type, 0.0) + n
    for g, gt in instance.gpu_types.items():
        if gt.max_gpus is not None and rented.get(g, 0.0) > gt.max_gpus:
            out.append(Violation("gpu_type_availability", f"GPU type '{g}': the plan rents {rented[g]:g} GPUs ("
                                                          + ", ".join(how.get(g, ["outside known pools"]))
                                                          + f"), above its cap max_gpus = {gt.max_gpus}"))
    stated = ctx.plan.get("gpus_used")
    if not isinstance(stated, dict):
        out.append(Violation("bad_plan_field", f"gpus_used: expected an object, got {stated!r}"))
        return
    for g in sorted(set(stated) | set(used), key=str):
        val = stated.get(g, 0)
        if not is_number(val):
            out.append(Violation("bad_plan_field", f"gpus_used.{g}: expected a number, got {val!r}"))
        elif val != used.get(g, 0.0):
            out.append(Violation("summary_mismatch", f"gpus_used.{g} = {val:g}, but the placements use "
                                                     f"{used.get(g, 0.0):g} GPUs of type '{g}'"))

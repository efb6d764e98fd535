"""Prices and billing: each pool's hourly cost, the placements' shares of it, the objective and the budget.

A pool's cost for ``nodes`` nodes in use whose instances occupy ``gpus`` GPUs:

- node billing (``billing: node_hour``, or a ``price_usd_per_node_hour`` and no ``billing``): every used node is
  paid in full, nodes x (node price + activation);
- GPU billing: the instances' GPUs at the GPU type's price plus the activation of every used node,
  gpus x GPU price + nodes x activation.

A placement's ``cost_usd_per_hour`` is its share of its pool's cost by GPUs (its GPUs / the pool's instance
GPUs), and ``pools.<id>.cost_usd_per_hour`` the pool's cost (``cost_mismatch``). The objective is the sum of the
pool costs (``objective_mismatch``), compared only when every placement sits in a known pool and every pool's
``nodes_used`` is readable (a GPU-billed pool without activation cost does not need it). The budget check
(``budget``) compares that recomputed total, or the plan's objective when some cost is unknown, with
``limits.budget_usd_per_hour``. The ``pools.<id>`` entry must also repeat its GPUs in use, node count, GPU type
and domain (``summary_mismatch``).
"""

from __future__ import annotations

from pdopt.instance import Instance, NodePool
from pdopt.verifier.parse import PlanContext, PoolUse, close, is_number, summary_number
from pdopt.verifier.registry import Violation


def billed_per_node(pool: NodePool) -> bool:
    """Whole nodes are billed: ``billing: node_hour``, or a node-hour price and no ``billing`` stated."""
    if pool.billing is not None:
        return pool.billing == "node_hour"
    return pool.price_usd_per_node_hour is not None


def pool_cost_usd_per_hour(instance: Instance, pool_id: str, nodes_used: int, instance_gpus: float) -> float:
    """Hourly cost of a pool using ``nodes_used`` nodes whose instances occupy ``instance_gpus`` GPUs.

    Node billing: every used node is paid in full, plus its activation cost. GPU billing: the instances' GPUs at
    the GPU type's price, plus the activation cost of every used node.
    """
    pool = instance.node_pools[pool_id]
    activation = nodes_used * pool.activation_cost_usd_per_hour
    if billed_per_node(pool):
        assert pool.price_usd_per_node_hour is not None  # the data model requires it for node billing
        return nodes_used * pool.price_usd_per_node_hour + activation
    return instance_gpus * instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour + activation


def check_costs(ctx: PlanContext) -> None:
    """Each pool's cost at the instance's prices and billing, its entry in ``pools``, each placement's share of
    it by GPUs, and the objective as their sum. Sets ``ctx.total`` (None when no cost is known)."""
    instance, out, tol = ctx.instance, ctx.out, ctx.tol
    total = 0.0
    complete = len(ctx.placements) == ctx.n_raw and all(p.pool in instance.node_pools for p in ctx.placements)
    for pid, use in ctx.pools.items():
        pool = instance.node_pools[pid]
        gpus = use.instance_gpus
        nodes = use.nodes_used
        if nodes is None and not billed_per_node(pool) and pool.activation_cost_usd_per_hour == 0.0:
            nodes = 0  # GPU billing with no activation cost: the cost does not depend on the nodes
        if nodes is None:
            complete = False
            continue
        cost = pool_cost_usd_per_hour(instance, pid, nodes, gpus)
        total += cost
        if billed_per_node(pool):
            basis = (f"{nodes} node(s) x ({pool.price_usd_per_node_hour:g} USD/node-hour + "
                     f"{pool.activation_cost_usd_per_hour:g} activation)")
        else:
            basis = (f"{gpus:g} GPUs x {instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour:g} USD/GPU-hour + "
                     f"{nodes} node(s) x {pool.activation_cost_usd_per_hour:g} activation")
        for p in use.placements:
            share = cost * p.gpus_total / gpus
            if p.cost_usd_per_hour is not None and not close(p.cost_usd_per_hour, share, tol):
                out.append(Violation("cost_mismatch", f"{p.label}: cost_usd_per_hour {p.cost_usd_per_hour:.10g}, "
                                                      f"but its {p.gpus_total:g} of the pool's {gpus:g} instance "
                                                      f"GPUs share the pool's {cost:.10g} USD/hour ({basis}): "
                                                      f"{share:.10g}"))
        if use.entry is not None:
            _check_pool_entry(ctx, pid, use, cost, basis)
    objective = ctx.plan.get("objective_usd_per_hour")
    if not is_number(objective):
        out.append(Violation("bad_plan_field", f"objective_usd_per_hour: expected a finite number, got "
                                               f"{objective!r}"))
    elif complete and not close(float(objective), total, tol):
        out.append(Violation("objective_mismatch", f"objective_usd_per_hour {objective:.10g}, but the pools cost "
                                                   f"{total:.10g} USD/hour at the instance's prices"))
    if complete:
        ctx.total = total
    else:
        ctx.total = float(objective) if is_number(objective) else None


def _check_pool_entry(ctx: PlanContext, pid: str, use: PoolUse, cost: float, basis: str) -> None:
    """``pools.<id>``: its cost, its GPUs in use, and what it repeats of the instance."""
    out = ctx.out
    pool = ctx.instance.node_pools[pid]
    entry = use.entry
    assert entry is not None
    where = f"pools.{pid}"
    stated = summary_number(entry, "cost_usd_per_hour", where, out)
    if stated is not None and not close(stated, cost, ctx.tol):
        out.append(Violation("cost_mismatch", f"{where}.cost_usd_per_hour = {stated:.10g}, recomputed "
                                              f"{cost:.10g} USD/hour ({basis})"))
    gpus = summary_number(entry, "gpus_used", where, out)
    if gpus is not None and gpus != use.instance_gpus:
        out.append(Violation("summary_mismatch", f"{where}.gpus_used = {gpus:g}, but its placements use "
                                                 f"{use.instance_gpus:g} GPUs"))
    count = summary_number(entry, "node_count", where, out)
    if count is not None and count != pool.node_count:
        out.append(Violation("summary_mismatch", f"{where}.node_count = {count:g}, but the pool holds "
                                                 f"{pool.node_count} nodes"))
    for key, truth in (("gpu_type", pool.gpu_type), ("domain", pool.domain)):
        val = entry.get(key)
        if not isinstance(val, str):
            out.append(Violation("bad_plan_field", f"{where}.{key}: expected a string, got {val!r}"))
        elif val != truth:
            out.append(Violation("summary_mismatch", f"{where}.{key} = {val!r}, but the pool's is {truth!r}"))
    packing = entry.get("packing")
    if not isinstance(packing, str):
        out.append(Violation("bad_plan_field", f"{where}.packing: expected a string, got {packing!r}"))


def check_budget(ctx: PlanContext) -> None:
    """The hourly cost (recomputed when every pool's cost is known, else the plan's objective) within budget."""
    budget = ctx.instance.limits.budget_usd_per_hour
    total = ctx.total
    if budget is None or total is None:
        return
    if total > budget + ctx.tol * max(abs(budget), abs(total)):
        ctx.out.append(Violation("budget", f"the plan costs {total:.10g} USD/hour, above the budget "
                                           f"limits.budget_usd_per_hour = {budget:g}"))

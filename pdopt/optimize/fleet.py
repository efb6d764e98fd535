"""From instance counts and nodes per pool to the parts of a plan: placements, pool use, costs, model summaries.

Shared by extraction (counts read from a solution) and the baselines (counts from a sizing rule), so that a plan
reads the same whichever produced it. Costs come from the model data's price book
(:meth:`~pdopt.optimize.model_data.ModelData.pool_cost_usd_per_hour`), the rule the objective uses.
"""

from __future__ import annotations

from collections.abc import Mapping

from pdopt.instance import SHAPE_ROLES
from pdopt.optimize.model_data import Arc, ModelData
from pdopt.plan import ModelPlan, Placement, PoolUse, RolePlan, Survival

Counts = Mapping[Arc, int]
"""(shape id, pool id) -> instances."""


def min_nodes(data: ModelData, pool_id: str, counts: Counts) -> int:
    """Fewest nodes of a pool that hold its instances: whole nodes for spanning instances, then, for aggregate
    (divisibility-chain) pools, ceil(remaining GPUs / GPUs per node), which first-fit decreasing achieves; for
    pattern pools, the best of first-fit decreasing (an upper bound the solver's count may beat)."""
    pool = data.pools[pool_id]
    k = pool.gpus_per_node
    mine = [(s, c) for (s, p), c in counts.items() if p == pool_id]
    spanning = sum(c * data.nodes_spanned(s, pool_id) for s, c in mine)
    sizes = sorted((data.shapes[s].gpus_per_instance for s, c in mine if not data.nodes_spanned(s, pool_id)
                    for _ in range(c)), reverse=True)
    if pool.packing == "aggregate":
        return spanning + -(-sum(sizes) // k)
    free: list[int] = []
    for g in sizes:
        for i, f in enumerate(free):
            if f >= g:
                free[i] -= g
                break
        else:
            free.append(k - g)
    return spanning + len(free)


def pool_costs(data: ModelData, counts: Counts, nodes: Mapping[str, int]) -> dict[str, float]:
    """Hourly cost per pool with nodes in use (the price book's rule)."""
    return {p: data.pool_cost_usd_per_hour(p, counts, n) for p, n in nodes.items()}


def placements(data: ModelData, counts: Counts, nodes: Mapping[str, int]) -> tuple[Placement, ...]:
    """One placement per (shape, pool) with instances, in arc-key order; a placement's cost is its share, by
    GPUs, of its pool's cost; its per-instance capacity is the pooled group's average for pooled shapes."""
    costs = pool_costs(data, counts, nodes)
    gpus_in: dict[str, int] = {}
    total_of: dict[str, int] = {}
    for (sid, pid), n in counts.items():
        gpus_in[pid] = gpus_in.get(pid, 0) + n * data.shapes[sid].gpus_per_instance
        total_of[sid] = total_of.get(sid, 0) + n
    out = []
    for (sid, pid), n in sorted(counts.items()):
        s = data.shapes[sid]
        share = n * s.gpus_per_instance / gpus_in[pid] if gpus_in[pid] else 0.0
        per_instance = s.pooled_capacity_rps(total_of[sid]) / total_of[sid]
        out.append(Placement(s.model, s.role, s.gpu_type, s.gpus_per_instance, pid, n, per_instance,
                             costs.get(pid, 0.0) * share, s.variant, s.estimated))
    return tuple(out)


def pool_use(data: ModelData, counts: Counts, nodes: Mapping[str, int]) -> dict[str, PoolUse]:
    """Every pool with nodes in use: its GPUs occupied, packing scheme and cost."""
    costs = pool_costs(data, counts, nodes)
    out: dict[str, PoolUse] = {}
    for pid, n in nodes.items():
        if n == 0:
            continue
        pool = data.pools[pid]
        used = sum(c * data.shapes[s].gpus_per_instance for (s, p), c in counts.items() if p == pid)
        out[pid] = PoolUse(pool.gpu_type, pool.domain, pool.node_count, n, used, pool.packing, costs[pid])
    return out


def gpus_by_type(placed: tuple[Placement, ...]) -> dict[str, int]:
    """GPUs occupied by instances, per GPU type."""
    out: dict[str, int] = {}
    for p in placed:
        out[p.gpu_type] = out.get(p.gpu_type, 0) + p.gpus_per_instance * p.count
    return out


def _role_plan(demand: float, placed: list[Placement]) -> RolePlan:
    total_cap = sum(p.capacity_rps * p.count for p in placed)
    shapes = {(p.gpu_type, p.gpus_per_instance, p.variant) for p in placed}
    fractional = demand / placed[0].capacity_rps if len(shapes) == 1 else None
    return RolePlan(
        instances=sum(p.count for p in placed),
        fractional_instances=fractional,
        capacity_rps=total_cap,
        utilisation=demand / total_cap if total_cap > 0 else None,
        gpus=sum(p.gpus_per_instance * p.count for p in placed),
    )


def net_capacity(data: ModelData, counts: Counts, m: str, r: str) -> float:
    """A role's capacity net of its spares (spares are held only by a role with instances), at least 0."""
    totals: dict[str, int] = {}
    for (s, _), c in counts.items():
        if data.shapes[s].model == m and data.shapes[s].role == r:
            totals[s] = totals.get(s, 0) + c
    cap = sum(data.shapes[s].pooled_capacity_rps(n) for s, n in totals.items())
    return max(cap - data.spare_rps.get((m, r), 0.0), 0.0) if totals else 0.0


def aggregated_shares(data: ModelData, counts: Counts, scale: float,
                      solved: Mapping[str, float] | None = None) -> dict[str, float]:
    """Req/s routed to each model's aggregated instances: all the demand for a model served aggregated only,
    none for one served disaggregated only. For a mixed model the router balances the load: the share is
    demand x A / (A + P) with A the aggregated and P the P/D pairs' capacity net of spares (P the smaller of
    prefill and decode), so both parts run at the same utilisation, demand / (A + P). The solver's
    ``mode_share`` (``solved``) only proves that some split exists; when the counts cover the demand the balanced
    split is one (share <= A and demand - share <= P), and it leaves each part the same headroom. Without
    capacity in either part, the solver's value (or 0) stands."""
    out = {}
    for m in data.models:
        demand = data.model_demand_rps(m) * scale
        modes = data.modes_of(m)
        if "aggregated" not in modes:
            continue
        if "disaggregated" not in modes:
            out[m] = demand
            continue
        agg = net_capacity(data, counts, m, "aggregated")
        pairs = min(net_capacity(data, counts, m, "prefill"), net_capacity(data, counts, m, "decode"))
        if agg + pairs > 0:
            out[m] = demand * agg / (agg + pairs)
        else:
            out[m] = min(max((solved or {}).get(m, 0.0), 0.0), demand)
    return out


def model_plans(data: ModelData, placed: tuple[Placement, ...], scale: float,
                shares: Mapping[str, float] | None = None) -> dict[str, ModelPlan]:
    """Per model (in the instance's order): the demand served (the data's demand x ``scale``), the mode the
    plan chose and the req/s routed to aggregated instances (``shares``), and each role."""
    out = {}
    for m in dict.fromkeys(m for m, _ in data.demand_rps):
        demand = data.model_demand_rps(m) * scale
        agg = (shares or {}).get(m, 0.0)
        need = {"prefill": demand - agg, "decode": demand - agg, "aggregated": agg}
        roles = {r: _role_plan(need[r], [p for p in placed if p.model == m and p.role == r])
                 for r in SHAPE_ROLES}
        n_d = roles["decode"].instances
        has_agg = "aggregated" in data.modes_of(m)
        used_agg, used_dis = roles["aggregated"].instances > 0, roles["prefill"].instances > 0
        mode = "both" if used_agg and used_dis else "aggregated" if used_agg else "disaggregated"
        out[m] = ModelPlan(demand, roles["prefill"], roles["decode"],
                           roles["prefill"].instances / n_d if n_d else None, mode=mode,
                           aggregated=roles["aggregated"] if has_agg else None, aggregated_rps=agg)
    return out


def failure_scenarios(data: ModelData, counts: Counts, scale: float) -> dict[str, dict[str, Survival]]:
    """For each domain holding pools: what each model keeps when every instance there is lost (single-instance
    capacities, as the domain_loss_cover rows count them)."""
    out: dict[str, dict[str, Survival]] = {}
    for lost in data.domains:
        per: dict[str, Survival] = {}
        for m in data.models:
            left = {r: sum(c * data.shapes[s].capacity_rps for (s, p), c in counts.items()
                           if data.shapes[s].model == m and data.shapes[s].role == r
                           and data.pools[p].domain != lost) for r in SHAPE_ROLES}
            demand = data.model_demand_rps(m) * scale
            served = left["aggregated"] + min(left["prefill"], left["decode"])
            per[m] = Survival(left["prefill"], left["decode"], served / demand if demand > 0 else 1.0,
                              left["aggregated"])
        out[lost] = per
    return out

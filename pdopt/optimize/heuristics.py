"""A feasible start for the solver by a greedy rule, and the demand multiplier integer counts serve exactly."""

from __future__ import annotations

import math

from pdopt.optimize.fleet import Counts, net_capacity, pool_costs
from pdopt.optimize.model_data import Arc, ModelData


def _cheapest_per_rps(data: ModelData, m: str, r: str) -> float:
    """The lowest hourly cost per req/s among a role's arcs (inf without arcs)."""
    return min((data.cost_usd_per_hour(*a) / data.shapes[a[0]].capacity_rps for a in data.arcs_by_role.get((m, r), ())),
               default=math.inf)


def greedy_modes(data: ModelData) -> dict[str, float]:
    """The serving mode a greedy start gives each mixed model: the one whose cheapest shapes cost less per req/s
    (aggregated against prefill plus decode); model -> req/s routed to aggregated instances (all or none)."""
    out = {}
    for m in data.mixed_models:
        agg = _cheapest_per_rps(data, m, "aggregated")
        dis = _cheapest_per_rps(data, m, "prefill") + _cheapest_per_rps(data, m, "decode")
        out[m] = data.model_demand_rps(m) if agg < dis else 0.0
    return out


def greedy_start(data: ModelData) -> tuple[dict[Arc, int], dict[str, int], dict[str, float]] | None:
    """A feasible start by a greedy rule: each mixed model takes one mode (:func:`greedy_modes`); then each
    (model, role) of a mode in use, largest demand first, takes instances of its cheapest shape per req/s among
    pools with room (aggregate packing only). Counts, nodes and the aggregated shares; None when it runs out."""
    free = {p: pool.gpus for p, pool in data.pools.items() if pool.packing == "aggregate"}
    cap_left = dict(data.gpu_caps)
    counts: dict[Arc, int] = {}
    shares = greedy_modes(data)
    for (m, r), demand in sorted(data.demand_rps.items(), key=lambda kv: -kv[1]):
        if m in shares and (r == "aggregated") != (shares[m] > 0):
            continue  # the mode this start does not use
        need = demand + data.spare_rps[(m, r)]
        arcs = sorted((a for a in data.arcs_by_role.get((m, r), ()) if a[1] in free),
                      key=lambda a: (data.cost_usd_per_hour(*a) / data.shapes[a[0]].capacity_rps, a))
        for s, p in arcs:
            if need <= 1e-12:
                break
            shape = data.shapes[s]
            g = shape.gpus_per_instance
            room = min(free[p], cap_left.get(shape.gpu_type, free[p])) // g
            n = min(room, math.ceil(need / shape.capacity_rps - 1e-12))
            if n <= 0:
                continue
            counts[(s, p)] = counts.get((s, p), 0) + n
            free[p] -= n * g
            if shape.gpu_type in cap_left:
                cap_left[shape.gpu_type] -= n * g
            need -= n * shape.capacity_rps
        if need > 1e-9:
            return None
    nodes = {p: -(-(data.pools[p].gpus - f) // data.pools[p].gpus_per_node) for p, f in free.items()}
    return counts, nodes, shares


def start_cost_usd_per_hour(data: ModelData, counts: Counts, nodes: dict[str, int]) -> float:
    """Hourly cost of a start (the price book's rule)."""
    return sum(pool_costs(data, counts, nodes).values())


def achieved_scale(data: ModelData, counts: Counts) -> float:
    """The demand multiplier integer instance counts serve exactly, computed from the counts, not read from the
    solver's rounded value: per model, the capacity net of its spare reserve over its demand, where net
    capacity is the role's (disaggregated or aggregated only) or, for a mixed model, the aggregated capacity plus
    the smaller of prefill and decode (the router splits the demand; a mode with no instance holds no spares);
    the minimum over models."""
    ratios = []
    for m in data.models:
        d = data.model_demand_rps(m)
        if d <= 0:
            continue
        net = {r: net_capacity(data, counts, m, r) for mm, r in data.demand_rps if mm == m}
        if data.is_mixed(m):
            ratios.append((net["aggregated"] + min(net["prefill"], net["decode"])) / d)
        else:
            ratios.append(min(net.values()) / d)
    return min(ratios, default=0.0) * (1 - 1e-12)

"""A feasible start for the solver by a greedy rule, and the demand multiplier integer counts serve exactly."""

from __future__ import annotations

import math

from pdopt.optimize.fleet import Counts, pool_costs
from pdopt.optimize.model_data import Arc, ModelData


def greedy_start(data: ModelData) -> tuple[dict[Arc, int], dict[str, int]] | None:
    """A feasible start by a greedy rule: each (model, role), largest demand first, takes instances of its
    cheapest shape per req/s among pools with room (aggregate packing only). None when it runs out."""
    free = {p: pool.gpus for p, pool in data.pools.items() if pool.packing == "aggregate"}
    cap_left = dict(data.gpu_caps)
    counts: dict[Arc, int] = {}
    for (m, r), demand in sorted(data.demand_rps.items(), key=lambda kv: -kv[1]):
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
    return counts, nodes


def start_cost_usd_per_hour(data: ModelData, counts: Counts, nodes: dict[str, int]) -> float:
    """Hourly cost of a start (the price book's rule)."""
    return sum(pool_costs(data, counts, nodes).values())


def achieved_scale(data: ModelData, counts: Counts) -> float:
    """The demand multiplier integer instance counts serve exactly: min over (model, role) of
    (capacity - spare reserve) / demand. Computed from the counts, not read from the solver's rounded value."""
    ratios = []
    for (m, r), d in data.demand_rps.items():
        if d <= 0:
            continue
        totals: dict[str, int] = {}
        for (s, _), c in counts.items():
            if data.shapes[s].model == m and data.shapes[s].role == r:
                totals[s] = totals.get(s, 0) + c
        cap = sum(data.shapes[s].pooled_capacity_rps(n) for s, n in totals.items())
        ratios.append(max(0.0, cap - data.spare_rps[(m, r)]) / d)
    return min(ratios, default=0.0) * (1 - 1e-12)

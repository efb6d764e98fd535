"""Formulation F1: integer P/D instance counts per shape and node pool, cost-minimal, with named families.

Building is separate from solving: :func:`build_problem` returns the PuLP problem with a registry of its
variables and rows, and never solves. One ``add_<family>`` function per constraint family; row names are
``<family>__<index>__<index>``. ``formulations/f1.yaml`` states the same families with their maths, and a test
keeps the two in sync.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pulp

from pdopt.model_data import ModelData

CONSTRAINT_FAMILIES: tuple[str, ...] = ("demand_cover", "pool_gpu_capacity", "gpu_type_availability")
VARIABLE_FAMILIES: tuple[str, ...] = ("x", "shortfall")


@dataclass
class BuiltProblem:
    """A built (unsolved) MILP and where to find its parts."""

    problem: pulp.LpProblem
    x: dict[tuple[str, str], pulp.LpVariable]
    """(shape id, pool id) -> instance count."""
    rows: dict[str, list[str]] = field(default_factory=dict)
    """constraint family -> row names."""
    shortfall: dict[tuple[str, str], pulp.LpVariable] = field(default_factory=dict)
    """(model, role) -> uncovered demand, only in the elastic (diagnostic) variant."""

    def add_row(self, family: str, index: tuple[str, ...], constraint: pulp.LpConstraint) -> None:
        """Add a named row ``family__i__j`` and register it under its family."""
        name = "__".join((family, *index))
        self.problem += constraint, name
        self.rows.setdefault(family, []).append(name)


def add_instance_counts(problem: pulp.LpProblem, data: ModelData) -> dict[tuple[str, str], pulp.LpVariable]:
    """x[s,p] in Z>=0, bounded by the GPUs of pool p over the GPUs per instance of s."""
    return {
        (s, p): problem.add_variable(
            f"x__{s}__{p}", lowBound=0, upBound=data.pools[p].gpus // data.shapes[s].gpus_per_instance,
            cat=pulp.LpInteger,
        )
        for s, p in data.arcs
    }


def add_objective(built: BuiltProblem, data: ModelData) -> None:
    """min sum_{s,p} c[s,p] x[s,p], c = GPUs per instance x price per GPU-hour of the pool."""
    built.problem += pulp.lpSum(data.cost_usd_per_hour(s, p) * v for (s, p), v in built.x.items())


def add_demand_cover(built: BuiltProblem, data: ModelData) -> None:
    """demand_cover[m,r]: sum over shapes s of (m,r) and pools p of cap[s] x[s,p] (+ shortfall[m,r]) >= demand[m,r].

    The shortfall term exists only in the elastic variant used to diagnose infeasible instances.
    """
    for (m, r), demand in data.demand_rps.items():
        terms = [data.shapes[s].capacity_rps * v for (s, p), v in built.x.items()
                 if data.shapes[s].model == m and data.shapes[s].role == r]
        if (m, r) in built.shortfall:
            terms.append(built.shortfall[(m, r)])
        built.add_row("demand_cover", (m, r), pulp.lpSum(terms) >= demand)


def add_pool_gpu_capacity(built: BuiltProblem, data: ModelData) -> None:
    """pool_gpu_capacity[p]: sum_s g[s] x[s,p] <= nodes[p] x GPUs per node[p].

    Exact for packing because the sizes admitted to a pool divide the node size and form a divisibility
    chain (checked when the instance is read): first-fit decreasing then fills nodes without fragments.
    """
    for p, pool in data.pools.items():
        terms = [data.shapes[s].gpus_per_instance * v for (s, q), v in built.x.items() if q == p]
        if terms:
            built.add_row("pool_gpu_capacity", (p,), pulp.lpSum(terms) <= pool.gpus)


def add_gpu_type_availability(built: BuiltProblem, data: ModelData) -> None:
    """gpu_type_availability[g]: sum over pools of type g of the GPUs used <= cap[g]."""
    for g, cap in data.gpu_caps.items():
        terms = [data.shapes[s].gpus_per_instance * v for (s, p), v in built.x.items()
                 if data.pools[p].gpu_type == g]
        if terms:
            built.add_row("gpu_type_availability", (g,), pulp.lpSum(terms) <= cap)


def add_shortfall(built: BuiltProblem, data: ModelData, penalty_usd_per_rps: float) -> None:
    """Elastic variant: shortfall[m,r] >= 0 in each demand_cover row, penalised in the objective.

    With a penalty far above any instance's cost per req/s, the optimum covers all it can and the shortfall
    left is demand that no plan within the inventory serves.
    """
    built.shortfall = {key: built.problem.add_variable(f"shortfall__{key[0]}__{key[1]}", lowBound=0)
                       for key in data.demand_rps}
    built.problem.setObjective(built.problem.objective
                               + pulp.lpSum(penalty_usd_per_rps * v for v in built.shortfall.values()))


def build_problem(data: ModelData, name: str = "pdopt_f1", shortfall_penalty: float | None = None) -> BuiltProblem:
    """Build formulation F1 (never solves); with ``shortfall_penalty``, its elastic diagnostic variant."""
    problem = pulp.LpProblem(name, pulp.LpMinimize)
    built = BuiltProblem(problem, add_instance_counts(problem, data))
    add_objective(built, data)
    if shortfall_penalty is not None:
        add_shortfall(built, data, shortfall_penalty)
    add_demand_cover(built, data)
    add_pool_gpu_capacity(built, data)
    add_gpu_type_availability(built, data)
    return built


def solution_counts(built: BuiltProblem) -> dict[tuple[str, str], int]:
    """Nonzero integer instance counts of a solved problem (rounded from the solver's floats)."""
    counts: dict[tuple[str, str], int] = {}
    for key, v in built.x.items():
        val = v.value()
        if val is not None and not math.isnan(val) and round(val) > 0:
            counts[key] = round(val)
    return counts

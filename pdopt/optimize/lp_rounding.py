"""An LP-rounding start: solve the LP relaxation, round it down, and cover what is missing domain by domain.

The greedy start (:func:`pdopt.optimize.heuristics.greedy_start`) ignores links and domains and fills the cheapest
shape per req/s first, which on large fleets leaves the solver far from the optimum (8-10% on fleet-L). The LP
relaxation knows the whole problem. Rounding it keeps what it knows:

1. Solve the relaxation of the built problem (every variable continuous); x* its instance counts.
2. x = floor(x*) on every arc.
3. For every (model, role, domain), cover the capacity the relaxation puts there, sum cap_s x*[s,p] over the
   domain's arcs, with whole instances: add the instance of lowest marginal cost per req/s among the domain's arcs
   whose pool has room (GPU totals within its nodes; aggregate packing) and whose GPU type is within its cap,
   counting a node already paid for as free room, until the domain's capacity is reached (when the domain's
   pools are full, any pool of the model and role). Each domain then has at
   least the relaxation's capacity, so the relaxation's KV flows stay feasible (a domain sends and receives no
   more than before) and the links keep their loads, as do the domain-loss rows; demand, with its spares, is
   covered as the relaxation covers it.
4. Nodes: the fewest that hold each pool's instances.

When the domains' pools are full and an instance goes to another domain, the KV flows are routed anew for the
rounded counts (the relaxation solved again with the counts fixed: an LP in the flows). The result is checked
against every row of the problem, with those flows, and used only when it holds and costs less than the greedy
start. Instances with a pooled (ggc) shape or a
model split between serving modes are left to the greedy start (their capacity is not a sum of counts).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import pulp

from pdopt.optimize.build import relax
from pdopt.optimize.extract import assemble_plan
from pdopt.optimize.fleet import min_nodes
from pdopt.optimize.model_data import Arc, ModelData
from pdopt.optimize.problem import BuiltProblem
from pdopt.optimize.solver import Solution, SolverOptions, run_solver
from pdopt.plan import Plan

Start = tuple[dict[Arc, int], dict[str, int], dict[str, float]]
"""Counts, nodes and aggregated shares (what :func:`pdopt.optimize.build.set_start` takes)."""


Flows = dict[tuple[str, str, str], float]
"""(model, prefill domain, decode domain) -> req/s."""


def lp_rounding_start(data: ModelData, built: BuiltProblem,
                      options: SolverOptions) -> tuple[Start, Flows] | None:
    """The rounded relaxation as a start (counts, nodes, empty aggregated shares) with the KV flows it was checked
    with, or None when it cannot be made or does not satisfy every row of ``built``. The relaxation is ``built``
    itself, relaxed for its solves and restored after them (no second build). Raises KeyboardInterrupt when a solve
    of it is interrupted (Ctrl-C)."""
    if built.pooled_capacity or built.mode_share or any(data.pools[p].packing != "aggregate"
                                                        for p in data.pools_in_use):
        return None
    with _relaxed(built):
        sol = _solve(built, options)
        if sol is None:
            return None
        lp = {arc: max(0.0, sol.value(v.name)) for arc, v in built.x.items()}
        flows: Flows | None = {k: sol.value(v.name) for k, v in built.kv_flow.items()}
        counts = _round(data, lp)
        if counts is None:
            return None
        nodes = {p: min_nodes(data, p, counts) for p in data.pools_in_use}
        if flows is not None and not _valid(built, counts, nodes, flows) and built.kv_flow:
            flows = _route(built, counts, nodes, options)  # instances moved between domains: route the KV anew
    if flows is None or not _valid(built, counts, nodes, flows):
        return None
    return (counts, nodes, {}), flows


@contextlib.contextmanager
def _relaxed(built: BuiltProblem) -> Iterator[None]:
    """``built`` with every variable continuous for the duration; categories, bounds and values restored after
    (the solver's own problem goes on to the MIP solve unchanged)."""
    saved = [(v, v.cat, v.lowBound, v.upBound) for v in built.problem.variables()]
    relax(built)
    try:
        yield
    finally:
        for v, cat, low, up in saved:
            v.cat, v.lowBound, v.upBound, v.varValue = cat, low, up, None


def _solve(built: BuiltProblem, options: SolverOptions) -> Solution | None:
    sol = run_solver(built.problem, options)
    if sol.report.interrupted:
        raise KeyboardInterrupt  # the caller stops and reports its best plan so far
    return sol if sol.has_solution else None


def _round(data: ModelData, lp: dict[Arc, float]) -> dict[Arc, int] | None:
    """Steps 2 and 3 of the module docstring: the relaxation's counts rounded down, then each (model, role,
    domain) covered to the relaxation's capacity there; None when no pool has room."""
    counts = {arc: math.floor(v + 1e-9) for arc, v in lp.items()}
    gpus_used = {p: 0 for p in data.pools}
    type_used: dict[str, int] = {}
    for (s, p), n in counts.items():
        g = data.shapes[s].gpus_per_instance * n
        gpus_used[p] += g
        type_used[data.shapes[s].gpu_type] = type_used.get(data.shapes[s].gpu_type, 0) + g
    groups: dict[tuple[str, str, str], list[Arc]] = {}
    for s, p in lp:
        shape = data.shapes[s]
        groups.setdefault((shape.model, str(shape.role), data.pools[p].domain), []).append((s, p))
    lent: dict[Arc, int] = {}  # instances placed in a pool of another domain's group (counted there, not here)
    for key in sorted(groups):
        arcs = groups[key]
        target = sum(data.shapes[s].capacity_rps * lp[(s, p)] for s, p in arcs)
        have = sum(data.shapes[s].capacity_rps * (counts[(s, p)] - lent.get((s, p), 0)) for s, p in arcs)
        while have < target - 1e-9 * max(1.0, target):
            # the domain's own pools first; when they are full, any pool of the model and role (the row check
            # then decides whether the relaxation's flows still fit)
            best = _cheapest(data, arcs, gpus_used, type_used) or _cheapest(
                data, list(data.arcs_by_role.get(key[:2], ())), gpus_used, type_used)
            if best is None:
                return None
            s, p = best
            g = data.shapes[s].gpus_per_instance
            counts[best] += 1
            if best not in arcs:
                lent[best] = lent.get(best, 0) + 1
            gpus_used[p] += g
            type_used[data.shapes[s].gpu_type] = type_used.get(data.shapes[s].gpu_type, 0) + g
            have += data.shapes[s].capacity_rps
    return {arc: n for arc, n in counts.items() if n > 0}


def _route(built: BuiltProblem, counts: dict[Arc, int], nodes: dict[str, int],
           options: SolverOptions) -> Flows | None:
    """KV flows for fixed counts and nodes: the relaxation solved again with x and nodes held at the start's
    values (an LP in the flows alone); None when no routing fits the links."""
    for arc, v in built.x.items():
        v.lowBound = v.upBound = counts.get(arc, 0)
    for p, v in built.nodes.items():
        v.lowBound = v.upBound = nodes.get(p, 0)
    sol = _solve(built, options)
    return None if sol is None else {k: sol.value(v.name) for k, v in built.kv_flow.items()}


def start_plan(instance: str, data: ModelData, start: Start, flows: Flows) -> Plan:
    """The start as a plan (for the verifier and the comparison with baselines), with the KV flows it was checked
    with."""
    counts, nodes, shares = start
    return assemble_plan(instance, data, counts, nodes, flows, shares)


def _cheapest(data: ModelData, arcs: list[Arc], gpus_used: dict[str, int],
              type_used: dict[str, int]) -> Arc | None:
    """The arc whose next instance costs least per req/s (a node already paid for is free room), among those with
    room in their pool and within their GPU type's cap; ties by arc."""
    best: tuple[float, Arc] | None = None
    for s, p in arcs:
        shape, pool = data.shapes[s], data.pools[p]
        g = shape.gpus_per_instance
        if gpus_used[p] + g > pool.gpus:
            continue
        cap = data.gpu_caps.get(shape.gpu_type)
        if cap is not None and type_used.get(shape.gpu_type, 0) + g > cap:
            continue
        k = pool.gpus_per_node
        if pool.billed_per_node:
            new_nodes = -(-(gpus_used[p] + g) // k) - -(-gpus_used[p] // k)
            cost = new_nodes * (pool.price_usd_per_node_hour + pool.activation_usd_per_node_hour)
        else:
            cost = data.cost_usd_per_hour(s, p)
        key = (cost / shape.capacity_rps, (s, p))
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


def _valid(built: BuiltProblem, counts: dict[Arc, int], nodes: dict[str, int],
           flows: dict[tuple[str, str, str], float]) -> bool:
    """True when the start, with the given KV flows, meets every row of the problem (within 1e-5 of the row's
    terms)."""
    values: dict[str, float] = {v.name: 0.0 for v in built.problem.variables()}
    for arc, v in built.x.items():
        values[v.name] = counts.get(arc, 0)
    for p, v in built.nodes.items():
        values[v.name] = nodes.get(p, 0)
    for k, v in built.kv_flow.items():
        values[v.name] = flows.get(k, 0.0)
    for v in built.problem.variables():
        v.varValue = values[v.name]
    try:
        return all(_holds(c) for c in built.problem.constraints())
    finally:
        for v in built.problem.variables():
            v.varValue = None


def _holds(c: pulp.LpConstraint) -> bool:
    value = c.value()
    if value is None:
        return False
    v = float(value)
    # the solver's tolerance, relative to the row's terms (the flows come from an LP solved to about 1e-7)
    scale = sum(abs(float(a) * float(x.varValue or 0.0)) for x, a in c.items())
    tol = 1e-5 * max(1.0, scale, abs(float(c.constant)))
    if c.sense == pulp.LpConstraintEQ:
        return abs(v) <= tol
    if c.sense == pulp.LpConstraintGE:
        return v >= -tol
    return v <= tol

"""Formulation F1: integer P/D instance counts per shape and node pool, nodes per pool, cost-minimal.

Building is separate from solving: :func:`build_problem` returns the PuLP problem with a registry of its
variables and rows, and never solves. One ``add_<family>`` function per constraint family; row names are
``<family>__<index>__<index>``. ``formulations/f1.yaml`` states the same families with their maths, and a test
keeps the two in sync.

Packing. A pool whose admitted instance sizes form a divisibility chain dividing the node size (1 | 2 | 4 | 8)
packs exactly by GPU totals (``pool_gpu_capacity``); any other pool (TP 3 on 8-GPU nodes, or 3 and 2 together)
chooses, per node, one maximal packing pattern (``pattern_cover``, ``pattern_node_count``). Instances that span
whole nodes take ``gpus / node size`` nodes each in either scheme. Identical nodes are never indexed one by one
(no symmetry): a pool carries integer node counts only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import pulp

from pdopt.model_data import ModelData

CONSTRAINT_FAMILIES: tuple[str, ...] = (
    "demand_cover", "pool_gpu_capacity", "pattern_cover", "pattern_node_count", "gpu_type_availability", "budget",
    "pool_node_limit", "pooled_count", "pooled_step_order", "pooled_tail_link", "kv_prefill_out", "kv_decode_in",
    "kv_flow_total", "link_bandwidth", "domain_loss_cover",
)
VARIABLE_FAMILIES: tuple[str, ...] = ("x", "nodes", "pattern_nodes", "scale", "shortfall", "extra_nodes",
                                      "extra_gpus", "extra_budget", "pooled_step", "pooled_tail", "kv_flow",
                                      "extra_bandwidth")

TIE_BREAK_USD_PER_GPU = 1e-6
"""Secondary objective weight: among plans whose cost differs by less than this per GPU, fewer GPUs win."""
TIE_BREAK_USD_PER_NODE = 1e-8
"""Tertiary weight: then fewer nodes."""

Mode = Literal["min_cost", "max_scale", "elastic", "shortfall"]


@dataclass
class BuiltProblem:
    """A built (unsolved) MILP and where to find its parts."""

    problem: pulp.LpProblem
    x: dict[tuple[str, str], pulp.LpVariable]
    """(shape id, pool id) -> instance count."""
    nodes: dict[str, pulp.LpVariable] = field(default_factory=dict)
    """pool id -> nodes in use."""
    pattern_nodes: dict[tuple[str, int], pulp.LpVariable] = field(default_factory=dict)
    rows: dict[str, list[str]] = field(default_factory=dict)
    """constraint family -> row names."""
    scale: pulp.LpVariable | None = None
    cost: pulp.LpAffineExpression | None = None
    """Hourly cost (without tie-break terms)."""
    extra: dict[str, pulp.LpVariable] = field(default_factory=dict)
    """Elastic variant: resource slack variables by name."""
    shortfall: dict[tuple[str, str], pulp.LpVariable] = field(default_factory=dict)
    """Shortfall variant: (model, role) -> demand left uncovered."""
    kv_flow: dict[tuple[str, str, str], pulp.LpVariable] = field(default_factory=dict)
    """(model, prefill domain, decode domain) -> requests/s whose KV cache moves between them."""
    pooled_capacity: dict[str, pulp.LpAffineExpression] = field(default_factory=dict)
    """Pooled (ggc) shapes: shape id -> capacity of all its instances (the linearisation)."""

    def add_row(self, family: str, index: tuple[str, ...], constraint: pulp.LpConstraint) -> None:
        """Add a named row ``family__i__j`` and register it under its family."""
        name = "__".join((family, *index))
        self.problem += constraint, name
        self.rows.setdefault(family, []).append(name)


def add_instance_counts(built: BuiltProblem, data: ModelData, bounded: bool) -> None:
    """x[s,p] in Z>=0, at most the pool's GPUs over the instance's GPUs (when ``bounded``)."""
    for s, p in data.arcs:
        ub = data.pools[p].gpus // data.shapes[s].gpus_per_instance if bounded else None
        built.x[(s, p)] = built.problem.add_variable(f"x__{s}__{p}", lowBound=0, upBound=ub, cat=pulp.LpInteger)


def add_nodes(built: BuiltProblem, data: ModelData, bounded: bool) -> None:
    """nodes[p] in Z, 0 <= nodes[p] <= node_count[p]: nodes of pool p in use (billed when billed per node)."""
    used = {p for _, p in data.arcs}
    for p in sorted(used):
        ub = data.pools[p].node_count if bounded else None
        built.nodes[p] = built.problem.add_variable(f"nodes__{p}", lowBound=0, upBound=ub, cat=pulp.LpInteger)


def cost_expression(built: BuiltProblem, data: ModelData) -> pulp.LpAffineExpression:
    """Hourly cost: node-billed pools pay price x nodes; GPU-billed pools pay price x GPUs of their instances;
    every pool pays its activation cost x nodes."""
    terms = []
    for p, n in built.nodes.items():
        pool = data.pools[p]
        per_node = pool.activation_usd_per_node_hour + (pool.price_usd_per_node_hour if pool.billed_per_node else 0.0)
        if per_node:
            terms.append(per_node * n)
        if not pool.billed_per_node:
            terms += [data.cost_usd_per_hour(s, q) * v for (s, q), v in built.x.items() if q == p]
    return pulp.lpSum(terms)


def gpus_expression(built: BuiltProblem, data: ModelData) -> pulp.LpAffineExpression:
    """GPUs occupied by instances."""
    return pulp.lpSum(data.shapes[s].gpus_per_instance * v for (s, _), v in built.x.items())


def add_pooled_capacity(built: BuiltProblem, data: ModelData) -> None:
    """Pooled (``ggc``) shapes: capacity of n pooled instances, exact in n by ordered binary increments.

    With marginal gains g_1 <= g_2 <= ... <= g_C (flat within epsilon at C) and n = sum_p x[s,p]:
    pooled_count[s]: n = sum_c pooled_step[s,c] + pooled_tail[s]; pooled_step_order[s,c]: step[c] >= step[c+1]
    (the c-th instance's gain counts only after the (c-1)-th); pooled_tail_link[s]: tail <= n_max x step[C]
    (further instances add g_C each). Capacity = sum_c g_c step[s,c] + g_C tail[s].
    """
    for sid, shape in data.shapes.items():
        gains = shape.pooled_gains
        xs = [v for (s, _), v in built.x.items() if s == sid]
        if not gains or not xs:
            continue
        prob = built.problem
        steps = [prob.add_variable(f"pooled_step__{sid}__c{c + 1}", lowBound=0, upBound=1, cat=pulp.LpInteger)
                 for c in range(len(gains))]
        n_max = sum(data.pools[p].gpus // shape.gpus_per_instance for (s, p) in built.x if s == sid)
        tail = prob.add_variable(f"pooled_tail__{sid}", lowBound=0, upBound=n_max, cat=pulp.LpInteger)
        built.add_row("pooled_count", (sid,), pulp.lpSum(xs) == pulp.lpSum(steps) + tail)
        for c in range(len(steps) - 1):
            built.add_row("pooled_step_order", (sid, f"c{c + 1}"), steps[c] >= steps[c + 1])
        built.add_row("pooled_tail_link", (sid,), tail <= n_max * steps[-1])
        built.pooled_capacity[sid] = pulp.lpSum(g * st for g, st in zip(gains, steps, strict=True)) + gains[-1] * tail


def _role_capacity_in(built: BuiltProblem, data: ModelData, m: str, r: str, domain: str,
                      inside: bool) -> pulp.LpAffineExpression:
    """Capacity of model m, role r from pools in ``domain`` (``inside``) or outside it. Pooled shapes count their
    single-instance capacity per instance here: a lower bound, as their group may be split."""
    return pulp.lpSum(data.shapes[s].capacity_rps * v for (s, p), v in built.x.items()
                      if data.shapes[s].model == m and data.shapes[s].role == r
                      and (data.pools[p].domain == domain) == inside)


def add_kv_flows(built: BuiltProblem, data: ModelData) -> None:
    """KV traffic between domains (networks only).

    kv_flow[m,d,e] >= 0: requests/s of model m prefilled in domain d and decoded in domain e.
    kv_prefill_out[m,d]: sum_e kv_flow[m,d,e] <= prefill capacity of m in d;
    kv_decode_in[m,e]: sum_d kv_flow[m,d,e] <= decode capacity of m in e;
    kv_flow_total[m]: sum_{d,e} kv_flow[m,d,e] >= demand[m] (x scale);
    link_bandwidth[l]: sum_{m,d!=e} kv_gbit[m] share_l(d,e) kv_flow[m,d,e] <= bandwidth_l (+ extra_bandwidth[l]).
    """
    if not data.routes:
        return
    doms = sorted({d for d, _ in data.routes})
    models = sorted({m for m, _ in data.demand_rps})
    for m in models:
        for d in doms:
            for e in doms:
                built.kv_flow[(m, d, e)] = built.problem.add_variable(f"kv_flow__{m}__{d}__{e}", lowBound=0)
        for d in doms:
            out = pulp.lpSum(built.kv_flow[(m, d, e)] for e in doms)
            built.add_row("kv_prefill_out", (m, d), out <= _role_capacity_in(built, data, m, "prefill", d, True))
            inn = pulp.lpSum(built.kv_flow[(m, e, d)] for e in doms)
            built.add_row("kv_decode_in", (m, d), inn <= _role_capacity_in(built, data, m, "decode", d, True))
        demand = data.demand_rps[(m, "prefill")]
        need = demand * built.scale if built.scale is not None else demand
        built.add_row("kv_flow_total", (m,), pulp.lpSum(built.kv_flow[(m, d, e)] for d in doms for e in doms) >= need)
    for link, bandwidth in sorted(data.links.items()):
        load = pulp.lpSum(data.kv_gbit_per_request[m] * share[link] * built.kv_flow[(m, d, e)]
                          for (d, e), share in data.routes.items() if link in share for m in models)
        key = f"extra_bandwidth__{link[0]}__{link[1]}"
        rhs = bandwidth + built.extra[key] if key in built.extra else bandwidth
        built.add_row("link_bandwidth", link, load <= rhs)


def add_domain_loss_cover(built: BuiltProblem, data: ModelData) -> None:
    """domain_loss_cover[m,r,D]: capacity of model m, role r outside domain D >= fraction x demand (x scale),
    for every domain D that holds a pool: the fleet survives losing any one domain."""
    if data.domain_loss_fraction is None:
        return
    doms = sorted({p.domain for p in data.pools.values()})
    for (m, r), demand in data.demand_rps.items():
        need = demand * built.scale if built.scale is not None else demand
        for lost in doms:
            left = _role_capacity_in(built, data, m, r, lost, False)
            built.add_row("domain_loss_cover", (m, r, lost), left >= data.domain_loss_fraction * need)


def add_demand_cover(built: BuiltProblem, data: ModelData) -> None:
    """demand_cover[m,r]: sum_s,p cap[s] x[s,p] (+ shortfall) >= scale x demand[m,r] + spare[m,r].

    ``scale`` is 1 except when maximising it; ``spare`` = k x the largest per-instance capacity of the role, so the
    demand stays covered after losing any k instances (N+k).
    """
    for (m, r), demand in data.demand_rps.items():
        terms = [data.shapes[s].capacity_rps * v for (s, p), v in built.x.items()
                 if data.shapes[s].model == m and data.shapes[s].role == r and s not in built.pooled_capacity]
        terms += [cap for s, cap in built.pooled_capacity.items()
                  if data.shapes[s].model == m and data.shapes[s].role == r]
        if (m, r) in built.shortfall:
            terms.append(built.shortfall[(m, r)])
        need = demand * built.scale if built.scale is not None else demand
        built.add_row("demand_cover", (m, r), pulp.lpSum(terms) >= need + data.spare_rps[(m, r)])


def add_pool_gpu_capacity(built: BuiltProblem, data: ModelData) -> None:
    """pool_gpu_capacity[p] (aggregate pools): sum_s g[s] x[s,p] <= GPUs per node[p] x nodes[p].

    Exact for packing: sizes within a node form a divisibility chain dividing the node size (first-fit
    decreasing then fills nodes without fragments), and a spanning instance takes whole nodes.
    """
    for p, n in built.nodes.items():
        pool = data.pools[p]
        if pool.packing != "aggregate":
            continue
        terms = [data.shapes[s].gpus_per_instance * v for (s, q), v in built.x.items() if q == p]
        built.add_row("pool_gpu_capacity", (p,), pulp.lpSum(terms) <= pool.gpus_per_node * n)


def add_patterns(built: BuiltProblem, data: ModelData) -> None:
    """Pattern pools: pattern_nodes[p,q] nodes packed by maximal pattern q.

    pattern_cover[p,g]: sum of x[s,p] over shapes of size g <= sum_q count[q,g] pattern_nodes[p,q];
    pattern_node_count[p]: nodes[p] = sum_q pattern_nodes[p,q] + sum over spanning shapes of (g/k) x[s,p].
    """
    for p, n in built.nodes.items():
        pool = data.pools[p]
        if pool.packing != "patterns":
            continue
        ys = []
        for qi, _ in enumerate(pool.patterns):
            y = built.problem.add_variable(f"pattern_nodes__{p}__q{qi}", lowBound=0, cat=pulp.LpInteger)
            built.pattern_nodes[(p, qi)] = y
            ys.append(y)
        for gi, g in enumerate(pool.sizes):
            terms = [v for (s, q), v in built.x.items() if q == p and data.shapes[s].gpus_per_instance == g]
            slots = [pat[gi] * ys[qi] for qi, pat in enumerate(pool.patterns) if pat[gi]]
            built.add_row("pattern_cover", (p, f"g{g}"), pulp.lpSum(terms) <= pulp.lpSum(slots))
        spanning = [data.nodes_spanned(s, q) * v for (s, q), v in built.x.items()
                    if q == p and data.nodes_spanned(s, q)]
        built.add_row("pattern_node_count", (p,), n == pulp.lpSum(ys) + pulp.lpSum(spanning))


def add_gpu_type_availability(built: BuiltProblem, data: ModelData) -> None:
    """gpu_type_availability[g]: GPUs rented of type g <= cap[g] (+ extra_gpus[g] when elastic).

    Node-billed pools rent whole nodes (GPUs per node x nodes); GPU-billed pools rent their instances' GPUs.
    """
    for g, cap in data.gpu_caps.items():
        terms = []
        for p, n in built.nodes.items():
            pool = data.pools[p]
            if pool.gpu_type != g:
                continue
            if pool.billed_per_node:
                terms.append(pool.gpus_per_node * n)
            else:
                terms += [data.shapes[s].gpus_per_instance * v for (s, q), v in built.x.items() if q == p]
        if terms:
            rhs = cap + built.extra[f"extra_gpus__{g}"] if f"extra_gpus__{g}" in built.extra else cap
            built.add_row("gpu_type_availability", (g,), pulp.lpSum(terms) <= rhs)


def add_budget(built: BuiltProblem, data: ModelData) -> None:
    """budget: hourly cost <= budget (+ extra_budget when elastic)."""
    if data.budget_usd_per_hour is None or built.cost is None:
        return
    rhs = data.budget_usd_per_hour + built.extra["extra_budget"] if "extra_budget" in built.extra \
        else data.budget_usd_per_hour
    built.add_row("budget", ("total",), built.cost <= rhs)


def _add_elastic(built: BuiltProblem, data: ModelData) -> None:
    """Elastic variant: slack on every resource, so that the cheapest way to become feasible shows what runs out.

    extra_nodes[p] >= 0 relaxes nodes[p] <= node_count[p]; extra_gpus[g] >= 0 relaxes the cap of GPU type g;
    extra_budget >= 0 relaxes the budget. Penalties, per GPU-equivalent, are far above any price.
    """
    prob = built.problem
    for p, n in built.nodes.items():
        e = prob.add_variable(f"extra_nodes__{p}", lowBound=0)
        built.extra[f"extra_nodes__{p}"] = e
        built.add_row("pool_node_limit", (p,), n <= data.pools[p].node_count + e)
    for g in data.gpu_caps:
        built.extra[f"extra_gpus__{g}"] = prob.add_variable(f"extra_gpus__{g}", lowBound=0)
    if data.budget_usd_per_hour is not None:
        built.extra["extra_budget"] = prob.add_variable("extra_budget", lowBound=0)
    for a, b in data.links:
        built.extra[f"extra_bandwidth__{a}__{b}"] = prob.add_variable(f"extra_bandwidth__{a}__{b}", lowBound=0)


def build_problem(data: ModelData, name: str = "pdopt_f1", mode: Mode = "min_cost",
                  min_scale: float | None = None) -> BuiltProblem:
    """Build the formulation (never solves).

    ``min_cost``: minimise cost (then GPUs, then nodes, by small weights); with ``min_scale``, demand is
    multiplied by a scale variable held at least that. ``max_scale``: maximise the uniform demand multiplier the
    inventory serves. ``elastic``: resources may be exceeded at a penalty, demand is hard (which resource runs
    out, by how much). ``shortfall``: demand may go uncovered at a penalty, resources are hard (which model and
    role cannot be served, by how much).
    """
    problem = pulp.LpProblem(name, pulp.LpMaximize if mode == "max_scale" else pulp.LpMinimize)
    built = BuiltProblem(problem, {})
    bounded = mode != "elastic"
    add_instance_counts(built, data, bounded)
    add_nodes(built, data, bounded)
    if mode == "max_scale" or min_scale is not None:
        built.scale = problem.add_variable("scale", lowBound=min_scale or 0.0)
    if mode == "elastic":
        _add_elastic(built, data)
    if mode == "shortfall":
        built.shortfall = {key: problem.add_variable(f"shortfall__{key[0]}__{key[1]}", lowBound=0)
                           for key in data.demand_rps}
    built.cost = cost_expression(built, data)
    tie = TIE_BREAK_USD_PER_GPU * gpus_expression(built, data) + TIE_BREAK_USD_PER_NODE * pulp.lpSum(
        built.nodes.values())
    if mode == "max_scale":
        assert built.scale is not None
        problem += built.scale
    elif mode == "elastic":
        top = max([p.price_usd_per_gpu_hour for p in data.pools.values()] + [1.0])
        penalty = 1e4 * top
        slack = []
        for key, var in built.extra.items():
            if key.startswith("extra_nodes__"):
                slack.append(penalty * data.pools[key.removeprefix("extra_nodes__")].gpus_per_node * var)
            elif key.startswith("extra_gpus__"):
                slack.append(penalty * var)
            elif key.startswith("extra_bandwidth__"):
                slack.append(penalty * var)  # a Gbit/s of missing bandwidth weighs like a missing GPU
            else:
                slack.append(penalty / top * var)
        problem += built.cost + tie + pulp.lpSum(slack)
    elif mode == "shortfall":
        worst = max([data.cost_usd_per_hour(s, p) / data.shapes[s].capacity_rps for s, p in data.arcs] + [1.0])
        problem += built.cost + tie + pulp.lpSum(1e4 * worst * v for v in built.shortfall.values())
    else:
        problem += built.cost + tie
    add_pooled_capacity(built, data)
    add_demand_cover(built, data)
    add_pool_gpu_capacity(built, data)
    add_patterns(built, data)
    add_gpu_type_availability(built, data)
    add_budget(built, data)
    add_kv_flows(built, data)
    add_domain_loss_cover(built, data)
    return built


def relax(built: BuiltProblem) -> None:
    """Make every variable continuous: the LP relaxation (for bounds and calibration)."""
    for v in built.problem.variables():
        v.cat = pulp.LpContinuous


def solution_counts(built: BuiltProblem) -> dict[tuple[str, str], int]:
    """Nonzero integer instance counts of a solved problem (rounded from the solver's floats)."""
    counts: dict[tuple[str, str], int] = {}
    for key, v in built.x.items():
        val = v.value()
        if val is not None and not math.isnan(val) and round(val) > 0:
            counts[key] = round(val)
    return counts


def solution_nodes(built: BuiltProblem) -> dict[str, int]:
    """Nodes in use per pool in a solved problem."""
    return {p: round(v.value() or 0.0) for p, v in built.nodes.items()}


def set_start(built: BuiltProblem, counts: dict[tuple[str, str], int], nodes: dict[str, int]) -> None:
    """Give the solver a feasible start (a MIP start): instance counts and nodes; others start at zero."""
    for key, v in built.x.items():
        v.setInitialValue(counts.get(key, 0))
    for p, v in built.nodes.items():
        v.setInitialValue(nodes.get(p, 0))

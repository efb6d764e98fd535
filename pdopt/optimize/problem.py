"""Formulation F1's problem: its modes, variable families, objective, and the built-problem container.

:func:`pdopt.optimize.build.build_problem` creates these variable families and the objective, then calls every
registered constraint family (:data:`pdopt.optimize.families.FAMILIES`) that applies to the data and the mode.
A mode is data (:data:`MODES`): the objective's sense, whether resources are hard, and which penalised virtual
variables exist. A shortfall is a virtual supply per model and role at a penalty far above any price (as PyPSA
sheds load), an elastic resource a slack at a penalty far above any price; both have typed keys
(:class:`SlackKey`), never names parsed back. Row names are ``<family>__<index>__<index>``;
``formulations/f1.yaml`` states the same families with their maths and points at each function.

Packing. A pool whose admitted instance sizes form a divisibility chain dividing the node size (1 | 2 | 4 | 8)
packs exactly by GPU totals (``pool_gpu_capacity``); any other pool (TP 3 on 8-GPU nodes, or 3 and 2 together)
chooses, per node, one maximal packing pattern (``pattern_cover``, ``pattern_node_count``). Instances that span
whole nodes take ``gpus / node size`` nodes each in either scheme. Identical nodes are never indexed one by one
(no symmetry): a pool carries integer node counts only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulp

from pdopt.optimize.model_data import Arc, ModelData

PENALTY_FACTOR = 1e4
"""A virtual supply or a resource slack costs this many times the dearest real price per unit."""

Mode = Literal["min_cost", "max_scale", "elastic", "shortfall"]
Resource = Literal["nodes", "gpus", "budget", "bandwidth"]


@dataclass(frozen=True)
class ModeSpec:
    """What a mode changes, as data: the sense, whether resource bounds are hard, and the virtual variables."""

    maximise_scale: bool = False
    """Maximise the uniform demand multiplier instead of minimising cost."""
    scale: bool = False
    """Demand is multiplied by a ``scale`` variable (always with ``maximise_scale``)."""
    hard_resources: bool = True
    """Node counts and instance counts bounded by the inventory (elastic: bounded by slack rows instead)."""
    slack: bool = False
    """Resources may be exceeded at a penalty (``extra_*`` variables)."""
    shortfall: bool = False
    """Demand may go uncovered at a penalty (``shortfall`` variables, a virtual supply per model and role)."""


MODES: Mapping[Mode, ModeSpec] = {
    "min_cost": ModeSpec(),
    "max_scale": ModeSpec(maximise_scale=True, scale=True),
    "elastic": ModeSpec(hard_resources=False, slack=True),
    "shortfall": ModeSpec(shortfall=True),
}


@dataclass(frozen=True, order=True)
class SlackKey:
    """A resource an elastic solve may exceed: ``nodes`` (pool id), ``gpus`` (GPU type), ``budget`` (no index),
    ``bandwidth`` (the link's two ends)."""

    resource: Resource
    index: tuple[str, ...] = ()

    @property
    def var_name(self) -> str:
        """The PuLP variable name: ``extra_<resource>__<index>...``."""
        return "__".join((f"extra_{self.resource}", *self.index))


@dataclass(frozen=True)
class VariableIndex:
    """Where to read each solution value: variable names by typed key (what extraction and diagnosis need)."""

    x: Mapping[Arc, str]
    nodes: Mapping[str, str]
    kv_flow: Mapping[tuple[str, str, str], str]
    shortfall: Mapping[tuple[str, str], str]
    slack: Mapping[SlackKey, str]
    scale: str | None
    mode_share: Mapping[str, str] = field(default_factory=dict)
    """Mixed models: model -> the variable holding the req/s routed to its aggregated instances."""


@dataclass
class BuiltProblem:
    """A built (unsolved) MILP and where to find its parts."""

    problem: pulp.LpProblem
    mode: Mode = "min_cost"
    x: dict[Arc, pulp.LpVariable] = field(default_factory=dict)
    """(shape id, pool id) -> instance count."""
    nodes: dict[str, pulp.LpVariable] = field(default_factory=dict)
    """pool id -> nodes in use."""
    pattern_nodes: dict[tuple[str, int], pulp.LpVariable] = field(default_factory=dict)
    rows: dict[str, list[str]] = field(default_factory=dict)
    """constraint family -> row names."""
    scale: pulp.LpVariable | None = None
    cost: pulp.LpAffineExpression | None = None
    """Hourly cost (without tie-break terms or penalties)."""
    slack: dict[SlackKey, pulp.LpVariable] = field(default_factory=dict)
    """Elastic mode: resource slack variables."""
    shortfall: dict[tuple[str, str], pulp.LpVariable] = field(default_factory=dict)
    """Shortfall mode: (model, role) -> demand left uncovered (a penalised virtual supply)."""
    kv_flow: dict[tuple[str, str, str], pulp.LpVariable] = field(default_factory=dict)
    """(model, prefill domain, decode domain) -> requests/s whose KV cache moves between them."""
    pooled_steps: dict[str, tuple[list[pulp.LpVariable], pulp.LpVariable]] = field(default_factory=dict)
    """Pooled (ggc) shapes: shape id -> (ordered step binaries, tail count)."""
    pooled_capacity: dict[str, pulp.LpAffineExpression] = field(default_factory=dict)
    """Pooled (ggc) shapes: shape id -> capacity of all its instances (the linearisation)."""
    mode_share: dict[str, pulp.LpVariable] = field(default_factory=dict)
    """Mixed models: model -> req/s routed to aggregated instances (the rest goes to P/D pairs)."""
    mode_on: dict[tuple[str, str], pulp.LpVariable] = field(default_factory=dict)
    """Mixed models with spares: (model, mode) -> 1 when the mode serves part of the demand (its spares are then
    held)."""

    def add_row(self, family: str, index: tuple[str, ...], constraint: pulp.LpConstraint) -> None:
        """Add a named row ``family__i__j`` and register it under its family."""
        name = "__".join((family, *index))
        self.problem += constraint, name
        self.rows.setdefault(family, []).append(name)

    def demand_need(self, demand: float) -> pulp.LpAffineExpression | float:
        """A demand as the rows see it: times the scale variable when the mode has one."""
        return demand * self.scale if self.scale is not None else demand

    def rhs_with_slack(self, bound: float, key: SlackKey) -> pulp.LpAffineExpression | float:
        """A resource bound, plus its slack when the mode is elastic."""
        return bound + self.slack[key] if key in self.slack else bound

    def index(self) -> VariableIndex:
        """Variable names by typed key, for reading a :class:`~pdopt.optimize.solver.Solution`."""
        return VariableIndex(
            x={k: v.name for k, v in self.x.items()}, nodes={k: v.name for k, v in self.nodes.items()},
            kv_flow={k: v.name for k, v in self.kv_flow.items()},
            shortfall={k: v.name for k, v in self.shortfall.items()},
            slack={k: v.name for k, v in self.slack.items()}, scale=None if self.scale is None else self.scale.name,
            mode_share={k: v.name for k, v in self.mode_share.items()})


# -- variable families ------------------------------------------------------------------------------------------


def add_x(built: BuiltProblem, data: ModelData) -> None:
    """x[s,p] in Z>=0: instances of shape s in pool p, at most the pool's GPUs over the instance's GPUs (hard
    resources only)."""
    hard = MODES[built.mode].hard_resources
    for s, p in data.arcs:
        ub = data.pools[p].gpus // data.shapes[s].gpus_per_instance if hard else None
        built.x[(s, p)] = built.problem.add_variable(f"x__{s}__{p}", lowBound=0, upBound=ub, cat=pulp.LpInteger)


def add_nodes(built: BuiltProblem, data: ModelData) -> None:
    """nodes[p] in Z, 0 <= nodes[p] <= node_count[p] (hard resources): nodes of pool p in use."""
    hard = MODES[built.mode].hard_resources
    for p in data.pools_in_use:
        ub = data.pools[p].node_count if hard else None
        built.nodes[p] = built.problem.add_variable(f"nodes__{p}", lowBound=0, upBound=ub, cat=pulp.LpInteger)


def add_pattern_nodes(built: BuiltProblem, data: ModelData) -> None:
    """pattern_nodes[p,q] in Z>=0: nodes of a patterns pool p packed by maximal pattern q."""
    for p in data.pools_in_use:
        for qi, _ in enumerate(data.pools[p].patterns if data.pools[p].packing == "patterns" else ()):
            built.pattern_nodes[(p, qi)] = built.problem.add_variable(f"pattern_nodes__{p}__q{qi}", lowBound=0,
                                                                      cat=pulp.LpInteger)


def add_pooled_steps(built: BuiltProblem, data: ModelData) -> None:
    """pooled_step[s,c] in {0,1} and pooled_tail[s] in Z>=0 for pooled (ggc) shapes; their capacity expression
    sum_c g_c step[s,c] + g_C tail[s] (marginal gains g_1 <= ... <= g_C of the pooled queue)."""
    for sid, arcs in data.arcs_by_shape.items():
        gains = data.shapes[sid].pooled_gains
        if not gains:
            continue
        steps = [built.problem.add_variable(f"pooled_step__{sid}__c{c + 1}", lowBound=0, upBound=1,
                                            cat=pulp.LpInteger) for c in range(len(gains))]
        n_max = sum(data.pools[p].gpus // data.shapes[sid].gpus_per_instance for _, p in arcs)
        tail = built.problem.add_variable(f"pooled_tail__{sid}", lowBound=0, upBound=n_max, cat=pulp.LpInteger)
        built.pooled_steps[sid] = (steps, tail)
        built.pooled_capacity[sid] = pulp.lpSum(g * st for g, st in zip(gains, steps, strict=True)) + gains[-1] * tail


def add_scale(built: BuiltProblem, data: ModelData, min_scale: float | None) -> None:
    """scale >= min_scale (0 when maximising): the uniform demand multiplier."""
    if MODES[built.mode].scale or min_scale is not None:
        built.scale = built.problem.add_variable("scale", lowBound=min_scale or 0.0)


def add_shortfall(built: BuiltProblem, data: ModelData) -> None:
    """shortfall[m,r] >= 0 (shortfall mode): a virtual supply of demand, penalised in the objective."""
    if MODES[built.mode].shortfall:
        built.shortfall = {k: built.problem.add_variable(f"shortfall__{k[0]}__{k[1]}", lowBound=0)
                           for k in data.demand_rps}


def slack_keys(data: ModelData) -> list[SlackKey]:
    """Every resource an elastic solve may exceed: each used pool's nodes, each capped GPU type, the budget,
    each link's bandwidth."""
    keys = [SlackKey("nodes", (p,)) for p in data.pools_in_use]
    keys += [SlackKey("gpus", (g,)) for g in data.gpu_caps]
    keys += [SlackKey("budget")] if data.budget_usd_per_hour is not None else []
    keys += [SlackKey("bandwidth", link) for link in sorted(data.links)]
    return keys


def add_slack(built: BuiltProblem, data: ModelData) -> None:
    """extra_nodes[p], extra_gpus[g], extra_budget, extra_bandwidth[l] >= 0 (elastic mode): resource slack."""
    if MODES[built.mode].slack:
        built.slack = {k: built.problem.add_variable(k.var_name, lowBound=0) for k in slack_keys(data)}


def add_mode_vars(built: BuiltProblem, data: ModelData) -> None:
    """mode_share[m] >= 0 for mixed models: req/s of m routed to its aggregated instances; mode_on[m,mode] in {0,1}
    for a mixed model's mode whose roles hold spares (N+k): the spares are held only when the mode is used."""
    for m in data.mixed_models:
        built.mode_share[m] = built.problem.add_variable(f"mode_share__{m}", lowBound=0)
        for mode, roles in (("aggregated", ("aggregated",)), ("disaggregated", ("prefill", "decode"))):
            if any(data.spare_rps[(m, r)] > 0 for r in roles):
                built.mode_on[(m, mode)] = built.problem.add_variable(f"mode_on__{m}__{mode}", lowBound=0,
                                                                      upBound=1, cat=pulp.LpInteger)


def add_kv_flow_vars(built: BuiltProblem, data: ModelData) -> None:
    """kv_flow[m,d,e] >= 0 (networks only): requests/s of m prefilled in domain d and decoded in domain e (models
    that may be served disaggregated)."""
    if not data.routes:
        return
    doms = sorted({d for d, _ in data.routes})
    for m in data.disaggregated_models:
        for d in doms:
            for e in doms:
                built.kv_flow[(m, d, e)] = built.problem.add_variable(f"kv_flow__{m}__{d}__{e}", lowBound=0)


VARIABLE_FAMILIES: tuple[str, ...] = ("x", "nodes", "pattern_nodes", "scale", "shortfall", "extra_nodes",
                                      "extra_gpus", "extra_budget", "pooled_step", "pooled_tail", "kv_flow",
                                      "extra_bandwidth", "mode_share", "mode_on")


# -- objective ----------------------------------------------------------------------------------------------------


def cost_expression(built: BuiltProblem, data: ModelData) -> pulp.LpAffineExpression:
    """Hourly cost, with the price book's coefficients (:meth:`ModelData.pool_cost_usd_per_hour`):
    sum_p node_cost_p nodes[p] + sum_(s,p) arc_cost_sp x[s,p]."""
    terms = [data.node_cost_usd_per_hour(p) * n for p, n in built.nodes.items() if data.node_cost_usd_per_hour(p)]
    terms += [data.arc_cost_usd_per_hour(*a) * v for a, v in built.x.items() if data.arc_cost_usd_per_hour(*a)]
    return pulp.lpSum(terms)


def gpus_expression(built: BuiltProblem, data: ModelData) -> pulp.LpAffineExpression:
    """GPUs occupied by instances."""
    return pulp.lpSum(data.shapes[s].gpus_per_instance * v for (s, _), v in built.x.items())


def nodes_expression(built: BuiltProblem) -> pulp.LpAffineExpression:
    """Nodes in use, over every pool."""
    return pulp.lpSum(built.nodes.values())


def penalties(data: ModelData) -> tuple[dict[Resource, float], float]:
    """Penalty per unit of each resource's slack, and per req/s of shortfall: far above any real price, so that
    a penalised variable is used only when nothing real can do (a Gbit/s of bandwidth weighs like a GPU; a node
    like its GPUs; a USD of budget like a USD)."""
    top = max([p.price_usd_per_gpu_hour for p in data.pools.values()] + [1.0])
    per_gpu = PENALTY_FACTOR * top
    worst = max([data.cost_usd_per_hour(s, p) / data.shapes[s].capacity_rps for s, p in data.arcs] + [1.0])
    return {"nodes": per_gpu, "gpus": per_gpu, "budget": PENALTY_FACTOR, "bandwidth": per_gpu}, PENALTY_FACTOR * worst


def set_objective(built: BuiltProblem, data: ModelData) -> None:
    """max_scale: maximise scale. Otherwise minimise cost + penalties x virtual variables (slack, shortfall); the
    tie-breaks (fewest GPUs, then nodes) are a second stage among the plans of the optimal cost
    (:mod:`pdopt.optimize.lexicographic`)."""
    built.cost = cost_expression(built, data)
    if MODES[built.mode].maximise_scale:
        assert built.scale is not None
        built.problem += built.scale
        return
    per_unit, per_rps = penalties(data)
    virtual = [per_unit[k.resource] * (data.pools[k.index[0]].gpus_per_node if k.resource == "nodes" else 1.0) * v
               for k, v in built.slack.items()]
    virtual += [per_rps * v for v in built.shortfall.values()]
    built.problem += built.cost + pulp.lpSum(virtual)

"""Plans: the frozen result of a solve, its JSON form, and the end-to-end ``solve`` entry point."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from pdopt.capacity import CapacityTable, ShapeCapacity, SkippedShape, capacity_table
from pdopt.instance import ROLES, Instance
from pdopt.milp import BuiltProblem, build_problem, set_start, solution_counts, solution_nodes
from pdopt.model_data import ModelData, build_model_data, unservable_roles
from pdopt.solver import SolveResult, SolverOptions, SolveStatus, run_solver

FORMULATION = "F1"


@dataclass(frozen=True)
class Placement:
    """``count`` instances of one shape for one model and role, placed in one node pool."""

    model: str
    role: str
    gpu_type: str
    gpus_per_instance: int
    pool: str
    count: int
    capacity_rps: float
    """Requests per second ONE instance serves at the SLO."""
    cost_usd_per_hour: float
    """Hourly cost of all ``count`` instances: their share (by GPUs) of the pool's cost."""
    variant: str = "default"


@dataclass(frozen=True)
class PoolUse:
    """How much of a node pool the plan uses and what it costs."""

    gpu_type: str
    domain: str
    node_count: int
    nodes_used: int
    gpus_used: int
    """GPUs occupied by instances."""
    packing: str
    cost_usd_per_hour: float


@dataclass(frozen=True)
class RolePlan:
    """A model's plan for one role."""

    instances: int
    fractional_instances: float | None
    """Demand over per-instance capacity when a single shape serves the role (the paper's unrounded count)."""
    capacity_rps: float
    """Total capacity of the planned instances at the SLO."""
    utilisation: float | None
    """Demand over total capacity."""
    gpus: int


@dataclass(frozen=True)
class ModelPlan:
    """A model's plan: demand and both roles."""

    demand_rps: float
    prefill: RolePlan
    decode: RolePlan
    pd_ratio: float | None
    """Prefill instances over decode instances."""


@dataclass(frozen=True)
class SolverReport:
    """Which solver ran, how long, and how far from proven optimal."""

    name: str
    runtime_s: float
    gap: float | None
    bound: float | None
    message: str
    root_lp_bound: float | None = None
    heuristic_usd_per_hour: float | None = None
    """Cost of the greedy start given to the solver (None when the greedy found none)."""


@dataclass(frozen=True)
class Plan:
    """A solved (or failed) planning problem; ``to_dict`` gives the public JSON form."""

    instance: str
    status: SolveStatus
    objective_usd_per_hour: float | None
    scale_demand: float
    placements: tuple[Placement, ...]
    models: dict[str, ModelPlan]
    gpus_used: dict[str, int]
    skipped_shapes: tuple[SkippedShape, ...]
    solver: SolverReport
    reason: str | None = None
    """Why there is no plan (infeasible, no solution), in the instance's terms."""
    formulation: str = FORMULATION
    shortfall_rps: dict[str, dict[str, float]] = field(default_factory=dict)
    """For an infeasible instance: model -> role -> demand the inventory leaves uncovered (one such split)."""
    pools: dict[str, PoolUse] = field(default_factory=dict)
    cost_breakdown: dict[str, Any] = field(default_factory=dict)
    scale: float | None = None
    """With ``maximize_scale``: the largest uniform demand multiplier the inventory serves at the SLOs."""
    resource_needs: tuple[str, ...] = ()
    """For an infeasible instance: each resource that runs out and by how much (elastic re-solve)."""
    links: tuple[dict[str, Any], ...] = ()
    """With a network: per link, the planned KV traffic (Gbit/s) and its utilisation."""
    kv_flows: tuple[dict[str, Any], ...] = ()
    """With a network: requests/s per (model, prefill domain, decode domain)."""
    failure_scenarios: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Per lost domain, per model: prefill and decode capacity left (req/s) and the share of demand it serves."""

    @property
    def has_plan(self) -> bool:
        """True when the plan holds a solution (optimal or feasible)."""
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (field names are a public contract)."""
        return {
            "instance": self.instance,
            "formulation": self.formulation,
            "status": self.status.value,
            "objective_usd_per_hour": self.objective_usd_per_hour,
            "scale_demand": self.scale_demand,
            "scale": self.scale,
            "reason": self.reason,
            "placements": [asdict(p) for p in self.placements],
            "models": {m: asdict(mp) for m, mp in self.models.items()},
            "pools": {p: asdict(u) for p, u in self.pools.items()},
            "gpus_used": dict(self.gpus_used),
            "cost_breakdown": self.cost_breakdown,
            "shortfall_rps": self.shortfall_rps,
            "resource_needs": list(self.resource_needs),
            "links": list(self.links),
            "kv_flows": list(self.kv_flows),
            "failure_scenarios": self.failure_scenarios,
            "skipped_shapes": [asdict(s) for s in self.skipped_shapes],
            "solver": asdict(self.solver),
        }


def _role_plan(demand: float, placements: list[Placement]) -> RolePlan:
    total_cap = sum(p.capacity_rps * p.count for p in placements)
    shapes = {(p.gpu_type, p.gpus_per_instance, p.variant) for p in placements}
    fractional = demand / placements[0].capacity_rps if len(shapes) == 1 else None
    return RolePlan(
        instances=sum(p.count for p in placements),
        fractional_instances=fractional,
        capacity_rps=total_cap,
        utilisation=demand / total_cap if total_cap > 0 else None,
        gpus=sum(p.gpus_per_instance * p.count for p in placements),
    )


def min_nodes(data: ModelData, pool_id: str, counts: dict[tuple[str, str], int]) -> int:
    """Fewest nodes of a pool that hold its instances: whole nodes for spanning instances, then, for aggregate
    (divisibility-chain) pools, ceil(remaining GPUs / GPUs per node), which first-fit decreasing achieves; for
    pattern pools, the best of first-fit decreasing (an upper bound the solver's count may beat)."""
    pool = data.pools[pool_id]
    k = pool.gpus_per_node
    spanning = sum(c * data.nodes_spanned(s, p) for (s, p), c in counts.items() if p == pool_id)
    sizes = sorted((data.shapes[s].gpus_per_instance for (s, p), c in counts.items() if p == pool_id
                    and not data.nodes_spanned(s, p) for _ in range(c)), reverse=True)
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


def pool_costs(data: ModelData, counts: dict[tuple[str, str], int], nodes: dict[str, int]) -> dict[str, float]:
    """Hourly cost per pool: node price (node billing) or instance GPUs x GPU price, plus activation x nodes."""
    out: dict[str, float] = {}
    for p, n in nodes.items():
        pool = data.pools[p]
        cost = n * pool.activation_usd_per_node_hour
        if pool.billed_per_node:
            cost += n * pool.price_usd_per_node_hour
        else:
            cost += sum(c * data.cost_usd_per_hour(s, q) for (s, q), c in counts.items() if q == p)
        out[p] = cost
    return out


def _placements(counts: dict[tuple[str, str], int], nodes: dict[str, int], data: ModelData) -> tuple[Placement, ...]:
    costs = pool_costs(data, counts, nodes)
    gpus_in = {p: sum(c * data.shapes[s].gpus_per_instance for (s, q), c in counts.items() if q == p) for p in nodes}
    total_of: dict[str, int] = {}
    for (sid, _), n in counts.items():
        total_of[sid] = total_of.get(sid, 0) + n
    out = []
    for (sid, pid), n in sorted(counts.items()):
        s = data.shapes[sid]
        share = n * s.gpus_per_instance / gpus_in[pid] if gpus_in[pid] else 0.0
        per_instance = s.pooled_capacity_rps(total_of[sid]) / total_of[sid]  # pooled: the group's average
        out.append(Placement(s.model, s.role, s.gpu_type, s.gpus_per_instance, pid, n, per_instance,
                             costs[pid] * share, s.variant))
    return tuple(out)


def _breakdown(placements: tuple[Placement, ...]) -> dict[str, Any]:
    by_model: dict[str, float] = {}
    by_role: dict[str, float] = {}
    by_gpu: dict[str, float] = {}
    by_model_role: dict[str, dict[str, float]] = {}
    for p in placements:
        by_model[p.model] = by_model.get(p.model, 0.0) + p.cost_usd_per_hour
        by_role[p.role] = by_role.get(p.role, 0.0) + p.cost_usd_per_hour
        by_gpu[p.gpu_type] = by_gpu.get(p.gpu_type, 0.0) + p.cost_usd_per_hour
        mr = by_model_role.setdefault(p.model, {})
        mr[p.role] = mr.get(p.role, 0.0) + p.cost_usd_per_hour
    return {"by_model": by_model, "by_role": by_role, "by_gpu_type": by_gpu, "by_model_role": by_model_role}


def _model_plans(placements: tuple[Placement, ...], data: ModelData, instance: Instance,
                 scale: float) -> dict[str, ModelPlan]:
    plans = {}
    for m in instance.workloads:
        roles = {r: _role_plan(data.demand_rps[(m, r)] * scale,
                               [p for p in placements if p.model == m and p.role == r]) for r in ROLES}
        n_d = roles["decode"].instances
        plans[m] = ModelPlan(data.demand_rps[(m, "prefill")] * scale, roles["prefill"], roles["decode"],
                             roles["prefill"].instances / n_d if n_d else None)
    return plans


def _no_shape_reason(table: CapacityTable, data: ModelData) -> str | None:
    lines = []
    for m, r in unservable_roles(data):
        notes = [f"{s.gpu_type} x{s.gpus_per_instance}: {s.reason}" for s in table.skipped
                 if s.model == m and s.role == r]
        if table.for_role(m, r) and not notes:
            notes = ["no node pool can host its usable shapes"]
        lines.append(f"model '{m}', role {r}: no usable shape (" + "; ".join(notes or ["no profile"]) + ")")
    return "\n".join(lines) or None


def greedy_start(data: ModelData) -> tuple[dict[tuple[str, str], int], dict[str, int]] | None:
    """A feasible start by a greedy rule: each (model, role), largest demand first, takes instances of its
    cheapest shape per req/s among pools with room (aggregate packing only). None when it runs out."""
    free = {p: pool.gpus for p, pool in data.pools.items() if pool.packing == "aggregate"}
    cap_left = dict(data.gpu_caps)
    counts: dict[tuple[str, str], int] = {}
    for (m, r), demand in sorted(data.demand_rps.items(), key=lambda kv: -kv[1]):
        need = demand + data.spare_rps[(m, r)]
        arcs = sorted(((s, p) for s, p in data.arcs
                       if p in free and data.shapes[s].model == m and data.shapes[s].role == r),
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


def achieved_scale(data: ModelData, counts: dict[tuple[str, str], int]) -> float:
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


def solve(
    instance: Instance,
    options: SolverOptions | None = None,
    scale_demand: float = 1.0,
    maximize_scale: bool = False,
) -> Plan:
    """Plan the cheapest P/D fleet for ``instance``: capacities, model data, build, solve, extract.

    With ``maximize_scale`` the inventory is fixed: first the largest uniform demand multiplier it serves is
    found, then the cheapest plan at that multiplier.
    """
    if not scale_demand > 0:
        raise ValueError(f"scale_demand must be positive, got {scale_demand}")
    opts = options or SolverOptions()
    table = capacity_table(instance)
    data = build_model_data(instance, table, scale_demand)
    no_shape = _no_shape_reason(table, data)
    if no_shape is not None:
        return _failed(instance, table, SolveStatus.INFEASIBLE, opts.name, no_shape, scale_demand)
    scale: float | None = None
    if maximize_scale:
        top = build_problem(data, name="pdopt_f1_max_scale", mode="max_scale")
        res = run_solver(top.problem, opts)
        if res.status is not SolveStatus.OPTIMAL and res.status is not SolveStatus.FEASIBLE:
            return _failed(instance, table, res.status, res.solver_name,
                           f"no demand multiplier can be served (solver: {res.message})", scale_demand, res.runtime_s)
        scale = achieved_scale(data, solution_counts(top))
        if scale <= 1e-9:
            short, needs = diagnose(data, opts)
            return _failed(instance, table, SolveStatus.INFEASIBLE, res.solver_name,
                           "the inventory and limits serve no positive multiple of the demand\n"
                           + _infeasible_reason(short, needs, data), scale_demand, res.runtime_s,
                           res.message, short, needs)
        built = build_problem(data, min_scale=scale)
    else:
        built = build_problem(data)
    start = greedy_start(data) if not maximize_scale else None
    heuristic = None
    if start is not None:
        set_start(built, *start)
        heuristic = sum(pool_costs(data, start[0], start[1]).values())
    result = run_solver(built.problem, opts, warm_start=start is not None)
    return extract(instance, table, data, built, result, opts, scale_demand, scale, heuristic)


def _failed(instance: Instance, table: CapacityTable, status: SolveStatus, solver: str, reason: str,
            scale: float, runtime: float = 0.0, message: str = "",
            shortfall: dict[str, dict[str, float]] | None = None, needs: tuple[str, ...] = ()) -> Plan:
    return Plan(instance.name, status, None, scale, (), {}, {}, table.skipped,
                SolverReport(solver, runtime, None, None, message), reason, shortfall_rps=shortfall or {},
                resource_needs=needs)


def diagnose(data: ModelData, options: SolverOptions) -> tuple[dict[str, dict[str, float]], tuple[str, ...]]:
    """Why no plan exists, in the instance's terms.

    1. Shortfall re-solve (resources hard, demand elastic): the demand per model and role left uncovered.
    2. Elastic re-solve (demand hard, resources elastic at a penalty): each pool, GPU type cap or budget that
       must grow, by how much, and which models' instances would use it.
    """
    short_built = build_problem(data, name="pdopt_f1_shortfall", mode="shortfall")
    run_solver(short_built.problem, options)
    short: dict[str, dict[str, float]] = {}
    for (m, r), var in short_built.shortfall.items():
        val = var.value() or 0.0
        if val > 1e-6:
            short.setdefault(m, {})[r] = val
    el = build_problem(data, name="pdopt_f1_elastic", mode="elastic")
    run_solver(el.problem, options)
    counts = solution_counts(el)
    needs = []
    for key, var in el.extra.items():
        val = var.value() or 0.0
        if val <= 1e-6:
            continue
        if key.startswith("extra_nodes__"):
            p = key.removeprefix("extra_nodes__")
            users = sorted({f"{data.shapes[s].model}/{data.shapes[s].role}" for (s, q) in counts if q == p})
            pool = data.pools[p]
            needs.append(f"node pool '{p}' ({pool.gpu_type}, domain {pool.domain}): {math.ceil(val - 1e-6)} more "
                         f"node(s) beyond its {pool.node_count} (used by {', '.join(users) or '-'})")
        elif key.startswith("extra_gpus__"):
            g = key.removeprefix("extra_gpus__")
            users = sorted({f"{data.shapes[s].model}/{data.shapes[s].role}" for (s, _) in counts
                            if data.shapes[s].gpu_type == g})
            needs.append(f"GPU type '{g}': {math.ceil(val - 1e-6)} more GPU(s) beyond its availability cap "
                         f"{data.gpu_caps[g]} (used by {', '.join(users) or '-'})")
        elif key.startswith("extra_bandwidth__"):
            a, b = key.removeprefix("extra_bandwidth__").split("__")
            needs.append(f"link {a}-{b}: {val:.4g} Gbit/s more KV bandwidth than its {data.links[(a, b)]:g} Gbit/s")
        else:
            needs.append(f"budget: the cheapest plan that serves every demand costs {val:.2f} USD/hour more than "
                         f"the budget of {data.budget_usd_per_hour:g} USD/hour")
    return short, tuple(needs)


def _infeasible_reason(short: dict[str, dict[str, float]], needs: tuple[str, ...], data: ModelData) -> str:
    lines = []
    if short:
        lines.append("the limits cannot cover every demand; a plan that covers as much as it can leaves uncovered "
                     "(one such split):")
        lines += [f"model '{m}', role {r}: {v:.4g} of {data.demand_rps[(m, r)]:.4g} req/s"
                  for m, roles in short.items() for r, v in roles.items()]
    if needs:
        lines.append("to serve every demand the plan needs:")
        lines += list(needs)
    return "\n".join(lines) or "the solver reports the instance infeasible"


def extract(instance: Instance, table: CapacityTable, data: ModelData, built: BuiltProblem, result: SolveResult,
            options: SolverOptions, scale_demand: float, scale: float | None = None,
            heuristic: float | None = None) -> Plan:
    """Read a solved problem back into a :class:`Plan` (or a failed plan with its reason)."""
    if result.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        short: dict[str, dict[str, float]] = {}
        needs: tuple[str, ...] = ()
        if result.status is SolveStatus.INFEASIBLE:
            short, needs = diagnose(data, options)
            reason = _infeasible_reason(short, needs, data)
        elif result.status is SolveStatus.NO_SOLUTION:
            reason = f"the solver found no plan within the time limit ({options.time_limit_s} s)"
        else:
            reason = f"the solver ended with status {result.message}"
        return _failed(instance, table, result.status, result.solver_name, reason, scale_demand,
                       result.runtime_s, result.message, short, needs)
    counts = solution_counts(built)
    nodes = {p: min(n, min_nodes(data, p, counts)) for p, n in solution_nodes(built).items()}
    placements, costs, gpus, pools = fleet_summary(data, counts, nodes)
    flow_vals = {key: float(v.value() or 0.0) for key, v in sorted(built.kv_flow.items())}
    flows = tuple({"model": m, "from_domain": d, "to_domain": e, "rps": rps}
                  for (m, d, e), rps in flow_vals.items() if rps > 1e-9)
    links = []
    for link, bandwidth in sorted(data.links.items()):
        load = sum(data.kv_gbit_per_request[m] * data.routes.get((d, e), {}).get(link, 0.0) * rps
                   for (m, d, e), rps in flow_vals.items())
        links.append({"a": link[0], "b": link[1], "bandwidth_gbps": bandwidth, "kv_traffic_gbps": load,
                      "utilisation": load / bandwidth})
    return Plan(
        instance=instance.name,
        status=result.status,
        objective_usd_per_hour=sum(costs.values()),
        links=tuple(links),
        kv_flows=flows,
        failure_scenarios=_failure_scenarios(data, placements, scale or 1.0) if data.routes or
        data.domain_loss_fraction is not None else {},
        scale_demand=scale_demand,
        placements=placements,
        models=_model_plans(placements, data, instance, scale or 1.0),
        gpus_used=gpus,
        skipped_shapes=table.skipped,
        solver=SolverReport(result.solver_name, result.runtime_s, result.gap, result.bound, result.message,
                            result.root_lp_bound, heuristic),
        pools=pools,
        cost_breakdown=_breakdown(placements),
        scale=scale,
    )


def fleet_summary(data: ModelData, counts: dict[tuple[str, str], int], nodes: dict[str, int]
                  ) -> tuple[tuple[Placement, ...], dict[str, float], dict[str, int], dict[str, PoolUse]]:
    """From instance counts and nodes per pool: the placements, each pool's cost, GPUs per GPU type, and the use
    of every pool with nodes in use (shared by solved plans and baseline plans)."""
    placements = _placements(counts, nodes, data)
    costs = pool_costs(data, counts, nodes)
    gpus: dict[str, int] = {}
    for pl in placements:
        gpus[pl.gpu_type] = gpus.get(pl.gpu_type, 0) + pl.gpus_per_instance * pl.count
    pools: dict[str, PoolUse] = {}
    for pid, n in nodes.items():
        if n == 0:
            continue
        pool = data.pools[pid]
        used = sum(pl.gpus_per_instance * pl.count for pl in placements if pl.pool == pid)
        pools[pid] = PoolUse(pool.gpu_type, pool.domain, pool.node_count, n, used, pool.packing, costs[pid])
    return placements, costs, gpus, pools


def _failure_scenarios(data: ModelData, placements: tuple[Placement, ...],
                       scale: float) -> dict[str, dict[str, dict[str, float]]]:
    """For each domain holding pools: what each model keeps when every instance there is lost (single-instance
    capacities, as the domain_loss_cover rows count them)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for lost in sorted({p.domain for p in data.pools.values()}):
        per: dict[str, dict[str, float]] = {}
        for m in sorted({m for m, _ in data.demand_rps}):
            left = {r: sum(pl.count * data.shapes[_sid(data, pl)].capacity_rps for pl in placements
                           if pl.model == m and pl.role == r and data.pools[pl.pool].domain != lost)
                    for r in ROLES}
            demand = data.demand_rps[(m, "prefill")] * scale
            per[m] = {"prefill_rps": left["prefill"], "decode_rps": left["decode"],
                      "served_fraction": min(left.values()) / demand if demand > 0 else 1.0}
        out[lost] = per
    return out


def _sid(data: ModelData, pl: Placement) -> str:
    return next(s for s, c in data.shapes.items() if (c.model, c.role, c.gpu_type, c.gpus_per_instance, c.variant)
                == (pl.model, pl.role, pl.gpu_type, pl.gpus_per_instance, pl.variant))


def shape_capacities(instance: Instance) -> dict[str, ShapeCapacity]:
    """Capacity of every usable shape, keyed by shape id (a convenience for library users)."""
    return {s.shape_id: s for s in capacity_table(instance).shapes}

"""Baseline fleet sizers to compare the MILP against, each producing a plan in the plan JSON format.

Every baseline reads the same capacity model as the planner (:func:`pdopt.perf.capacity.capacity_table`: per-instance
req/s at the SLOs), sizes each model with a simple rule, places the instances greedily into node pools of the
chosen GPU type, and returns a :class:`BaselineResult`: the plan (a :class:`~pdopt.plan.Plan`, status ``feasible``,
checkable by :func:`pdopt.verifier.verify` and runnable by :func:`pdopt.sim.simulate`) or ``None`` with the reason
it could not produce one. See docs/baselines.md.

Shared rules:

- "Cost per req/s" of a shape is ``gpus x (cheapest per-GPU price among the pools that can host it) /
  capacity_rps``. Shapes are ranked by it, ties broken by shape id.
- Every role must cover its demand plus the N+k spare reserve of the instance (``ModelData.spare_rps``), with the
  pooled capacity (``ShapeCapacity.pooled_capacity_rps``) where prefill instances pool.
- Placement is first-fit over pools of the shape's GPU type, cheapest per-GPU price first (then pool id): an
  instance goes to the first pool whose nodes still hold the pool's instances (:func:`pdopt.optimize.fleet.min_nodes` at
  most ``node_count``) and whose GPU type stays within its ``max_gpus`` cap. Models are placed one after another,
  largest demand first, over the shared inventory. When an instance fits nowhere the baseline returns ``None``
  with the reason (it never reports a plan that breaks the inventory).
- Things the baselines ignore (budget, network bandwidth, domain-loss resilience) are left to the verifier: such
  a plan is still returned and ``compare`` counts its violations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pdopt.instance import ROLES, Instance
from pdopt.interrupt import PartialResult
from pdopt.optimize.extract import assemble_plan
from pdopt.optimize.fleet import min_nodes
from pdopt.optimize.heuristics import greedy_start
from pdopt.optimize.model_data import ModelData, build_model_data
from pdopt.optimize.modes import compare_modes, mixed_models, single_mode_plans
from pdopt.optimize.pipeline import solve
from pdopt.optimize.solver import SolverOptions
from pdopt.perf.capacity import CapacityTable, ShapeCapacity, capacity_table
from pdopt.plan import Plan, SolverReport
from pdopt.verifier import verify

Counts = dict[tuple[str, str], int]
"""(shape id, pool id) -> instances."""

FIXED_RATIOS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (1, 3))
DERATES: tuple[float, ...] = (0.8, 0.9)


@dataclass(frozen=True)
class BaselineResult:
    """A baseline's plan or, when it has none, why."""

    name: str
    plan: Plan | None
    reason: str | None = None


class _NoPlanError(Exception):
    """Raised inside a baseline when it cannot produce a plan; the message is the reason."""


@dataclass
class _Ctx:
    instance: Instance
    table: CapacityTable
    data: ModelData
    """Unpruned model data: every usable shape has its arcs (a baseline may pick a dominated shape)."""

    def pools_for(self, sid: str) -> list[str]:
        return sorted((p for s, p in self.data.arcs if s == sid),
                      key=lambda p: (self.data.pools[p].price_usd_per_gpu_hour, p))

    def unit_cost(self, sid: str) -> float:
        """Hourly cost of one instance in the cheapest pool that can host it (inf when none can)."""
        pools = self.pools_for(sid)
        return min((self.data.cost_usd_per_hour(sid, p) for p in pools), default=math.inf)

    def cost_per_rps(self, sid: str) -> float:
        return self.unit_cost(sid) / self.data.shapes[sid].capacity_rps

    def shapes(self, model: str, role: str, gpu_type: str | None = None) -> list[str]:
        """Usable shapes of (model, role) that some pool can host, cheapest per req/s first."""
        out = [sid for sid, s in self.data.shapes.items() if s.model == model and s.role == role
               and s.capacity_rps > 0 and (gpu_type is None or s.gpu_type == gpu_type) and self.pools_for(sid)]
        return sorted(out, key=lambda sid: (self.cost_per_rps(sid), sid))

    def need(self, model: str, role: str) -> float:
        if (model, role) not in self.data.demand_rps:
            raise _NoPlanError(f"model '{model}' may not be served by {role} instances (its serving modes: "
                               f"{', '.join(self.data.modes_of(model))}); this baseline sizes P/D pairs only")
        return self.data.demand_rps[(model, role)] + self.data.spare_rps[(model, role)]

    def models(self) -> list[str]:
        """Models, largest demand first (then by id)."""
        return sorted(self.instance.workloads, key=lambda m: (-self.data.model_demand_rps(m), m))


def _context(instance: Instance) -> _Ctx:
    table = capacity_table(instance)
    return _Ctx(instance, table, build_model_data(instance, table, prune=False))


def count_for(shape: ShapeCapacity, need_rps: float, derate: float = 1.0) -> int:
    """Fewest instances of ``shape`` whose (pooled) capacity x ``derate`` reaches ``need_rps``."""
    if need_rps <= 1e-12:
        return 0
    n = max(1, math.ceil(need_rps / (derate * shape.capacity_rps) - 1e-9))
    if not shape.pooled_gains:
        return n
    n = 1
    while derate * shape.pooled_capacity_rps(n) < need_rps * (1 - 1e-12):
        n += 1
    return n


def _covers(shape: ShapeCapacity, n: int, need_rps: float) -> bool:
    return shape.pooled_capacity_rps(n) >= need_rps * (1 - 1e-12)


def _rented(ctx: _Ctx, counts: Counts, gpu_type: str) -> int:
    """GPUs of a type rented: whole nodes in node-billed pools, instance GPUs in GPU-billed pools."""
    total = 0
    for pid, pool in ctx.data.pools.items():
        if pool.gpu_type != gpu_type:
            continue
        if pool.billed_per_node:
            total += min_nodes(ctx.data, pid, counts) * pool.gpus_per_node
        else:
            total += sum(c * ctx.data.shapes[s].gpus_per_instance for (s, p), c in counts.items() if p == pid)
    return total


def _place(ctx: _Ctx, counts: Counts, sid: str, n: int) -> None:
    """Add ``n`` instances of ``sid`` first-fit over its pools (cheapest first); raise _NoPlanError when one fits
    nowhere."""
    shape = ctx.data.shapes[sid]
    cap = ctx.data.gpu_caps.get(shape.gpu_type)
    pools = ctx.pools_for(sid)
    for i in range(n):
        for pid in pools:
            counts[(sid, pid)] = counts.get((sid, pid), 0) + 1
            fits = min_nodes(ctx.data, pid, counts) <= ctx.data.pools[pid].node_count
            if fits and cap is not None:
                fits = _rented(ctx, counts, shape.gpu_type) <= cap
            if fits:
                break
            counts[(sid, pid)] -= 1
            if not counts[(sid, pid)]:
                del counts[(sid, pid)]
        else:
            where = ", ".join(pools) or "none"
            raise _NoPlanError(f"model '{shape.model}', {shape.role} on {shape.gpu_type} x{shape.gpus_per_instance}: "
                          f"instance {i + 1} of {n} fits in no pool (pools: {where})")


def plan_from_counts(instance: Instance, counts: Counts, name: str, data: ModelData | None = None,
                     table: CapacityTable | None = None) -> Plan:
    """The plan (status ``feasible``) of given instance counts, with the fewest nodes per pool
    (:func:`pdopt.optimize.fleet.min_nodes`) and the planner's price book."""
    table = table or capacity_table(instance)
    data = data or build_model_data(instance, table, prune=False)
    counts = {k: c for k, c in counts.items() if c > 0}
    nodes = {p: min_nodes(data, p, counts) for p in sorted({p for _, p in counts})}
    report = SolverReport(f"baseline:{name}", 0.0, None, None, "baseline sizing rule, not an optimiser")
    return assemble_plan(instance.name, data, counts, nodes, None, report=report, skipped=table.skipped)


def _run(instance: Instance, name: str, size: Callable[[_Ctx, Counts], None]) -> BaselineResult:
    ctx = _context(instance)
    counts: Counts = {}
    try:
        size(ctx, counts)
    except _NoPlanError as err:
        return BaselineResult(name, None, str(err))
    return BaselineResult(name, plan_from_counts(instance, counts, name, ctx.data, ctx.table))


def _shape_pairs(ctx: _Ctx, model: str) -> list[tuple[str, str]]:
    """Every (prefill shape, decode shape) pair of a model; _NoPlanError when a role has none."""
    for r in ROLES:
        if not ctx.shapes(model, r):
            raise _NoPlanError(f"model '{model}', role {r}: no usable shape that a pool can host")
    return [(sp, sd) for sp in ctx.shapes(model, "prefill") for sd in ctx.shapes(model, "decode")]


def _estimate(ctx: _Ctx, model: str, sp: str, sd: str) -> float:
    """Unrounded cost of a shape pair (need x cost per req/s, per role): the cheapest per req/s pair ranks first."""
    return ctx.need(model, "prefill") * ctx.cost_per_rps(sp) + ctx.need(model, "decode") * ctx.cost_per_rps(sd)


def _try_in_order(ctx: _Ctx, counts: Counts, options: list[tuple[float, list[tuple[str, int]]]],
                  what: str) -> None:
    """Place the first option (cheapest estimated cost first) whose instances all fit; else raise _NoPlanError."""
    reasons = []
    for _, picks in sorted(options, key=lambda o: (o[0], [s for s, _ in o[1]])):
        trial = dict(counts)
        try:
            for sid, n in picks:
                _place(ctx, trial, sid, n)
        except _NoPlanError as err:
            reasons.append(str(err))
            continue
        counts.clear()
        counts.update(trial)
        return
    raise _NoPlanError(f"{what}: no option fits the inventory" + "".join(f"\n  {r}" for r in reasons))


def _single_type_options(ctx: _Ctx, model: str) -> list[tuple[float, list[tuple[str, int]]]]:
    out = []
    for g in sorted({s.gpu_type for s in ctx.data.shapes.values() if s.model == model}):
        picks = []
        for r in ROLES:
            shapes = ctx.shapes(model, r, g)
            if not shapes:
                break
            sid = shapes[0]
            picks.append((sid, count_for(ctx.data.shapes[sid], ctx.need(model, r))))
        else:
            out.append((sum(n * ctx.unit_cost(s) for s, n in picks), picks))
    return out


def paper_closed_form(instance: Instance) -> BaselineResult:
    """(a) The paper's sizing on one GPU type per model: on each type, its cheapest (per req/s) prefill and decode
    shapes, ``ceil(need / capacity)`` instances per role; the type with the lowest estimated cost wins (the next
    cheapest is tried when its instances do not fit the pools)."""

    def size(ctx: _Ctx, counts: Counts) -> None:
        for m in ctx.models():
            options = _single_type_options(ctx, m)
            if not options:
                raise _NoPlanError(f"model '{m}': no GPU type has usable prefill and decode shapes")
            _try_in_order(ctx, counts, options, f"model '{m}'")

    return _run(instance, "paper_closed_form", size)


def best_single_type_per_role(instance: Instance) -> BaselineResult:
    """(d) As (a), but the GPU type is chosen separately for prefill and for decode (Mélange's comparison point):
    per role, the shape whose rounded count costs least (the next is tried when it does not fit)."""

    def size(ctx: _Ctx, counts: Counts) -> None:
        for m in ctx.models():
            for r in ROLES:
                options = []
                for g in sorted({s.gpu_type for s in ctx.data.shapes.values() if s.model == m}):
                    shapes = ctx.shapes(m, r, g)
                    if shapes:
                        n = count_for(ctx.data.shapes[shapes[0]], ctx.need(m, r))
                        options.append((n * ctx.unit_cost(shapes[0]), [(shapes[0], n)]))
                if not options:
                    raise _NoPlanError(f"model '{m}', role {r}: no usable shape that a pool can host")
                _try_in_order(ctx, counts, options, f"model '{m}', role {r}")

    return _run(instance, "best_single_type_per_role", size)


def fixed_ratio(instance: Instance, p: int, d: int) -> BaselineResult:
    """(b) A fixed P:D ratio ``p:d``: per model, the cheapest (per req/s) prefill and decode shapes and the
    smallest k such that ``k x p`` prefill and ``k x d`` decode instances both cover the need."""
    if p < 1 or d < 1:
        raise ValueError(f"fixed_ratio: p and d must be positive, got {p}:{d}")

    def size(ctx: _Ctx, counts: Counts) -> None:
        for m in ctx.models():
            need_p, need_d = ctx.need(m, "prefill"), ctx.need(m, "decode")
            options = []
            for sp, sd in _shape_pairs(ctx, m):
                k = max(math.ceil(count_for(ctx.data.shapes[sp], need_p) / p),
                        math.ceil(count_for(ctx.data.shapes[sd], need_d) / d))
                while not (_covers(ctx.data.shapes[sp], k * p, need_p)
                           and _covers(ctx.data.shapes[sd], k * d, need_d)):
                    k += 1  # only with pooled prefill, whose capacity is not linear in the count
                options.append((_estimate(ctx, m, sp, sd), [(sp, k * p), (sd, k * d)]))
            _try_in_order(ctx, counts, options, f"model '{m}'")

    return _run(instance, f"fixed_ratio_{p}:{d}", size)


def rate_matching(instance: Instance, derate: float = 0.8) -> BaselineResult:
    """(c) AIConfigurator-style rate matching: per model one prefill and one decode shape (cheapest per req/s),
    each instance's capacity derated by ``derate``: ``ceil(need / (derate x capacity))`` instances per role."""
    if not 0 < derate <= 1:
        raise ValueError(f"rate_matching: derate must be in (0, 1], got {derate}")

    def size(ctx: _Ctx, counts: Counts) -> None:
        for m in ctx.models():
            options = [(_estimate(ctx, m, sp, sd),
                        [(sid, count_for(ctx.data.shapes[sid], ctx.need(m, r), derate))
                         for sid, r in ((sp, "prefill"), (sd, "decode"))])
                       for sp, sd in _shape_pairs(ctx, m)]
            _try_in_order(ctx, counts, options, f"model '{m}'")

    return _run(instance, f"rate_matching_{derate:g}", size)


def greedy(instance: Instance) -> BaselineResult:
    """(e) The planner's own greedy start (:func:`pdopt.optimize.heuristics.greedy_start`, on the pruned model
    data the MILP sees): each (model, role), largest demand first, takes its cheapest shapes per req/s in pools
    with room (aggregate-packing pools only)."""
    table = capacity_table(instance)
    data = build_model_data(instance, table)
    start = greedy_start(data)
    if start is None:
        return BaselineResult("greedy", None, "the greedy rule runs out of room (or finds no aggregate-packing pool)")
    return BaselineResult("greedy", plan_from_counts(instance, start[0], "greedy", data, table))


def lp_rounding(instance: Instance) -> BaselineResult:
    """(f) The planner's LP-rounding start (:mod:`pdopt.optimize.lp_rounding`): the LP relaxation rounded down and
    covered domain by domain with whole instances, KV flows routed to fit the links; its plan carries the flows."""
    from pdopt.optimize.build import build_problem
    from pdopt.optimize.lp_rounding import lp_rounding_start, start_plan
    from pdopt.optimize.solver import SolverOptions

    data = build_model_data(instance, capacity_table(instance))
    rounded = lp_rounding_start(data, build_problem(data), SolverOptions())
    if rounded is None:
        return BaselineResult("lp_rounding", None, "not made here (a pooled shape, a mode split, pattern packing, or "
                                                   "the rounding found no room or no routing)")
    plan = start_plan(instance.name, data, *rounded)
    report = SolverReport("baseline:lp_rounding", 0.0, None, None, "LP relaxation rounded, not an optimiser")
    return BaselineResult("lp_rounding", plan.replace(solver=report))


def all_baselines(instance: Instance) -> list[BaselineResult]:
    """Every baseline, in the order ``compare`` reports them."""
    out = [paper_closed_form(instance)]
    out += [fixed_ratio(instance, p, d) for p, d in FIXED_RATIOS]
    out += [rate_matching(instance, f) for f in DERATES]
    out += [best_single_type_per_role(instance), greedy(instance), lp_rounding(instance)]
    return out


def _row(instance: Instance, name: str, plan: Plan | None, reason: str | None,
         milp_cost: float | None, simulate_requests: int, seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "cost_usd_per_hour": None, "gpus": None, "nodes": None, "feasible": False,
                           "violations": None, "saving_vs_milp_usd_per_hour": None, "saving_pct": None,
                           "slo_met": None, "attainment": None, "reason": reason}
    if plan is None:
        return row
    violations = verify(instance, plan.to_dict())
    cost = plan.objective_usd_per_hour or 0.0
    row.update(cost_usd_per_hour=cost, gpus=sum(plan.gpus_used.values()),
               nodes=sum(u.nodes_used for u in plan.pools.values()),
               feasible=not violations, violations=len(violations))
    if violations:
        row["reason"] = "; ".join(sorted({v.check for v in violations}))
    if milp_cost is not None:
        row["saving_vs_milp_usd_per_hour"] = cost - milp_cost
        row["saving_pct"] = 100.0 * (cost - milp_cost) / cost if cost > 0 else 0.0
    if simulate_requests > 0:
        from pdopt.sim import SimOptions, simulate  # local: the simulator is only needed on request

        res = simulate(instance, plan, SimOptions(requests=simulate_requests, seed=seed))
        if res.partial:
            raise KeyboardInterrupt  # compare turns it into the rows done so far
        row["slo_met"] = res.slo_met()
        row["attainment"] = min((float(m["attainment"]["both"]) for m in res.models.values()), default=1.0)
    return row


def compare(instance: Instance, simulate_requests: int = 0, options: SolverOptions | None = None,
            seed: int = 0) -> list[dict[str, Any]]:
    """One row per plan: the MILP's (``milp``); for an instance with a model that may be served both ways, the
    MILP with every such model aggregated only (``aggregated_only``) and disaggregated only
    (``disaggregated_only``), which the ``milp`` row's ``mode_comparison`` compares model by model; then each
    baseline's. A row has cost, GPUs, nodes, the verifier's result and the MILP's saving over it (``cost - milp
    cost``; percent of its cost); with ``simulate_requests`` > 0 also the simulated SLO verdict and the worst
    model's attainment (share of requests meeting both SLOs). Interrupted, it raises
    :class:`~pdopt.interrupt.PartialResult` holding the rows done."""
    from pdopt.progress import stage

    rows: list[dict[str, Any]] = []
    sim = f", simulating {simulate_requests:,} requests" if simulate_requests else ""
    try:
        stage(f"compare: the MILP plan{sim}")
        milp = solve(instance, options, explain_mode=False)
        milp_plan = milp if milp.has_plan else None
        milp_cost = milp.objective_usd_per_hour if milp.has_plan else None
        rows.append(_row(instance, "milp", milp_plan, milp.reason, milp_cost, simulate_requests, seed))
        if milp.solver.interrupted:
            raise PartialResult(rows)
        if mixed_models(instance):
            stage(f"compare: the aggregated-only and disaggregated-only plans{sim}")
            single = single_mode_plans(instance, lambda inst: solve(inst, options, explain_mode=False))
            for mode, plan in single.items():
                reason = None if plan is not None and plan.has_plan else (plan.reason if plan else "no such model")
                rows.append(_row(instance, f"{mode}_only", plan if plan is not None and plan.has_plan else None,
                                 reason, milp_cost, simulate_requests, seed))
            if milp.has_plan:
                rows[0]["mode_comparison"] = {
                    m: {**asdict(c), "line": c.line(m)} for m, c in compare_modes(
                        instance, milp, lambda inst: solve(inst, options, explain_mode=False), single).items()}
        stage("compare: the baselines")
        baselines = all_baselines(instance)
        for i, b in enumerate(baselines, start=1):
            stage(f"compare: baseline {i} of {len(baselines)}, {b.name}{sim}")
            rows.append(_row(instance, b.name, b.plan, b.reason, milp_cost, simulate_requests, seed))
    except PartialResult:
        raise
    except KeyboardInterrupt:
        raise PartialResult(rows) from None
    return rows

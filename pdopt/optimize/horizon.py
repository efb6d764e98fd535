"""Plans over a horizon of periods (:mod:`pdopt.instance.horizon`): one MILP whose every period is formulation F1
for that period's instance, linked by what changing capacity costs, and beside it the static plan for the peak.

Build. Each period t is built as a single-period problem (its own capacities, model data and families), its
variables and rows renamed with the suffix ``__<period>``, and all of them are put into one problem. The objective
is the horizon's cost, sum_t h_t cost_t (h_t the period's hours), plus the start cost c_s sum_(a,t) starts[a,t]
when the horizon states one. Linking families (formulations/f1.yaml):

- ``instance_starts[a,t]``: starts[a,t] >= x_t[a] - x_prev(t)[a], a = (shape, pool), the instances of arc a
  started at the beginning of period t (prev(t) the period before, the last one for the first when cyclic; none
  before the first otherwise); x of an arc a period does not use is 0.
- ``min_uptime[a,t]``: x_t[a] >= sum of starts[a,u] over the periods u whose start lies less than min_uptime_h
  before t's start (u = t included): an instance started stays up that long.

- ``ramp_fleet[a,t]`` (a lead time L > 0): the instances period t adds start L before it, inside the period
  before, which still runs its fleet: a ramp fleet y_t >= x_t, y_t >= x_prev(t) per arc, within a copy of F1's
  resource rows, paid for L hours beyond the period before's fleet.

The static plan for the peak is the same build with one fleet for every period: x_t[a] = x_first[a] and
nodes_t[p] = nodes_first[p] (``static_fleet``); its cost is the horizon's hours times its hourly cost. Pool
classes are not used here (a class's split back into pools, period by period, could move instances between
identical pools and start them again).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulp

from pdopt.errors import InputError
from pdopt.instance import Instance
from pdopt.instance.horizon import Horizon
from pdopt.optimize.build import BuiltProblem, build_problem
from pdopt.optimize.extract import extract
from pdopt.optimize.lexicographic import objective_step
from pdopt.optimize.model_data import Arc, ModelData, build_model_data
from pdopt.optimize.options import SolverOptions, with_deadline
from pdopt.optimize.pipeline import no_shape_reason
from pdopt.optimize.purchase import PoolPurchase, PurchaseVars, add_purchase, extract_purchase
from pdopt.optimize.solver import Solution, run_solver
from pdopt.perf.capacity import CapacityTable, SkippedShape, capacity_table
from pdopt.plan import Plan, SolveStatus

__all__ = [
    "HorizonPlan",
    "PeriodPlan",
    "add_instance_starts",
    "add_min_uptime",
    "add_static_fleet",
    "build_horizon",
    "horizon_plan_from_dict",
    "plan_horizon",
]


@dataclass(frozen=True)
class PeriodPlan:
    """One period's fleet: its name, hours, the plan, and the instances started at its beginning."""

    name: str
    hours: float
    plan: Plan
    starts: int = 0
    ramp_cost_usd: float = 0.0
    """What the lead time before this period costs beyond the period before's fleet: the instances started for
    this period, paid while they warm up (lead time x their hourly cost)."""

    @property
    def cost_usd(self) -> float:
        """The period's cost: hours x the plan's hourly cost (0 without a plan)."""
        return self.hours * (self.plan.objective_usd_per_hour or 0.0)


@dataclass(frozen=True)
class HorizonPlan:
    """The plan over the horizon: a fleet per period, its total cost, and the static plan for the peak beside it."""

    instance: str
    status: SolveStatus
    periods: tuple[PeriodPlan, ...]
    static_peak: tuple[PeriodPlan, ...] = ()
    """The static plan: one fleet for every period (the same placements in each)."""
    start_cost_usd: float = 0.0
    """Cost of one instance start (the horizon's ``start_cost_usd``)."""
    lead_time_min: float = 0.0
    """Minutes from starting an instance to its serving (the horizon's ``lead_time_min``)."""
    reason: str | None = None
    solver: dict[str, object] = field(default_factory=dict)
    purchase: tuple[PoolPurchase, ...] = ()
    """How the pools with purchase options buy their units (:mod:`pdopt.optimize.purchase`); empty without."""
    no_reserved_cost_usd: float | None = None
    """With reserved options: the per-period plan bought without a reserved layer (on demand and spot only)."""
    static_reserved_cost_usd: float | None = None
    """With reserved options: the static plan for the peak with every unit of a pool that offers a reserved price
    reserved for the horizon (the static plan itself is priced at list prices, all on demand)."""

    @property
    def purchase_adjustment_usd(self) -> float:
        """The purchases' cost less what the periods' plans charge for those units at the list price."""
        return sum(p.cost_usd - p.list_rental_usd for p in self.purchase)

    @property
    def total_cost_usd(self) -> float | None:
        """The horizon's cost: each period's hours x hourly cost, plus its ramp and its starts, with the units of
        pools that state purchase options bought as chosen instead of at the list price (None without a plan)."""
        if self.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
            return None
        return sum(p.cost_usd + p.ramp_cost_usd + self.start_cost_usd * p.starts for p in self.periods) + \
            self.purchase_adjustment_usd

    @property
    def static_cost_usd(self) -> float | None:
        """The static plan's cost over the horizon (its ramp and starts too, for a horizon that is not cyclic)."""
        if not self.static_peak or self.static_peak[0].plan.objective_usd_per_hour is None:
            return None
        return sum(p.cost_usd + p.ramp_cost_usd + self.start_cost_usd * p.starts for p in self.static_peak)

    @property
    def saving_usd(self) -> float | None:
        """What planning per period saves against the static plan for the peak."""
        total, static = self.total_cost_usd, self.static_cost_usd
        return None if total is None or static is None else static - total

    @property
    def has_plan(self) -> bool:
        """True when every period has a plan."""
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) and bool(self.periods)

    def to_dict(self) -> dict[str, object]:
        """The public JSON form: totals, then each period's hours, starts and plan (``Plan.to_dict``), and the
        static plan's per-period plans."""
        def period(p: PeriodPlan) -> dict[str, object]:
            return {"name": p.name, "hours": p.hours, "starts": p.starts, "cost_usd": p.cost_usd,
                    "ramp_cost_usd": p.ramp_cost_usd, "plan": p.plan.to_dict()}

        return {"instance": self.instance, "status": self.status.value, "total_cost_usd": self.total_cost_usd,
                "static_peak_cost_usd": self.static_cost_usd, "saving_usd": self.saving_usd,
                "start_cost_usd": self.start_cost_usd, "lead_time_min": self.lead_time_min, "reason": self.reason,
                "solver": self.solver,
                "purchase": {"pools": [p.to_dict() for p in self.purchase],
                             "adjustment_usd": self.purchase_adjustment_usd,
                             "no_reserved_cost_usd": self.no_reserved_cost_usd,
                             "static_peak_reserved_cost_usd": self.static_reserved_cost_usd},
                "periods": [period(p) for p in self.periods],
                "static_peak": [period(p) for p in self.static_peak]}


def _bounded(value: object) -> float | None:
    """A number from 0 to 1e12 as a float; None for anything else (text, booleans, NaN, huge integers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > 10**12:
        return None
    out = float(value)
    return out if math.isfinite(out) and 0.0 <= out <= 1e12 else None


def _shown(value: object) -> str:
    return "a huge integer" if isinstance(value, int) and abs(value) > 10**30 else repr(value)


def _read_periods(doc: dict[str, Any], key: str, source: str) -> tuple[PeriodPlan, ...]:
    """A list of periods of a horizon plan's JSON form (untrusted: each field checked, InputError naming it)."""
    raw = doc.get(key, [])
    if not isinstance(raw, list):
        raise InputError(f"{source}: {key}: expected a list, got {type(raw).__name__}")
    out = []
    for i, p in enumerate(raw):
        where = f"{source}: {key}[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise InputError(f"{where}: expected an object with a name")
        numbers = {}
        for field_name, default in (("hours", None), ("starts", 0), ("ramp_cost_usd", 0.0)):
            v = _bounded(p.get(field_name, default))
            if v is None:
                raise InputError(f"{where}.{field_name}: expected a number from 0 to 1e12, got "
                                 f"{_shown(p.get(field_name, default))}")
            numbers[field_name] = v
        if numbers["hours"] <= 0 or not numbers["starts"].is_integer():
            raise InputError(f"{where}: hours must be positive and starts whole, got {numbers}")
        out.append(PeriodPlan(p["name"], float(numbers["hours"]), Plan.from_dict(p.get("plan"), f"{where}.plan"),
                              int(numbers["starts"]), float(numbers["ramp_cost_usd"])))
    return tuple(out)


def horizon_plan_from_dict(doc: object, source: str = "plan") -> HorizonPlan:
    """Read a horizon plan's JSON form (:meth:`HorizonPlan.to_dict`), as untrusted input."""
    if not isinstance(doc, dict) or "periods" not in doc:
        raise InputError(f"{source}: not a plan over a horizon (no periods); plan the instance with `pdopt plan`")
    try:
        status = SolveStatus(str(doc.get("status")))
    except ValueError:
        raise InputError(f"{source}: status: {doc.get('status')!r} is not a plan status") from None
    numbers = {}
    for key in ("start_cost_usd", "lead_time_min"):
        v = _bounded(doc.get(key, 0.0))
        if v is None:
            raise InputError(f"{source}: {key}: expected a number from 0 to 1e12, got {_shown(doc.get(key))}")
        numbers[key] = v
    return HorizonPlan(str(doc.get("instance")), status, _read_periods(doc, "periods", source),
                       _read_periods(doc, "static_peak", source), numbers["start_cost_usd"],
                       numbers["lead_time_min"], doc.get("reason") if isinstance(doc.get("reason"), str) else None)


@dataclass
class _Part:
    """One period inside the merged problem."""

    name: str
    hours: float
    data: ModelData
    built: BuiltProblem
    skipped: tuple[SkippedShape, ...]
    ramp: BuiltProblem | None = None
    """The fleet during the lead time before this period (``ramp_fleet``), when the horizon has a lead time."""


def _capacity_key(inst: Instance) -> str:
    """What a period's capacity table depends on: the instance without its name and its workloads' demands (a
    capacity is per instance, at the SLOs, lengths and variability; :mod:`pdopt.perf` never reads the demand), so
    that periods differing only in demand share one table."""
    doc = inst.model_dump(mode="json", exclude={"name"})
    for w in doc["workloads"].values():
        w.pop("demand", None)
    return json.dumps(doc, sort_keys=True)


def _period_parts(instance: Instance, horizon: Horizon, cuts: bool | tuple[str, ...]) -> list[_Part] | str:
    """Build each period's problem; a reason string when some period has a role no shape can serve."""
    parts = []
    tables: dict[str, CapacityTable] = {}
    for period in horizon.periods:
        inst = instance.period_instance(period.name)
        key = _capacity_key(inst)
        if key not in tables:
            tables[key] = capacity_table(inst)
        table = tables[key]
        data = build_model_data(inst, table)
        reason = no_shape_reason(table, data)
        if reason is not None:
            return f"period '{period.name}': {reason}"
        built = build_problem(data, name=f"period_{period.name}", cuts=cuts)
        for v in built.problem.variables():  # the index (built.index()) reads the new names
            v.name = f"{v.name}__{period.name}"
        parts.append(_Part(period.name, period.hours, data, built, table.skipped))
    return parts


def _ramp_data(parts: Sequence[_Part], base: _Part) -> ModelData:
    """The resources of a ramp: the arcs and shapes of the periods it joins, and no demand (the instances warming
    up serve nothing; the ones kept from the period before serve it, as they do in that period)."""
    data = base.data
    shapes = {**data.shapes}
    arcs = set(data.arcs)
    for part in parts:
        shapes.update(part.data.shapes)
        arcs.update(part.data.arcs)
    keys = {k for part in parts for k in part.data.demand_rps}
    return dataclasses.replace(data, demand_rps=dict.fromkeys(sorted(keys), 0.0), shapes=shapes,
                               arcs=tuple(sorted(arcs)), spare_rps=dict.fromkeys(sorted(keys), 0.0),
                               spares=dict.fromkeys(sorted(keys), 0), links={}, routes={}, kv_gbit_per_request={},
                               domain_loss_fraction=None)


def _add_ramps(parts: Sequence[_Part], horizon: Horizon) -> None:
    """Build each period's ramp (the lead time before it) over the arcs of the period and the one before it."""
    for t, part in enumerate(parts):
        prev = horizon.preceding(t)
        joined = [part] if prev is None else [parts[prev], part]
        ramp = build_problem(_ramp_data(joined, part), name=f"RAMP_{part.name}", cuts=False)
        for v in ramp.problem.variables():
            v.name = f"{v.name}__RAMP_{part.name}"
        part.ramp = ramp


def _merged(parts: Sequence[_Part], name: str) -> pulp.LpProblem:
    """One problem holding every period's rows (renamed ``<row>__<period>``) and its ramp's
    (``<row>__RAMP_<period>``: capitals, which no period name holds, so that no name is taken twice)."""
    problem = pulp.LpProblem(name, pulp.LpMinimize)
    for part in parts:
        for row in part.built.problem.constraints():
            problem += row, f"{row.name}__{part.name}"
        if part.ramp is not None:
            vacuous = set(part.ramp.rows.get("demand_cover", ()))  # a ramp has no demand: ">= 0" rows
            for row in part.ramp.problem.constraints():
                if row.name not in vacuous:
                    problem += row, f"{row.name}__RAMP_{part.name}"
    return problem


def _arcs(parts: Sequence[_Part]) -> list[Arc]:
    return sorted({a for part in parts for a in part.built.x})


def _x(part: _Part, arc: Arc) -> pulp.LpVariable | float:
    return part.built.x.get(arc, 0.0)


def add_instance_starts(problem: pulp.LpProblem, parts: Sequence[_Part], horizon: Horizon
                        ) -> dict[tuple[Arc, str], pulp.LpVariable]:
    """instance_starts[a,t]: starts[a,t] >= x_t[a] - x_prev(t)[a] (x_prev = 0 before the first period of a horizon
    that is not cyclic); starts[a,t] integer >= 0."""
    starts = {}
    for t, part in enumerate(parts):
        prev = horizon.preceding(t)
        for arc in sorted(part.built.x):
            var = problem.add_variable(f"starts__{arc[0]}__{arc[1]}__{part.name}", lowBound=0, cat=pulp.LpInteger)
            before = _x(parts[prev], arc) if prev is not None else 0.0
            problem += var >= _x(part, arc) - before, f"instance_starts__{arc[0]}__{arc[1]}__{part.name}"
            starts[(arc, part.name)] = var
    return starts


def add_min_uptime(problem: pulp.LpProblem, parts: Sequence[_Part], horizon: Horizon,
                   starts: dict[tuple[Arc, str], pulp.LpVariable]) -> None:
    """min_uptime[a,t]: x_t[a] >= sum of starts[a,u] over periods u starting less than min_uptime_h before t's
    start (u = t included; counted around the cycle when cyclic, never past the first period otherwise)."""
    if horizon.min_uptime_h <= 0:
        return
    begins = [sum(p.hours for p in horizon.periods[:i]) for i in range(len(parts))]
    total = horizon.total_hours
    for t, part in enumerate(parts):
        earlier = []
        for u in range(len(parts)):
            gap = begins[t] - begins[u]
            if horizon.cyclic and gap < 0:
                gap += total
            if 0 <= gap < horizon.min_uptime_h:
                earlier.append(parts[u].name)
        for arc in part.built.x:
            held = [starts[(arc, u)] for u in earlier if (arc, u) in starts]
            if len(held) > 1:  # t's own starts alone: x_t >= starts_t holds already (starts_t <= x_t at the optimum)
                problem += part.built.x[arc] >= pulp.lpSum(held), f"min_uptime__{arc[0]}__{arc[1]}__{part.name}"


def add_ramp_fleet(problem: pulp.LpProblem, parts: Sequence[_Part], horizon: Horizon) -> pulp.LpAffineExpression:
    """ramp_fleet[a,t]: during the lead time before period t the pools hold y_t[a] >= x_t[a] (started, warming
    up) and y_t[a] >= x_prev(t)[a] (still serving the period before); y_t lives in its own copy of F1's resource
    rows (pool GPUs and nodes, packing, GPU-type caps, budget) with no demand. Returns the ramps' extra cost,
    (L / 60) sum_t (cost(y_t) - cost_prev(t)), L the lead time in minutes (cost_prev = 0 before the first period
    of a horizon that is not cyclic: its fleet starts before the horizon)."""
    hours = horizon.lead_time_min / 60.0
    extra = []
    for t, part in enumerate(parts):
        assert part.ramp is not None and part.ramp.cost is not None
        prev = horizon.preceding(t)
        before = parts[prev] if prev is not None else None
        for arc, y in sorted(part.ramp.x.items()):
            tag = f"{arc[0]}__{arc[1]}__{part.name}"
            if arc in part.built.x:
                problem += y >= part.built.x[arc], f"ramp_fleet__{tag}"
            if before is not None and arc in before.built.x:
                problem += y >= before.built.x[arc], f"ramp_fleet__{tag}__held"
        previous_cost = before.built.cost if before is not None and before.built.cost is not None else 0.0
        extra.append(hours * (part.ramp.cost - previous_cost))
    return pulp.lpSum(extra)


def add_static_fleet(problem: pulp.LpProblem, parts: Sequence[_Part]) -> None:
    """static_fleet[a,t] and static_fleet[p,t]: every period holds the first period's instances (x_t[a] = x_first[a])
    and nodes (nodes_t[p] = nodes_first[p])."""
    first = parts[0]
    arcs = _arcs(parts)
    for part in parts[1:]:
        for arc in arcs:
            if arc in part.built.x or arc in first.built.x:
                problem += _x(part, arc) == _x(first, arc), f"static_fleet__{arc[0]}__{arc[1]}__{part.name}"
        for pool, n in part.built.nodes.items():
            problem += n == first.built.nodes.get(pool, 0.0), f"static_fleet__{pool}__{part.name}"


def build_horizon(instance: Instance, horizon: Horizon, cuts: bool | tuple[str, ...] = True, static: bool = False,
                  purchase: PurchaseVars | None = None
                  ) -> tuple[pulp.LpProblem, list[_Part], dict[tuple[Arc, str], pulp.LpVariable]] | str:
    """The horizon's problem (never solves): every period's rows, the linking families and the objective; with
    ``static``, one fleet for every period (bought at list prices: the static plan an operator runs today);
    otherwise the purchase options of the pools that state them, their variables put into ``purchase`` when
    given. A reason string when some period has a role no shape can serve."""
    parts = _period_parts(instance, horizon, cuts)
    if isinstance(parts, str):
        return parts
    if horizon.lead_time_min > 0:
        _add_ramps(parts, horizon)
    problem = _merged(parts, "pdopt_horizon_static" if static else "pdopt_horizon")
    cost = pulp.lpSum(part.hours * part.built.cost for part in parts if part.built.cost is not None)
    if horizon.lead_time_min > 0:
        cost += add_ramp_fleet(problem, parts, horizon)
    starts: dict[tuple[Arc, str], pulp.LpVariable] = {}
    if static:
        add_static_fleet(problem, parts)
    if horizon.start_cost_usd > 0 or horizon.min_uptime_h > 0:
        starts = add_instance_starts(problem, parts, horizon)
        add_min_uptime(problem, parts, horizon, starts)
    if not static and any(p.purchase is not None for p in instance.node_pools.values()):
        cost += add_purchase(problem, parts, instance, horizon,
                             purchase if purchase is not None else PurchaseVars())
    problem += cost + horizon.start_cost_usd * pulp.lpSum(starts.values())
    return problem, parts, starts


def _solve_parts(instance: Instance, horizon: Horizon, options: SolverOptions, static: bool
                 ) -> tuple[SolveStatus, tuple[PeriodPlan, ...], str | None, dict[str, object],
                            tuple[PoolPurchase, ...]]:
    pv = PurchaseVars()
    built = build_horizon(instance, horizon, options.cuts, static, pv)
    if isinstance(built, str):
        return SolveStatus.INFEASIBLE, (), built, {}, ()
    problem, parts, _ = built
    sol = run_solver(problem, options, objective_step=objective_step(problem.objective))
    info: dict[str, object] = {"name": sol.report.name, "runtime_s": sol.report.runtime_s, "gap": sol.report.gap,
                               "bound": sol.report.bound, "message": sol.report.message,
                               "variables": problem.numVariables(), "rows": problem.numConstraints()}
    if not sol.has_solution:
        return sol.status, (), f"the solver ended with status {sol.report.message}", info, ()
    out: list[PeriodPlan] = []
    report = dataclasses.replace(sol.report, objective=None)  # the horizon's objective is not one period's
    for part in parts:
        plan = extract(f"{instance.name}.{part.name}", part.skipped, part.data, part.built.index(),
                       Solution(report, sol.values), 1.0)
        n_starts = _started(parts, horizon, len(out), sol)
        ramp = 0.0
        if part.ramp is not None and part.ramp.cost is not None:
            prev = horizon.preceding(len(out))
            held = _value(parts[prev].built.cost, sol) if prev is not None else 0.0
            ramp = horizon.lead_time_min / 60.0 * (_value(part.ramp.cost, sol) - held)
            ramp = 0.0 if abs(ramp) < 1e-9 else ramp  # no "-0.00" from the solver's round-off
        out.append(PeriodPlan(part.name, part.hours, plan, n_starts, ramp))
    return sol.status, tuple(out), None, info, extract_purchase(instance, horizon, parts, pv, sol,
                                                                [p.plan for p in out])


def _started(parts: Sequence[_Part], horizon: Horizon, t: int, sol: Solution) -> int:
    """Instances period t starts: sum_a max(0, x_t[a] - x_prev(t)[a]), from the counts (the ``starts`` variables
    equal it when starting costs something; without a start cost or uptime there are none, and it is still
    reported)."""
    prev = horizon.preceding(t)
    total = 0
    for arc, v in parts[t].built.x.items():
        before = parts[prev].built.x.get(arc) if prev is not None else None
        total += max(0, round(sol.value(v.name)) - (round(sol.value(before.name)) if before is not None else 0))
    return total


def _value(expr: pulp.LpAffineExpression | None, sol: Solution) -> float:
    """An affine expression at the solution (0 for no expression)."""
    if expr is None:
        return 0.0
    return float(expr.constant) + float(sum(c * sol.value(v.name) for v, c in expr.items()))


def _check_lead_time(horizon: Horizon) -> None:
    """InputError unless the lead time is shorter than every period (each ramp lies inside the period before)."""
    lead_h = horizon.lead_time_min / 60.0
    short = [p for p in horizon.periods if p.hours <= lead_h]
    if lead_h > 0 and short:
        raise InputError(f"horizon.lead_time_min: {horizon.lead_time_min:g} minutes is not shorter than period "
                         f"'{short[0].name}' ({short[0].hours:g} h); the instances started for a period warm up "
                         "inside the period before it")


def plan_horizon(instance: Instance, options: SolverOptions | None = None, static_peak: bool = True) -> HorizonPlan:
    """Plan every period of the instance's horizon together (one MILP) and, with ``static_peak``, the static plan
    for the peak beside it. An instance without a horizon is one period of one hour."""
    options = with_deadline(dataclasses.replace(options or SolverOptions(), pool_classes=False))
    horizon = instance.horizon or Horizon.model_validate({"periods": [{"name": "all", "hours": 1.0}]})
    _check_lead_time(horizon)
    base = instance if instance.horizon is not None else instance.replace(horizon=horizon.model_dump(mode="json"))
    status, periods, reason, info, bought = _solve_parts(base, horizon, options, static=False)
    static: tuple[PeriodPlan, ...] = ()
    if static_peak and periods:
        _, static, _, _, _ = _solve_parts(base, horizon, options, static=True)
    plan = HorizonPlan(instance.name, status, periods, static, horizon.start_cost_usd, horizon.lead_time_min, reason,
                       info, bought)
    if periods and any(p.purchase is not None and p.purchase.reserved is not None
                       for p in instance.node_pools.values()):
        from pdopt.optimize.purchase import static_reserved_cost_usd, without_reserved

        _, again, _, _, again_bought = _solve_parts(without_reserved(base), horizon, options, static=False)
        other = HorizonPlan(instance.name, status, again, (), horizon.start_cost_usd, horizon.lead_time_min,
                            purchase=again_bought)
        plan = dataclasses.replace(plan, no_reserved_cost_usd=other.total_cost_usd if again else None,
                                   static_reserved_cost_usd=static_reserved_cost_usd(base, plan))
    return plan

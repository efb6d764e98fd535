"""Purchase options over a horizon: the reserved layer and the per-period on-demand and spot top-ups of each pool
that states them (:mod:`pdopt.instance.purchase`), chosen in the horizon's one MILP at the least cost.

A pool's units are its nodes when it is billed per node-hour, its GPUs when billed per GPU-hour; u_t[p] is what
period t's plan rents of pool p: nodes[p] in period t, or sum_(s,p) g_s x_t[s,p]. With R[p] reserved units (one
count for the whole horizon), O_t[p] on-demand and S_t[p] spot units (formulations/horizon.yaml):

- ``purchase_cover[p,t]``: u_t[p] <= R[p] + O_t[p] + S_t[p] (what a period rents is bought one way or another);
- S_t[p] <= the spot units on offer in period t (its variable's upper bound), R[p] <= the pool's units or
  ``max_units``; no O_t[p] when the pool sells nothing on demand;
- ``spot_loss_cover[m,r,t]`` when a spot option states a ``loss_share`` phi: the role keeps its
  ``survive_fraction`` of demand after losing phi S_t[p] units of its densest instances (:func:`add_spot_loss_cover`).

Cost. F1's hourly cost of a period already charges the pool's rental at its list (on-demand) price, c_p u_t[p];
for a pool with purchase options that charge is taken out and the purchases put in:

  H r_p R[p] + sum_t h_t (c_p O_t[p] + s_p S_t[p]) - sum_t h_t c_p u_t[p]

(H the horizon's hours, r_p the reserved price with any upfront payment spread over its term, s_p the spot
price). A pool's activation cost per node in use stays as F1 charges it. At the optimum O_t + S_t = max(0, u_t - R)
split cheapest first within the spot on offer, so a pool offered on demand only costs exactly what F1 charged:
the plan is the one planned without purchase options. The ramp of a lead time is paid at the list price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulp

from pdopt.instance import Instance
from pdopt.instance.horizon import Horizon

if TYPE_CHECKING:
    from pdopt.optimize.horizon import _Part
    from pdopt.optimize.solver import Solution
    from pdopt.plan import Plan


def unit_of(instance: Instance, pool_id: str) -> str:
    """``node`` for a pool billed per node-hour, ``gpu`` otherwise."""
    return "node" if instance.node_pools[pool_id].billed_per_node else "gpu"


def list_price(instance: Instance, pool_id: str) -> float:
    """The pool's on-demand price per unit-hour: its node-hour price, or its GPU type's GPU-hour price."""
    pool = instance.node_pools[pool_id]
    if pool.billed_per_node:
        assert pool.price_usd_per_node_hour is not None
        return pool.price_usd_per_node_hour
    return instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour


def pool_units(instance: Instance, pool_id: str) -> int:
    """The units the pool holds: its nodes, or its GPUs."""
    pool = instance.node_pools[pool_id]
    return pool.node_count if pool.billed_per_node else pool.node_count * pool.gpus_per_node


def units_used(part: _Part, instance: Instance, pool_id: str) -> pulp.LpAffineExpression | None:
    """u_t[p]: the pool's nodes in use in the period, or the GPUs its instances hold; None when the period cannot
    use the pool (no arc into it)."""
    if pool_id not in part.data.pools or not part.data.arcs_by_pool.get(pool_id):
        return None
    if instance.node_pools[pool_id].billed_per_node:
        return pulp.lpSum([part.built.nodes[pool_id]])
    return pulp.lpSum(part.data.shapes[s].gpus_per_instance * part.built.x[(s, p)]
                      for s, p in part.data.arcs_by_pool[pool_id])


@dataclass
class PurchaseVars:
    """The purchase variables of the horizon's problem, by pool (and period)."""

    reserved: dict[str, pulp.LpVariable] = field(default_factory=dict)
    on_demand: dict[tuple[str, str], pulp.LpVariable] = field(default_factory=dict)
    spot: dict[tuple[str, str], pulp.LpVariable] = field(default_factory=dict)


def add_purchase(problem: pulp.LpProblem, parts: Sequence[_Part], instance: Instance, horizon: Horizon,
                 out: PurchaseVars) -> pulp.LpAffineExpression:
    """reserved[p], on_demand[p,t], spot[p,t] integers >= 0 (put into ``out``) and the rows ``purchase_cover[p,t]``;
    returns the cost to add to the horizon's objective (the purchases, less F1's list-price rental of these
    pools)."""
    cost: list[Any] = []
    total_h = horizon.total_hours
    for pid, pool in instance.node_pools.items():
        buy = pool.purchase
        if buy is None:
            continue
        cap, c = pool_units(instance, pid), list_price(instance, pid)
        reserved = None
        if buy.reserved is not None:
            top = cap if buy.reserved.max_units is None else min(cap, buy.reserved.max_units)
            reserved = problem.add_variable(f"reserved__{pid}", lowBound=0, upBound=top, cat=pulp.LpInteger)
            out.reserved[pid] = reserved
            cost.append(total_h * buy.reserved.effective_hourly() * reserved)
        for part in parts:
            used = units_used(part, instance, pid)
            if used is None:
                continue
            bought: list[Any] = [] if reserved is None else [reserved]
            if buy.on_demand:
                o = problem.add_variable(f"on_demand__{pid}__{part.name}", lowBound=0, upBound=cap,
                                         cat=pulp.LpInteger)
                out.on_demand[(pid, part.name)] = o
                bought.append(o)
                cost.append(part.hours * c * o)
            offered = buy.spot.available(part.name) if buy.spot is not None else 0
            if buy.spot is not None and offered > 0:
                sv = problem.add_variable(f"spot__{pid}__{part.name}", lowBound=0, upBound=min(offered, cap),
                                          cat=pulp.LpInteger)
                out.spot[(pid, part.name)] = sv
                bought.append(sv)
                cost.append(part.hours * buy.spot.hourly() * sv)
            problem += used - pulp.lpSum(bought) <= 0, f"purchase_cover__{pid}__{part.name}"
            cost.append(-part.hours * c * used)
    add_spot_loss_cover(problem, parts, instance, out)
    return pulp.lpSum(cost)


def unit_capacity(part: _Part, instance: Instance, pool_id: str, model: str, role: str) -> float:
    """kappa: the most capacity (req/s) of model and role that losing one unit of the pool can take down, over the
    role's shapes there. An instance dies whole when any of its GPUs goes: a lost GPU takes one instance (its whole
    capacity); a lost node takes every instance on it, at most gpus_per_node // GPUs of them (an instance spanning
    nodes: the one instance)."""
    pool = instance.node_pools[pool_id]
    best = 0.0
    for s, p in part.data.arcs_by_role.get((model, role), ()):
        if p != pool_id:
            continue
        shape = part.data.shapes[s]
        per_node = max(1, pool.gpus_per_node // shape.gpus_per_instance)
        best = max(best, shape.capacity_rps * (per_node if pool.billed_per_node else 1))
    return best


def add_spot_loss_cover(problem: pulp.LpProblem, parts: Sequence[_Part], instance: Instance, pv: PurchaseVars
                        ) -> None:
    """spot_loss_cover[m,r,p,t]: capacity of model m, role r in period t - kappa_mrp lost[p,t] >= f_p need[m,r],
    for each pool p whose spot option states a loss share phi_p > 0 (one loss event per pool), with lost[p,t] the
    whole units that may go, an integer >= phi_p spot[p,t] (so ceil(phi_p spot[p,t]) at the optimum) and kappa_mrp
    the most capacity of the role one lost unit can take down (:func:`unit_capacity`): whichever units go, the role
    keeps f_p (``survive_fraction``) of its demand. An upper bound on the loss (every lost unit full of the role's
    largest instances), so the row is conservative, like ``domain_loss_cover`` for a domain's loss."""
    from pdopt.optimize.families import role_capacity, role_need

    for part in parts:
        for pid, pool in instance.node_pools.items():
            spot = pool.purchase.spot if pool.purchase is not None else None
            sv = pv.spot.get((pid, part.name))
            if spot is None or sv is None or spot.loss_share <= 0:
                continue
            lost = problem.add_variable(f"spot_lost__{pid}__{part.name}", lowBound=0, cat=pulp.LpInteger)
            problem += lost - spot.loss_share * sv >= 0, f"spot_lost__{pid}__{part.name}"
            for m, r in part.data.demand_rps:
                kappa = unit_capacity(part, instance, pid, m, r)
                if kappa > 0:
                    left = role_capacity(part.built, part.data, m, r, pooled=False) - kappa * lost
                    problem += left >= spot.survive_fraction * role_need(part.built, part.data, m, r), \
                        f"spot_loss_cover__{m}__{r}__{pid}__{part.name}"


@dataclass(frozen=True)
class PeriodPurchase:
    """One period's units of a pool: used by the plan, and bought on demand and on the spot market."""

    period: str
    hours: float
    used: int
    on_demand: int
    spot: int


@dataclass(frozen=True)
class PoolPurchase:
    """How a pool's units are bought over the horizon, and what that costs against the list price."""

    pool: str
    unit: str
    """``node`` or ``gpu``."""
    reserved: int
    reserved_usd_per_unit_hour: float
    """The reserved price with any upfront payment spread over the term (0 without a reserved option)."""
    on_demand_usd_per_unit_hour: float
    spot_usd_per_unit_hour: float | None
    horizon_hours: float
    periods: tuple[PeriodPurchase, ...]

    @property
    def cost_usd(self) -> float:
        """What the pool's units cost over the horizon: the reserved layer every hour, the top-ups when bought."""
        spot = self.spot_usd_per_unit_hour or 0.0
        return self.horizon_hours * self.reserved_usd_per_unit_hour * self.reserved + sum(
            p.hours * (self.on_demand_usd_per_unit_hour * p.on_demand + spot * p.spot) for p in self.periods)

    @property
    def list_rental_usd(self) -> float:
        """What the units the plans use would cost at the list price (what the periods' plans charge)."""
        return sum(p.hours * self.on_demand_usd_per_unit_hour * p.used for p in self.periods)

    def to_dict(self) -> dict[str, object]:
        """JSON form: the unit, prices, the reserved count, each period's used, on-demand and spot units, costs."""
        return {"pool": self.pool, "unit": self.unit, "reserved": self.reserved,
                "reserved_usd_per_unit_hour": self.reserved_usd_per_unit_hour,
                "on_demand_usd_per_unit_hour": self.on_demand_usd_per_unit_hour,
                "spot_usd_per_unit_hour": self.spot_usd_per_unit_hour, "horizon_hours": self.horizon_hours,
                "cost_usd": self.cost_usd, "list_rental_usd": self.list_rental_usd,
                "periods": [{"name": p.period, "hours": p.hours, "used": p.used, "on_demand": p.on_demand,
                             "spot": p.spot} for p in self.periods]}


def extract_purchase(instance: Instance, horizon: Horizon, parts: Sequence[_Part], pv: PurchaseVars,
                     sol: Solution, plans: Sequence[Plan]) -> tuple[PoolPurchase, ...]:
    """The purchases at the solution, pool by pool (every period listed, 0 where the pool is not used); the units
    each period uses are those its extracted plan reports (``plans``, one per part)."""
    out = []
    for pid, pool in instance.node_pools.items():
        buy = pool.purchase
        if buy is None:
            continue

        def val(v: pulp.LpVariable | None) -> int:
            return 0 if v is None else round(sol.value(v.name))

        periods = []
        for part, plan in zip(parts, plans, strict=True):
            use = plan.pools.get(pid)  # as the period's plan reports it (nodes at the fewest that hold them)
            u = 0 if use is None else (use.nodes_used if pool.billed_per_node else use.gpus_used)
            periods.append(PeriodPurchase(part.name, part.hours, u, val(pv.on_demand.get((pid, part.name))),
                                          val(pv.spot.get((pid, part.name)))))
        reserved = val(pv.reserved.get(pid))
        out.append(PoolPurchase(pid, unit_of(instance, pid), reserved,
                                buy.reserved.effective_hourly() if buy.reserved is not None else 0.0,
                                list_price(instance, pid), buy.spot.hourly() if buy.spot is not None else None,
                                horizon.total_hours, tuple(periods)))
    return tuple(out)


def without_reserved(instance: Instance) -> Instance:
    """The instance with every reserved option removed (on demand and spot as stated; a pool left with nothing to
    buy, reserved only, is sold on demand): the per-period plan without a reserved layer, for comparison."""
    doc = instance.model_dump(mode="json")
    for pool in doc["node_pools"].values():
        buy = pool.get("purchase")
        if buy is not None and buy.get("reserved") is not None:
            buy["reserved"] = None
            if buy.get("spot") is None:  # nothing would be left to buy: sold on demand
                buy["on_demand"] = True
    return Instance.model_validate(doc)


def static_reserved_cost_usd(instance: Instance, plan: Any) -> float | None:
    """The static plan for the peak (``plan.static_peak``, at list prices) with the units of each pool that offers
    a reserved price reserved for the horizon (at most ``max_units``; the rest on demand): its cost plus
    H u_p (r_p - c_p), u_p the units reserved of those the static fleet rents (the same in every period)."""
    if not plan.static_peak or plan.static_cost_usd is None or instance.horizon is None:
        return None
    first = plan.static_peak[0].plan
    total = float(plan.static_cost_usd)
    hours = instance.horizon.total_hours
    for pid, pool in instance.node_pools.items():
        if pool.purchase is None or pool.purchase.reserved is None:
            continue
        use = first.pools.get(pid)
        if use is None:
            continue
        units = use.nodes_used if pool.billed_per_node else use.gpus_used
        cap = pool.purchase.reserved.max_units
        units = units if cap is None else min(units, cap)  # beyond max_units the static fleet stays on demand
        total += hours * units * (pool.purchase.reserved.effective_hourly() - list_price(instance, pid))
    return total

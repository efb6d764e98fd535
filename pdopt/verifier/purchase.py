"""Purchase options over a horizon, checked from the instance alone: how each pool that states them buys the
units its periods' plans rent (reserved for the horizon, on demand and spot per period), and what that costs.

Recomputed here, not read from the planner: a pool's unit (a node when billed per node-hour, else a GPU); the
units period t rents, u_t (the period plan's ``nodes_used`` of the pool for node billing, its placements' GPUs
otherwise); the list price c (the pool's node-hour price, or its GPU type's GPU-hour price); the reserved price r
with any upfront payment spread over its term. With the plan's reserved R, on-demand O_t and spot S_t:

- ``purchase_cover``: the plan states the pool's purchases, each period's ``used`` is u_t, and R + O_t + S_t >= u_t;
- ``purchase_limits``: whole numbers >= 0; R within the pool's units and ``max_units``, and 0 without a reserved
  option; O_t = 0 when the pool sells nothing on demand; S_t within the spot units on offer in the period (0
  without a spot option); no top-up beyond the need, O_t + S_t <= max(0, u_t - R);
- ``purchase_cost``: ``cost_usd`` = H r R + sum_t h_t (c O_t + s S_t), ``list_rental_usd`` = sum_t h_t c u_t;
- ``spot_loss_cover``: with a spot ``loss_share`` phi, every role keeps the pool's ``survive_fraction`` of its
  demand after losing ceil(phi S_t) whole units of the pool, each taking down the instances on it
  (:func:`_spot_loss`: exact for GPU billing, an upper bound for node billing).

The horizon's total then holds the purchases' cost in place of the list-price rental (:func:`adjustment`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pdopt.instance import Instance
from pdopt.verifier.costs import billed_per_node
from pdopt.verifier.parse import close, is_number
from pdopt.verifier.registry import Violation

__all__ = ["verify_purchase"]


def _units(instance: Instance, pid: str, period_plan: object) -> int:
    """u_t: the pool's nodes in use (node billing) or its instances' GPUs, from one period's plan."""
    plan = period_plan if isinstance(period_plan, dict) else {}
    pool = instance.node_pools[pid]
    if billed_per_node(pool):
        entry = plan.get("pools", {}).get(pid) if isinstance(plan.get("pools"), dict) else None
        n = entry.get("nodes_used") if isinstance(entry, dict) else 0
        return int(n) if is_number(n) else 0
    total = 0
    for p in plan.get("placements", []) if isinstance(plan.get("placements"), list) else []:
        if isinstance(p, dict) and p.get("pool") == pid and is_number(p.get("count")) and \
                is_number(p.get("gpus_per_instance")):
            total += int(p["count"]) * int(p["gpus_per_instance"])
    return total


def _prices(instance: Instance, pid: str) -> tuple[float, float, float]:
    """(c, r, s): the pool's list price, its reserved price with the upfront payment spread over the term (0
    without a reserved option) and its spot price (0 without), per unit-hour."""
    pool = instance.node_pools[pid]
    buy = pool.purchase
    per_node = billed_per_node(pool)
    c = pool.price_usd_per_node_hour if per_node else instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour
    r = s = 0.0
    if buy is not None and buy.reserved is not None:
        stated = buy.reserved.price_usd_per_node_hour if per_node else buy.reserved.price_usd_per_gpu_hour
        r = (stated or 0.0) + (buy.reserved.upfront_usd_per_unit / buy.reserved.term_hours
                               if buy.reserved.term_hours else 0.0)
    if buy is not None and buy.spot is not None:
        s = (buy.spot.price_usd_per_node_hour if per_node else buy.spot.price_usd_per_gpu_hour) or 0.0
    return c or 0.0, r, s


def static_reserved(instance: Instance, static_plan: object, static_total: float) -> float:
    """The static plan's cost with every unit of a pool offering a reserved price reserved for the horizon:
    its list-price total + sum_p H u_p (r_p - c_p), u_p the units the static fleet rents in pool p."""
    assert instance.horizon is not None
    total = static_total
    for pid, pool in instance.node_pools.items():
        if pool.purchase is not None and pool.purchase.reserved is not None:
            c, r, _ = _prices(instance, pid)
            units = _units(instance, pid, static_plan)
            if pool.purchase.reserved.max_units is not None:  # the rest stays on demand
                units = min(units, pool.purchase.reserved.max_units)
            total += instance.horizon.total_hours * units * (r - c)
    return total


def _whole(value: object) -> int | None:
    """A whole number >= 0, or None."""
    if is_number(value) and float(value) >= 0 and float(value) == int(value):
        return int(value)
    return None


def verify_purchase(instance: Instance, plan: Mapping[str, Any], tol: float, out: list[Violation],
                    demands: Mapping[str, Mapping[str, float]] | None = None) -> float:
    """Check the plan's purchases (module docstring); return the recomputed adjustment of the horizon's total:
    the purchases' cost less the list-price rental of the same units (0 when no pool states purchase options).
    ``demands`` (period -> model -> req/s, restated from the instance) is what the spot-loss check holds each role
    to."""
    horizon = instance.horizon
    pools = {pid: p for pid, p in instance.node_pools.items() if p.purchase is not None}
    if horizon is None or not pools:
        return 0.0
    section = plan.get("purchase")
    stated_pools = section.get("pools") if isinstance(section, dict) else None
    by_pool: dict[str, dict[str, Any]] = {}
    for e in stated_pools if isinstance(stated_pools, list) else []:
        name = e.get("pool") if isinstance(e, dict) else None
        if not isinstance(name, str) or name not in pools or name in by_pool:
            what = "names no pool with purchase options" if not isinstance(name, str) or name not in pools else \
                "is given twice"
            out.append(Violation("purchase_cover", f"purchase.pools: an entry for {name!r} {what}"))
            continue
        by_pool[name] = e
    periods = plan.get("periods")
    period_plans = {p["name"]: p.get("plan") for p in (periods if isinstance(periods, list) else [])
                    if isinstance(p, dict) and isinstance(p.get("name"), str)}
    adjustment = 0.0
    lost_units: dict[tuple[str, str], int] = {}  # (pool, period) -> whole spot units that may go at once
    for pid, pool in pools.items():
        buy = pool.purchase
        assert buy is not None
        entry = by_pool.get(pid)
        if entry is None:
            out.append(Violation("purchase_cover", f"purchase.pools: no entry for pool {pid}, which states "
                                                   "purchase options"))
            continue
        per_node = billed_per_node(pool)
        cap = pool.node_count if per_node else pool.node_count * pool.gpus_per_node
        c, r, s = _prices(instance, pid)
        where = f"purchase.pools[{pid}]"
        reserved = _whole(entry.get("reserved"))
        top = cap if buy.reserved is None or buy.reserved.max_units is None else min(cap, buy.reserved.max_units)
        if reserved is None or reserved > (top if buy.reserved is not None else 0):
            out.append(Violation("purchase_limits", f"{where}.reserved: {entry.get('reserved')!r}, expected a whole "
                                                    f"number from 0 to {top if buy.reserved is not None else 0}"))
            reserved = reserved or 0
        listed = {p["name"]: p for p in entry.get("periods", []) if isinstance(p, dict)
                  and isinstance(p.get("name"), str)} if isinstance(entry.get("periods"), list) else {}
        cost = horizon.total_hours * r * reserved
        rental = 0.0
        for period in horizon.periods:
            used = _units(instance, pid, period_plans.get(period.name))
            rental += period.hours * c * used
            p = listed.get(period.name, {})
            o, sp = _whole(p.get("on_demand", 0)), _whole(p.get("spot", 0))
            at = f"{where}.periods[{period.name}]"
            if p.get("used", 0) != used:
                out.append(Violation("purchase_cover", f"{at}.used: {p.get('used', 0)!r}, the period's plan "
                                                       f"rents {used} {'node' if per_node else 'GPU'}(s)"))
            if o is None or sp is None:
                out.append(Violation("purchase_limits", f"{at}: on_demand {p.get('on_demand')!r} and spot "
                                                        f"{p.get('spot')!r} must be whole numbers >= 0"))
                continue
            offered = buy.spot.available(period.name) if buy.spot is not None else 0
            if (o and not buy.on_demand) or sp > offered or o + sp > max(0, used - reserved):
                out.append(Violation("purchase_limits", f"{at}: on_demand {o}, spot {sp} (on offer {offered}, "
                                                        f"on demand {'sold' if buy.on_demand else 'not sold'}); "
                                                        f"top-ups beyond the need {max(0, used - reserved)}"))
            if reserved + o + sp < used:
                out.append(Violation("purchase_cover", f"{at}: reserved {reserved} + on_demand {o} + spot {sp} < "
                                                       f"{used} units the period's plan rents"))
            cost += period.hours * (c * o + s * sp)
            if buy.spot is not None and buy.spot.loss_share > 0 and sp:
                lost_units[(pid, period.name)] = math.ceil(buy.spot.loss_share * sp - 1e-9)
        for key, value in (("cost_usd", cost), ("list_rental_usd", rental)):
            stated_value = entry.get(key)
            if not is_number(stated_value) or not close(float(stated_value), value, tol):
                out.append(Violation("purchase_cost", f"{where}.{key}: {stated_value!r}, recomputed {value:.6g}"))
        adjustment += cost - rental
    if lost_units and demands is not None:
        _spot_loss(instance, period_plans, lost_units, demands, out)
    return adjustment


def _placed(instance: Instance, placements: list[Any], model: str, role: str) -> list[tuple[str, int, int, float]]:
    """The role's placements that can be read: (pool, GPUs per instance, count, capacity per instance)."""
    out = []
    for p in placements:
        if not isinstance(p, dict) or (p.get("model"), p.get("role")) != (model, role):
            continue
        pool, g, n, cap = p.get("pool"), _whole(p.get("gpus_per_instance")), _whole(p.get("count")), \
            p.get("capacity_rps")
        if isinstance(pool, str) and pool in instance.node_pools and g and n and is_number(cap) and cap >= 0:
            out.append((pool, g, n, float(cap)))
    return out


def _worst_loss(instance: Instance, pid: str, lost: int, placed: list[tuple[str, int, int, float]]) -> float:
    """The most capacity of the role that losing ``lost`` whole units of pool ``pid`` can take down. A lost GPU
    takes one instance (GPU billing): the ``lost`` largest instances, exactly. A lost node takes every instance on
    it (node billing; the plan does not say which instances share a node): at most ``lost`` x the largest of
    gpus_per_node // GPUs instances of one size, never more than the role holds in the pool (an upper bound)."""
    pool = instance.node_pools[pid]
    mine = [(g, n, cap) for p, g, n, cap in placed if p == pid]
    if not mine:
        return 0.0
    if not billed_per_node(pool):
        caps = sorted((cap for _, n, cap in mine for _ in range(min(n, lost))), reverse=True)
        return sum(caps[:lost])
    per_node = max(cap * min(n, max(1, pool.gpus_per_node // g)) for g, n, cap in mine)
    return min(lost * per_node, sum(n * cap for _, n, cap in mine))


def _spot_loss(instance: Instance, period_plans: Mapping[Any, Any], lost_units: Mapping[tuple[str, str], int],
               demands: Mapping[str, Mapping[str, float]], out: list[Violation]) -> None:
    """``spot_loss_cover``: in each period, for each pool whose spot units may be lost (one loss event per pool,
    ceil(loss_share x spot units) whole units) and each model and role, the capacity its placements give (their
    stated per-instance capacity, which the period's own checks recompute) less what the loss can take down
    (:func:`_worst_loss`) is at least the pool's ``survive_fraction`` of the role's demand (for a model served both
    ways, the plan's split)."""
    for (pid, period), lost in sorted(lost_units.items()):
        plan = period_plans.get(period)
        if not isinstance(plan, dict) or not isinstance(plan.get("placements"), list):
            continue
        spot = instance.node_pools[pid].purchase.spot  # type: ignore[union-attr]
        assert spot is not None
        models = plan["models"] if isinstance(plan.get("models"), dict) else {}
        roles = {(p["model"], p["role"]) for p in plan["placements"] if isinstance(p, dict)
                 and isinstance(p.get("model"), str) and isinstance(p.get("role"), str)}
        for m, r in sorted(roles):
            placed = _placed(instance, plan["placements"], m, r)
            capacity = sum(n * cap for _, _, n, cap in placed)
            loss = _worst_loss(instance, pid, lost, placed)
            demand = demands.get(period, {}).get(m, 0.0)
            raw = models.get(m)
            agg = raw.get("aggregated_rps", 0.0) if isinstance(raw, dict) else 0.0
            aggregated = float(agg) if is_number(agg) else 0.0
            need = aggregated if r == "aggregated" else demand - aggregated
            if capacity - loss < spot.survive_fraction * need * (1 - 1e-9) - 1e-9:
                out.append(Violation("spot_loss_cover", f"periods[{period}]: {m} {r}: capacity {capacity:.6g} req/s; "
                                                        f"losing {lost} spot unit(s) of pool {pid} can take "
                                                        f"{loss:.6g} of it, leaving less than "
                                                        f"{spot.survive_fraction:g} x {need:.6g} req/s"))

"""Plans over a horizon (``pdopt plan`` on an instance with ``horizon``): every period's plan against that period's
instance, the instances started, the minimum uptime, the ramps of the lead time, and the horizon's cost.

The periods are learned here from the instance alone: each period's single-period instance is restated from the
horizon instance (its workloads with what ``by_period`` restates, no horizon, named ``<instance>.<period>``) by
:func:`period_instance`, not by the planner's :meth:`pdopt.instance.Instance.period_instance`, and each period's
plan is checked by the single-period checks. A single-period plan named ``<instance>.<period>`` is checked against
that period. The maths (formulations/horizon.yaml), recomputed from the plans' placements, per placement key
a = (model, role, GPU type, GPUs per instance, pool, variant) with count x_t[a] in period t:

- starts_t = sum_a max(0, x_t[a] - x_prev(t)[a]) (prev(t) the period before; the last one before the first when
  the horizon is cyclic, none otherwise: x_prev = 0);
- minimum uptime U: x_t[a] >= sum of max(0, x_u[a] - x_prev(u)[a]) over the periods u starting less than U hours
  before t (t included);
- ramp (lead time L > 0): y_t[a] = max(x_t[a], x_prev(t)[a]) fits each pool (GPUs, nodes, packing, spanning
  instances on whole nodes of their own), each GPU type's ``max_gpus`` and the budget; the period's
  ``ramp_cost_usd`` is at least L (cost(y_t) - cost_prev(t)), cost(y_t) at the fewest nodes that hold y_t;
- cost: each period's ``cost_usd`` = hours x its plan's objective; the total = sum of costs, ramp costs and
  start_cost x starts, with the units of pools that state purchase options bought as the plan says instead of at
  the list price (:mod:`pdopt.verifier.purchase`); the static plan holds one fleet in every period, and its total
  and the saving agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from pdopt.instance import Instance
from pdopt.instance.horizon import PeriodOverride
from pdopt.verifier.costs import billed_per_node, pool_cost_usd_per_hour
from pdopt.verifier.packing import min_nodes, node_lower_bound
from pdopt.verifier.parse import PLANNED_STATUSES, close, is_number
from pdopt.verifier.purchase import static_reserved, verify_purchase
from pdopt.verifier.registry import Violation

Key = tuple[str, str, str, int, str, str]
"""A placement key: model, role, GPU type, GPUs per instance, pool, variant."""

__all__ = ["is_horizon_plan", "period_instance", "verify_horizon"]


def is_horizon_plan(plan: Mapping[str, Any]) -> bool:
    """A plan over a horizon has ``periods`` and no ``placements`` of its own."""
    return "periods" in plan and "placements" not in plan


def period_instance(instance: Instance, period: str) -> Instance:
    """The single-period instance of ``period``: each workload's fields, overwritten by what its ``by_period``
    states for the period (every field of :class:`PeriodOverride` that is not None), without ``by_period``."""
    doc = instance.model_dump(mode="json", exclude={"horizon"})
    doc["name"] = f"{instance.name}.{period}"
    for mid, wl in instance.workloads.items():
        wdoc = doc["workloads"][mid]
        wdoc.pop("by_period", None)
        over = wl.by_period.get(period)
        for fname in PeriodOverride.model_fields if over is not None else ():
            value = getattr(over, fname)
            if value is not None:
                wdoc[fname] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return Instance.model_validate(doc)


def _counts(plan: object) -> dict[Key, int]:
    """Instances per placement key (a malformed plan or placement counts nothing: the period's own checks name
    it)."""
    out: dict[Key, int] = {}
    placements = plan.get("placements") if isinstance(plan, dict) else None
    for p in placements if isinstance(placements, list) else ():
        try:
            key = (str(p["model"]), str(p["role"]), str(p["gpu_type"]), int(p["gpus_per_instance"]), str(p["pool"]),
                   str(p.get("variant", "default")))
            count = int(p["count"])
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            continue
        if key[3] > 0 and 0 < count <= 10**6:
            out[key] = out.get(key, 0) + count
    return out


def _fleet_cost(instance: Instance, fleet: Mapping[Key, int], out: list[Violation], where: str) -> float:
    """Hourly cost of a fleet at the fewest nodes that hold it, with a ``ramp_capacity`` violation for each pool
    it does not fit, each GPU type over its ``max_gpus``, and the budget."""
    total = 0.0
    rented: dict[str, int] = {}
    for pid in sorted({k[4] for k, n in fleet.items() if n > 0}):
        pool = instance.node_pools.get(pid)
        if pool is None:
            continue  # the period's own checks name an unknown pool
        k = pool.gpus_per_node
        small: dict[int, int] = {}
        spanning = 0
        for key, n in fleet.items():
            if key[4] == pid and n > 0:
                if key[3] > k:
                    spanning += n * (key[3] // k)
                else:
                    small[key[3]] = small.get(key[3], 0) + n
        gpus = sum(key[3] * n for key, n in fleet.items() if key[4] == pid)
        nodes = min_nodes(small, k) if small else 0
        if nodes is None:  # the exact search hit its limit: the volume bound, and no verdict on the packing
            nodes = node_lower_bound(small, k)
        elif nodes + spanning > pool.node_count:
            out.append(Violation("ramp_capacity", f"{where}: pool {pid}'s instances ({gpus} GPUs) do not fit its "
                                                  f"{pool.node_count} nodes of {k} GPUs"))
        used = nodes + spanning
        total += pool_cost_usd_per_hour(instance, pid, used, gpus)
        rented[pool.gpu_type] = rented.get(pool.gpu_type, 0) + (used * k if billed_per_node(pool) else gpus)
    for g, n in sorted(rented.items()):
        cap = instance.gpu_types[g].max_gpus
        if cap is not None and n > cap:
            out.append(Violation("ramp_capacity", f"{where}: {n} GPUs of type {g} rented, above its max_gpus {cap}"))
    budget = instance.limits.budget_usd_per_hour
    if budget is not None and total > budget * (1 + 1e-9):
        out.append(Violation("ramp_capacity", f"{where}: {total:.6g} USD/hour, above the budget {budget:g}"))
    return total


def _number(doc: Mapping[str, Any], key: str, where: str, out: list[Violation]) -> float | None:
    value = doc.get(key)
    if not is_number(value):
        out.append(Violation("bad_plan_field", f"{where}.{key}: expected a number, got {value!r}"))
        return None
    return float(value)


def _fleet(instance: Instance, periods: list[dict[str, Any]], label: str, tol: float, out: list[Violation],
           verify_one: Any) -> float | None:
    """Check one list of period plans (the plan's, or the static plan's); its total cost, or None."""
    horizon = instance.horizon
    assert horizon is not None
    names = [p.get("name") if isinstance(p, dict) else None for p in periods]
    if names != horizon.names:
        out.append(Violation("horizon_periods", f"{label}: periods {names} are not the horizon's {horizon.names}"))
        return None
    counts = [_counts(p.get("plan")) for p in periods]
    hourly = []
    for i, (doc, period) in enumerate(zip(periods, horizon.periods, strict=True)):
        where = f"{label}[{i}] ({period.name})"
        hours = _number(doc, "hours", where, out)
        if hours is not None and not close(hours, period.hours, tol):
            out.append(Violation("horizon_periods", f"{where}.hours: {hours:g}, the horizon says {period.hours:g}"))
        sub = doc.get("plan")
        if not isinstance(sub, dict) or sub.get("status") not in PLANNED_STATUSES:
            out.append(Violation("horizon_periods", f"{where}: no plan for the period"))
            return None
        for v in verify_one(period_instance(instance, period.name), sub, tol):
            out.append(dataclasses.replace(v, message=f"{where}: {v.message}"))
        obj = _number(sub, "objective_usd_per_hour", f"{where}.plan", out)
        hourly.append(obj or 0.0)
        cost = _number(doc, "cost_usd", where, out)
        if cost is not None and obj is not None and not close(cost, period.hours * obj, tol):
            out.append(Violation("horizon_cost", f"{where}.cost_usd: {cost:.6g}, but {period.hours:g} h x "
                                                 f"{obj:.6g} USD/h = {period.hours * obj:.6g}"))
    prev = [horizon.preceding(i) for i in range(len(periods))]
    started = [{a: max(0, n - (counts[j].get(a, 0) if j is not None else 0)) for a, n in c.items()}
               for c, j in zip(counts, prev, strict=True)]
    begins = [sum(p.hours for p in horizon.periods[:i]) for i in range(len(periods))]
    total = 0.0
    for i, doc in enumerate(periods):
        where = f"{label}[{i}] ({horizon.periods[i].name})"
        stated = doc.get("starts")
        if stated != sum(started[i].values()):
            out.append(Violation("horizon_starts", f"{where}.starts: {stated!r}, but the counts start "
                                                   f"{sum(started[i].values())} instance(s)"))
        if horizon.min_uptime_h > 0:
            for a in sorted(set(counts[i]).union(*started)):
                window = [u for u in range(len(periods))
                          if 0 <= ((begins[i] - begins[u]) % horizon.total_hours if horizon.cyclic
                                   else begins[i] - begins[u]) < horizon.min_uptime_h]
                held = sum(started[u].get(a, 0) for u in window)
                if counts[i].get(a, 0) < held:
                    out.append(Violation("min_uptime", f"{where}: {counts[i].get(a, 0)} instance(s) of {a[0]} "
                                                       f"{a[1]} on {a[4]}, but {held} were started less than "
                                                       f"{horizon.min_uptime_h:g} h before"))
        ramp = 0.0
        if horizon.lead_time_min > 0:
            j = prev[i]
            keys = set(counts[i]) | (set(counts[j]) if j is not None else set())
            fleet = {a: max(counts[i].get(a, 0), counts[j].get(a, 0) if j is not None else 0) for a in keys}
            least = horizon.lead_time_min / 60.0 * (_fleet_cost(instance, fleet, out, f"{where} ramp")
                                                    - (hourly[j] if j is not None else 0.0))
            stated_ramp = _number(doc, "ramp_cost_usd", where, out)
            if stated_ramp is not None and stated_ramp < least - tol * max(1.0, abs(least)):
                out.append(Violation("horizon_cost", f"{where}.ramp_cost_usd: {stated_ramp:.6g}, below the "
                                                     f"ramp's least cost {least:.6g}"))
            ramp = stated_ramp if stated_ramp is not None else least
        total += horizon.periods[i].hours * hourly[i] + ramp + horizon.start_cost_usd * sum(started[i].values())
    return total


def verify_horizon(instance: Instance, plan: Mapping[str, Any], tol: float, verify_one: Any) -> list[Violation]:
    """Every violation of a plan over the instance's horizon (``verify_one`` checks one period's plan)."""
    out: list[Violation] = []
    if instance.horizon is None:
        return [Violation("horizon_periods", "the plan has periods, the instance has no horizon")]
    if plan.get("instance") != instance.name:
        out.append(Violation("instance_mismatch", f"instance: the plan is for {plan.get('instance')!r}, not "
                                                  f"{instance.name!r}"))
    periods = plan.get("periods")
    if not isinstance(periods, list):
        return [*out, Violation("bad_plan_field", f"periods: expected a list, got {periods!r}")]
    total = _fleet(instance, periods, "periods", tol, out, verify_one)
    losses = any(p.purchase is not None and p.purchase.spot is not None and p.purchase.spot.loss_share > 0
                 for p in instance.node_pools.values())
    demands = {t: {m: w.demand_rps() for m, w in period_instance(instance, t).workloads.items()}
               for t in instance.horizon.names} if losses else None  # restated only for the spot-loss check
    adjustment = verify_purchase(instance, plan, tol, out, demands)  # units bought as stated, not at list price
    total = None if total is None else total + adjustment
    stated = plan.get("total_cost_usd")
    if total is not None and (not is_number(stated) or not close(float(stated), total, tol)):
        out.append(Violation("horizon_cost", f"total_cost_usd: {stated!r}, recomputed {total:.6g}"))
    static = plan.get("static_peak")
    if isinstance(static, list) and static:
        keys = [_counts(p.get("plan")) if isinstance(p, dict) else {} for p in static]
        if any(k != keys[0] for k in keys):
            out.append(Violation("static_fleet", "static_peak: the periods do not hold the same placements"))
        static_total = _fleet(instance, static, "static_peak", tol, out, verify_one)
        stated_static = plan.get("static_peak_cost_usd")
        if static_total is not None and (not is_number(stated_static)
                                         or not close(float(stated_static), static_total, tol)):
            out.append(Violation("horizon_cost", f"static_peak_cost_usd: {stated_static!r}, recomputed "
                                                 f"{static_total:.6g}"))
        section = plan.get("purchase")
        stated_reserved = section.get("static_peak_reserved_cost_usd") if isinstance(section, dict) else None
        if static_total is not None and stated_reserved is not None and isinstance(static[0], dict):
            again = static_reserved(instance, static[0].get("plan"), static_total)
            if not is_number(stated_reserved) or not close(float(stated_reserved), again, tol):
                out.append(Violation("purchase_cost", f"purchase.static_peak_reserved_cost_usd: "
                                                      f"{stated_reserved!r}, recomputed {again:.6g}"))
    return out

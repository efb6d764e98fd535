"""Should this model be disaggregated? The chosen plan against the two single-mode plans, model by model.

The plan decides the serving mode of every model that may be served both ways (aggregated instances, P/D pairs,
or both behind one router) at the lowest total cost. To say what that choice is worth, two more plans are solved
under the same limits: every such model served aggregated only, and every one disaggregated only (models with
one mode keep it). A model's cost in a plan is its share of the plan's cost (its placements' costs, each a share
by GPUs of its pool's cost: ``cost_breakdown.by_model``); the saving against a single-mode plan is
(cost there - cost in the chosen plan) / cost there.
"""

from __future__ import annotations

from collections.abc import Callable

from pdopt.instance import Instance, ServingMode
from pdopt.plan import ModeComparison, Plan


def single_mode_instance(instance: Instance, mode: ServingMode) -> Instance | None:
    """The instance with every model that may be served both ways limited to ``mode`` (None: no such model)."""
    mixed = mixed_models(instance)
    if not mixed:
        return None
    workloads = {m: w.model_dump(mode="json") for m, w in instance.workloads.items()}
    for m in mixed:
        workloads[m]["modes"] = [mode]
    return instance.replace(workloads=workloads)


def _model_cost(plan: Plan | None, model: str) -> float | None:
    if plan is None or not plan.has_plan:
        return None
    return plan.cost_breakdown.by_model.get(model, 0.0)


def mixed_models(instance: Instance) -> list[str]:
    """Models that may be served both ways (their workload allows both and they have profiles for both)."""
    return [m for m in instance.workloads if len(instance.serving_modes(m)) == 2]


def single_mode_plans(instance: Instance, solve: Callable[[Instance], Plan]) -> dict[str, Plan | None]:
    """The aggregated-only and the disaggregated-only plans (``solve`` should apply the limits and the demand
    multiplier of the plan they are compared with); None for both when no model may be served both ways."""
    modes: tuple[ServingMode, ...] = ("aggregated", "disaggregated")
    out: dict[str, Plan | None] = {}
    for mode in modes:
        inst = single_mode_instance(instance, mode)
        out[mode] = solve(inst) if inst is not None else None
    return out


def compare_modes(instance: Instance, plan: Plan, solve: Callable[[Instance], Plan],
                  single: dict[str, Plan | None] | None = None) -> dict[str, ModeComparison]:
    """Per model that may be served both ways: its mode and cost in ``plan`` and in the aggregated-only and the
    disaggregated-only plans (``single``, else solved by ``solve``)."""
    models = mixed_models(instance)
    if not models or not plan.has_plan:
        return {}
    single = single if single is not None else single_mode_plans(instance, solve)
    out = {}
    for m in models:
        chosen = _model_cost(plan, m)
        assert chosen is not None
        out[m] = ModeComparison(
            mode=plan.models[m].mode, cost_usd_per_hour=chosen,
            aggregated_rps=plan.models[m].aggregated_rps, demand_rps=plan.models[m].demand_rps,
            aggregated_only_usd_per_hour=_model_cost(single["aggregated"], m),
            disaggregated_only_usd_per_hour=_model_cost(single["disaggregated"], m),
            aggregated_only_plan_usd_per_hour=_plan_cost(single["aggregated"]),
            disaggregated_only_plan_usd_per_hour=_plan_cost(single["disaggregated"]),
            plan_usd_per_hour=plan.objective_usd_per_hour,
        )
    return out


def _plan_cost(plan: Plan | None) -> float | None:
    return plan.objective_usd_per_hour if plan is not None and plan.has_plan else None

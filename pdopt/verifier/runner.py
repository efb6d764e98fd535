"""The verifier's entry point: read the plan, then run every check in a fixed order.

The order is part of the output (violations are listed as they are found) and of the semantics (later steps use
what earlier ones derived: capacities, the pools the plan uses, the recomputed total cost), so it is fixed here
once, in :data:`STEPS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pdopt.instance import Instance
from pdopt.verifier.costs import check_budget, check_costs
from pdopt.verifier.fleet import check_demand_cover, check_domain_loss, check_shapes
from pdopt.verifier.horizon import is_horizon_plan, period_instance, verify_horizon
from pdopt.verifier.network import check_network
from pdopt.verifier.parse import PLANNED_STATUSES, PlanContext, read_plan, read_pools
from pdopt.verifier.pools import check_gpu_types, check_pools
from pdopt.verifier.registry import Violation
from pdopt.verifier.summary import check_models_summary

Step = Callable[[PlanContext], None]

STEPS: tuple[tuple[str, Step], ...] = (
    ("shapes and capacities", check_shapes),
    ("demand cover", check_demand_cover),
    ("read pools", read_pools),
    ("pool GPUs, nodes and packing", check_pools),
    ("costs and objective", check_costs),
    ("budget", check_budget),
    ("GPU type availability", check_gpu_types),
    ("models summary", check_models_summary),
    ("KV flows and links", check_network),
    ("domain loss", check_domain_loss),
)
"""The checks after the plan's header and placements are read, in the order they run."""


def verify(instance: Instance, plan: dict[str, Any], tol: float = 1e-6) -> list[Violation]:
    """Every violation of ``instance``'s constraints by ``plan`` (its JSON form); [] when it satisfies them all.

    ``tol`` is the relative tolerance of every numeric comparison (demand cover, capacities, costs, budget). A
    plan whose status is not ``optimal`` or ``feasible`` holds no fleet, so there is nothing to verify.
    """
    if not isinstance(plan, dict):
        return [Violation("bad_plan_field", f"the plan must be a JSON object, got {type(plan).__name__}")]
    if is_horizon_plan(plan):
        return verify_horizon(instance, plan, tol, verify) if plan.get("status") in PLANNED_STATUSES else []
    named = plan.get("instance")
    if instance.horizon is not None and isinstance(named, str) and named.startswith(f"{instance.name}."):
        period = named.removeprefix(f"{instance.name}.")
        if period in instance.horizon.names:  # one period's plan: checked against that period
            instance = period_instance(instance, period)
    status = plan.get("status")
    if not isinstance(status, str):
        return [Violation("bad_plan_field", f"status: expected a string, got {status!r}")]
    if status not in PLANNED_STATUSES:
        return []
    out: list[Violation] = []
    ctx = read_plan(instance, plan, tol, out)
    if ctx is None:
        return out
    for _, step in STEPS:
        step(ctx)
    return out

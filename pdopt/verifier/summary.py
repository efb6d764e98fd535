"""The plan's per-model summary against its own placements and the instance.

``models.<id>`` must exist for every model with a workload (and only for those); its ``demand_rps`` must equal
the recomputed demand x ``scale_demand`` x ``scale`` (relative tolerance), and per role (prefill, decode, and
aggregated when the plan has aggregated instances or states the role) its ``instances`` and ``gpus`` must equal
the sums over the model's placements of that role exactly (``summary_mismatch``). The other summaries
(``pools`` entries, ``gpus_used``) are checked beside the costs and the pools they repeat.
"""

from __future__ import annotations

from pdopt.verifier.capacity import demand_rps
from pdopt.verifier.parse import ROLE_NAMES, PlanContext, close, summary_number
from pdopt.verifier.registry import Violation


def check_models_summary(ctx: PlanContext) -> None:
    """``models.<id>``: demand, and per role the instances and GPUs, must match the placements."""
    instance, out = ctx.instance, ctx.out
    models = ctx.plan.get("models")
    if not isinstance(models, dict):
        out.append(Violation("bad_plan_field", f"models: expected an object, got {models!r}"))
        return
    for extra in sorted(set(models) - set(instance.workloads), key=str):
        out.append(Violation("summary_mismatch", f"models.{extra}: the instance has no workload for it"))
    for model in instance.workloads:
        entry = models.get(model)
        where = f"models.{model}"
        if not isinstance(entry, dict):
            out.append(Violation("bad_plan_field", f"{where}: expected an object, got {entry!r}"))
            continue
        stated_demand = summary_number(entry, "demand_rps", where, out)
        demand = demand_rps(instance, model, ctx.scale)
        if stated_demand is not None and not close(stated_demand, demand, ctx.tol):
            out.append(Violation("summary_mismatch", f"{where}.demand_rps = {stated_demand:.10g}, recomputed "
                                                     f"{demand:.10g} req/s"))
        agg = [p for p in ctx.placements if p.model == model and p.role == "aggregated"]
        roles = (*ROLE_NAMES, "aggregated") if agg or entry.get("aggregated") is not None else ROLE_NAMES
        for role in roles:
            served = [p for p in ctx.placements if p.model == model and p.role == role]
            role_entry = entry.get(role)
            for key, actual in (("instances", sum(p.count for p in served)),
                                ("gpus", sum(p.gpus_total for p in served))):
                stated = summary_number(role_entry, key, f"{where}.{role}", out)
                if stated is not None and stated != actual:
                    out.append(Violation("summary_mismatch", f"{where}.{role}.{key} = {stated:g}, but its "
                                                             f"placements sum to {actual:g}"))
                if role_entry is None or not isinstance(role_entry, dict):
                    break  # reported once by summary_number

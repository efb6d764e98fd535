"""A plan as the worker groups a deployment runs: per model, one group per (role, pool, shape), with its replicas,
GPUs and the engine arguments the plan's profiles record.

A group is a set of identical instances: ``replicas`` = the placement's count, each with ``gpus`` GPUs (the
tensor-parallel size) on nodes of ``pool``. The engine arguments carried over are what the capacity model assumed:
the tensor-parallel size; for decode, the largest batch that meets the TPOT SLO (``max_batch``, from the
capacity table: the engine's ``--max-num-seqs``, so the engine does not batch past what the plan was sized for;
under the ``under_load`` decode model, which sizes by rate, the engine's batch cap: the largest benchmarked batch or
the KV-cache bound);
for aggregated instances, the profile's token budget and batch cap (``--max-num-batched-tokens``,
``--max-num-seqs``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pdopt.errors import InputError
from pdopt.instance import AggregatedProfile, DecodeProfile, Instance
from pdopt.perf.capacity import ShapeCapacity, capacity_table
from pdopt.perf.decode import batch_cap
from pdopt.plan import Plan

__all__ = ["Group", "dns_name", "mixed_models", "plan_groups"]


@dataclass(frozen=True)
class Group:
    """Identical instances of one model, role and shape in one pool."""

    model: str
    role: str
    """``prefill``, ``decode`` or ``aggregated``."""
    pool: str
    gpu_type: str
    gpus: int
    variant: str
    replicas: int
    max_batch: int | None = None
    token_budget: int | None = None

    @property
    def disaggregated(self) -> bool:
        """Prefill and decode instances transfer KV caches; aggregated ones do not."""
        return self.role in ("prefill", "decode")


def dns_name(*parts: str) -> str:
    """A Kubernetes name (RFC 1123 label, at most 63 characters) from identifiers: lower case, ``_`` -> ``-``."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return name[:63].rstrip("-") or "pdopt"


def mixed_models(groups: dict[str, list[Group]]) -> list[str]:
    """Models served both aggregated and disaggregated."""
    return [m for m, gs in groups.items() if {g.role for g in gs} >= {"aggregated"} and len({g.role for g in gs}) > 1]


def plan_groups(instance: Instance, plan: Plan) -> dict[str, list[Group]]:
    """Model -> its groups (prefill, decode, aggregated; then by pool), from a plan of ``instance``."""
    if plan.instance != instance.name:
        raise InputError(f"plan: a plan for instance '{plan.instance}', not '{instance.name}'")
    if not plan.has_plan:
        raise InputError(f"plan: status '{plan.status.value}' has no fleet to export")
    table: dict[tuple[str, str, str, int, str], ShapeCapacity] = {
        (s.model, str(s.role), s.gpu_type, s.gpus_per_instance, s.variant): s for s in capacity_table(instance).shapes}
    order = {"prefill": 0, "decode": 1, "aggregated": 2}
    out: dict[str, list[Group]] = {}
    for p in sorted(plan.placements, key=lambda x: (x.model, order[x.role], x.pool, x.gpu_type, x.gpus_per_instance)):
        shape = table.get((p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant))
        if shape is None:
            raise InputError(f"plan: no usable {p.role} shape for {p.model} on {p.gpu_type} x{p.gpus_per_instance} "
                             f"(variant {p.variant}) in the instance")
        if shape.spans_nodes:
            raise InputError(f"plan: {p.model} {p.role} instances span nodes ({p.gpus_per_instance} GPUs); a "
                             "multinode export is not available")
        batch = shape.detail.get("batch") if p.role == "decode" else None
        if p.role == "decode" and batch is None:  # under_load: no SLO batch; the engine's cap (benchmark or KV)
            prof = instance.profile(p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)
            cap = batch_cap(instance, prof) if isinstance(prof, DecodeProfile) else None
            batch = cap[0] if isinstance(cap, tuple) else None
        budget = None
        if p.role == "aggregated":
            prof = instance.profile(p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)
            assert isinstance(prof, AggregatedProfile)
            budget, batch = prof.token_budget, prof.max_batch
        out.setdefault(p.model, []).append(Group(
            p.model, p.role, p.pool, p.gpu_type, p.gpus_per_instance, p.variant, p.count,
            int(float(batch)) if batch is not None else None, budget))
    return out

"""An independent check of a plan against its instance: every constraint recomputed from the instance alone.

Why independent: a verifier that reused :mod:`pdopt.capacity`, :mod:`pdopt.model_data`, :mod:`pdopt.milp` or
:mod:`pdopt.plan` would share their bugs and approve whatever they produce. This module therefore imports only
the data model (:mod:`pdopt.instance`) and reimplements, from the maths stated in the capacity module's
docstring, the per-instance capacities (M/M/1 prefill, TPOT-curve decode), the demand in req/s, the prices and
the packing of instances onto nodes. It never solves anything and needs no solver.

It reads the plan in its JSON form (``Plan.to_dict()`` or a plan file read back), because that is what users
keep and exchange; a malformed plan (missing keys, wrong types) becomes ``bad_plan_field`` violations rather
than an exception, so that ``pdopt verify`` can always say what is wrong.

Checks (the ``check`` names of :class:`Violation`):

- ``bad_plan_field``: a field is missing, of the wrong type, not finite, or a count is not positive.
- ``instance_mismatch``: the plan names another instance.
- ``unknown_shape``: a placement's (model, role, gpu_type, gpus_per_instance) is no profile of the instance.
- ``unusable_shape``: the shape exists but serves nothing at the SLOs (no workload, weights do not fit, TTFT or
  TPOT target unreachable); it still costs GPUs.
- ``unknown_pool`` / ``pool_gpu_type``: the pool does not exist, or holds another GPU type.
- ``integrality``: an instance count is not a whole number.
- ``capacity_mismatch``: the plan's per-instance ``capacity_rps`` differs from the recomputed one.
- ``demand_cover``: recomputed capacity x count summed over a model's role falls short of its demand.
- ``pool_gpu_capacity``: a pool's instances use more GPUs than its nodes hold.
- ``node_packing``: first-fit decreasing cannot place every instance inside one of the pool's nodes.
- ``gpu_type_availability``: GPUs of a type exceed its ``max_gpus``.
- ``cost_mismatch`` / ``objective_mismatch``: a placement's cost or the total differs from the recomputed price.
- ``summary_mismatch``: the plan's per-model summary (``models``) or ``gpus_used`` disagrees with its placements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from pdopt.instance import DecodeProfile, Instance, PrefillProfile

PLANNED_STATUSES: frozenset[str] = frozenset({"optimal", "feasible"})
"""Statuses whose plan holds placements; any other status has nothing to verify."""

ROLE_NAMES: tuple[str, str] = ("prefill", "decode")

PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True)
class Violation:
    """One broken constraint, named by a snake_case ``check`` and explained in the instance's terms."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


def format_violations(violations: list[Violation]) -> str:
    """One line per violation, grouped under a count, for people reading a terminal."""
    if not violations:
        return "no violations: the plan satisfies every checked constraint"
    lines = [f"{len(violations)} violation(s):"]
    lines.extend(f"  {v.check}: {v.message}" for v in violations)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Recomputation from the instance (no pdopt module other than the data model)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecomputedShape:
    """What the verifier derives for one shape: capacity of one instance in req/s, or why it serves nothing."""

    capacity_rps: float
    unusable: str | None = None


def demand_rps(instance: Instance, model: str, scale_demand: float = 1.0) -> float:
    """Requests per second to serve for ``model``: stated, or tokens per minute over (L_in + L_out), scaled."""
    wl = instance.workloads[model]
    if wl.demand.requests_per_s is not None:
        base = wl.demand.requests_per_s
    else:
        assert wl.demand.tokens_per_min is not None  # the data model guarantees exactly one is given
        base = wl.demand.tokens_per_min / 60.0 / (wl.input_tokens_mean + wl.output_tokens_mean)
    return base * scale_demand


def _weights_gb(instance: Instance, model: str) -> float:
    """Weight size in GB, stated or parameters x bytes per parameter (recomputed, not the model's property)."""
    m = instance.models[model]
    if m.weights_gb is not None:
        return m.weights_gb
    assert m.architecture is not None  # the data model requires one or the other
    return m.architecture.num_parameters_billion * m.architecture.bytes_per_parameter


def _prefill_rps(profile: PrefillProfile, instance: Instance) -> RecomputedShape:
    """M/M/1: lambda = X/L_in - f/(T - overhead), with X interpolated (never extrapolated) at L_in."""
    wl = instance.workloads[profile.model]
    l_in = wl.input_tokens_mean
    xs = np.array([p.input_tokens for p in profile.max_throughput_by_input], dtype=float)
    ys = np.array([p.max_throughput_tok_per_s for p in profile.max_throughput_by_input], dtype=float)
    if not xs[0] <= l_in <= xs[-1]:
        return RecomputedShape(0.0, f"mean input {l_in:g} tokens is outside the benchmarked lengths "
                                    f"[{xs[0]:g}, {xs[-1]:g}]")
    x = float(np.interp(l_in, xs, ys))
    mu = x / l_in
    target, overhead = wl.ttft.target_s, wl.ttft_overhead_s
    if target <= l_in / x + overhead:
        return RecomputedShape(0.0, f"TTFT target {target:g} s is not above the unloaded TTFT "
                                    f"{l_in / x + overhead:.4g} s")
    factor = 1.0 if wl.ttft.statistic == "mean" else math.log(1.0 / (1.0 - PERCENTILES[wl.ttft.statistic]))
    lam = mu - factor / (target - overhead)
    if lam <= 0.0:
        return RecomputedShape(0.0, f"{wl.ttft.statistic} TTFT exceeds {target:g} s at any load under M/M/1")
    return RecomputedShape(lam)


def _decode_batch(batches: np.ndarray[Any, np.dtype[np.float64]], tpots: np.ndarray[Any, np.dtype[np.float64]],
                  target_ms: float, rule: str) -> float | None:
    """B*: the largest batch (integer for ``whole``) whose interpolated TPOT meets the target, capped at the
    largest measured batch; None when even the smallest measured batch misses the target."""
    if tpots[0] > target_ms:
        return None
    if tpots[-1] <= target_ms:
        return float(batches[-1])
    i = int(np.argmax(tpots > target_ms))  # first measured point above the target; i >= 1 here
    lo_b, hi_b, lo_t, hi_t = batches[i - 1], batches[i], tpots[i - 1], tpots[i]
    if rule == "fractional":
        return float(lo_b + (target_ms - lo_t) / (hi_t - lo_t) * (hi_b - lo_b))
    candidates = np.arange(lo_b, hi_b, dtype=float)  # integers in [lo, hi); hi itself misses the target
    ok = candidates[np.interp(candidates, batches, tpots) <= target_ms]
    return float(ok.max()) if ok.size else float(lo_b)


def _decode_rps(profile: DecodeProfile, instance: Instance) -> RecomputedShape:
    """Little's law at the planned batch: B* / (TPOT(B*) / 1000 x L_out) req/s."""
    wl = instance.workloads[profile.model]
    batches = np.array([p.batch for p in profile.tpot_by_batch], dtype=float)
    tpots = np.array([p.tpot_ms for p in profile.tpot_by_batch], dtype=float)
    batch = _decode_batch(batches, tpots, wl.tpot.target_ms, instance.options.decode_batch_rule)
    if batch is None:
        return RecomputedShape(0.0, f"TPOT target {wl.tpot.target_ms:g} ms is below the TPOT "
                                    f"{tpots[0]:g} ms at the smallest benchmarked batch")
    tpot = float(np.interp(batch, batches, tpots))
    return RecomputedShape(batch / (tpot / 1000.0 * wl.output_tokens_mean))


def recompute_shape(instance: Instance, model: str, role: str, gpu_type: str,
                    gpus_per_instance: int) -> RecomputedShape | None:
    """Per-instance capacity of a shape, recomputed; None when the instance has no such profile."""
    prof = next((p for p in instance.profiles
                 if (p.model, p.role, p.gpu_type, p.gpus_per_instance) == (model, role, gpu_type,
                                                                              gpus_per_instance)), None)
    if prof is None:
        return None
    if model not in instance.workloads:
        return RecomputedShape(0.0, f"model '{model}' has no workload, so no SLO to size it at")
    need = _weights_gb(instance, model)
    have = instance.gpu_types[gpu_type].memory_gb * gpus_per_instance
    if need >= have:
        return RecomputedShape(0.0, f"weights {need:g} GB do not fit in {gpus_per_instance} x "
                                    f"{instance.gpu_types[gpu_type].memory_gb:g} GB")
    if isinstance(prof, PrefillProfile):
        return _prefill_rps(prof, instance)
    return _decode_rps(prof, instance)


def pool_price_per_gpu_hour(instance: Instance, pool_id: str) -> float:
    """A pool's node-hour price spread over its GPUs, or the GPU type's price when the pool gives none."""
    pool = instance.node_pools[pool_id]
    if pool.price_usd_per_node_hour is not None:
        return pool.price_usd_per_node_hour / pool.gpus_per_node
    return instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour


def first_fit_decreasing(sizes: Mapping[int, int], gpus_per_node: int, node_count: int) -> dict[int, int]:
    """Pack instances node by node, largest first, each inside one node; return size -> instances left over.

    First-fit places each instance in the first open node with room and opens a new node only when none has.
    Identical instances are placed in bulk (a node takes as many as its free GPUs allow), which is the same
    packing as placing them one at a time but bounded by the node count rather than the instance count, so an
    absurd count in a corrupt plan cannot stall the check. For sizes that divide each other and the node size
    (what the instance format enforces for admissible shapes) first-fit decreasing is exact: it fails only
    when no packing exists.
    """
    free: list[int] = []
    left: dict[int, int] = {}
    for size in sorted(sizes, reverse=True):
        remaining = sizes[size]
        if size > gpus_per_node or remaining <= 0:
            if remaining > 0:
                left[size] = remaining
            continue
        for i, room in enumerate(free):
            take = min(remaining, room // size)
            free[i] -= take * size
            remaining -= take
            if remaining == 0:
                break
        per_node = gpus_per_node // size
        while remaining > 0 and len(free) < node_count:
            take = min(remaining, per_node)
            free.append(gpus_per_node - take * size)
            remaining -= take
        if remaining > 0:
            left[size] = remaining
    return left


# --------------------------------------------------------------------------------------------------------------
# Reading the plan defensively
# --------------------------------------------------------------------------------------------------------------


def _is_number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number (bool excluded: JSON true is not a count)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _close(a: float, b: float, rel: float) -> bool:
    """Equal within a relative tolerance of the larger magnitude (so 0 only matches 0)."""
    return abs(a - b) <= rel * max(abs(a), abs(b))


@dataclass(frozen=True)
class _Placement:
    """A placement whose identifying fields parsed; ``count`` may be fractional (reported as integrality)."""

    where: str
    model: str
    role: str
    gpu_type: str
    gpus: int
    pool: str
    count: float
    capacity_rps: float | None
    cost_usd_per_hour: float | None

    @property
    def label(self) -> str:
        return f"{self.where} ({self.model} {self.role} {self.gpu_type} x{self.gpus} in pool '{self.pool}')"


def _parse_placement(i: int, raw: object, out: list[Violation]) -> _Placement | None:
    """Parse one placement; report each bad field; None when it cannot be attributed or counted."""
    where = f"placements[{i}]"
    if not isinstance(raw, dict):
        out.append(Violation("bad_plan_field", f"{where}: expected an object, got {type(raw).__name__}"))
        return None
    ok = True
    texts: dict[str, str] = {}
    for key in ("model", "role", "gpu_type", "pool"):
        val = raw.get(key)
        if isinstance(val, str):
            texts[key] = val
        else:
            ok = False
            out.append(Violation("bad_plan_field", f"{where}.{key}: expected a string, got {val!r}"))
    gpus = raw.get("gpus_per_instance")
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus <= 0:
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.gpus_per_instance: expected a positive integer, "
                                               f"got {gpus!r}"))
    count = raw.get("count")
    if not _is_number(count):
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.count: expected a number, got {count!r}"))
    elif count <= 0:
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.count: {count!r} instances; a placement's count must be "
                                               "positive"))
    extras: dict[str, float | None] = {}
    for key in ("capacity_rps", "cost_usd_per_hour"):
        val = raw.get(key)
        if _is_number(val):
            extras[key] = float(val)
        else:
            extras[key] = None
            out.append(Violation("bad_plan_field", f"{where}.{key}: expected a finite number, got {val!r}"))
    if not ok:
        return None
    assert isinstance(gpus, int) and _is_number(count)
    p = _Placement(where, texts["model"], texts["role"], texts["gpu_type"], gpus, texts["pool"], float(count),
                   extras["capacity_rps"], extras["cost_usd_per_hour"])
    if not float(count).is_integer():
        out.append(Violation("integrality", f"{p.label}: count {count!r} is not a whole number of instances"))
    return p


def _summary_number(container: object, key: str, where: str, out: list[Violation]) -> float | None:
    """A finite number at ``container[key]``, or None after reporting why it is unusable."""
    if not isinstance(container, dict):
        out.append(Violation("bad_plan_field", f"{where}: expected an object, got {type(container).__name__}"))
        return None
    val = container.get(key)
    if not _is_number(val):
        out.append(Violation("bad_plan_field", f"{where}.{key}: expected a finite number, got {val!r}"))
        return None
    return float(val)


# --------------------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------------------


def verify(instance: Instance, plan: dict[str, Any], tol: float = 1e-6) -> list[Violation]:
    """Every violation of ``instance``'s constraints by ``plan`` (its JSON form); [] when it satisfies them all.

    ``tol`` is the relative tolerance of every numeric comparison (demand cover, capacities, costs). A plan
    whose status is not ``optimal`` or ``feasible`` holds no fleet, so there is nothing to verify.
    """
    out: list[Violation] = []
    if not isinstance(plan, dict):
        return [Violation("bad_plan_field", f"the plan must be a JSON object, got {type(plan).__name__}")]
    status = plan.get("status")
    if not isinstance(status, str):
        return [Violation("bad_plan_field", f"status: expected a string, got {status!r}")]
    if status not in PLANNED_STATUSES:
        return []

    name = plan.get("instance")
    if name is not None and name != instance.name:
        out.append(Violation("instance_mismatch", f"the plan is for instance {name!r}, not '{instance.name}'"))

    scale = plan.get("scale_demand", 1.0)
    if not _is_number(scale) or scale <= 0:
        out.append(Violation("bad_plan_field", f"scale_demand: expected a positive number, got {scale!r}; "
                                               "checking demand at scale 1"))
        scale = 1.0

    raw_placements = plan.get("placements")
    if not isinstance(raw_placements, list):
        # Without the fleet every other check would only echo this one (nothing covers demand, ...).
        out.append(Violation("bad_plan_field", f"placements: expected a list, got {raw_placements!r}"))
        return out
    placements: list[_Placement] = []
    for i, raw in enumerate(raw_placements):
        parsed = _parse_placement(i, raw, out)
        if parsed is not None:
            placements.append(parsed)

    capacity = _check_shapes(instance, placements, tol, out)
    _check_demand_cover(instance, placements, capacity, float(scale), tol, out)
    _check_pools(instance, placements, out)
    _check_gpu_types(instance, placements, plan, out)
    _check_costs(instance, placements, len(raw_placements), plan, tol, out)
    _check_models_summary(instance, placements, plan, float(scale), tol, out)
    return out


def _check_shapes(instance: Instance, placements: list[_Placement], tol: float,
                  out: list[Violation]) -> dict[int, float]:
    """Shapes and pools exist and agree; per-instance capacity recomputed. Returns id(placement) -> capacity."""
    capacity: dict[int, float] = {}
    for p in placements:
        if p.pool not in instance.node_pools:
            out.append(Violation("unknown_pool", f"{p.label}: the instance has no node pool '{p.pool}' "
                                                 f"(pools: {', '.join(sorted(instance.node_pools))})"))
        elif instance.node_pools[p.pool].gpu_type != p.gpu_type:
            out.append(Violation("pool_gpu_type", f"{p.label}: pool '{p.pool}' holds "
                                                  f"{instance.node_pools[p.pool].gpu_type} GPUs, not {p.gpu_type}"))
        shape = recompute_shape(instance, p.model, p.role, p.gpu_type, p.gpus)
        if shape is None:
            out.append(Violation("unknown_shape", f"{p.label}: no {p.role} profile for model '{p.model}' on "
                                                  f"{p.gpu_type} with {p.gpus} GPUs per instance"))
            continue
        capacity[id(p)] = shape.capacity_rps
        if shape.unusable is not None:
            out.append(Violation("unusable_shape", f"{p.label}: this shape serves nothing at the SLOs "
                                                   f"({shape.unusable})"))
        if p.capacity_rps is not None and not _close(p.capacity_rps, shape.capacity_rps, tol):
            out.append(Violation("capacity_mismatch", f"{p.label}: capacity_rps {p.capacity_rps:.10g} per instance, "
                                                      f"recomputed {shape.capacity_rps:.10g} req/s"))
    return capacity


def _check_demand_cover(instance: Instance, placements: list[_Placement], capacity: dict[int, float],
                        scale: float, tol: float, out: list[Violation]) -> None:
    """Recomputed capacity x count over each model's role must reach its demand."""
    for model in instance.workloads:
        demand = demand_rps(instance, model, scale)
        for role in ROLE_NAMES:
            served = [p for p in placements if p.model == model and p.role == role]
            supply = sum(capacity.get(id(p), 0.0) * p.count for p in served)
            if supply < demand * (1.0 - tol):
                parts = ", ".join(f"{p.count:g} x {capacity.get(id(p), 0.0):.6g} ({p.gpu_type} x{p.gpus})"
                                  for p in served) or "no instances"
                out.append(Violation("demand_cover", f"model '{model}', role {role}: capacity {supply:.6g} req/s "
                                                     f"({parts}) is below the demand {demand:.6g} req/s"))


def _check_pools(instance: Instance, placements: list[_Placement], out: list[Violation]) -> None:
    """Per pool: GPUs in total, then an actual packing of instances into its nodes."""
    for pool_id, pool in instance.node_pools.items():
        here = [p for p in placements if p.pool == pool_id]
        if not here:
            continue
        total = pool.gpus_per_node * pool.node_count
        used = sum(p.gpus * p.count for p in here)
        if used > total:
            out.append(Violation("pool_gpu_capacity", f"pool '{pool_id}': instances use {used:g} GPUs but its "
                                                      f"{pool.node_count} nodes x {pool.gpus_per_node} GPUs hold "
                                                      f"{total}"))
        sizes: dict[int, int] = {}
        for p in here:  # a fractional count still needs a whole slot: round up for packing
            sizes[p.gpus] = sizes.get(p.gpus, 0) + math.ceil(p.count)
        left = first_fit_decreasing(sizes, pool.gpus_per_node, pool.node_count)
        if left:
            what = "; ".join(
                f"{n} instance(s) of {g} GPUs ("
                + ", ".join(sorted({f"{p.model} {p.role}" for p in here if p.gpus == g})) + ")"
                for g, n in sorted(left.items(), reverse=True))
            out.append(Violation("node_packing", f"pool '{pool_id}' ({pool.node_count} nodes x {pool.gpus_per_node} "
                                                 f"GPUs): first-fit decreasing, each instance inside one node, "
                                                 f"leaves {what} unplaced"))


def _gpu_type_of(instance: Instance, p: _Placement) -> str:
    """The GPUs a placement occupies: its pool's type when the pool exists (physical truth), else its own."""
    pool = instance.node_pools.get(p.pool)
    return pool.gpu_type if pool is not None else p.gpu_type


def _check_gpu_types(instance: Instance, placements: list[_Placement], plan: dict[str, Any],
                     out: list[Violation]) -> None:
    """Availability caps per GPU type, and the plan's ``gpus_used`` against its placements."""
    used: dict[str, float] = {}
    for p in placements:
        g = _gpu_type_of(instance, p)
        used[g] = used.get(g, 0.0) + p.gpus * p.count
    for g, gt in instance.gpu_types.items():
        if gt.max_gpus is not None and used.get(g, 0.0) > gt.max_gpus:
            out.append(Violation("gpu_type_availability", f"GPU type '{g}': the plan uses {used[g]:g} GPUs, "
                                                          f"above its cap max_gpus = {gt.max_gpus}"))
    stated = plan.get("gpus_used")
    if not isinstance(stated, dict):
        out.append(Violation("bad_plan_field", f"gpus_used: expected an object, got {stated!r}"))
        return
    for g in sorted(set(stated) | set(used), key=str):
        val = stated.get(g, 0)
        if not _is_number(val):
            out.append(Violation("bad_plan_field", f"gpus_used.{g}: expected a number, got {val!r}"))
        elif val != used.get(g, 0.0):
            out.append(Violation("summary_mismatch", f"gpus_used.{g} = {val:g}, but the placements use "
                                                     f"{used.get(g, 0.0):g} GPUs of type '{g}'"))


def _check_costs(instance: Instance, placements: list[_Placement], n_raw: int, plan: dict[str, Any], tol: float,
                 out: list[Violation]) -> None:
    """Each placement's cost at its pool's price, and the objective as their sum (when every cost is known)."""
    total = 0.0
    complete = len(placements) == n_raw
    for p in placements:
        if p.pool not in instance.node_pools:
            complete = False
            continue
        cost = p.count * p.gpus * pool_price_per_gpu_hour(instance, p.pool)
        total += cost
        if p.cost_usd_per_hour is not None and not _close(p.cost_usd_per_hour, cost, tol):
            out.append(Violation("cost_mismatch", f"{p.label}: cost_usd_per_hour {p.cost_usd_per_hour:.10g}, but "
                                                  f"{p.count:g} x {p.gpus} GPUs x "
                                                  f"{pool_price_per_gpu_hour(instance, p.pool):.6g} USD/GPU-hour "
                                                  f"= {cost:.10g}"))
    objective = plan.get("objective_usd_per_hour")
    if not _is_number(objective):
        out.append(Violation("bad_plan_field", f"objective_usd_per_hour: expected a finite number, got "
                                               f"{objective!r}"))
    elif complete and not _close(float(objective), total, tol):
        out.append(Violation("objective_mismatch", f"objective_usd_per_hour {objective:.10g}, but the placements "
                                                   f"cost {total:.10g} USD/hour at the instance's prices"))


def _check_models_summary(instance: Instance, placements: list[_Placement], plan: dict[str, Any], scale: float,
                          tol: float, out: list[Violation]) -> None:
    """``models.<id>``: demand, and per role the instances and GPUs, must match the placements."""
    models = plan.get("models")
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
        stated_demand = _summary_number(entry, "demand_rps", where, out)
        demand = demand_rps(instance, model, scale)
        if stated_demand is not None and not _close(stated_demand, demand, tol):
            out.append(Violation("summary_mismatch", f"{where}.demand_rps = {stated_demand:.10g}, recomputed "
                                                     f"{demand:.10g} req/s"))
        for role in ROLE_NAMES:
            served = [p for p in placements if p.model == model and p.role == role]
            role_entry = entry.get(role)
            for key, actual in (("instances", sum(p.count for p in served)),
                                ("gpus", sum(p.count * p.gpus for p in served))):
                stated = _summary_number(role_entry, key, f"{where}.{role}", out)
                if stated is not None and stated != actual:
                    out.append(Violation("summary_mismatch", f"{where}.{role}.{key} = {stated:g}, but its "
                                                             f"placements sum to {actual:g}"))
                if role_entry is None or not isinstance(role_entry, dict):
                    break  # reported once by _summary_number

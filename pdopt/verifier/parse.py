"""Reading a plan in its JSON form defensively: every unreadable field becomes a ``bad_plan_field`` violation.

The verifier reads ``Plan.to_dict()`` (or a plan file read back) rather than a :class:`pdopt.plan.Plan`,
because the JSON is what users keep and exchange, and because reading the planner's objects would tie the
verifier to the planner's code. Nothing here raises on a malformed plan: a missing key, a wrong type, a
non-finite number or a non-positive count is reported, and the checks run on what could be read (a placement
that cannot be attributed to a shape or counted is left out; one with a bad capacity or cost is kept, its
capacity and cost are then not compared). Reading conventions:

- A placement's ``variant`` defaults to ``default`` (also when the key is missing or null).
- ``scale_demand`` and ``scale`` multiply every demand; missing means 1 (older plans), ``scale`` may be null
  (no maximised scale); a non-positive or non-numeric value is reported and 1 is used.
- A fractional ``count`` is reported (``integrality``) but kept, rounded up wherever whole slots are needed.
- A pool's ``nodes_used`` counts only when it is a whole number >= 0; otherwise the checks that need it (the
  node-budget packing, node-billed costs, the objective) are skipped or use a lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from pdopt.instance import Instance
from pdopt.verifier.capacity import DEFAULT_VARIANT
from pdopt.verifier.registry import Violation

PLANNED_STATUSES: frozenset[str] = frozenset({"optimal", "feasible"})
"""Statuses whose plan holds placements; any other status has nothing to verify."""

ROLE_NAMES: tuple[str, str] = ("prefill", "decode")


MAX_MAGNITUDE = 1e15
"""Largest number a plan field may hold: beyond it no count, price or rate is plausible, and a float conversion
of a huge JSON integer would overflow."""


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number of plausible size (bool excluded: JSON true is not a count)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_MAGNITUDE  # compared exactly, never converted to float
    return math.isfinite(value) and abs(value) <= MAX_MAGNITUDE


def close(a: float, b: float, rel: float) -> bool:
    """Equal within a relative tolerance of the larger magnitude (so 0 only matches 0)."""
    return abs(a - b) <= rel * max(abs(a), abs(b))


@dataclass(frozen=True)
class Placement:
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
    variant: str = DEFAULT_VARIANT

    @property
    def label(self) -> str:
        """How messages name the placement: its index, shape and pool."""
        var = "" if self.variant == DEFAULT_VARIANT else f" variant {self.variant}"
        return f"{self.where} ({self.model} {self.role} {self.gpu_type} x{self.gpus}{var} in pool '{self.pool}')"

    @property
    def gpus_total(self) -> float:
        """GPUs of all its instances."""
        return self.gpus * self.count

    @property
    def shape(self) -> tuple[str, str, str, int, str]:
        """(model, role, gpu_type, gpus_per_instance, variant): the key of its profile."""
        return self.model, self.role, self.gpu_type, self.gpus, self.variant


def parse_placement(i: int, raw: object, out: list[Violation]) -> Placement | None:
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
    variant = raw.get("variant", DEFAULT_VARIANT)
    if variant is None:
        variant = DEFAULT_VARIANT
    if not isinstance(variant, str):
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.variant: expected a string, got {variant!r}"))
    gpus = raw.get("gpus_per_instance")
    if not isinstance(gpus, int) or isinstance(gpus, bool) or not 0 < gpus <= MAX_MAGNITUDE:
        ok = False
        shown = repr(gpus) if not isinstance(gpus, int) or abs(gpus) < 10**30 else "a huge integer"
        out.append(Violation("bad_plan_field", f"{where}.gpus_per_instance: expected a positive integer, "
                                               f"got {shown}"))
    count = raw.get("count")
    if not is_number(count):
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.count: expected a number, got {count!r}"))
    elif count <= 0:
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.count: {count!r} instances; a placement's count must be "
                                               "positive"))
    extras: dict[str, float | None] = {}
    for key in ("capacity_rps", "cost_usd_per_hour"):
        val = raw.get(key)
        if is_number(val):
            extras[key] = float(val)
        else:
            extras[key] = None
            out.append(Violation("bad_plan_field", f"{where}.{key}: expected a finite number, got {val!r}"))
    if not ok:
        return None
    assert isinstance(gpus, int) and is_number(count) and isinstance(variant, str)
    p = Placement(where, texts["model"], texts["role"], texts["gpu_type"], gpus, texts["pool"], float(count),
                  extras["capacity_rps"], extras["cost_usd_per_hour"], variant)
    if not float(count).is_integer():
        out.append(Violation("integrality", f"{p.label}: count {count!r} is not a whole number of instances"))
    return p


def summary_number(container: object, key: str, where: str, out: list[Violation]) -> float | None:
    """A finite number at ``container[key]``, or None after reporting why it is unusable."""
    if not isinstance(container, dict):
        out.append(Violation("bad_plan_field", f"{where}: expected an object, got {type(container).__name__}"))
        return None
    val = container.get(key)
    if not is_number(val):
        out.append(Violation("bad_plan_field", f"{where}.{key}: expected a finite number, got {val!r}"))
        return None
    return float(val)


def positive_factor(plan: dict[str, Any], key: str, nullable: bool, out: list[Violation]) -> float:
    """A positive demand multiplier at ``plan[key]``; 1 when absent (older plans), or ``null`` if ``nullable``."""
    if key not in plan:
        return 1.0
    val = plan[key]
    if val is None and nullable:
        return 1.0
    if not is_number(val) or val <= 0:
        zero = " (a plan must serve a positive multiple of the demand)" if is_number(val) and val == 0 else ""
        out.append(Violation("bad_plan_field", f"{key}: expected a positive number, got {val!r}{zero}; checking "
                                               f"demand with {key} = 1"))
        return 1.0
    return float(val)


@dataclass
class PoolUse:
    """What the verifier knows about one pool the plan uses: its placements and the plan's ``pools`` entry."""

    placements: list[Placement]
    entry: dict[str, Any] | None
    nodes_used: int | None
    """The plan's ``nodes_used`` when it reads as a whole number >= 0, else None."""

    @property
    def instance_gpus(self) -> float:
        """GPUs of the pool's instances (not of the nodes they occupy)."""
        return sum(p.gpus_total for p in self.placements)


def parse_pools(instance: Instance, plan: dict[str, Any], placements: list[Placement],
                out: list[Violation]) -> dict[str, PoolUse]:
    """Pools of the instance that the plan uses (placements or a ``pools`` entry), with the plan's node counts."""
    raw = plan.get("pools")
    if not isinstance(raw, dict):
        out.append(Violation("bad_plan_field", f"pools: expected an object of pool id -> use, got {raw!r}; "
                                               "costs that depend on nodes in use cannot be checked"))
        raw = {}
    for pid in sorted(set(raw) - set(instance.node_pools), key=str):
        out.append(Violation("unknown_pool", f"pools.{pid}: the instance has no node pool {pid!r} "
                                             f"(pools: {', '.join(sorted(instance.node_pools))})"))
    used: dict[str, PoolUse] = {}
    for pid in instance.node_pools:
        here = [p for p in placements if p.pool == pid]
        entry = raw.get(pid)
        if not here and pid not in raw:
            continue
        nodes: int | None = None
        if entry is None:
            if isinstance(plan.get("pools"), dict):
                out.append(Violation("bad_plan_field", f"pools.{pid}: missing, but {len(here)} placement(s) use "
                                                       "the pool"))
        elif not isinstance(entry, dict):
            out.append(Violation("bad_plan_field", f"pools.{pid}: expected an object, got {entry!r}"))
            entry = None
        else:
            val = entry.get("nodes_used")
            if is_number(val) and val >= 0 and float(val).is_integer():
                nodes = int(val)
            else:
                out.append(Violation("bad_plan_field", f"pools.{pid}.nodes_used: expected a whole number >= 0, "
                                                       f"got {val!r}"))
        used[pid] = PoolUse(here, entry, nodes)
    return used


@dataclass
class PlanContext:
    """One verification in progress: the instance, the plan as read, and what earlier checks derived.

    The checks run in a fixed order (:data:`pdopt.verifier.runner.STEPS`) and pass results on through this object:
    the shape checks fill ``capacity``, the pool reading fills ``pools``, the cost checks set ``total``.
    """

    instance: Instance
    plan: dict[str, Any]
    tol: float
    """Relative tolerance of every numeric comparison."""
    scale: float
    """The plan's demand multiplier: ``scale_demand`` x ``scale``."""
    placements: list[Placement]
    """The placements that could be read (attributed to a shape and counted)."""
    n_raw: int
    """How many placements the plan lists, readable or not."""
    out: list[Violation]
    capacity: dict[int, float] = field(default_factory=dict)
    """id(placement) -> the capacity per instance it is credited with (pooled for ``ggc`` prefill)."""
    pools: dict[str, PoolUse] = field(default_factory=dict)
    total: float | None = None
    """The plan's hourly cost: recomputed when every pool could be priced, else the plan's objective, else None."""


def read_plan(instance: Instance, plan: dict[str, Any], tol: float, out: list[Violation]) -> PlanContext | None:
    """The instance name, the demand multipliers and the placements; None when ``placements`` is not a list
    (without the fleet every other check would only echo that one)."""
    name = plan.get("instance")
    if name is not None and name != instance.name:
        out.append(Violation("instance_mismatch", f"the plan is for instance {name!r}, not '{instance.name}'"))

    # scale_demand is always written; scale is null unless the plan maximised it (older plans lack the key)
    scale = positive_factor(plan, "scale_demand", False, out) * positive_factor(plan, "scale", True, out)

    raw_placements = plan.get("placements")
    if not isinstance(raw_placements, list):
        out.append(Violation("bad_plan_field", f"placements: expected a list, got {raw_placements!r}"))
        return None
    placements: list[Placement] = []
    for i, raw in enumerate(raw_placements):
        parsed = parse_placement(i, raw, out)
        if parsed is not None:
            placements.append(parsed)
    return PlanContext(instance, plan, tol, scale, placements, len(raw_placements), out)


def read_pools(ctx: PlanContext) -> None:
    """The step that reads ``pools`` (after the shape and demand checks, as the verifier always has)."""
    ctx.pools = parse_pools(ctx.instance, ctx.plan, ctx.placements, ctx.out)

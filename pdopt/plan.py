"""The plan: the typed result of a solve (or of a baseline), its JSON form and back.

A plan crosses every later stage (verifier, simulator, predictions, baselines, ``compare``, reports) and is what
users keep and exchange, so it is one frozen type with a JSON form whose field names are a public contract:
:meth:`Plan.to_dict` writes it, :meth:`Plan.from_dict` reads it back (also plans written by pdopt 0.1.0, which
lack the fields added since). The verifier alone reads the JSON on its own, by design (it must not trust this
module).

The demand a plan serves is the instance's demand times two multipliers, read in one place
(:attr:`Plan.demand_multiplier`): ``scale_demand``, the what-if factor the plan was asked for, and ``scale``,
the largest multiplier a fixed inventory serves (``--maximize-scale``; null otherwise, meaning 1).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pdopt.errors import InputError, format_validation_error
from pdopt.perf.shapes import SkippedShape

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from pdopt.instance import Instance

FORMULATION = "F1"


class SolveStatus(enum.StrEnum):
    """Outcome of a solve, as the plan reports it."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    """An incumbent that is not proven optimal (time limit, or a stated relative gap larger than zero)."""
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"
    """The solver stopped (time limit) before finding any plan."""
    UNBOUNDED = "unbounded"
    ERROR = "error"


@dataclass(frozen=True)
class Placement:
    """``count`` instances of one shape for one model and role, placed in one node pool."""

    model: str
    role: str
    gpu_type: str
    gpus_per_instance: int
    pool: str
    count: int
    capacity_rps: float
    """Requests per second ONE instance serves at the SLO (a pooled group's average per instance)."""
    cost_usd_per_hour: float
    """Hourly cost of all ``count`` instances: their share (by GPUs) of the pool's cost."""
    variant: str = "default"
    estimated: str | None = None
    """The estimator (``name version``) when the shape's profile is estimated rather than measured; None when it
    is measured."""


@dataclass(frozen=True)
class PoolUse:
    """How much of a node pool the plan uses and what it costs."""

    gpu_type: str
    domain: str
    node_count: int
    nodes_used: int
    gpus_used: int
    """GPUs occupied by instances."""
    packing: str
    cost_usd_per_hour: float


@dataclass(frozen=True)
class RolePlan:
    """A model's plan for one role."""

    instances: int
    fractional_instances: float | None
    """Demand over per-instance capacity when a single shape serves the role (the paper's unrounded count)."""
    capacity_rps: float
    """Total capacity of the planned instances at the SLO."""
    utilisation: float | None
    """Demand over total capacity."""
    gpus: int


MODEL_MODES = ("aggregated", "disaggregated", "both")
"""How a plan serves a model: aggregated instances only, P/D pairs only, or both behind one router."""


@dataclass(frozen=True)
class ModelPlan:
    """A model's plan: the demand it serves, how (its serving mode and the split), and each role."""

    demand_rps: float
    """Requests/s served: the instance's demand x ``scale_demand`` x ``scale``."""
    prefill: RolePlan
    decode: RolePlan
    pd_ratio: float | None
    """Prefill instances over decode instances."""
    mode: str = "disaggregated"
    """``aggregated``, ``disaggregated`` or ``both`` (:data:`MODEL_MODES`): what the plan chose."""
    aggregated: RolePlan | None = None
    """The aggregated instances (None when the model has no aggregated shape to plan)."""
    aggregated_rps: float = 0.0
    """Requests/s the router sends to the aggregated instances; the rest, ``demand_rps - aggregated_rps``, goes to
    the P/D pairs."""

    @property
    def disaggregated_rps(self) -> float:
        """Requests/s served by the P/D pairs."""
        return max(0.0, self.demand_rps - self.aggregated_rps)


@dataclass(frozen=True)
class ModeComparison:
    """For a model that may be served both ways: the mode the plan chose and its cost there, against its cost in
    the plan with every such model aggregated only and in the one with every such model disaggregated only
    (None where that plan has no solution). Costs are the model's share of each plan's cost, USD/hour."""

    mode: str
    cost_usd_per_hour: float
    aggregated_rps: float
    demand_rps: float
    aggregated_only_usd_per_hour: float | None
    disaggregated_only_usd_per_hour: float | None
    aggregated_only_plan_usd_per_hour: float | None = None
    """The whole aggregated-only plan's cost (every model)."""
    disaggregated_only_plan_usd_per_hour: float | None = None
    """The whole disaggregated-only plan's cost (every model)."""
    plan_usd_per_hour: float | None = None
    """The whole chosen plan's cost."""

    def saving(self, other: float | None) -> float | None:
        """(other - chosen) / other: the share of the single-mode cost the chosen plan saves (None without it)."""
        if other is None:
            return None
        return (other - self.cost_usd_per_hour) / other if other > 0 else 0.0

    def line(self, model: str) -> str:
        """``model m: disaggregate: yes|no|partly, saving X% ...``: the answer, one line, with the single-mode
        plans' whole costs (a model's share of a plan's cost may rise where the whole plan's falls, when models
        share pools)."""
        answer = {"disaggregated": "yes", "aggregated": "no", "both": "partly"}[self.mode]
        share = self.aggregated_rps / self.demand_rps if self.demand_rps > 0 else 0.0
        how = f" ({share:.0%} of requests to aggregated instances)" if self.mode == "both" else ""
        parts = []
        for label, other in (("aggregated only", self.aggregated_only_usd_per_hour),
                             ("disaggregated only", self.disaggregated_only_usd_per_hour)):
            s = self.saving(other)
            parts.append(f"{label}: no plan" if s is None else
                         f"saving {s:.1%} against {label} ({other:.2f} -> {self.cost_usd_per_hour:.2f} USD/h)")
        totals = [f"{label} {cost:.2f}" for label, cost in (
            ("aggregated only", self.aggregated_only_plan_usd_per_hour),
            ("disaggregated only", self.disaggregated_only_plan_usd_per_hour)) if cost is not None]
        this = f"this plan {self.plan_usd_per_hour:.2f}, " if self.plan_usd_per_hour is not None else ""
        whole = f" (whole plans: {this}{', '.join(totals)} USD/h)" if totals else ""
        return f"model {model}: disaggregate: {answer}{how}; " + "; ".join(parts) + whole


@dataclass(frozen=True)
class SolverReport:
    """Which solver ran, how it ended, how long, and how far from proven optimal.

    The one report of a solve: the solver layer returns it with the solution values, and the plan keeps it.
    """

    name: str
    runtime_s: float
    gap: float | None
    """Relative gap |objective - bound| / max(|objective|, 1 USD/h) where the solver gives a bound, else None."""
    bound: float | None
    message: str
    root_lp_bound: float | None = None
    """Objective of the LP relaxation at the root (CBC reports it; None otherwise)."""
    heuristic_usd_per_hour: float | None = None
    """Cost of the start given to the solver, the cheaper of the greedy and the LP-rounding start (None when
    neither found one)."""
    status: SolveStatus | None = None
    """The solver's normalised status (None in plans written before it was recorded)."""
    objective: float | None = None
    """The solver's objective value: the cost, plus the penalties of a shortfall or elastic solve (None without a
    solution)."""
    interrupted: bool = False
    """The solve was stopped by Ctrl-C or SIGTERM: the plan, if any, is the best found until then."""
    heuristic: str | None = None
    """Which start ``heuristic_usd_per_hour`` is: ``greedy`` or ``lp_rounding`` (:mod:`pdopt.optimize.lp_rounding`);
    None in plans written before it was recorded."""
    tie_break: str | None = None
    """Among the plans of the proven cost, the fewest GPUs and then nodes (:mod:`pdopt.optimize.lexicographic`):
    ``proven``, ``not proven`` (stopped by the time limit or a signal; the plan is the best found), or why it did
    not run; None when the cost was not proven (no second stage) or in plans written before it was recorded."""
    tie_break_s: float | None = None
    """Seconds of the second stage (included in ``runtime_s``); None when it did not run."""


@dataclass(frozen=True)
class LinkLoad:
    """Planned KV traffic over one network link."""

    a: str
    b: str
    bandwidth_gbps: float
    kv_traffic_gbps: float
    utilisation: float


@dataclass(frozen=True)
class KvFlow:
    """Requests/s of a model prefilled in one domain and decoded in another (or the same) domain."""

    model: str
    from_domain: str
    to_domain: str
    rps: float


@dataclass(frozen=True)
class Survival:
    """What a model keeps when one domain is lost: capacity per role (single-instance capacities, as the
    ``domain_loss_cover`` rows count them) and the share of its demand the weaker role still serves."""

    prefill_rps: float
    decode_rps: float
    served_fraction: float
    aggregated_rps: float = 0.0
    """Aggregated capacity left (0 for a model with none)."""


@dataclass(frozen=True)
class CostBreakdown:
    """Hourly cost split by model, role, GPU type, and model then role (USD/hour)."""

    by_model: dict[str, float] = field(default_factory=dict)
    by_role: dict[str, float] = field(default_factory=dict)
    by_gpu_type: dict[str, float] = field(default_factory=dict)
    by_model_role: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, placements: tuple[Placement, ...]) -> CostBreakdown:
        """Sum the placements' costs along each axis."""
        out = cls()
        for p in placements:
            for table, key in ((out.by_model, p.model), (out.by_role, p.role), (out.by_gpu_type, p.gpu_type)):
                table[key] = table.get(key, 0.0) + p.cost_usd_per_hour
            per = out.by_model_role.setdefault(p.model, {})
            per[p.role] = per.get(p.role, 0.0) + p.cost_usd_per_hour
        return out

    def __bool__(self) -> bool:
        return bool(self.by_model)


@dataclass(frozen=True)
class Plan:
    """A solved (or failed) planning problem; ``to_dict`` gives the public JSON form, ``from_dict`` reads it."""

    instance: str
    status: SolveStatus
    placements: tuple[Placement, ...] = ()
    objective_usd_per_hour: float | None = None
    scale_demand: float = 1.0
    """The what-if demand multiplier the plan was asked for."""
    scale: float | None = None
    """With ``maximize_scale``: the largest uniform demand multiplier the inventory serves at the SLOs."""
    models: dict[str, ModelPlan] = field(default_factory=dict)
    gpus_used: dict[str, int] = field(default_factory=dict)
    skipped_shapes: tuple[SkippedShape, ...] = ()
    solver: SolverReport = field(default_factory=lambda: SolverReport("unknown", 0.0, None, None, ""))
    reason: str | None = None
    """Why there is no plan (infeasible, no solution), in the instance's terms."""
    formulation: str = FORMULATION
    shortfall_rps: dict[str, dict[str, float]] = field(default_factory=dict)
    """For an infeasible instance: model -> role -> demand the inventory leaves uncovered (one such split)."""
    pools: dict[str, PoolUse] = field(default_factory=dict)
    cost_breakdown: CostBreakdown = field(default_factory=CostBreakdown)
    resource_needs: tuple[str, ...] = ()
    """For an infeasible instance: each resource that runs out and by how much (elastic re-solve)."""
    links: tuple[LinkLoad, ...] = ()
    """With a network: per link, the planned KV traffic (Gbit/s) and its utilisation."""
    kv_flows: tuple[KvFlow, ...] = ()
    """With a network: requests/s per (model, prefill domain, decode domain)."""
    failure_scenarios: dict[str, dict[str, Survival]] = field(default_factory=dict)
    """Per lost domain, per model: prefill and decode capacity left (req/s) and the share of demand it serves."""
    mode_comparison: dict[str, ModeComparison] = field(default_factory=dict)
    """Per model that may be served both ways (with ``--explain-mode``): the chosen mode's cost against each
    single-mode plan's."""

    @property
    def has_plan(self) -> bool:
        """True when the plan holds a solution (optimal or feasible)."""
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)

    @property
    def demand_multiplier(self) -> float:
        """The factor on the instance's demand that the plan serves: ``scale_demand`` x ``scale`` (1 when null)."""
        return self.scale_demand * (1.0 if self.scale is None else self.scale)

    def served_demand_rps(self, instance: Instance) -> dict[str, float]:
        """Requests/s per model the plan is sized for: the instance's demand x :attr:`demand_multiplier`.

        The one rule the simulator, its predictions, the baselines and the reports use; the verifier reads the
        same two multipliers from the JSON on its own.
        """
        return {m: w.demand_rps() * self.demand_multiplier for m, w in instance.workloads.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (field names are a public contract; fields are only ever added)."""
        return {
            "instance": self.instance,
            "formulation": self.formulation,
            "status": self.status.value,
            "objective_usd_per_hour": self.objective_usd_per_hour,
            "scale_demand": self.scale_demand,
            "scale": self.scale,
            "reason": self.reason,
            "placements": [asdict(p) for p in self.placements],
            "models": {m: {**asdict(mp), "served_demand_rps": mp.demand_rps,
                           "disaggregated_rps": mp.disaggregated_rps} for m, mp in self.models.items()},
            "pools": {p: asdict(u) for p, u in self.pools.items()},
            "gpus_used": dict(self.gpus_used),
            "cost_breakdown": asdict(self.cost_breakdown) if self.cost_breakdown else {},
            "shortfall_rps": self.shortfall_rps,
            "resource_needs": list(self.resource_needs),
            "links": [asdict(k) for k in self.links],
            "kv_flows": [asdict(f) for f in self.kv_flows],
            "failure_scenarios": {d: {m: asdict(s) for m, s in per.items()}
                                  for d, per in self.failure_scenarios.items()},
            "skipped_shapes": [asdict(s) for s in self.skipped_shapes],
            "mode_comparison": {m: asdict(c) for m, c in self.mode_comparison.items()},
            "solver": {**asdict(self.solver),
                       "status": None if self.solver.status is None else self.solver.status.value},
        }

    @classmethod
    def from_dict(cls, doc: object, source: str = "plan") -> Plan:
        """Read a plan's JSON form (as written by :meth:`to_dict`, or by pdopt 0.1.0) into a :class:`Plan`.

        Untrusted input: a wrong type or a missing required field (``instance``, ``status``) raises
        :class:`~pdopt.errors.InputError` naming each field at fault; keys this version does not know are
        ignored (a newer pdopt may add fields). Numbers must be finite.
        """
        from pydantic import ValidationError

        if not isinstance(doc, dict):
            raise InputError(f"{source}: a plan must be a JSON object, got {type(doc).__name__}")
        data = dict(doc)
        if data.get("cost_breakdown") == {}:
            data.pop("cost_breakdown")
        try:
            plan = _adapter().validate_python(data)
        except ValidationError as err:
            lines = format_validation_error(err)
            raise InputError(f"{source}: {len(lines)} problem(s)\n" + "\n".join(f"  {ln}" for ln in lines)) from None
        bad = [p for p in _numbers(data) if not math.isfinite(p[1])]
        if bad:
            raise InputError(f"{source}: " + "; ".join(f"{path}: {v!r} is not a finite number" for path, v in bad))
        problems = _out_of_range(data)
        if problems:
            raise InputError(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))
        return plan

    def to_frame(self, table: str = "placements") -> Any:
        """A pandas DataFrame of the plan: ``placements`` (one row per placement), ``pools`` or ``cost`` (by model,
        role and GPU type); columns in :mod:`pdopt.tables`. pandas is an optional extra, imported only here."""
        from pdopt import tables

        rows = {"placements": tables.placement_rows, "pools": tables.pool_rows, "cost": tables.cost_rows}
        if table not in rows:
            raise ValueError(f"table: '{table}' is not one of {', '.join(rows)}")
        return tables.frame(rows[table](self))

    def replace(self, **changes: Any) -> Plan:
        """A copy with fields changed (the plan is frozen)."""
        return dataclasses.replace(self, **changes)


PLAN_RANGES: dict[str, tuple[float, float, bool]] = {
    "count": (1, 1e6, True), "gpus_per_instance": (1, 1e5, True), "capacity_rps": (1e-12, 1e7, False),
    "cost_usd_per_hour": (0.0, 1e12, False), "scale_demand": (1e-6, 1e6, False), "scale": (1e-12, 1e6, False),
}
"""Fields a plan's reader checks before any stage uses them: (smallest, largest, must be a whole number). A
simulator fed 10^9 instances or a zero multiplier would run out of memory or divide by zero."""


def _out_of_range(data: dict[str, Any]) -> list[str]:
    """The plan's counts, sizes, capacities, costs and multipliers that are not numbers in their range (a
    string or a boolean is not a number here, whatever pydantic coerced)."""
    found: list[tuple[str, object, str]] = [(k, data.get(k), k) for k in ("scale_demand", "scale") if k in data]
    for i, raw in enumerate(data.get("placements") or []):
        if isinstance(raw, dict):
            found += [(k, raw.get(k), f"placements[{i}].{k}") for k in ("count", "gpus_per_instance",
                                                                          "capacity_rps", "cost_usd_per_hour")]
    out = []
    for key, value, where in found:
        if value is None and key == "scale":
            continue
        lo, hi, whole = PLAN_RANGES[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (whole and not isinstance(value, int)) or not lo <= value <= hi:  # type: ignore[operator]
            kind = "a whole number" if whole else "a number"
            shown = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
            out.append(f"{where}: expected {kind} from {lo:g} to {hi:g}, got {shown}")
    return out


def _numbers(doc: object, path: str = "") -> list[tuple[str, float]]:
    """Every float in a JSON document with its path (to refuse NaN and infinities, which JSON cannot carry)."""
    out: list[tuple[str, float]] = []
    if isinstance(doc, float):
        out.append((path or "(top level)", doc))
    elif isinstance(doc, dict):
        for k, v in doc.items():
            out += _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _numbers(v, f"{path}[{i}]")
    return out


@functools.cache
def _adapter() -> TypeAdapter[Plan]:
    """The pydantic validator of :class:`Plan` (built on first use: pydantic's schema build is not free)."""
    from pydantic import TypeAdapter

    return TypeAdapter(Plan)

"""Plans: the frozen result of a solve, its JSON form, and the end-to-end ``solve`` entry point."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pdopt.capacity import CapacityTable, ShapeCapacity, SkippedShape, capacity_table
from pdopt.instance import ROLES, Instance
from pdopt.milp import BuiltProblem, build_problem, solution_counts
from pdopt.model_data import ModelData, build_model_data, unservable_roles
from pdopt.solver import SolveResult, SolverOptions, SolveStatus, run_solver

FORMULATION = "F1"


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
    """Requests per second ONE instance serves at the SLO."""
    cost_usd_per_hour: float
    """Hourly cost of all ``count`` instances."""


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


@dataclass(frozen=True)
class ModelPlan:
    """A model's plan: demand and both roles."""

    demand_rps: float
    prefill: RolePlan
    decode: RolePlan
    pd_ratio: float | None
    """Prefill instances over decode instances."""


@dataclass(frozen=True)
class SolverReport:
    """Which solver ran, how long, and how far from proven optimal."""

    name: str
    runtime_s: float
    gap: float | None
    bound: float | None
    message: str


@dataclass(frozen=True)
class Plan:
    """A solved (or failed) planning problem; ``to_dict`` gives the public JSON form."""

    instance: str
    status: SolveStatus
    objective_usd_per_hour: float | None
    scale_demand: float
    placements: tuple[Placement, ...]
    models: dict[str, ModelPlan]
    gpus_used: dict[str, int]
    skipped_shapes: tuple[SkippedShape, ...]
    solver: SolverReport
    reason: str | None = None
    """Why there is no plan (infeasible, no solution), in the instance's terms."""
    formulation: str = FORMULATION
    shortfall_rps: dict[str, dict[str, float]] = field(default_factory=dict)
    """For an infeasible instance: model -> role -> demand that could not be covered (elastic re-solve)."""

    @property
    def has_plan(self) -> bool:
        """True when the plan holds a solution (optimal or feasible)."""
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (field names are a public contract)."""
        return {
            "instance": self.instance,
            "formulation": self.formulation,
            "status": self.status.value,
            "objective_usd_per_hour": self.objective_usd_per_hour,
            "scale_demand": self.scale_demand,
            "reason": self.reason,
            "placements": [asdict(p) for p in self.placements],
            "models": {m: asdict(mp) for m, mp in self.models.items()},
            "gpus_used": dict(self.gpus_used),
            "shortfall_rps": self.shortfall_rps,
            "skipped_shapes": [asdict(s) for s in self.skipped_shapes],
            "solver": asdict(self.solver),
        }


def _role_plan(demand: float, placements: list[Placement]) -> RolePlan:
    total_cap = sum(p.capacity_rps * p.count for p in placements)
    shapes = {(p.gpu_type, p.gpus_per_instance) for p in placements}
    fractional = demand / placements[0].capacity_rps if len(shapes) == 1 else None
    return RolePlan(
        instances=sum(p.count for p in placements),
        fractional_instances=fractional,
        capacity_rps=total_cap,
        utilisation=demand / total_cap if total_cap > 0 else None,
        gpus=sum(p.gpus_per_instance * p.count for p in placements),
    )


def _placements(counts: dict[tuple[str, str], int], data: ModelData) -> tuple[Placement, ...]:
    out = []
    for (sid, pid), n in sorted(counts.items()):
        s = data.shapes[sid]
        out.append(Placement(s.model, s.role, s.gpu_type, s.gpus_per_instance, pid, n, s.capacity_rps,
                             n * data.cost_usd_per_hour(sid, pid)))
    return tuple(out)


def _model_plans(placements: tuple[Placement, ...], data: ModelData, instance: Instance) -> dict[str, ModelPlan]:
    plans = {}
    for m in instance.workloads:
        roles = {r: _role_plan(data.demand_rps[(m, r)], [p for p in placements if p.model == m and p.role == r])
                 for r in ROLES}
        n_d = roles["decode"].instances
        plans[m] = ModelPlan(data.demand_rps[(m, "prefill")], roles["prefill"], roles["decode"],
                             roles["prefill"].instances / n_d if n_d else None)
    return plans


def _no_shape_reason(instance: Instance, table: CapacityTable, data: ModelData) -> str | None:
    lines = []
    for m, r in unservable_roles(data):
        notes = [f"{s.gpu_type} x{s.gpus_per_instance}: {s.reason}" for s in table.skipped
                 if s.model == m and s.role == r]
        usable = table.for_role(m, r)
        if usable and not notes:
            notes = ["no node pool with nodes can host its usable shapes"]
        lines.append(f"model '{m}', role {r}: no usable shape (" + "; ".join(notes) + ")")
    return "\n".join(lines) or None


def _shortfall(data: ModelData, options: SolverOptions) -> dict[str, dict[str, float]]:
    """Elastic re-solve: demand_cover gets a penalised slack; the slack left says what cannot be served."""
    penalty = 1e4 * max([data.cost_usd_per_hour(s, p) / data.shapes[s].capacity_rps for s, p in data.arcs] + [1.0])
    built = build_problem(data, name="pdopt_f1_elastic", shortfall_penalty=penalty)
    run_solver(built.problem, options)
    out: dict[str, dict[str, float]] = {}
    for (m, r), var in built.shortfall.items():
        val = var.value() or 0.0
        if val > 1e-6:
            out.setdefault(m, {})[r] = val
    return out


def _shortfall_reason(short: dict[str, dict[str, float]], data: ModelData, instance: Instance) -> str:
    """Explain infeasibility from the elastic re-solve.

    The split of the shortfall between roles is one optimum of the elastic problem, not the only one: the
    message says so, and names the GPUs each short role could have used.
    """
    lines = ["the inventory cannot cover every demand; a plan that covers as much as it can "
             "(elastic re-solve; other splits of the shortfall may exist) leaves uncovered:"]
    for m, roles in short.items():
        for r, val in roles.items():
            types = sorted({data.shapes[s].gpu_type for s, _ in data.arcs
                            if data.shapes[s].model == m and data.shapes[s].role == r})
            have = ", ".join(
                f"{g}: {sum(p.gpus for p in data.pools.values() if p.gpu_type == g)} GPUs in pools"
                + (f", cap {data.gpu_caps[g]}" if g in data.gpu_caps else "") for g in types)
            lines.append(f"model '{m}', role {r}: {val:.4g} of {data.demand_rps[(m, r)]:.4g} req/s cannot be "
                         f"served: the GPUs its shapes can use run out ({have})")
    return "\n".join(lines) if len(lines) > 1 else "the solver reports the instance infeasible"


def solve(
    instance: Instance,
    options: SolverOptions | None = None,
    scale_demand: float = 1.0,
) -> Plan:
    """Plan the cheapest P/D fleet for ``instance``: capacities, F1 model data, build, solve, extract."""
    if not scale_demand > 0:
        raise ValueError(f"scale_demand must be positive, got {scale_demand}")
    opts = options or SolverOptions()
    table = capacity_table(instance)
    data = build_model_data(instance, table, scale_demand)
    no_shape = _no_shape_reason(instance, table, data)
    if no_shape is not None:
        return _failed(instance, table, data, SolveStatus.INFEASIBLE, opts.name, no_shape, scale_demand)
    built = build_problem(data)
    result = run_solver(built.problem, opts)
    return extract(instance, table, data, built, result, opts, scale_demand)


def _failed(instance: Instance, table: CapacityTable, data: ModelData, status: SolveStatus, solver: str,
            reason: str, scale: float, runtime: float = 0.0, message: str = "",
            shortfall: dict[str, dict[str, float]] | None = None) -> Plan:
    return Plan(instance.name, status, None, scale, (), {}, {}, table.skipped,
                SolverReport(solver, runtime, None, None, message), reason, shortfall_rps=shortfall or {})


def extract(instance: Instance, table: CapacityTable, data: ModelData, built: BuiltProblem, result: SolveResult,
            options: SolverOptions, scale_demand: float) -> Plan:
    """Read a solved problem back into a :class:`Plan` (or a failed plan with its reason)."""
    if result.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        short: dict[str, dict[str, float]] = {}
        if result.status is SolveStatus.INFEASIBLE:
            short = _shortfall(data, options)
            reason = _shortfall_reason(short, data, instance)
        elif result.status is SolveStatus.NO_SOLUTION:
            reason = f"the solver found no plan within the time limit ({options.time_limit_s} s)"
        else:
            reason = f"the solver ended with status {result.message}"
        return _failed(instance, table, data, result.status, result.solver_name, reason, scale_demand,
                       result.runtime_s, result.message, short)
    placements = _placements(solution_counts(built), data)
    gpus: dict[str, int] = {}
    for p in placements:
        gpus[p.gpu_type] = gpus.get(p.gpu_type, 0) + p.gpus_per_instance * p.count
    return Plan(
        instance=instance.name,
        status=result.status,
        objective_usd_per_hour=sum(p.cost_usd_per_hour for p in placements),
        scale_demand=scale_demand,
        placements=placements,
        models=_model_plans(placements, data, instance),
        gpus_used=gpus,
        skipped_shapes=table.skipped,
        solver=SolverReport(result.solver_name, result.runtime_s, result.gap, result.bound, result.message),
    )


def shape_capacities(instance: Instance) -> dict[str, ShapeCapacity]:
    """Capacity of every usable shape, keyed by shape id (a convenience for library users)."""
    return {s.shape_id: s for s in capacity_table(instance).shapes}

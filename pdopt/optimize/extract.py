"""Extraction: solution values in, :class:`~pdopt.plan.Plan` out. Pure: it never builds or solves anything.

A solution without values (infeasible, time limit, error) becomes a failed plan with a short reason; why an
infeasible instance is infeasible is the diagnosis step's job (:mod:`pdopt.optimize.diagnose`), which the
pipeline calls and attaches.
"""

from __future__ import annotations

from collections.abc import Mapping

from pdopt.optimize import fleet
from pdopt.optimize.model_data import Arc, ModelData
from pdopt.optimize.pool_classes import PoolClasses, split_counts
from pdopt.optimize.problem import VariableIndex
from pdopt.optimize.solver import Solution
from pdopt.perf.capacity import SkippedShape
from pdopt.plan import CostBreakdown, KvFlow, LinkLoad, Plan, SolverReport, SolveStatus


def counts_of(index: VariableIndex, solution: Solution) -> dict[Arc, int]:
    """Nonzero integer instance counts (rounded from the solver's floats)."""
    out: dict[Arc, int] = {}
    for key, name in index.x.items():
        n = round(solution.value(name))
        if n > 0:
            out[key] = n
    return out


def nodes_of(index: VariableIndex, solution: Solution) -> dict[str, int]:
    """Nodes in use per pool, as the solver set them."""
    return {p: round(solution.value(name)) for p, name in index.nodes.items()}


def failed_plan(instance: str, skipped: tuple[SkippedShape, ...], status: SolveStatus, reason: str,
                scale_demand: float, report: SolverReport | None = None) -> Plan:
    """A plan without placements: the status, why, and the solver's report."""
    return Plan(instance=instance, status=status, scale_demand=scale_demand, skipped_shapes=skipped, reason=reason,
                solver=report or SolverReport("none", 0.0, None, None, "", status=status))


def extract(instance: str, skipped: tuple[SkippedShape, ...], data: ModelData, index: VariableIndex,
            solution: Solution, scale_demand: float, scale: float | None = None,
            time_limit_s: float | None = None, split: tuple[ModelData, PoolClasses] | None = None) -> Plan:
    """Read a solution into a :class:`Plan` (or a failed plan with a short reason). With ``split`` (the unmerged
    model data and the pool classes the problem was built with), each class's instances and nodes are split back
    into its pools (:func:`pdopt.optimize.pool_classes.split_counts`) and the plan is read on the unmerged data."""
    report = solution.report
    if not solution.has_solution:
        if report.interrupted:
            reason = "interrupted before a first plan"
        elif solution.status is SolveStatus.INFEASIBLE:
            reason = "the solver reports the instance infeasible"
        elif solution.status is SolveStatus.NO_SOLUTION:
            reason = f"the solver found no plan within the time limit ({time_limit_s} s)"
        else:
            reason = f"the solver ended with status {report.message}"
        return failed_plan(instance, skipped, solution.status, reason, scale_demand, report)
    counts = counts_of(index, solution)
    nodes = {p: min(n, fleet.min_nodes(data, p, counts)) for p, n in nodes_of(index, solution).items()}
    if split is not None:
        data, classes = split
        counts, nodes = split_counts(data, classes, counts, nodes)
    flows = {key: solution.value(name) for key, name in sorted(index.kv_flow.items())}
    solved = {m: solution.value(name) for m, name in index.mode_share.items()}
    return assemble_plan(instance, data, counts, nodes, flows, solved, status=solution.status, report=report,
                         scale_demand=scale_demand, scale=scale, skipped=skipped)


def assemble_plan(instance: str, data: ModelData, counts: Mapping[Arc, int], nodes: Mapping[str, int],
                  flows: Mapping[tuple[str, str, str], float] | None, shares: Mapping[str, float] | None = None, *,
                  status: SolveStatus = SolveStatus.FEASIBLE, report: SolverReport | None = None,
                  scale_demand: float = 1.0, scale: float | None = None,
                  skipped: tuple[SkippedShape, ...] = ()) -> Plan:
    """The plan of given instance counts and nodes per pool, priced by the planner's price book: placements,
    per-model plans (the aggregated shares as solved, or the balanced split), pools, costs and, with ``flows``
    (req/s per model, prefill domain, decode domain), the KV flows, link loads and what each domain's loss leaves.
    ``flows`` None: a plan without that network view (the baselines'). One assembly for the solver's plans, the
    LP-rounding start and the baselines."""
    placed = fleet.placements(data, counts, nodes)
    served = scale or 1.0
    links = []
    kv_flows: tuple[KvFlow, ...] = ()
    scenarios = {}
    if flows is not None:
        kv_flows = tuple(KvFlow(m, d, e, rps) for (m, d, e), rps in sorted(flows.items()) if rps > 1e-9)
        for link, bandwidth in sorted(data.links.items()):
            load = sum(data.kv_gbit_per_request[m] * data.routes.get((d, e), {}).get(link, 0.0) * rps
                       for (m, d, e), rps in flows.items())
            links.append(LinkLoad(link[0], link[1], bandwidth, load, load / bandwidth))
        if data.routes or data.domain_loss_fraction is not None:
            scenarios = fleet.failure_scenarios(data, counts, served)
    plan = Plan(
        instance=instance,
        status=status,
        objective_usd_per_hour=sum(fleet.pool_costs(data, counts, nodes).values()),
        scale_demand=scale_demand,
        scale=scale,
        placements=placed,
        models=fleet.model_plans(data, placed, served, fleet.aggregated_shares(data, counts, served, shares)),
        gpus_used=fleet.gpus_by_type(placed),
        skipped_shapes=skipped,
        pools=fleet.pool_use(data, counts, nodes),
        cost_breakdown=CostBreakdown.of(placed),
        links=tuple(links),
        kv_flows=kv_flows,
        failure_scenarios=scenarios,
    )
    return plan if report is None else plan.replace(solver=report)

"""The planning pipeline: capacities, model data, build, solve, extract, and diagnosis when infeasible.

Each stage does one thing and hands a typed value to the next (DESIGN's data flow):
``Instance -> CapacityTable -> ModelData -> BuiltProblem -> Solution -> Plan``. With ``maximize_scale`` the
inventory is fixed and the pipeline runs two solves: first the largest uniform demand multiplier the inventory
serves, then the cheapest plan at that multiplier (a lexicographic objective, solved in its two stages).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pulp

from pdopt.instance import Instance
from pdopt.optimize.build import BuiltProblem, build_problem, set_start
from pdopt.optimize.diagnose import diagnose
from pdopt.optimize.extract import counts_of, extract, failed_plan
from pdopt.optimize.heuristics import achieved_scale, greedy_start, start_cost_usd_per_hour
from pdopt.optimize.lexicographic import objective_step, tie_break
from pdopt.optimize.lp_rounding import lp_rounding_start
from pdopt.optimize.model_data import ModelData, build_model_data, unservable_roles
from pdopt.optimize.options import MIN_SOLVE_S, with_deadline
from pdopt.optimize.pool_classes import PoolClasses, merged_instance, pool_classes
from pdopt.optimize.solver import Solution, SolverOptions, run_solver
from pdopt.perf.capacity import CapacityTable, capacity_table
from pdopt.plan import Plan, SolveStatus


def no_shape_reason(table: CapacityTable, data: ModelData) -> str | None:
    """Why some (model, role) with demand has no usable shape that a pool can host; None when all have one."""
    lines = []
    for m, r in unservable_roles(data):
        notes = [f"{s.gpu_type} x{s.gpus_per_instance}: {s.reason}" for s in table.skipped
                 if s.model == m and s.role == r]
        if table.for_role(m, r) and not notes:
            notes = ["no node pool can host its usable shapes"]
        lines.append(f"model '{m}', role {r}: no usable shape (" + "; ".join(notes or ["no profile"]) + ")")
    return "\n".join(lines) or None


def _with_diagnosis(plan: Plan, data: ModelData, options: SolverOptions, prefix: str = "") -> Plan:
    found = diagnose(data, options)
    return dataclasses.replace(plan, reason=prefix + found.reason(data), shortfall_rps=found.shortfall_rps,
                               resource_needs=found.resource_needs)


BUDGET_TOLERANCE = 1e-9
"""Relative amount by which a plan's cost may exceed the budget (floating point, not a solver's tolerance)."""


def over_budget(plan: Plan, data: ModelData) -> bool:
    """True when a plan costs more than the budget beyond :data:`BUDGET_TOLERANCE`."""
    budget = data.budget_usd_per_hour
    cost = plan.objective_usd_per_hour
    return budget is not None and cost is not None and cost > budget + BUDGET_TOLERANCE * max(abs(budget), 1.0)


def without_preprocessing(problem: pulp.LpProblem, opts: SolverOptions, why: str,
                          step: float | None = None) -> Solution:
    """Solve again with CBC's preprocessing off (its tolerances can cut off, or let in, a plan sitting exactly on
    a limit); the report's message says why, unless the solve was interrupted."""
    again = run_solver(problem, dataclasses.replace(opts, cbc_preprocess=False), objective_step=step)
    if again.report.interrupted:
        return again
    note = f"{again.report.message}; CBC's preprocessing had {why}, solved again without it"
    return dataclasses.replace(again, report=dataclasses.replace(again.report, message=note))


def confirm_infeasible(problem: pulp.LpProblem, opts: SolverOptions, first: Solution,
                       step: float | None = None) -> Solution:
    """CBC's ``infeasible``, confirmed by a second solve without its preprocessing; a plan that solve finds is kept
    (with a message saying so), otherwise the first verdict stands."""
    again = without_preprocessing(problem, opts, "reported infeasible", step)
    return again if again.report.interrupted or again.has_solution else first


EXPLAIN_MODE_BELOW_VARIABLES = 100
"""``explain_mode=None`` compares the serving modes when the problem has fewer variables than this."""


def solve(
    instance: Instance,
    options: SolverOptions | None = None,
    scale_demand: float = 1.0,
    maximize_scale: bool = False,
    explain_mode: bool | None = None,
) -> Plan:
    """Plan the cheapest fleet for ``instance``: capacities, model data, build, solve, extract.

    With ``maximize_scale`` the inventory is fixed: first the largest uniform demand multiplier it serves is
    found, then the cheapest plan at that multiplier. With ``explain_mode`` (None: when the problem has fewer
    than :data:`EXPLAIN_MODE_BELOW_VARIABLES` variables), the models that may be served both ways are compared
    with the plans serving them aggregated only and disaggregated only (:mod:`pdopt.optimize.modes`), solved
    under the same options and demand multiplier (two more solves).
    """
    options = with_deadline(options or SolverOptions())  # one deadline for every solve of this call
    plan, variables = _solve(instance, options, scale_demand, maximize_scale)
    if explain_mode is None:
        explain_mode = variables is not None and variables < EXPLAIN_MODE_BELOW_VARIABLES
    if not explain_mode or not plan.has_plan or plan.solver.interrupted:
        return plan
    from pdopt.optimize.modes import compare_modes

    def single(inst: Instance) -> Plan:
        return _solve(inst, options, scale_demand, maximize_scale)[0]

    return plan.replace(mode_comparison=compare_modes(instance, plan, single))


Restriction = Callable[[BuiltProblem, ModelData], None]
"""Rows added to the cost problem after it is built (:mod:`pdopt.optimize.alternatives`: plans other than those
found). A restricted solve keeps dominated shapes (a plan that uses one differs from the others) and gives the
solver no start (a start may be one of the plans the rows exclude)."""


def _solve(instance: Instance, options: SolverOptions | None, scale_demand: float,
           maximize_scale: bool, restrict: Restriction | None = None) -> tuple[Plan, int | None]:
    """:func:`solve` without the mode comparison; also the number of variables of the cost problem (None when
    none was built). ``restrict`` adds rows to the cost problem (:data:`Restriction`)."""
    if not scale_demand > 0:
        raise ValueError(f"scale_demand must be positive, got {scale_demand}")
    opts = with_deadline(options or SolverOptions())
    table = capacity_table(instance)
    classes = pool_classes(instance, table) if opts.pool_classes else PoolClasses()
    prune = restrict is None
    full = build_model_data(instance, table, scale_demand, prune)
    data = build_model_data(merged_instance(instance, classes), table, scale_demand, prune) if classes else full
    split = (full, classes) if classes else None
    skipped = table.skipped
    reason = no_shape_reason(table, data)
    if reason is not None:
        return failed_plan(instance.name, skipped, SolveStatus.INFEASIBLE, reason, scale_demand), None
    scale: float | None = None
    if maximize_scale:
        top = build_problem(data, name="pdopt_f1_max_scale", mode="max_scale")
        sol = run_solver(top.problem, opts)
        if sol.report.interrupted:
            return failed_plan(instance.name, skipped, SolveStatus.NO_SOLUTION, "interrupted while finding the "
                               "largest demand multiplier, before a plan", scale_demand, sol.report), None
        if not sol.has_solution:
            return failed_plan(instance.name, skipped, sol.status, "no demand multiplier can be served (solver: "
                               f"{sol.report.message})", scale_demand, sol.report), None
        scale = achieved_scale(data, counts_of(top.index(), sol))
        if scale <= 1e-9:
            plan = failed_plan(instance.name, skipped, SolveStatus.INFEASIBLE, "", scale_demand, sol.report)
            return _with_diagnosis(plan, full, opts, "the inventory and limits serve no positive multiple of the "
                                                     "demand\n"), None
        built = build_problem(data, min_scale=scale, cuts=opts.cuts)
        start = None
    else:
        built = build_problem(data, cuts=opts.cuts)
        start = greedy_start(data) if restrict is None else None
    if restrict is not None:
        restrict(built, data)
    heuristic, name = None, "greedy"
    if start is not None:
        heuristic = start_cost_usd_per_hour(data, start[0], start[1])
    interrupted = False
    if opts.lp_rounding and not maximize_scale and restrict is None:
        try:
            rounded = lp_rounding_start(data, built, opts)
        except KeyboardInterrupt:  # Ctrl-C before the solve proper: report the greedy start, if any, as the plan
            rounded, interrupted = None, True
        if rounded is not None:
            cost = start_cost_usd_per_hour(data, rounded[0][0], rounded[0][1])
            if heuristic is None or cost < heuristic - 1e-9:
                start, heuristic, name = rounded[0], cost, "lp_rounding"
    if start is not None:
        set_start(built, *start)
    step = objective_step(built.problem.objective) if built.problem.sense == pulp.LpMinimize else None
    sol = run_solver(built.problem, dataclasses.replace(opts, time_limit_s=MIN_SOLVE_S) if interrupted else opts,
                     warm_start=start is not None, heuristic_usd_per_hour=heuristic,
                     heuristic=name if start is not None else None, objective_step=step)
    if interrupted:
        sol = dataclasses.replace(sol, report=dataclasses.replace(
            sol.report, interrupted=True, status=SolveStatus.FEASIBLE if sol.has_solution else SolveStatus.NO_SOLUTION,
            message="interrupted: the best plan found so far" if sol.has_solution else
            "interrupted before a first plan"))
    if sol.status is SolveStatus.INFEASIBLE and opts.name == "cbc" and opts.cbc_preprocess:
        sol = confirm_infeasible(built.problem, opts, sol, step)
    plan = extract(instance.name, skipped, data, built.index(), sol, scale_demand, scale, opts.time_limit_s, split)
    second_opts = opts
    if over_budget(plan, data) and opts.name == "cbc" and opts.cbc_preprocess and not sol.report.interrupted:
        # CBC's preprocessing rounds a budget row with its integer tolerance (nodes <= 0.999999 becomes <= 1):
        # the plan it returns may cost up to a millionth more than the budget. Solve again without it.
        sol = without_preprocessing(built.problem, opts, "returned a plan over the budget", step)
        if sol.report.interrupted:
            raise KeyboardInterrupt
        plan = extract(instance.name, skipped, data, built.index(), sol, scale_demand, scale, opts.time_limit_s,
                       split)
        second_opts = dataclasses.replace(opts, cbc_preprocess=False)
    if not interrupted:
        second = tie_break(built, data, second_opts, sol, step)
        if second is not sol:
            fewer = extract(instance.name, skipped, data, built.index(), second, scale_demand, scale,
                            opts.time_limit_s, split)
            if not over_budget(fewer, data):  # the held-cost row keeps it within the budget, up to CBC's rounding
                plan = fewer
    if sol.status is SolveStatus.INFEASIBLE and not sol.report.interrupted:
        plan = _with_diagnosis(plan, full, opts)
    return plan, built.problem.numVariables()

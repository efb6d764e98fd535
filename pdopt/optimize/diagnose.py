"""Diagnosis of an infeasible instance, in the instance's terms: which demand cannot be covered, and which
resource runs out by how much. Its own step: the pipeline calls it after a solve reports infeasibility.

1. Shortfall solve (resources hard, demand elastic: a penalised virtual supply per model and role): the demand
   per model and role left uncovered by a plan that covers as much as it can.
2. Elastic solve (demand hard, resources elastic at a penalty): each pool, GPU type cap, link or the budget that
   must grow, by how much, and which models' instances would use it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pdopt.optimize.build import build_problem
from pdopt.optimize.extract import counts_of
from pdopt.optimize.model_data import ModelData
from pdopt.optimize.problem import SlackKey
from pdopt.optimize.solver import Solution, SolverOptions, run_solver
from pdopt.plan import SolveStatus

DIAGNOSIS_TIME_LIMIT_S = 30.0
"""Each diagnosis solve stops after this long (or the plan's own limit, when shorter): proving that an
explanation is the smallest one can take far longer than proving infeasibility did."""


@dataclass(frozen=True)
class Diagnosis:
    """Why no plan exists: the uncovered demand (one such split) and the resources that run out."""

    shortfall_rps: dict[str, dict[str, float]]
    """model -> role -> req/s left uncovered."""
    resource_needs: tuple[str, ...]
    """One line per resource that must grow, with by how much and who would use it."""
    caveats: tuple[str, ...] = ()
    """What the diagnosis could not prove within its time limit."""

    def reason(self, data: ModelData) -> str:
        """Both parts as text for the plan's ``reason``."""
        lines = []
        if self.shortfall_rps:
            lines.append("the limits cannot cover every demand; a plan that covers as much as it can leaves "
                         "uncovered (one such split):")
            for m, roles in self.shortfall_rps.items():
                for r, v in roles.items():
                    demand, spare = data.demand_rps[(m, r)], data.spare_rps[(m, r)]
                    if spare > 0:
                        lines.append(f"model '{m}', role {r}: {v:.4g} of {demand + spare:.4g} req/s (demand "
                                     f"{demand:.4g} req/s plus {spare:.4g} req/s held for "
                                     f"{data.spares[(m, r)]} spare instance(s))")
                    else:
                        lines.append(f"model '{m}', role {r}: {v:.4g} of {demand:.4g} req/s")
        if self.resource_needs:
            lines.append("to serve every demand the plan needs:")
            lines += list(self.resource_needs)
        lines += list(self.caveats)
        return "\n".join(lines) or "the solver reports the instance infeasible"


def _need_line(data: ModelData, key: SlackKey, value: float, users: list[str]) -> str:
    who = ", ".join(users) or "-"
    if key.resource == "nodes":
        pool = data.pools[key.index[0]]
        return (f"node pool '{key.index[0]}' ({pool.gpu_type}, domain {pool.domain}): {math.ceil(value - 1e-6)} more "
                f"node(s) beyond its {pool.node_count} (used by {who})")
    if key.resource == "gpus":
        g = key.index[0]
        return (f"GPU type '{g}': {math.ceil(value - 1e-6)} more GPU(s) beyond its availability cap "
                f"{data.gpu_caps[g]} (used by {who})")
    if key.resource == "bandwidth":
        a, b = key.index
        return f"link {a}-{b}: {value:.4g} Gbit/s more KV bandwidth than its {data.links[(a, b)]:g} Gbit/s"
    more = f"{value:.2f}" if value >= 0.005 else f"{value:.3g}"
    return (f"budget: the cheapest plan that serves every demand costs {more} USD/hour more than the budget "
            f"of {data.budget_usd_per_hour:g} USD/hour")


def diagnose(data: ModelData, options: SolverOptions) -> Diagnosis:
    """Run the shortfall and the elastic solve, each under :data:`DIAGNOSIS_TIME_LIMIT_S`, and read their
    penalised variables by typed key; what a solve could not prove is said in ``caveats``."""
    limit = min(options.time_limit_s or DIAGNOSIS_TIME_LIMIT_S, DIAGNOSIS_TIME_LIMIT_S)
    options = dataclasses.replace(options, time_limit_s=limit)
    caveats: list[str] = []
    short_built = build_problem(data, name="pdopt_f1_shortfall", mode="shortfall")
    short_sol = run_solver(short_built.problem, options)
    caveats += _caveat(short_sol, "the uncovered demand", limit)
    short: dict[str, dict[str, float]] = {}
    for (m, r), name in short_built.index().shortfall.items():
        val = short_sol.value(name)
        if val > 1e-6:
            short.setdefault(m, {})[r] = val
    el = build_problem(data, name="pdopt_f1_elastic", mode="elastic")
    el_sol = run_solver(el.problem, options)
    caveats += _caveat(el_sol, "what each resource must grow by", limit)
    index = el.index()
    counts = counts_of(index, el_sol)
    needs = []
    for key, name in index.slack.items():
        val = el_sol.value(name)
        if val <= 1e-6:
            continue
        if key.resource == "nodes":
            users = sorted({f"{data.shapes[s].model}/{data.shapes[s].role}" for (s, q) in counts if q == key.index[0]})
        elif key.resource == "gpus":
            users = sorted({f"{data.shapes[s].model}/{data.shapes[s].role}" for (s, _) in counts
                            if data.shapes[s].gpu_type == key.index[0]})
        else:
            users = []
        needs.append(_need_line(data, key, val, users))
    return Diagnosis(short, tuple(needs), tuple(caveats))


def _caveat(solution: Solution, what: str, limit: float) -> list[str]:
    """A line when a diagnosis solve did not prove its answer (time limit) or found none; an interruption stops
    the diagnosis (KeyboardInterrupt: the CLI exits 130)."""
    if solution.report.interrupted:
        raise KeyboardInterrupt
    if solution.status is SolveStatus.OPTIMAL:
        return []
    if solution.has_solution:
        return [f"({what} is one answer found within the diagnosis's {limit:g} s limit, not proven the smallest)"]
    return [f"({what} could not be found within the diagnosis's {limit:g} s limit: {solution.report.message})"]

"""How to solve, as plain data the CLI can build without loading a solver: solver names and options."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

SOLVERS = ("cbc", "highs")
CUT_FAMILIES = ("demand_rounding", "role_cost_floor")
"""The formulation's valid inequalities (constraint families registered with ``cut=True``; a test keeps the two
lists equal), which ``SolverOptions.cuts`` switches for ablation."""


@dataclass(frozen=True)
class SolverOptions:
    """How to solve: which solver, time limit, relative gap, threads."""

    name: str = "cbc"
    time_limit_s: float | None = None
    gap_rel: float = 0.0
    threads: int = 1
    """One thread by default, so that runs are deterministic."""

    def within_deadline(self) -> SolverOptions:
        """These options with the time limit cut to what is left before the deadline."""
        if self.deadline is None:
            return self
        left = max(MIN_SOLVE_S, self.deadline - time.monotonic())
        limit = left if self.time_limit_s is None else min(self.time_limit_s, left)
        return dataclasses.replace(self, time_limit_s=limit)
    cuts: bool | tuple[str, ...] = True
    """The formulation's valid inequalities (:data:`CUT_FAMILIES`, formulations/f1.yaml) to add: True every one,
    False none, or the families named (ablation)."""
    pool_classes: bool = True
    """Solve identical node pools as one class and split the plan back (:mod:`pdopt.optimize.pool_classes`); off
    for ablation."""
    lp_rounding: bool = True
    """Also try the LP-rounding start (:mod:`pdopt.optimize.lp_rounding`) and give the solver the cheaper start."""
    deadline: float | None = None
    """``time.monotonic()`` by which the whole planning ends (set by the pipeline from ``time_limit_s``, so that
    the limit bounds every solve of one command together, with building and the start heuristics, not each
    solve); each solve gets what is left (at least :data:`MIN_SOLVE_S`)."""
    max_nodes: int | None = None
    """Stop after this many branch-and-bound nodes (deterministic, unlike a time limit); None: no node limit. The
    tie-break stage's bounded effort (:data:`pdopt.optimize.lexicographic.TIE_BREAK_NODES`)."""
    cbc_preprocess: bool = True
    """CBC's preprocessing; the pipeline turns it off to confirm an ``infeasible`` verdict before reporting it (its
    tolerances can cut off a plan that sits exactly on a limit, such as a budget equal to the optimal cost)."""


MIN_SOLVE_S = 0.05
"""The least time a solve is given once the deadline has passed: enough for the solver to return its start."""


def with_deadline(options: SolverOptions) -> SolverOptions:
    """The options with a deadline ``time_limit_s`` from now (unless one is set already or there is no limit)."""
    if options.time_limit_s is None or options.deadline is not None:
        return options
    return dataclasses.replace(options, deadline=time.monotonic() + options.time_limit_s)

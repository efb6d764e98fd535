"""How to solve, as plain data the CLI can build without loading a solver: solver names and options."""

from __future__ import annotations

from dataclasses import dataclass

SOLVERS = ("cbc", "highs")


@dataclass(frozen=True)
class SolverOptions:
    """How to solve: which solver, time limit, relative gap, threads."""

    name: str = "cbc"
    time_limit_s: float | None = None
    gap_rel: float = 0.0
    threads: int = 1
    """One thread by default, so that runs are deterministic."""
    cuts: bool = True
    """Add the formulation's valid inequalities (``demand_rounding``, formulations/f1.yaml); off for ablation."""
    pool_classes: bool = True
    """Solve identical node pools as one class and split the plan back (:mod:`pdopt.optimize.pool_classes`); off
    for ablation."""
    cbc_preprocess: bool = True
    """CBC's preprocessing; the pipeline turns it off to confirm an ``infeasible`` verdict before reporting it (its
    tolerances can cut off a plan that sits exactly on a limit, such as a budget equal to the optimal cost)."""

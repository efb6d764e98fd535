"""The objective in two stages a solver can close: the cost first, then the fewest GPUs and nodes among the plans of
that cost.

A single weighted objective (cost + 1e-6 GPUs + 1e-8 nodes) makes every plan's value a sum of the cost and tiny
tie-break terms: the LP bound then carries fractions of GPUs and a solver with no gap tolerance keeps branching
after its bound has reached the optimal cost, to prove the fifth decimal. Solved in stages, each objective lies on
a lattice the solver can use:

1. **Cost.** Every price is a decimal (USD per GPU-hour or per node-hour, times whole GPUs), so every plan's
   cost is a multiple of one step ``u`` (:func:`objective_step`: the greatest common divisor of the objective's
   coefficients once written as integers over a power of ten, when every costed variable is an integer). A
   bound ``B`` and a plan of cost ``C`` with ``C - B < u`` prove ``C`` optimal: no multiple of ``u`` lies in
   ``[B, C)``. The solvers are told so (an absolute gap just under ``u``).
2. **Fewest GPUs, then fewest nodes**, with the cost held at the optimum found (``cost <= C + u/2``: exactly
   the plans of cost ``C``): ``min (N + 1) GPUs + nodes`` where ``N`` bounds the nodes in use, an integer
   objective with step 1, whose order is GPUs first and nodes second (nodes <= N < N + 1).

The plans are those of the weighted objective wherever two plans' costs differ by more than their GPU difference
times 1e-6 (every instance with decimal prices). The second stage runs only when the first proved its cost and
was not interrupted; under a time limit it gets what is left of it and starts from the first stage's plan, so it
can only improve the tie-break. Without a lattice (a costed continuous variable: a shortfall or an elastic
resource's penalty), the cost is held within 1e-9 of its value.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pulp

from pdopt.optimize.model_data import ModelData
from pdopt.optimize.options import SolverOptions
from pdopt.optimize.problem import MODES, BuiltProblem, gpus_expression, nodes_expression
from pdopt.optimize.solver import Solution, run_solver
from pdopt.plan import SolveStatus

__all__ = ["COST_ROW", "hold_cost", "objective_step", "tie_break", "tie_break_objective"]

COST_ROW = "cost_at_optimum"
"""The name of the row that holds the cost at its optimum in the second stage (:func:`hold_cost`)."""

MAX_DECIMALS = 6
"""Prices with more decimals than this (after multiplying by whole GPUs) have no lattice step."""
TIE_BREAK_NODES = 1000
"""The second stage's effort: at most this many branch-and-bound nodes (and what is left of a time limit). A
bound on the work that gives the same plan on every run, unlike a time limit; small instances prove their
tie-break at the root, large ones keep the first stage's plan or a better one."""
DECIMAL_ROUND_OFF = 1e-9
"""Relative distance from a whole number within which a scaled coefficient counts as that number (a float's
round-off of a decimal price times whole GPUs)."""
HELD_COST_TOLERANCE = 1e-9
"""Relative tolerance of the held cost when the objective has no lattice step."""


def objective_step(expression: pulp.LpAffineExpression) -> float | None:
    """The lattice step of an objective: the largest ``u`` such that every coefficient is a whole multiple of it, when
    every variable with a non-zero coefficient is an integer and every coefficient is a decimal with at most
    :data:`MAX_DECIMALS` places (after a float's round-off); None otherwise (or when no coefficient is non-zero).

    >>> x, y = pulp.LpVariable("x", cat="Integer"), pulp.LpVariable("y", cat="Integer")
    >>> objective_step(17.68 * x + 16.2205 * y)
    0.0005
    """
    numerators: list[int] = []
    for var, coef in expression.items():
        if coef == 0:
            continue
        if var.cat != pulp.LpInteger:
            return None
        numerators.append(_decimal(coef))
    if not numerators or any(n == 0 for n in numerators):
        return None
    step = Fraction(math.gcd(*numerators), 10 ** MAX_DECIMALS)
    return float(step) if step > 0 else None


def _decimal(value: float) -> int:
    """``value`` times 10**MAX_DECIMALS as an integer, or 0 when it is not one (beyond a float's round-off)."""
    scaled = Fraction(value) * 10 ** MAX_DECIMALS
    whole = round(scaled)
    return whole if abs(scaled - whole) <= DECIMAL_ROUND_OFF * max(1, abs(whole)) else 0


def tie_break_objective(built: BuiltProblem, data: ModelData) -> pulp.LpAffineExpression:
    """``(N + 1) GPUs + nodes``, N the nodes that may be in use (the pools' node counts): GPUs first, then nodes."""
    most = sum(data.pools[p].node_count for p in built.nodes) + 1
    return most * gpus_expression(built, data) + nodes_expression(built)


def hold_cost(built: BuiltProblem, data: ModelData, value: float, step: float | None) -> None:
    """The second stage's problem, made from the first's in place: the row ``cost_at_optimum`` (the first stage's
    objective <= ``value`` + half its step, or + 1e-9 relative without a step) and the objective
    :func:`tie_break_objective`."""
    primary = built.problem.objective
    slack = step / 2 if step else HELD_COST_TOLERANCE * max(1.0, abs(value))
    built.problem += primary <= value + slack, COST_ROW
    built.problem.setObjective(tie_break_objective(built, data))


def tie_break(built: BuiltProblem, data: ModelData, options: SolverOptions, first: Solution,
              step: float | None) -> Solution:
    """The second stage: among the plans of ``first``'s proven cost, the fewest GPUs, then the fewest nodes.

    Returns ``first`` unchanged when its cost is not proven, the solve was interrupted, or the mode maximises.
    Otherwise the values of the second solve (started from ``first`` where the solver takes a start; ``first``'s
    own values when the second stage, unproven, found only worse ties), with ``first``'s report (its cost, bound
    and gap are the plan's) and the runtime of both; ``tie_break`` in the report says whether the order of GPUs
    and nodes was proven. ``built`` is left as the second stage's problem (:func:`hold_cost`).
    """
    if (MODES[built.mode].maximise_scale or first.status is not SolveStatus.OPTIMAL or first.report.interrupted
            or first.report.objective is None):
        return first
    for v in built.problem.variables():  # the first stage's plan as the start, within each bound (round-off)
        value = round(first.value(v.name)) if v.cat == pulp.LpInteger else first.value(v.name)
        low, high = v.lowBound, v.upBound
        v.setInitialValue(min(max(value, -math.inf if low is None else low), math.inf if high is None else high))
    hold_cost(built, data, first.report.objective, step)
    second = run_solver(built.problem, dataclasses.replace(options, max_nodes=TIE_BREAK_NODES), warm_start=True,
                        objective_step=1.0)
    runtime = first.report.runtime_s + second.report.runtime_s
    if not second.has_solution:
        report = dataclasses.replace(first.report, runtime_s=runtime, tie_break="not run: " + second.report.message,
                                     tie_break_s=second.report.runtime_s)
        return dataclasses.replace(first, report=report)
    proven = second.status is SolveStatus.OPTIMAL and not second.report.interrupted
    report = dataclasses.replace(first.report, runtime_s=runtime, tie_break="proven" if proven else "not proven",
                                 interrupted=second.report.interrupted, tie_break_s=second.report.runtime_s)
    ties = built.problem.objective
    if not proven and _value(ties, second) > _value(ties, first):  # a solver that took no start found worse
        return Solution(report, first.values)
    return Solution(report, second.values)


def _value(expression: pulp.LpAffineExpression, solution: Solution) -> float:
    return float(sum(coef * solution.value(var.name) for var, coef in expression.items()))

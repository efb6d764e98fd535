"""Valid inequalities the solvers' own cuts miss: mixed-integer rounding (MIR) of the demand rows (the row family
``demand_rounding`` in :mod:`pdopt.optimize.families` adds them; the arithmetic is here).

A demand row (m, r) with a constant right-hand side reads sum_(s,p) a_s x[s,p] >= b, with a_s = cap_s > 0 the
per-instance capacity of shape s, x integer >= 0 and b = d_m + spare_mr. Its LP relaxation lets the cheapest shape
cover b with a fraction of an instance; the integer plan needs whole instances. For a divisor c > 0 let
q = b / c, g = q - floor(q), and for each shape f_s = a_s / c - floor(a_s / c). If 0 < g < 1,

    sum_(s,p) (floor(a_s / c) + min(f_s / g, 1)) x[s,p] >= ceil(q)                    (MIR)

holds for every integer x that meets the row (formulations/f1.yaml, ``demand_rounding``, gives the proof). With
c = a_s for one shape s it says, for instance, that ceil(b / a_s) instances of s are needed when s alone serves.
Divisors: every distinct per-instance capacity among the row's shapes, and its half, double and triple
(:data:`DIVISOR_MULTIPLES`; one cut each, duplicates dropped).

Exactness: a_s and b are binary floats, so the cut is computed in exact rational arithmetic on those values
(:class:`fractions.Fraction`), and each coefficient is then rounded up and the right-hand side down to the
nearest float, so that rounding can only weaken the cut, never cut off a plan the row allows.

The rows apply where b is a constant: not under a scale variable (max-scale mode and the min-cost solve after it),
not with a shortfall variable (diagnosis), not for a model whose demand is split between serving modes (its
need is a variable), and only to rows without a pooled (ggc) shape, whose capacity is not a multiple of a count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

DIVISOR_MULTIPLES = (0.5, 1.0, 2.0, 3.0)
"""Divisors c = f x cap_s for each distinct per-instance capacity cap_s of the row and each f here. The multiples
2 and 3 round the row in units of two or three instances of a shape, 0.5 in half instances; on fleet-M seed 0
(instances/generated/) the four together let CBC prove the optimum in 0.05 CPU s; with the capacities alone
(f = 1) a 0.08% gap is left after 60 CPU s, without the cuts 0.19%."""


def mir_cut(coefficients: Sequence[float], rhs: float, divisor: float) -> tuple[list[float], float] | None:
    """The MIR cut of sum_j a_j x_j >= rhs (x integer >= 0, a_j > 0) for ``divisor`` c, as float coefficients
    and right-hand side rounded towards validity; None when b / c is a whole number (no rounding to gain)."""
    c = Fraction(divisor)
    q = Fraction(rhs) / c
    g = q - math.floor(q)
    if g == 0:
        return None
    rounded: dict[float, float] = {}
    for a in set(coefficients):  # a shape's capacity repeats once per pool: each distinct value once
        ratio = Fraction(a) / c
        f = ratio - math.floor(ratio)
        exact = math.floor(ratio) + (min(f / g, Fraction(1)) if f else 0)
        value = float(exact)
        if Fraction(value) < exact:
            value = math.nextafter(value, math.inf)
        rounded[a] = value
    out = [rounded[a] for a in coefficients]
    bound = Fraction(math.ceil(q))
    rhs_f = float(bound)
    if Fraction(rhs_f) > bound:
        rhs_f = math.nextafter(rhs_f, -math.inf)
    return out, rhs_f


COVER_TOLERANCE = 1e-9
"""Relative shortfall of a knapsack's cover counted as covered: the demand rows hold within the solvers' feasibility
tolerance (1e-6 and more), so a floor that required exact cover could exceed the cost of a plan they accept."""
COST_FLOOR_NODES = 20_000
"""Branch-and-bound nodes the row's knapsack may take; beyond them the LP bound of the knapsack is used (weaker,
still valid)."""


def cost_floor(items: Sequence[tuple[float, float, int]], need: float, node_limit: int = COST_FLOOR_NODES) -> float:
    """A lower bound on min sum_j l_j y_j subject to sum_j a_j y_j >= need, y_j integer in [0, u_j], for items
    (l_j >= 0, a_j > 0, u_j >= 0): the exact minimum by depth-first branch and bound (items in order of l/a, the
    bound of each node its greedy fractional completion), or, past ``node_limit`` nodes, the root's LP bound. An
    infeasible knapsack (the items cannot cover ``need``) gives the LP bound of what they can cover, never more
    than any plan's cost (a plan then does not exist, and the rows say so).

    >>> cost_floor([(3.0, 2.0, 10), (2.0, 1.0, 10)], 3.0)   # 1 x (3, 2) + 1 x (2, 1) = 5; LP bound 4.5
    5.0
    """
    order = sorted((it for it in items if it[2] > 0), key=lambda it: it[0] / it[1])
    covered = COVER_TOLERANCE * max(1.0, need)  # a plan short by float round-off covers (the floor stays below it)

    def lp_bound(i: int, left: float) -> float:
        total = 0.0
        for cost, cap, ub in order[i:]:
            if left <= covered:
                break
            take = min(float(ub), left / cap)
            total += take * cost
            left -= take * cap
        return total if left <= covered else math.inf

    root = lp_bound(0, need)
    if not math.isfinite(root):
        return 0.0
    best = math.inf
    nodes = 0
    stack: list[tuple[int, float, float]] = [(0, need, 0.0)]
    while stack:
        i, left, spent = stack.pop()
        nodes += 1
        if nodes > node_limit:
            return root
        if left <= covered:
            best = min(best, spent)
            continue
        if i == len(order) or spent + lp_bound(i, left) >= best:
            continue
        cost, cap, ub = order[i]
        top = min(ub, math.ceil(left / cap))
        for y in range(0, top + 1):  # pushed in increasing y: the most of the best ratio is explored first
            stack.append((i + 1, left - y * cap, spent + y * cost))
    return best if math.isfinite(best) else root

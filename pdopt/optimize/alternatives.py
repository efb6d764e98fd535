"""Alternatives: the K cheapest plans that differ in the set of (GPU type, shape) they use.

One plan answers "what is cheapest"; an operator also asks "what else is nearly as cheap, and what would I do
without this GPU type or that layout" (AIConfigurator's ranked top-N; llm-d #1331, "spill over to a different
hardware type"). Plans that differ only in counts or node pools are the same answer to that question, so
alternatives are told apart by their *configuration*: the set of (model, role, GPU type, GPUs per instance,
variant) they place at least one instance of (:class:`ConfigKey`). A configuration that contains a cheaper (or
equally cheap) one is not an alternative: it needs everything the cheaper one needs and more (typically the same
plan with an instance it does not need in GPUs a node-billed pool pays for anyway).

Definition. cost(C) is the least cost of a plan whose configuration is exactly C; the alternatives are the
configurations C with a plan such that no C' strictly inside C has cost(C') <= cost(C), ranked by cost, then by
fewer keys, then by the sorted list of keys (costs equal within :data:`COST_TIE_REL` relative are ties).

Method (formulations/alternatives.yaml). Solve i is formulation F1 plus, for the configurations C_1..C_{i-1}
found so far, a binary used[k] per configuration key k and the rows

- ``used_link[k]``: sum_{(s,p): key(s) = k} x[s,p] <= U_k used[k], U_k the sum of the arcs' upper bounds (a
  key's instances exist only when it is marked used);
- ``not_superset[j]``: sum_{k in C_j} (1 - used[k]) >= 1 (the plan leaves out a key of C_j: its configuration is
  neither C_j nor a superset of it).

Each solve is the cheapest plan whose configuration contains none found, so costs never decrease, and every
alternative up to the last cost reached is found (one excluded by C_j contains C_j, found earlier, no dearer). A
configuration found before a subset of it at the same cost (possible only at a tie) is dropped afterwards. The
search goes on past K until a plan costs more than the K-th, so that the tie rule ranks every tie; at most
:data:`MAX_EXTRA_SOLVES` solves more (``ties_complete`` says whether it saw them all). Dominated shapes are kept
(a plan using one is a different configuration) and no start is given (a start may be an excluded plan).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulp

from pdopt.errors import InputError
from pdopt.instance import Instance
from pdopt.optimize.model_data import Arc, ModelData
from pdopt.optimize.options import SolverOptions, with_deadline
from pdopt.optimize.problem import BuiltProblem
from pdopt.plan import Plan, SolveStatus

COST_TIE_REL = 1e-9
"""Two costs within this relative difference are a tie (floating-point sums of the same prices)."""

MAX_EXTRA_SOLVES = 16
"""Solves beyond K spent looking for configurations tied with the K-th (a symmetric inventory can have many)."""


@dataclass(frozen=True, order=True)
class ConfigKey:
    """One element of a configuration: instances of this shape on this GPU type."""

    model: str
    role: str
    gpu_type: str
    gpus_per_instance: int
    variant: str = "default"

    def label(self) -> str:
        """``model role gpu_type xN`` (``/variant`` when not the default)."""
        v = "" if self.variant == "default" else f"/{self.variant}"
        return f"{self.model} {self.role} {self.gpu_type} x{self.gpus_per_instance}{v}"


Configuration = frozenset[ConfigKey]


def configuration(plan: Plan) -> Configuration:
    """The set of (GPU type, shape) a plan places at least one instance of."""
    return frozenset(ConfigKey(p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)
                     for p in plan.placements if p.count > 0)


def rank_key(cost: float, config: Configuration) -> tuple[float, int, tuple[ConfigKey, ...]]:
    """The documented order among configurations of equal cost: fewer keys, then the sorted keys."""
    return cost, len(config), tuple(sorted(config))


def _key_of(data: ModelData, shape_id: str) -> ConfigKey:
    s = data.shapes[shape_id]
    return ConfigKey(s.model, str(s.role), s.gpu_type, s.gpus_per_instance, s.variant)


def add_used(built: BuiltProblem, data: ModelData) -> dict[ConfigKey, pulp.LpVariable]:
    """used[k] in {0, 1}, one per configuration key with arcs: 1 when the plan places an instance of key k."""
    keys = sorted({_key_of(data, s) for s, _ in data.arcs})
    return {k: built.problem.add_variable(f"used__{_name(k)}", cat=pulp.LpBinary) for k in keys}


def _name(k: ConfigKey) -> str:
    return "__".join((k.model, k.role, k.gpu_type, str(k.gpus_per_instance), k.variant))


def _arcs_by_key(data: ModelData) -> dict[ConfigKey, list[Arc]]:
    out: dict[ConfigKey, list[Arc]] = {}
    for a in data.arcs:
        out.setdefault(_key_of(data, a[0]), []).append(a)
    return out


def _arc_bound(built: BuiltProblem, data: ModelData, arc: Arc) -> int:
    """x's upper bound: the variable's own, else the pool's GPUs over the instance's GPUs."""
    ub = built.x[arc].upBound
    if ub is not None:
        return int(ub)
    return data.pools[arc[1]].gpus // data.shapes[arc[0]].gpus_per_instance


def add_used_link(built: BuiltProblem, data: ModelData, used: dict[ConfigKey, pulp.LpVariable]) -> None:
    """sum_{(s,p): key(s)=k} x[s,p] <= U_k used[k]: no instance of a key marked unused."""
    for k, arcs in _arcs_by_key(data).items():
        bound = sum(_arc_bound(built, data, a) for a in arcs)
        built.add_row("used_link", (_name(k),),
                      pulp.lpSum(built.x[a] for a in arcs) <= bound * used[k])


def add_not_superset(built: BuiltProblem, used: dict[ConfigKey, pulp.LpVariable],
                     found: Sequence[Configuration]) -> None:
    """sum_{k in C_j} (1 - used[k]) >= 1 for each configuration C_j found: the plan leaves out at least one key
    of C_j, so its configuration is neither C_j nor a superset of it. A C_j with a key this problem has no arcs
    for needs no row (every plan here leaves that key out)."""
    for j, config in enumerate(found, start=1):
        if all(k in used for k in config):
            built.add_row("not_superset", (str(j),), pulp.lpSum(1 - used[k] for k in config) >= 1)


def exclude(found: Sequence[Configuration]) -> Callable[[BuiltProblem, ModelData], None]:
    """The restriction (:data:`pdopt.optimize.pipeline.Restriction`) that excludes the configurations found."""

    def restrict(built: BuiltProblem, data: ModelData) -> None:
        used = add_used(built, data)
        add_used_link(built, data, used)
        add_not_superset(built, used, found)

    return restrict


@dataclass(frozen=True)
class Alternative:
    """One of the cheapest plans with its configuration and how it differs from the cheapest."""

    rank: int
    plan: Plan
    configuration: Configuration
    added: tuple[ConfigKey, ...]
    """Keys this plan uses that the cheapest does not."""
    removed: tuple[ConfigKey, ...]
    """Keys the cheapest uses that this plan does not."""

    @property
    def cost_usd_per_hour(self) -> float:
        """The plan's hourly cost."""
        assert self.plan.objective_usd_per_hour is not None
        return self.plan.objective_usd_per_hour


@dataclass(frozen=True)
class Alternatives:
    """The K cheapest configurations' plans, ranked; ``first`` is the last solve's plan when none was found."""

    alternatives: tuple[Alternative, ...]
    requested: int
    exhausted: bool
    """Fewer than ``requested`` configurations have a plan (every one was found)."""
    ties_complete: bool
    """Every configuration tied with the last one returned was seen, so the tie rule ranked them all."""
    first: Plan
    """The plain cheapest plan's solve (its status and reason when there is no plan at all)."""
    note: str = ""
    """Why the search stopped early (time limit, interruption), when it did."""
    stopped: str | None = None
    """``interrupted`` (Ctrl-C or SIGTERM during a later solve) or ``solver`` (a later solve ended without a
    verdict or an unproven plan) when the search stopped before its end; None when it ran to its end."""


def _tied(a: float, b: float) -> bool:
    return abs(a - b) <= COST_TIE_REL * max(1.0, abs(a), abs(b))


def alternatives(instance: Instance, k: int, options: SolverOptions | None = None,
                 scale_demand: float = 1.0) -> Alternatives:
    """The ``k`` cheapest plans that differ in their configuration (the module docstring's method and ties).

    The first plan is :func:`pdopt.solve`'s (the cheapest of all); each next one a solve with the configurations
    found excluded. Every solve shares one deadline (``options.time_limit_s`` bounds the whole search).
    """
    from pdopt.optimize.pipeline import _solve, solve

    if k < 1:
        raise InputError(f"--alternatives: must be at least 1, got {k}")
    if instance.horizon is not None:
        raise InputError("--alternatives: ranks plans of one period; this instance has a horizon")
    opts = with_deadline(options or SolverOptions())
    first = solve(instance, opts, scale_demand=scale_demand, explain_mode=False)
    if not first.has_plan or first.solver.interrupted or first.status is not SolveStatus.OPTIMAL:
        infeasible = first.status is SolveStatus.INFEASIBLE and not first.solver.interrupted
        return Alternatives((), k, exhausted=infeasible, ties_complete=infeasible, first=first,
                            note="" if first.status is SolveStatus.OPTIMAL else first.solver.message)
    found: list[tuple[Plan, Configuration]] = [(first, configuration(first))]
    note, complete, exhausted, stopped = "", True, False, None
    while True:
        kept = _alternatives_of(found)
        last = found[-1][0].objective_usd_per_hour or 0.0
        if len(kept) >= k and last > kept[k - 1][0] and not _tied(last, kept[k - 1][0]):
            break  # the last plan found costs more than the k-th alternative: every tie at its cost is in
        if len(found) >= k + MAX_EXTRA_SOLVES:
            complete = False
            note = (f"{MAX_EXTRA_SOLVES} solves beyond the {k} asked for found configurations tied at the last "
                    "cost shown: others may tie with it, so its rank among them is not settled")
            break
        plan, _ = _solve(instance, opts, scale_demand, False, restrict=exclude([c for _, c in found]))
        if plan.solver.interrupted or (not plan.has_plan and plan.status is not SolveStatus.INFEASIBLE):
            note = f"stopped after {len(found)} plan(s): {plan.solver.message}"
            complete, stopped = False, "interrupted" if plan.solver.interrupted else "solver"
            break
        if not plan.has_plan:
            exhausted = True
            break
        if plan.status is not SolveStatus.OPTIMAL:
            note = f"plan {len(found) + 1} not proven cheapest ({plan.solver.message}); stopped there"
            complete, stopped = False, "solver"
            break
        found.append((plan, configuration(plan)))
    kept = _alternatives_of(found)
    base = kept[0][2]
    out = tuple(Alternative(i, p, c, tuple(sorted(c - base)), tuple(sorted(base - c)))
                for i, (_, p, c) in enumerate(kept[:k], start=1))
    return Alternatives(out, k, exhausted=exhausted and len(kept) < k, ties_complete=complete, first=first,
                        note=note, stopped=stopped)


def _alternatives_of(found: list[tuple[Plan, Configuration]]) -> list[tuple[float, Plan, Configuration]]:
    """The configurations found that contain no other found at no higher cost, ranked (cost as its tie cluster's
    least, then fewer keys, then the sorted keys)."""
    canon = _canonical([p.objective_usd_per_hour or 0.0 for p, _ in found])
    keep = [(c, p, cfg) for c, (p, cfg) in zip(canon, found, strict=True)
            if not any(other < cfg and c2 <= c for c2, (_, other) in zip(canon, found, strict=True))]
    return sorted(keep, key=lambda t: rank_key(t[0], t[2]))


def _canonical(costs: list[float]) -> list[float]:
    """Each cost replaced by the least cost of its tie cluster (costs sorted, a cluster runs while neighbours
    tie), so that the tie rule, not float noise, orders configurations of equal cost."""
    order = sorted(range(len(costs)), key=costs.__getitem__)
    out = list(costs)
    head = None
    for i in order:
        if head is None or not _tied(costs[i], head):
            head = costs[i]
        out[i] = head
    return out


TIE_RULE = ("by cost (equal within a relative 1e-9), then fewer (GPU type, shape) pairs, then the sorted pairs; "
            "a configuration containing a cheaper or equally cheap one is not an alternative")
"""The documented order, as the JSON states it."""


def _key_dict(k: ConfigKey) -> dict[str, Any]:
    return {"model": k.model, "role": k.role, "gpu_type": k.gpu_type, "gpus_per_instance": k.gpus_per_instance,
            "variant": k.variant}


def to_dict(alts: Alternatives) -> dict[str, Any]:
    """The JSON form: each alternative's rank, cost, extra cost over the cheapest, configuration, what it adds
    and removes against the cheapest, and its whole plan (``plan``, as ``pdopt plan --format json``)."""
    cheapest = alts.alternatives[0].cost_usd_per_hour if alts.alternatives else None
    return {
        "requested": alts.requested, "found": len(alts.alternatives), "exhausted": alts.exhausted,
        "ties_complete": alts.ties_complete, "tie_rule": TIE_RULE, "note": alts.note, "stopped": alts.stopped,
        "alternatives": [{
            "rank": a.rank, "cost_usd_per_hour": a.cost_usd_per_hour,
            "extra_usd_per_hour": a.cost_usd_per_hour - cheapest if cheapest is not None else None,
            "configuration": [_key_dict(k) for k in sorted(a.configuration)],
            "added": [_key_dict(k) for k in a.added], "removed": [_key_dict(k) for k in a.removed],
            "plan": a.plan.to_dict()} for a in alts.alternatives],
    }

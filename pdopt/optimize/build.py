"""Build formulation F1 (never solves): variables, objective, then every registered constraint family that applies.

See :mod:`pdopt.optimize.problem` for the modes, variables and objective, :mod:`pdopt.optimize.families` for the
constraint families, and ``formulations/f1.yaml`` for the maths.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import pulp

from pdopt.optimize.families import CONSTRAINT_FAMILIES, FAMILIES
from pdopt.optimize.model_data import Arc, ModelData
from pdopt.optimize.problem import (
    MODES,
    VARIABLE_FAMILIES,
    BuiltProblem,
    Mode,
    add_kv_flow_vars,
    add_mode_vars,
    add_nodes,
    add_pattern_nodes,
    add_pooled_steps,
    add_scale,
    add_shortfall,
    add_slack,
    add_x,
    gpus_expression,
    nodes_expression,
    set_objective,
)

__all__ = ["CONSTRAINT_FAMILIES", "VARIABLE_FAMILIES", "BuiltProblem", "Mode", "build_problem", "gpus_expression",
           "nodes_expression", "relax", "set_start"]

VARIABLE_STEPS: tuple[Callable[[BuiltProblem, ModelData], None], ...] = (
    add_x, add_nodes, add_pattern_nodes, add_pooled_steps, add_shortfall, add_slack, add_kv_flow_vars, add_mode_vars)
"""The variable families, in the order they are created (every mode creates those its data and mode need)."""


def build_problem(data: ModelData, name: str = "pdopt_f1", mode: Mode = "min_cost",
                  min_scale: float | None = None, cuts: bool | Collection[str] = True) -> BuiltProblem:
    """Build the formulation (never solves).

    ``min_cost``: minimise cost (then GPUs, then nodes, by small weights); with ``min_scale``, demand is
    multiplied by a scale variable held at least that. ``max_scale``: maximise the uniform demand multiplier the
    inventory serves. ``cuts``: the valid inequalities to add (True: every cut family; False: none; or the families
    named). ``elastic``: resources may be exceeded at a penalty, demand is hard (which resource runs
    out, by how much). ``shortfall``: demand may go uncovered at a penalty, resources are hard (which model and
    role cannot be served, by how much).
    """
    spec = MODES[mode]
    built = BuiltProblem(pulp.LpProblem(name, pulp.LpMaximize if spec.maximise_scale else pulp.LpMinimize), mode)
    for step in VARIABLE_STEPS:
        step(built, data)
    add_scale(built, data, min_scale)
    set_objective(built, data)
    for family in FAMILIES:
        wanted = not family.cut or cuts is True or (cuts is not False and family.name in cuts)
        if wanted and family.applies(data, spec):
            family.add(built, data)
    return built


def relax(built: BuiltProblem) -> None:
    """Make every variable continuous: the LP relaxation (for bounds and calibration)."""
    for v in built.problem.variables():
        v.cat = pulp.LpContinuous


def set_start(built: BuiltProblem, counts: Mapping[Arc, int], nodes: Mapping[str, int],
              shares: Mapping[str, float] | None = None) -> None:
    """Give the solver a feasible start (a MIP start): instance counts, nodes and, for mixed models, the req/s
    routed to aggregated instances; others start at zero. A start serves each mixed model in one mode: all of
    its demand aggregated (share > 0) or all disaggregated (share 0), and switches on that mode alone."""
    for key, v in built.x.items():
        v.setInitialValue(counts.get(key, 0))
    for p, v in built.nodes.items():
        v.setInitialValue(nodes.get(p, 0))
    for m, v in built.mode_share.items():
        share = (shares or {}).get(m, 0.0)
        v.setInitialValue(share)
        for (mm, mode), on in built.mode_on.items():
            if mm == m:
                on.setInitialValue(int((share > 0) == (mode == "aggregated")))

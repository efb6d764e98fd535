"""pdopt: the cheapest GPU fleet for prefill/decode disaggregated LLM serving that meets every latency SLO.

Library use::

    import pdopt
    instance = pdopt.load_instance("instances/paper/dsv31-h200-5mtpm.yaml")
    plan = pdopt.solve(instance)
    assert not pdopt.verify(instance, plan.to_dict())
    result = pdopt.simulate(instance, plan, pdopt.SimOptions(requests=5000))

Every name below loads its stage on first use (PEP 562), so that ``import pdopt`` (and the CLI's start) costs
almost nothing: no solver, scipy, networkx or plotting library is imported until a stage needs it.
The paper's closed-form helpers live in :mod:`pdopt.paper`; their old names here are deprecated aliases.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # the instance and its loading
    "Instance": "pdopt.instance",
    "InputError": "pdopt.errors",
    "load_instance": "pdopt.io",
    "instance_from_dict": "pdopt.io",
    # capacities
    "CapacityTable": "pdopt.perf.capacity",
    "ShapeCapacity": "pdopt.perf.capacity",
    "SkippedShape": "pdopt.perf.capacity",
    "capacity_table": "pdopt.perf.capacity",
    "prefill_capacity": "pdopt.perf.capacity",
    "decode_capacity": "pdopt.perf.capacity",
    # planning and its result
    "solve": "pdopt.optimize.pipeline",
    "plan_horizon": "pdopt.optimize.horizon",
    "HorizonPlan": "pdopt.optimize.horizon",
    "SolverOptions": "pdopt.optimize.solver",
    "Plan": "pdopt.plan",
    "Placement": "pdopt.plan",
    "PoolUse": "pdopt.plan",
    "ModelPlan": "pdopt.plan",
    "RolePlan": "pdopt.plan",
    "SolverReport": "pdopt.plan",
    "SolveStatus": "pdopt.plan",
    "LinkLoad": "pdopt.plan",
    "KvFlow": "pdopt.plan",
    "Survival": "pdopt.plan",
    "CostBreakdown": "pdopt.plan",
    # checking a plan
    "verify": "pdopt.verifier",
    "Violation": "pdopt.verifier",
    "format_violations": "pdopt.verifier",
    "simulate": "pdopt.sim",
    "tightness": "pdopt.sim",
    "SimOptions": "pdopt.sim",
    "SimResult": "pdopt.sim",
    "simulate_horizon": "pdopt.sim.horizon",
    "HorizonSimResult": "pdopt.sim.horizon",
    "compare": "pdopt.comparison.baselines",
    "BaselineResult": "pdopt.comparison.baselines",
    # what-ifs
    "alternatives": "pdopt.optimize.alternatives",
    "Alternatives": "pdopt.optimize.alternatives",
    "sweep": "pdopt.comparison.sweep",
    "SweepGrid": "pdopt.comparison.sweep",
    "SweepResult": "pdopt.comparison.sweep",
}
"""Public name -> the module that defines it."""

_DEPRECATED: dict[str, str] = {
    "PaperPlan": "pdopt.paper",
    "paper_closed_form": "pdopt.paper",
    "closed_form_for_model": "pdopt.paper",
    "mm1_max_arrival_rate": "pdopt.paper",
    "max_batch_within_tpot": "pdopt.paper",
}
"""Old names of the paper's helpers, kept for one release: use them from :mod:`pdopt.paper`."""

__all__ = [
    "Alternatives",
    "BaselineResult",
    "CapacityTable",
    "CostBreakdown",
    "HorizonPlan",
    "HorizonSimResult",
    "InputError",
    "Instance",
    "KvFlow",
    "LinkLoad",
    "ModelPlan",
    "Placement",
    "Plan",
    "PoolUse",
    "RolePlan",
    "ShapeCapacity",
    "SimOptions",
    "SimResult",
    "SkippedShape",
    "SolveStatus",
    "SolverOptions",
    "SolverReport",
    "Survival",
    "SweepGrid",
    "SweepResult",
    "Violation",
    "__version__",
    "alternatives",
    "capacity_table",
    "compare",
    "decode_capacity",
    "format_violations",
    "instance_from_dict",
    "load_instance",
    "plan_horizon",
    "prefill_capacity",
    "simulate",
    "simulate_horizon",
    "solve",
    "sweep",
    "tightness",
    "verify",
]


_SUBPACKAGES = frozenset({"cli", "comparison", "errors", "instance", "io", "optimize", "paper", "perf", "plan",
                          "plot_horizon", "report", "sim", "verifier"})
"""Subpackages reachable as attributes after ``import pdopt`` alone (``pdopt.paper.paper_closed_form``)."""


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"pdopt.{name}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _DEPRECATED:
        warnings.warn(f"pdopt.{name} is deprecated; use pdopt.paper.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_DEPRECATED[name]), name)
    else:
        raise AttributeError(f"module 'pdopt' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # the names for type checkers and editors; at run time __getattr__ loads them
    from pdopt.comparison.baselines import BaselineResult, compare
    from pdopt.comparison.sweep import SweepGrid, SweepResult, sweep
    from pdopt.errors import InputError
    from pdopt.instance import Instance
    from pdopt.io import instance_from_dict, load_instance
    from pdopt.optimize.alternatives import Alternatives, alternatives
    from pdopt.optimize.horizon import HorizonPlan, plan_horizon
    from pdopt.optimize.pipeline import solve
    from pdopt.optimize.solver import SolverOptions
    from pdopt.perf.capacity import (
        CapacityTable,
        ShapeCapacity,
        SkippedShape,
        capacity_table,
        decode_capacity,
        prefill_capacity,
    )
    from pdopt.plan import (
        CostBreakdown,
        KvFlow,
        LinkLoad,
        ModelPlan,
        Placement,
        Plan,
        PoolUse,
        RolePlan,
        SolverReport,
        SolveStatus,
        Survival,
    )
    from pdopt.sim import SimOptions, SimResult, simulate, tightness
    from pdopt.sim.horizon import HorizonSimResult, simulate_horizon
    from pdopt.verifier import Violation, format_violations, verify

"""An independent check of a plan against its instance: every constraint recomputed from the instance alone.

:func:`verify` takes an instance and a plan in its JSON form (``Plan.to_dict()``, or a plan file read back, as
``pdopt verify INSTANCE --plan PLAN.json`` does) and returns every violation it finds, each naming a registered
check (:data:`CHECKS`, tabulated in docs/verifier.md); an empty list means the plan satisfies every checked
constraint. Plans whose status is neither ``optimal`` nor ``feasible`` hold no fleet and verify trivially.

Why independent: a verifier that reused :mod:`pdopt.perf.capacity`, :mod:`pdopt.optimize` (model data, formulation,
solver), :mod:`pdopt.plan`, :mod:`pdopt.comparison.baselines` or :mod:`pdopt.sim` would share their bugs and
approve whatever they produce. This package imports, of pdopt, only the data model (:mod:`pdopt.instance`) and
the pure queueing formulas (:mod:`pdopt.perf.queueing`, :mod:`pdopt.perf.calibrate`: functions of floats,
checked against exact distributions and the simulator); tests/test_verifier_independence.py walks its import
graph to keep it so. It reimplements from the stated maths the capacities, the demand, the spares, the prices
and billing, the packing of instances onto nodes and the routing of KV traffic; it never solves anything and
needs no solver.

What it checks, in this order (:data:`pdopt.verifier.runner.STEPS`; each module's docstring gives the maths):

- the plan itself (:mod:`.parse`): readable fields, the instance's name, whole instance counts; a malformed plan
  becomes ``bad_plan_field`` violations, never an exception, so that ``pdopt verify`` can always say what is
  wrong;
- shapes, capacities and demand (:mod:`.fleet`, :mod:`.capacity`): each placement's shape is a profile that
  serves something at the SLOs, in a pool of its GPU type, with the capacity the instance implies; per model and
  role, capacity x count less the spares' reserve covers demand x ``scale_demand`` x ``scale``;
- pools (:mod:`.pools`, :mod:`.packing`): GPUs and nodes within the inventory and the instances packed exactly
  onto the nodes the plan uses, each inside one node or on whole nodes of its own;
- costs (:mod:`.costs`): each pool's cost under its billing, the placements' shares, the objective, the budget;
- GPU types (:mod:`.pools`): the GPUs rented of each type within its ``max_gpus``;
- summaries (:mod:`.summary`, :mod:`.costs`, :mod:`.pools`): the plan's ``models``, ``pools`` and ``gpus_used``
  agree with its placements and the instance;
- network (:mod:`.network`, with a ``network`` over two or more domains): KV flows carry each model's demand
  within the prefill and decode capacity of their domains, and their routed traffic fits every link;
- resilience (:mod:`.fleet`, with ``resilience``): without any one domain, each model and role keeps
  ``domain_loss_fraction`` of its demand.

Every numeric comparison allows the relative tolerance ``tol`` (default 1e-6); instance counts, GPUs and nodes
are compared exactly. The search limits of the exact packing live in :mod:`pdopt.verifier.packing`
(``MAX_SEARCH_STATES``, ``MAX_PATTERNS``), read there at call time.
"""

from pdopt.verifier.capacity import (
    DEFAULT_VARIANT,
    PERCENTILES,
    RecomputedShape,
    demand_rps,
    largest_usable_capacity,
    recompute_shape,
)
from pdopt.verifier.costs import billed_per_node, pool_cost_usd_per_hour
from pdopt.verifier.packing import _Packer as _Packer  # the exact search, reached by tests through the package
from pdopt.verifier.packing import first_fit_decreasing, fits_in_nodes, min_nodes, node_lower_bound, node_patterns
from pdopt.verifier.parse import PLANNED_STATUSES, ROLE_NAMES
from pdopt.verifier.registry import (
    CHECKS,
    CHECKS_BY_NAME,
    FAMILIES,
    Check,
    Violation,
    checks_markdown,
    format_violations,
)
from pdopt.verifier.runner import STEPS, verify

__all__ = [
    "CHECKS",
    "CHECKS_BY_NAME",
    "DEFAULT_VARIANT",
    "FAMILIES",
    "PERCENTILES",
    "PLANNED_STATUSES",
    "ROLE_NAMES",
    "STEPS",
    "Check",
    "RecomputedShape",
    "Violation",
    "billed_per_node",
    "checks_markdown",
    "demand_rps",
    "first_fit_decreasing",
    "fits_in_nodes",
    "format_violations",
    "largest_usable_capacity",
    "min_nodes",
    "node_lower_bound",
    "node_patterns",
    "pool_cost_usd_per_hour",
    "recompute_shape",
    "verify",
]

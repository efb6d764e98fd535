"""pdopt: the cheapest GPU fleet for prefill/decode disaggregated LLM serving that meets every latency SLO.

Library use::

    import pdopt
    instance = pdopt.load_instance("instances/paper/dsv31-h200-5mtpm.yaml")
    plan = pdopt.solve(instance)
    assert not pdopt.verify(instance, plan.to_dict())
"""

from pdopt.capacity import (
    CapacityTable,
    PaperPlan,
    ShapeCapacity,
    SkippedShape,
    capacity_table,
    closed_form_for_model,
    decode_capacity,
    max_batch_within_tpot,
    mm1_max_arrival_rate,
    paper_closed_form,
    prefill_capacity,
)
from pdopt.instance import Instance
from pdopt.io import InputError, instance_from_dict, load_instance
from pdopt.optimize.pipeline import solve
from pdopt.optimize.solver import SolverOptions
from pdopt.plan import Plan, SolveStatus
from pdopt.verify import Violation, format_violations, verify

__version__ = "0.1.0"

__all__ = [
    "CapacityTable",
    "InputError",
    "Instance",
    "PaperPlan",
    "Plan",
    "ShapeCapacity",
    "SkippedShape",
    "SolveStatus",
    "SolverOptions",
    "Violation",
    "__version__",
    "capacity_table",
    "closed_form_for_model",
    "decode_capacity",
    "format_violations",
    "instance_from_dict",
    "load_instance",
    "max_batch_within_tpot",
    "mm1_max_arrival_rate",
    "paper_closed_form",
    "prefill_capacity",
    "solve",
    "verify",
]

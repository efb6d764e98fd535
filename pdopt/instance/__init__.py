"""The instance format: what an operator states about models, traffic, SLOs, benchmarks and GPUs.

Every model is strict (unknown keys are errors, numbers are not parsed from strings), frozen, and carries its
unit in each field name. :mod:`.base` holds identifiers and the strict base, :mod:`.profiles` the benchmark
profiles, :mod:`.schema` everything else and the :class:`Instance` with its cross-reference checks. Files are
read by the I/O layer (:mod:`pdopt.io`), never here.
"""

from pdopt.instance.base import (
    IDENTIFIER_PATTERN,
    ROLES,
    SERVING_MODES,
    SHAPE_ROLES,
    Identifier,
    Role,
    ServingMode,
    Statistic,
    StrictModel,
)
from pdopt.instance.estimates import (
    AicOptions,
    GpuSpec,
    ModelArchitecture,
    ModelShapes,
    RooflineEfficiency,
    ShapeSearch,
)
from pdopt.instance.horizon import Horizon, Period, PeriodOverride
from pdopt.instance.profiles import (
    AggregatedProfile,
    DecodeCurve,
    DecodePoint,
    DecodeProfile,
    IterationModel,
    LoadCorrection,
    MeasuredRun,
    MeasuredTpot,
    MeasuredTtft,
    PrefillPoint,
    PrefillProfile,
    Profile,
    fits_nodes,
)
from pdopt.instance.schema import (
    GpuType,
    Instance,
    Limits,
    Link,
    Model,
    Network,
    NodePool,
    PlannerOptions,
    Resilience,
    Workload,
    validate_instance,
)
from pdopt.instance.traffic import Demand, LengthDistribution, TpotSlo, TtftSlo

__all__ = [
    "IDENTIFIER_PATTERN",
    "ROLES",
    "SERVING_MODES",
    "SHAPE_ROLES",
    "AggregatedProfile",
    "AicOptions",
    "DecodeCurve",
    "DecodePoint",
    "DecodeProfile",
    "Demand",
    "GpuSpec",
    "GpuType",
    "Horizon",
    "Identifier",
    "Instance",
    "IterationModel",
    "LengthDistribution",
    "Limits",
    "Link",
    "LoadCorrection",
    "MeasuredRun",
    "MeasuredTpot",
    "MeasuredTtft",
    "Model",
    "ModelArchitecture",
    "ModelShapes",
    "Network",
    "NodePool",
    "Period",
    "PeriodOverride",
    "PlannerOptions",
    "PrefillPoint",
    "PrefillProfile",
    "Profile",
    "Resilience",
    "Role",
    "RooflineEfficiency",
    "ServingMode",
    "ShapeSearch",
    "Statistic",
    "StrictModel",
    "TpotSlo",
    "TtftSlo",
    "Workload",
    "fits_nodes",
    "validate_instance",
]

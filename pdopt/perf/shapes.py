"""What the performance layer says about one shape: its capacity at the SLOs with provenance, or why it has
none."""

from __future__ import annotations

from dataclasses import dataclass, field

from pdopt.instance import AggregatedProfile, DecodeProfile, PrefillProfile, Role


@dataclass(frozen=True)
class ShapeCapacity:
    """What one instance of a shape serves for one model and role at the SLO, with how it was obtained."""

    model: str
    role: Role
    gpu_type: str
    gpus_per_instance: int
    capacity_rps: float
    """Max request rate one instance serves while meeting the SLO (0 when unusable)."""
    throughput_tok_per_s: float
    """The same in tokens of the role (input tokens for prefill, output tokens for decode)."""
    formula: str
    detail: dict[str, float | str] = field(default_factory=dict)
    """Numbers behind the capacity (batch, TPOT, ...) and, for a corrected decode curve, the correction's origin."""
    variant: str = "default"
    spans_nodes: bool = False
    binding: str = "tpot_target"
    """What limits the capacity: ``ttft_target``, ``tpot_target``, ``kv_memory`` or ``benchmark_range``."""
    pooled_gains: tuple[float, ...] = ()
    """``ggc`` prefill: marginal capacity of the 1st, 2nd, ... pooled instance; the last repeats for every further
    instance. Empty when instances queue independently (capacity_rps each)."""
    estimated: str | None = None
    """The estimator (``name version``) when the profile's numbers are estimated, not measured; None: measured."""

    def pooled_capacity_rps(self, count: int) -> float:
        """Capacity of ``count`` instances of this shape: pooled gains summed, else count x capacity_rps."""
        if not self.pooled_gains:
            return count * self.capacity_rps
        g = self.pooled_gains
        return sum(g[:count]) + max(0, count - len(g)) * g[-1]

    @property
    def shape_id(self) -> str:
        """``<model>__<role>__<gpu_type>__g<gpus>[__<variant>]``: legal in solver names."""
        base = f"{self.model}__{self.role}__{self.gpu_type}__g{self.gpus_per_instance}"
        return base if self.variant == "default" else f"{base}__{self.variant}"


@dataclass(frozen=True)
class SkippedShape:
    """A benchmarked shape that cannot meet the SLO, and why."""

    model: str
    role: Role
    gpu_type: str
    gpus_per_instance: int
    reason: str
    variant: str = "default"


def skip(profile: PrefillProfile | DecodeProfile | AggregatedProfile, reason: str) -> SkippedShape:
    """The profile's shape, unusable for ``reason``."""
    return SkippedShape(profile.model, profile.role, profile.gpu_type, profile.gpus_per_instance, reason,
                        profile.variant)

"""What an estimator is asked and what it answers: shapes to estimate, estimated profiles, and the gaps.

An estimator (the roofline of :mod:`pdopt.estimate.roofline`, AIConfigurator through
:mod:`pdopt.estimate.aiconfigurator`) turns a :class:`ShapeRequest` -- a model on a GPU type with a parallel
layout, and the lengths and batches to cover -- into the same prefill and decode profiles a benchmark import
gives, each carrying an :class:`~pdopt.instance.profiles.Estimate` as provenance. What it cannot estimate (a
model, GPU system or engine version it does not know, a shape whose weights do not fit) is a :class:`Gap` with a
reason, never a silent omission: the planner and the CLI print every gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pdopt.instance.profiles import DecodeProfile, PrefillProfile

EstimatedProfile = PrefillProfile | DecodeProfile


@dataclass(frozen=True)
class ShapeRequest:
    """One parallel layout of one model on one GPU type, and what to estimate for it.

    ``tp`` GPUs serve one instance; with ``ep`` > 1 (mixture-of-experts models) the experts are sharded over ``ep``
    of them (``ep`` divides ``tp``), the attention and dense layers stay tensor-parallel over all ``tp``.
    """

    model: str
    """The pdopt model id."""
    gpu_type: str
    """The pdopt GPU type id."""
    tp: int
    ep: int = 1
    roles: tuple[str, ...] = ("prefill", "decode")
    input_tokens: tuple[float, ...] = (1024.0,)
    """Prefill: input lengths at which the maximum throughput is estimated (strictly increasing)."""
    decode_input_tokens: float = 1024.0
    """Decode: the input length of the requests in the batch."""
    output_tokens: float = 256.0
    """Decode: the output length (the mean context is input + output / 2)."""
    batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    """Decode: batch sizes at which TPOT is estimated (strictly increasing)."""
    decode_lengths: tuple[tuple[float, float], ...] = ()
    """Decode: (input, output) lengths of the periods of a horizon when they differ from the workload's: with two
    or more input lengths, an estimator that can gives a 2-D table (``tpot_by_input``) instead of one curve."""
    variant: str = "default"
    spans_nodes: bool = False

    @property
    def gpus_per_instance(self) -> int:
        """GPUs of one instance (EP shards the experts over the same GPUs)."""
        return self.tp

    def label(self) -> str:
        """``model gpu_type TPt[ EPe]``, as messages name a shape."""
        ep = f" EP{self.ep}" if self.ep > 1 else ""
        return f"{self.model} {self.gpu_type} TP{self.tp}{ep}"


@dataclass(frozen=True)
class Gap:
    """A shape and role the estimator could not estimate, and why (shown to the user, never dropped)."""

    shape: ShapeRequest
    role: str
    reason: str

    def message(self) -> str:
        """One line naming the shape, the role and the reason."""
        return f"{self.shape.label()} {self.role}: not estimated: {self.reason}"


@dataclass
class EstimateResult:
    """Estimated profiles and the gaps of one estimation run."""

    profiles: list[EstimatedProfile] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    def extend(self, other: EstimateResult) -> None:
        """Add another run's profiles and gaps."""
        self.profiles.extend(other.profiles)
        self.gaps.extend(other.gaps)

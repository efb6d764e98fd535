"""What a workload states about its traffic and its SLOs, in pieces a period of the horizon may restate: the demand,
the input-length mix, the TTFT and TPOT targets (:mod:`pdopt.instance.schema` assembles them into a
:class:`~pdopt.instance.schema.Workload`, :mod:`pdopt.instance.horizon` into a period's overrides)."""

from __future__ import annotations

import itertools

from pydantic import Field, PositiveFloat, model_validator

from pdopt.instance.base import Statistic, StrictModel


class Demand(StrictModel):
    """Offered load: requests per second, or total tokens per minute counting input plus output (the paper)."""

    requests_per_s: PositiveFloat | None = None
    tokens_per_min: PositiveFloat | None = None
    source: str = ""
    """How the number was obtained (a ``demand_trace`` writes the trace, its seconds, windows and percentile)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Demand:
        if (self.requests_per_s is None) == (self.tokens_per_min is None):
            raise ValueError("give exactly one of requests_per_s or tokens_per_min")
        return self


class LengthDistribution(StrictModel):
    """A discrete distribution of input lengths: ``lengths`` with relative ``weights`` (a histogram's bin centres
    and counts, or the distinct lengths of a trace)."""

    lengths: list[PositiveFloat] = Field(min_length=1)
    weights: list[PositiveFloat] = Field(min_length=1)
    source: str = ""

    @model_validator(mode="after")
    def _aligned(self) -> LengthDistribution:
        if len(self.lengths) != len(self.weights):
            raise ValueError(f"lengths has {len(self.lengths)} entries but weights has {len(self.weights)}")
        if any(b <= a for a, b in itertools.pairwise(self.lengths)):
            raise ValueError("lengths must be strictly increasing")
        return self

    @property
    def mean(self) -> float:
        """Weighted mean length."""
        return sum(x * w for x, w in zip(self.lengths, self.weights, strict=True)) / sum(self.weights)


class TtftSlo(StrictModel):
    """Time-to-first-token target and the statistic over requests it applies to."""

    target_s: PositiveFloat
    statistic: Statistic = "mean"


class TpotSlo(StrictModel):
    """Time-per-output-token target. ``mean`` is the mean over requests of each request's own TPOT."""

    target_ms: PositiveFloat
    statistic: Statistic = "mean"

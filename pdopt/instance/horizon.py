"""Plans over time: the periods of a horizon (the hours of a day, a week, or named periods) and what a workload
restates in each.

A horizon is a list of periods, each with its length in hours, in the order they follow one another; by default
the horizon repeats (``cyclic``: a day's last hour is followed by the next day's first). A workload's fields are
its value in every period, except where ``by_period`` restates them for a period: the demand, the lengths, the
SLOs, the arrival variability. Each period is then planned as the single-period instance it describes
(:meth:`pdopt.instance.schema.Instance.period_instance`), linked to its neighbours by what changing capacity costs:

- ``lead_time_min``: a new instance takes this long to become ready, so the instances a period adds are started
  that long before it begins, while the period before still runs its own fleet: its last minutes hold both (a
  ramp), paid and within the pools; capacity is in place when the busier period begins;
- ``start_cost_usd``: each instance started at a period's beginning costs this much once;
- ``min_uptime_h``: an instance, once started, stays up at least this long (scaling down is not free).

An instance without a horizon is one period, planned exactly as before.
"""

from __future__ import annotations

from pydantic import Field, NonNegativeFloat, PositiveFloat, model_validator

from pdopt.instance.base import Identifier, StrictModel
from pdopt.instance.traffic import Demand, LengthDistribution, TpotSlo, TtftSlo


class Period(StrictModel):
    """One period of the horizon: its name and how long it lasts."""

    name: Identifier
    hours: PositiveFloat
    """Length of the period in hours."""
    description: str = ""


class Horizon(StrictModel):
    """The periods a plan covers, in order, and what changing capacity between them costs."""

    periods: list[Period] = Field(min_length=1, max_length=8784)
    cyclic: bool = True
    """The horizon repeats: the first period follows the last (a day, a week). False: the horizon starts from
    nothing and ends after its last period (a one-off event)."""
    lead_time_min: NonNegativeFloat = 0.0
    """Minutes from starting an instance to its serving (weights loaded, engine warm). The instances a period adds
    are started this long before it, inside the period before (shorter than every period)."""
    start_cost_usd: NonNegativeFloat = 0.0
    """Cost of starting one instance (image pull, weight load, warm-up), paid once per start."""
    min_uptime_h: NonNegativeFloat = 0.0
    """An instance started at a period's beginning stays up for at least this many hours."""
    source: str = ""
    """Where the periods and their demand come from (a trace, a published daily curve)."""

    @model_validator(mode="after")
    def _distinct_names(self) -> Horizon:
        names = [p.name for p in self.periods]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"periods: the names {', '.join(twice)} appear more than once")
        return self

    @property
    def names(self) -> list[str]:
        """Period names in order."""
        return [p.name for p in self.periods]

    @property
    def total_hours(self) -> float:
        """Length of the horizon in hours."""
        return sum(p.hours for p in self.periods)

    def preceding(self, index: int) -> int | None:
        """The index of the period before ``index`` (the last before the first when cyclic, the period itself
        for a cyclic horizon of one; None before the first otherwise)."""
        if index > 0:
            return index - 1
        return len(self.periods) - 1 if self.cyclic else None


class PeriodOverride(StrictModel):
    """What a workload restates for one period; every field left out keeps the workload's own value."""

    demand: Demand | None = None
    input_tokens_mean: PositiveFloat | None = None
    output_tokens_mean: PositiveFloat | None = None
    input_length_distribution: LengthDistribution | None = None
    ttft: TtftSlo | None = None
    tpot: TpotSlo | None = None
    arrival_scv: NonNegativeFloat | None = None

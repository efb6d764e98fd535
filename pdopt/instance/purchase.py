"""How a node pool's capacity is bought over a horizon: reserved, on-demand and spot.

Clouds and GPU providers sell capacity three ways. Reserved (committed) capacity is a count fixed for a term,
paid for every hour of the horizon whether used or not, at a discount; on-demand capacity is paid only in the
periods it is used, at the pool's list price; spot (preemptible) capacity is cheaper, limited to what is on offer
in each period, and may be taken back without notice. An operator's question is how much to commit to and how
much to top up period by period (a cost guide for llm-d, PR #555, worked a spot example by hand).

A pool's *unit* is what its price is for: a node in a pool billed per node-hour, a GPU in a pool billed per
GPU-hour. Prices here are per unit-hour: ``price_usd_per_node_hour`` for a node-billed pool,
``price_usd_per_gpu_hour`` for a GPU-billed one (the other is refused, naming the pool). The on-demand price is the
pool's own (its node-hour price, or its GPU type's GPU-hour price). A reserved price has no default: an instance
states it and says where it comes from (``source``: a public price page, or ``assumed``). An upfront payment per
unit is spread over its term (``upfront_usd_per_unit / term_hours`` added to the hourly price).

Purchase options apply to plans over a horizon (:mod:`pdopt.instance.horizon`); a single-period instance with
them is one period of one hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, model_validator

from pdopt.instance.base import Identifier, StrictModel


class _Priced(StrictModel):
    """A price per unit-hour, per node-hour or per GPU-hour (which one the pool's billing decides)."""

    price_usd_per_node_hour: NonNegativeFloat | None = None
    price_usd_per_gpu_hour: NonNegativeFloat | None = None
    source: str = Field(min_length=1)
    """Where the price comes from: a public price page (with its date), or ``assumed`` and why."""

    @model_validator(mode="after")
    def _one_price(self) -> _Priced:
        given = [f for f in ("price_usd_per_node_hour", "price_usd_per_gpu_hour") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of price_usd_per_node_hour (a pool billed per node-hour) or "
                             "price_usd_per_gpu_hour (a pool billed per GPU-hour)")
        return self

    def hourly(self) -> float:
        """The stated price per unit-hour."""
        price = self.price_usd_per_node_hour if self.price_usd_per_node_hour is not None else \
            self.price_usd_per_gpu_hour
        assert price is not None
        return price

    @property
    def per_node(self) -> bool:
        """True when the price is per node-hour."""
        return self.price_usd_per_node_hour is not None


class Reserved(_Priced):
    """Capacity committed for the whole horizon (and beyond, for its term), paid every hour whether used or not."""

    upfront_usd_per_unit: NonNegativeFloat = 0.0
    """A payment per unit at the start of the term, spread evenly over ``term_hours``."""
    term_hours: PositiveFloat | None = None
    """The commitment's length in hours (8,760 for a year); needed with an upfront payment."""
    max_units: NonNegativeInt | None = None
    """At most this many units may be reserved (default: the pool's nodes, or its GPUs)."""

    @model_validator(mode="after")
    def _term_for_upfront(self) -> Reserved:
        if self.upfront_usd_per_unit > 0 and self.term_hours is None:
            raise ValueError("upfront_usd_per_unit needs term_hours, the term it is spread over")
        return self

    def effective_hourly(self) -> float:
        """Price per unit-hour with the upfront payment spread over the term."""
        spread = self.upfront_usd_per_unit / self.term_hours if self.term_hours else 0.0
        return self.hourly() + spread


class Spot(_Priced):
    """Preemptible capacity: cheaper, limited per period, and liable to be taken back."""

    available_units: NonNegativeInt = 0
    """Units on offer in every period (``available_by_period`` restates it for named periods)."""
    available_by_period: dict[Identifier, NonNegativeInt] = Field(default_factory=dict)
    """Units on offer in a named period of the horizon."""
    loss_share: float = Field(default=0.0, ge=0.0, le=1.0)
    """The share of a period's spot units that may be taken back at once (0: none). The plan then keeps
    ``survive_fraction`` of every role's demand served after losing it, whichever instances those units held."""
    survive_fraction: float = Field(default=1.0, gt=0.0, le=1.0)
    """The share of each role's demand still served when ``loss_share`` of the spot units is lost (1: the SLOs
    hold for the whole demand)."""

    def available(self, period: str) -> int:
        """Units on offer in ``period``."""
        return self.available_by_period.get(period, self.available_units)


class Purchase(StrictModel):
    """How a pool's units may be bought: reserved for the horizon, on demand per period, spot per period."""

    reserved: Reserved | None = None
    on_demand: bool = True
    """Units may be bought on demand, per period used, at the pool's list price."""
    spot: Spot | None = None


class _Pool(Protocol):
    """What the checks read of a node pool (:class:`pdopt.instance.schema.NodePool`)."""

    @property
    def purchase(self) -> Purchase | None: ...

    @property
    def billed_per_node(self) -> bool: ...


def purchase_problems(pools: Mapping[str, _Pool], periods: Sequence[str]) -> list[str]:
    """Each purchase price is per the pool's unit (node-hour for a node-billed pool, GPU-hour otherwise), spot
    availability names periods of the horizon, and something can be bought; one message per problem, naming the
    field."""
    problems = []
    for pid, pool in pools.items():
        buy = pool.purchase
        if buy is None:
            continue
        where = f"node_pools.{pid}.purchase"
        unit, field = ("node", "price_usd_per_node_hour") if pool.billed_per_node else ("GPU", "price_usd_per_gpu_hour")
        for name, option in (("reserved", buy.reserved), ("spot", buy.spot)):
            if option is not None and option.per_node != pool.billed_per_node:
                problems.append(f"{where}.{name}: the pool is billed per {unit}-hour: give {field}")
        if buy.spot is not None:
            problems += [f"{where}.spot.available_by_period.{t}: no period '{t}' in horizon.periods"
                         for t in buy.spot.available_by_period if t not in periods]
        if not buy.on_demand and buy.reserved is None and buy.spot is None:
            problems.append(f"{where}: on_demand is false and neither reserved nor spot is given: nothing can be "
                            "bought")
    return problems

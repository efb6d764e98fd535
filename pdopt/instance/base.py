"""Shared pieces of the instance format: identifiers, statistics, roles, and the strict base model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]*$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""A name that is legal in solver row names: lower case, digits and underscores, starting with a letter."""

Statistic = Literal["mean", "p50", "p90", "p95", "p99"]
"""The statistic an SLO target applies to: the mean over requests, or a percentile over requests."""

Role = Literal["prefill", "decode"]
ROLES: tuple[Role, Role] = ("prefill", "decode")


class StrictModel(BaseModel):
    """Base for every instance model: unknown keys rejected, no string-to-number coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

"""Shared pieces of the instance format: identifiers, statistics, roles, and the strict base model."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationInfo, field_validator

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]*$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""A name that is legal in solver row names: lower case, digits and underscores, starting with a letter."""

Statistic = Literal["mean", "p50", "p90", "p95", "p99"]
"""The statistic an SLO target applies to: the mean over requests, or a percentile over requests."""

Role = Literal["prefill", "decode", "aggregated"]
"""What an instance of a shape does: prefill only, decode only (the disaggregated pair), or both in one engine."""
ROLES: tuple[Role, Role] = ("prefill", "decode")
"""The disaggregated pair: a model served disaggregated needs capacity in both."""
SHAPE_ROLES: tuple[Role, Role, Role] = ("prefill", "decode", "aggregated")
"""Every role a shape may have."""
ServingMode = Literal["aggregated", "disaggregated"]
"""How a model is served: aggregated instances (prefill and decode in one engine) or disaggregated P/D pairs."""
SERVING_MODES: tuple[ServingMode, ServingMode] = ("aggregated", "disaggregated")


RANGES: dict[str, tuple[float, float, str]] = {
    # field name: (smallest, largest, unit); a field name means the same thing wherever it appears
    "memory_gb": (1e-3, 1e5, "GB"),
    "price_usd_per_gpu_hour": (0.0, 1e4, "USD per GPU-hour"),
    "max_gpus": (0, 1e7, "GPUs"),
    "nic_gbps_per_gpu": (1e-3, 1e5, "Gbit/s"),
    "gpus_per_node": (1, 1024, "GPUs"),
    "node_count": (0, 1e6, "nodes"),
    "price_usd_per_node_hour": (0.0, 1e6, "USD per node-hour"),
    "activation_cost_usd_per_hour": (0.0, 1e6, "USD per node-hour"),
    "upfront_usd_per_unit": (0.0, 1e9, "USD per node or GPU"),
    "term_hours": (1e-3, 1e6, "hours"),
    "max_units": (0, 1e7, "nodes or GPUs"),
    "available_units": (0, 1e7, "nodes or GPUs"),
    "available_by_period": (0, 1e7, "nodes or GPUs"),
    "loss_share": (0.0, 1.0, "(share of the spot units)"),
    "inputs": (0.0, 1e12, "(an estimator's inputs, recorded as given)"),
    "survive_fraction": (1e-6, 1.0, "(share of the demand)"),
    "num_layers": (1, 1e4, "layers"),
    "num_kv_heads": (1, 1e4, "heads"),
    "head_dim": (1, 1e5, "elements"),
    "num_parameters_billion": (1e-6, 1e5, "billion parameters"),
    "bytes_per_parameter": (1e-3, 64, "bytes"),
    "kv_bytes_per_element": (1e-3, 64, "bytes"),
    "kv_bytes_per_token": (1e-3, 1e9, "bytes"),
    "weights_gb": (1e-6, 1e7, "GB"),
    "requests_per_s": (1e-9, 1e7, "requests/s"),
    "tokens_per_min": (1e-9, 1e13, "tokens/min"),
    "lengths": (1e-3, 1e8, "tokens"),
    "weights": (1e-12, 1e15, "(relative weight)"),
    "target_s": (1e-6, 1e6, "s"),
    "target_ms": (1e-6, 1e7, "ms"),
    "input_tokens_mean": (1e-3, 1e8, "tokens"),
    "output_tokens_mean": (1e-3, 1e8, "tokens"),
    "ttft_overhead_s": (0.0, 1e4, "s"),
    "prefix_cache_hit_rate": (0.0, 1.0, "(fraction, below 1)"),
    "service_scv": (0.0, 1e4, "(squared coefficient of variation)"),
    "arrival_scv": (0.0, 1e4, "(squared coefficient of variation)"),
    "spare_instances": (0, 1e4, "instances"),
    "bandwidth_gbps": (1e-6, 1e8, "Gbit/s"),
    "latency_ms": (0.0, 1e6, "ms"),
    "client_io_s": (0.0, 1e4, "s"),
    "domain_loss_fraction": (1e-9, 1.0, "(fraction)"),
    "budget_usd_per_hour": (0.0, 1e9, "USD/hour"),
    "pooled_gain_epsilon": (1e-12, 1.0, "(relative)"),
    "pooled_max_steps": (1, 512, "steps"),
    "kv_usable_fraction": (1e-9, 1.0, "(fraction)"),
    "gpus_per_instance": (1, 1e5, "GPUs"),
    "input_tokens": (1e-3, 1e8, "tokens"),
    "max_throughput_tok_per_s": (1e-6, 1e12, "tokens/s"),
    "batch": (1, 1e7, "requests"),
    "tpot_ms": (1e-6, 1e7, "ms"),
    "request_rate_rps": (1e-9, 1e7, "requests/s"),
    "ttft_mean_s": (1e-9, 1e6, "s"),
    "output_tokens": (1e-3, 1e8, "tokens"),
    "token_budget": (1, 1e8, "tokens per iteration"),
    "max_batch": (1, 1e7, "requests"),
    "kv_tokens": (1, 1e12, "tokens"),
    "overhead_ms": (0.0, 1e6, "ms"),
    "per_prefill_token_ms": (0.0, 1e3, "ms per token"),
    "prefill_quadratic_ms": (0.0, 1e3, "ms per token^2"),
    "per_decode_seq_ms": (0.0, 1e4, "ms per request"),
    "per_context_token_ms": (0.0, 1e3, "ms per token"),
    "tpot_mean_ms": (1e-6, 1e7, "ms"),
    "mean_batch": (1e-9, 1e7, "requests"),
    "factor": (0.0, 1e3, "(multiplier)"),
    "join_cost_ms": (0.0, 1e6, "ms per admitted request"),
    "hours": (1e-6, 8784.0, "hours (at most a leap year)"),
    "lead_time_min": (0.0, 1440.0, "minutes"),
    "start_cost_usd": (0.0, 1e6, "USD per instance start"),
    "min_uptime_h": (0.0, 8784.0, "hours"),
    "hidden_size": (1, 1e7, "elements"),
    "num_attention_heads": (1, 1e5, "heads"),
    "num_experts": (1, 1e5, "experts"),
    "experts_per_token": (1, 1e5, "experts"),
    "expert_parameters_billion": (1e-6, 1e5, "billion parameters"),
    "hbm_bandwidth_gb_per_s": (1e-3, 1e6, "GB/s"),
    "dense_tflops": (1e-3, 1e6, "TFLOP/s"),
    "fp8_dense_tflops": (1e-3, 1e6, "TFLOP/s"),
    "intra_node_gb_per_s": (1e-3, 1e6, "GB/s"),
    "inter_node_gb_per_s": (1e-3, 1e6, "GB/s"),
    "compute_efficiency": (1e-6, 1.0, "(share of the dense peak)"),
    "memory_efficiency": (1e-6, 1.0, "(share of HBM bandwidth)"),
    "network_efficiency": (1e-6, 1.0, "(share of link bandwidth)"),
    "step_overhead_ms": (0.0, 1e4, "ms"),
    "collective_latency_us": (0.0, 1e6, "microseconds"),
    "tp": (1, 1024, "GPUs"),
    "ep": (1, 1024, "GPUs"),
    "time_budget_s": (1e-3, 1e6, "s"),
    "batches": (1, 1e7, "requests"),
}
"""The finite range of every numeric field of the instance format (docs/instance-format.md prints this table).

Numbers beyond these are no plausible fleet (a price of 1e308 USD, 10^400 nodes) and would reach the solver as
overflows or NaN; they are refused when the instance is read, with the value and the range."""


def _numbers(value: Any) -> list[float]:
    """The numbers in a field's value: itself, a list's items, or a mapping's values."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    return []


class StrictModel(BaseModel):
    """Base for every instance model: unknown keys rejected, no string-to-number coercion, immutable, and every
    number within its field's range (:data:`RANGES`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _within_range(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse a number outside its field's range, naming the value and the range."""
        limits = RANGES.get(info.field_name or "")
        if limits is None:
            return value
        lo, hi, unit = limits
        for v in _numbers(value):
            finite = isinstance(v, int) or math.isfinite(v)  # an int of any size compares exactly
            if not (finite and lo <= v <= hi):
                raise ValueError(f"{_shown(v)} is outside the range {lo:g} to {hi:g} {unit}".rstrip())
        return value


def _shown(v: float) -> str:
    """A number as a message shows it: a float in 6 digits, a huge integer by its order of magnitude."""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v) if abs(v) < 10**30 else f"about 10^{len(str(abs(v))) - 1}"


def ranges_markdown() -> str:
    """The table of :data:`RANGES` for docs/instance-format.md (a test keeps the page in step)."""
    rows = ["| field | smallest | largest | unit |", "|---|---|---|---|"]
    rows += [f"| `{name}` | {lo:g} | {hi:g} | {unit} |" for name, (lo, hi, unit) in sorted(RANGES.items())]
    return "\n".join(rows)

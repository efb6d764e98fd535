"""What estimating a shape needs to know: the model's architecture, the GPU's specs, and which shapes to search.

A measured profile needs none of this. An estimated one (docs/profiles.md, "Estimated profiles") is computed from
the model's architecture (layers, heads, hidden size, experts) and the GPU's peak numbers (HBM bandwidth, dense
TFLOP/s, interconnect) by a roofline, or asked of AIConfigurator; ``shape_search`` names the layouts to estimate
so that the planner chooses among them (:mod:`pdopt.estimate.search`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from pdopt.instance.base import Identifier, StrictModel


class ModelArchitecture(StrictModel):
    """Architecture numbers from which KV-cache bytes per token and weight size derive, and, when the optional
    fields are given, from which a roofline estimates prefill and decode times.

    KV bytes per token = 2 (K and V) x layers x KV heads x head dim x bytes per element;
    weights = parameters x bytes per parameter.
    """

    num_layers: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt
    num_parameters_billion: PositiveFloat
    bytes_per_parameter: PositiveFloat = 2.0
    kv_bytes_per_element: PositiveFloat = 2.0
    hidden_size: PositiveInt | None = None
    """Width of the residual stream (the size of each tensor-parallel all-reduce per token); needed to estimate."""
    num_attention_heads: PositiveInt | None = None
    """Query heads (default: hidden_size / head_dim); attention FLOPs are 4 x heads x head_dim per token pair."""
    num_experts: PositiveInt | None = None
    """Mixture of experts: routed experts per MoE layer (with ``experts_per_token`` and
    ``expert_parameters_billion``)."""
    experts_per_token: PositiveInt | None = None
    """Mixture of experts: routed experts each token goes through."""
    expert_parameters_billion: PositiveFloat | None = None
    """Mixture of experts: parameters of all routed experts together (the rest is dense and always active)."""

    @model_validator(mode="after")
    def _experts_together(self) -> ModelArchitecture:
        moe = (self.num_experts, self.experts_per_token, self.expert_parameters_billion)
        if any(v is not None for v in moe) and not all(v is not None for v in moe):
            raise ValueError("a mixture of experts needs num_experts, experts_per_token and "
                             "expert_parameters_billion together")
        if self.num_experts is not None and self.experts_per_token is not None:
            if self.experts_per_token > self.num_experts:
                raise ValueError(f"experts_per_token {self.experts_per_token} exceeds num_experts "
                                 f"{self.num_experts}")
            assert self.expert_parameters_billion is not None
            if self.expert_parameters_billion >= self.num_parameters_billion:
                raise ValueError(f"expert_parameters_billion {self.expert_parameters_billion:g} must be below "
                                 f"num_parameters_billion {self.num_parameters_billion:g} (attention and "
                                 "embeddings are not experts)")
        return self

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return self.num_experts is not None


class GpuSpec(StrictModel):
    """Peak numbers of a GPU type, for estimates: a row of the bundled catalog (``catalog``, see
    ``pdopt profile estimate --list-gpus``) and/or stated numbers, which take precedence over the row's."""

    catalog: str | None = None
    """A GPU of pdopt's catalog (pdopt/estimate/gpu_specs.csv, each row with its source), e.g. H100-SXM-80GB."""
    hbm_bandwidth_gb_per_s: PositiveFloat | None = None
    """HBM bandwidth per GPU, GB/s."""
    dense_tflops: PositiveFloat | None = None
    """Dense BF16/FP16 tensor throughput per GPU, TFLOP/s (no sparsity)."""
    fp8_dense_tflops: PositiveFloat | None = None
    """Dense FP8 tensor throughput per GPU, TFLOP/s; used for models of 1 byte per parameter."""
    intra_node_gb_per_s: PositiveFloat | None = None
    """GPU-to-GPU bandwidth inside a node (NVLink, else PCIe), per GPU and direction, GB/s."""
    inter_node_gb_per_s: PositiveFloat | None = None
    """Bandwidth between nodes per GPU and direction, GB/s (instances that span nodes)."""

    @model_validator(mode="after")
    def _something(self) -> GpuSpec:
        if self.catalog is None and (self.hbm_bandwidth_gb_per_s is None or self.dense_tflops is None):
            raise ValueError("name a catalog GPU, or give at least hbm_bandwidth_gb_per_s and dense_tflops")
        return self


class RooflineEfficiency(StrictModel):
    """The shares of the peaks the roofline assumes an engine reaches (docs/profiles.md, "Roofline"). The defaults
    are stated, not fitted: about half the dense peak for large GEMMs, 80% of HBM bandwidth for streaming the
    weights and the KV cache, 70% of link bandwidth for all-reduces, and a fixed cost per decode step and per
    collective that no peak number gives (kernel launches, scheduling, synchronisation)."""

    compute_efficiency: float = Field(default=0.5, gt=0.0, le=1.0)
    """Share of the dense peak FLOP/s reached (eta_c)."""
    memory_efficiency: float = Field(default=0.8, gt=0.0, le=1.0)
    """Share of the HBM bandwidth reached (eta_m)."""
    network_efficiency: float = Field(default=0.7, gt=0.0, le=1.0)
    """Share of the link bandwidth reached by collectives (eta_n)."""
    step_overhead_ms: float = Field(default=2.0, ge=0.0, le=1e4)
    """Fixed time of one forward pass (one decode step or one prefill), ms."""
    collective_latency_us: float = Field(default=10.0, ge=0.0, le=1e6)
    """Latency of one collective (an all-reduce, an all-to-all), microseconds, added to its bandwidth time."""


class AicOptions(StrictModel):
    """How to ask AIConfigurator (``shape_search.estimator: aiconfigurator``)."""

    models: dict[Identifier, str] = Field(default_factory=dict)
    """AIConfigurator's name of each pdopt model (a Hugging Face id it bundles, e.g. llama31_70b:
    meta-llama/Meta-Llama-3.1-70B)."""
    systems: dict[Identifier, str] = Field(default_factory=dict)
    """AIConfigurator's system of each pdopt GPU type (e.g. h100_80gb: h100_sxm)."""
    backend: Literal["vllm", "sglang", "trtllm"] = "vllm"
    backend_version: str | None = None
    """The engine version of AIConfigurator's database (None: its default for the system and backend)."""


def _both_roles() -> list[Literal["prefill", "decode"]]:
    return ["prefill", "decode"]


class ModelShapes(StrictModel):
    """The layouts of one model to estimate: every (GPU type, TP, EP) combination whose weights fit."""

    tp: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    """Tensor-parallel sizes (GPUs per instance)."""
    ep: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1)
    """Expert-parallel sizes (mixture-of-experts models; each divides the TP size it is combined with)."""
    gpu_types: list[Identifier] | None = None
    """GPU types to consider (default: every GPU type that has a node pool and, for the roofline, a ``spec``, for
    AIConfigurator, a system; the others are reported as not estimated)."""
    roles: list[Literal["prefill", "decode"]] = Field(default_factory=_both_roles, min_length=1)


class ShapeSearch(StrictModel):
    """Shapes nobody has measured, estimated when the instance is read, so that the planner chooses the layout too.

    A shape the instance already measures (same model, role, GPU type, GPUs per instance and variant) is not
    estimated; with ``calibrate``, the measured shapes of a (GPU type, role) correct the estimates of the others
    (:mod:`pdopt.estimate.calibrate`)."""

    estimator: Literal["roofline", "aiconfigurator"] = "roofline"
    models: dict[Identifier, ModelShapes] = Field(min_length=1)
    time_budget_s: PositiveFloat | None = None
    """Seconds for estimating and planning together: shapes not estimated in time are reported as gaps, and the
    solver gets what is left (None: no limit)."""
    calibrate: bool = True
    """Fit a factor per (GPU type, role) from the measured shapes that are also estimated, and apply it."""
    roofline: RooflineEfficiency = RooflineEfficiency()
    aiconfigurator: AicOptions = AicOptions()
    batches: list[PositiveInt] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
                                       min_length=2)
    """Decode batches to estimate, increasing (those whose KV cache does not fit are left out)."""

    @model_validator(mode="after")
    def _increasing_batches(self) -> ShapeSearch:
        if any(b <= a for a, b in zip(self.batches, self.batches[1:], strict=False)):
            raise ValueError(f"batches: must be strictly increasing, got {self.batches}")
        return self


def shape_search_problems(search: ShapeSearch | None, models: Collection[str], gpu_types: Collection[str],
                          has_profiles: bool) -> list[str]:
    """Some profile or a shape search; a search names known models and GPU types, and EP sizes that divide a TP
    size (the estimator checks what it needs of architectures and specs)."""
    if search is None:
        return [] if has_profiles else ["profiles: give at least one profile, or a shape_search to estimate"]
    problems = []
    for mid, shapes in search.models.items():
        at = f"shape_search.models.{mid}"
        if mid not in models:
            problems.append(f"{at}: unknown model '{mid}'")
        problems += [f"{at}.gpu_types: unknown GPU type '{g}'" for g in shapes.gpu_types or [] if g not in gpu_types]
        problems += [f"{at}.ep: {e} divides none of the TP sizes {shapes.tp}" for e in shapes.ep
                     if not any(t % e == 0 for t in shapes.tp)]
    for section, ids, known in (("models", search.aiconfigurator.models, models),
                                ("systems", search.aiconfigurator.systems, gpu_types)):
        problems += [f"shape_search.aiconfigurator.{section}.{k}: unknown {section[:-1]} '{k}'" for k in ids
                     if k not in known]
    return problems

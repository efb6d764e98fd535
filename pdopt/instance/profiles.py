"""Benchmark profiles in the instance format: measured prefill throughput and decode TPOT curves per shape.

A shape is (model, role, GPU type, GPUs per instance, variant). Prefill profiles hold the maximum prefill
throughput by input length (and optionally a measured TTFT sweep for calibration); decode profiles hold TPOT by
batch, or a 2-D table by input length, read inline or from a CSV by the I/O layer (its path kept as provenance).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal, Protocol

from pydantic import (
    AfterValidator,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from pdopt.instance.base import Identifier, StrictModel


class PoolShape(Protocol):
    """What a shape needs to know of a node pool to say whether it fits (a ``NodePool`` has it)."""

    @property
    def gpu_type(self) -> str: ...

    @property
    def gpus_per_node(self) -> int: ...


class PrefillPoint(StrictModel):
    """Benchmarked maximum prefill throughput of one instance at one input length."""

    input_tokens: PositiveFloat
    max_throughput_tok_per_s: PositiveFloat


class DecodePoint(StrictModel):
    """Benchmarked time per output token at one decode batch size (concurrency)."""

    batch: PositiveInt
    tpot_ms: PositiveFloat


class Estimate(StrictModel):
    """How an estimated profile was obtained (a profile without one is measured): the estimator, its version and
    the inputs it was given, so that a reader can tell an estimate from a benchmark and redo it."""

    estimator: str = Field(min_length=1)
    """What produced the numbers: ``roofline``, ``aiconfigurator``, ..."""
    version: str = Field(min_length=1)
    """The estimator's version (a package version, or pdopt's for its own)."""
    inputs: dict[str, str | float | int | bool] = Field(default_factory=dict)
    """What it was given: model architecture, GPU system, engine and version, lengths, efficiency factors."""

    def label(self) -> str:
        """``estimator version``, as plans and tables show it."""
        return f"{self.estimator} {self.version}"


class _ProfileBase(StrictModel):
    model: Identifier
    gpu_type: Identifier
    gpus_per_instance: PositiveInt
    """GPUs one instance uses (its tensor-parallel size times any other parallelism)."""
    variant: Identifier = "default"
    """An engine setting that changes the benchmark (chunk size, quantisation, ...): another shape."""
    spans_nodes: bool = False
    """An instance may span whole nodes (gpus_per_instance a multiple of the node size), e.g. TP 16 on 8-GPU nodes."""
    source: str = ""
    """Where the numbers come from (provenance)."""
    estimate: Estimate | None = None
    """Set when the numbers are estimated rather than measured (by a roofline, AIConfigurator, ...): every plan
    placement that rests on this profile is marked as such."""

    @property
    def key(self) -> tuple[str, str, str, int, str]:
        """(model, role, gpu_type, gpus_per_instance, variant): unique within an instance."""
        return (self.model, self.role, self.gpu_type, self.gpus_per_instance, self.variant)  # type: ignore[attr-defined]

    def fits_pool(self, pool: PoolShape) -> bool:
        """Whether an instance of this shape can be placed on the pool's nodes."""
        return pool.gpu_type == self.gpu_type and fits_nodes(self.gpus_per_instance, pool.gpus_per_node,
                                                            self.spans_nodes)


def fits_nodes(gpus_per_instance: int, gpus_per_node: int, spans_nodes: bool) -> bool:
    """An instance fits inside one node, or, when it may span nodes, takes a whole number of them."""
    if gpus_per_instance <= gpus_per_node:
        return True
    return spans_nodes and gpus_per_instance % gpus_per_node == 0


class MeasuredTtft(StrictModel):
    """One run of a request-rate sweep of one prefill instance: the offered rate and the mean TTFT measured."""

    request_rate_rps: PositiveFloat
    ttft_mean_s: PositiveFloat


class PrefillProfile(_ProfileBase):
    """Prefill benchmark: max throughput against input length (one point or a curve), and optionally a measured
    TTFT sweep at the workload's input length, to which the G/G/1 model is calibrated (``queue_model: gg1``)."""

    role: Literal["prefill"]
    max_throughput_by_input: list[PrefillPoint] = Field(min_length=1)
    measured_ttft: list[MeasuredTtft] | None = None
    """With ``queue_model: gg1``: the service SCV and the TTFT overhead of this shape are fitted to these points
    (pdopt/perf/calibrate.py) instead of taken from the workload."""

    @model_validator(mode="after")
    def _sorted_inputs(self) -> PrefillProfile:
        lengths = [p.input_tokens for p in self.max_throughput_by_input]
        if any(b <= a for a, b in itertools.pairwise(lengths)):
            raise ValueError("max_throughput_by_input: input_tokens must be strictly increasing")
        return self


def _check_curve(pts: list[DecodePoint], where: str) -> None:
    if len(pts) < 2:
        raise ValueError(f"{where}: needs at least 2 points")
    for i in range(1, len(pts)):
        if pts[i].batch <= pts[i - 1].batch:
            raise ValueError(f"{where}[{i}]: batch must be strictly increasing")
        if pts[i].tpot_ms < pts[i - 1].tpot_ms:
            raise ValueError(
                f"{where}[{i}]: tpot_ms {pts[i].tpot_ms} is below the previous point's "
                f"{pts[i - 1].tpot_ms}; TPOT must not fall as the batch grows (drop or re-measure the row)"
            )


def _csv_was_read(path: str | None) -> str | None:
    """A validated instance holds points, never a file still to read: ``tpot_csv`` is read by the loaders in
    :mod:`pdopt.io`, which replace it by ``tpot_by_batch`` and keep the path as ``tpot_csv_source``. Refusing it
    here keeps a dump (or a hand-built model) from carrying both points and a file that might disagree with them."""
    if path is not None:
        raise ValueError(f"'{path}' is a CSV still to read: load the instance with pdopt.load_instance or "
                         "pdopt.instance_from_dict, which read it into tpot_by_batch (the path is then kept as "
                         "tpot_csv_source)")
    return path


UnreadCsv = Annotated[str | None, AfterValidator(_csv_was_read)]
"""``tpot_csv``: a path in a file, always ``None`` in a validated model."""


class DecodeCurve(StrictModel):
    """TPOT against batch measured at one input length (one row of a 2-D TPOT(batch, context) table)."""

    input_tokens: PositiveFloat
    tpot_by_batch: list[DecodePoint] = Field(min_length=2)
    tpot_csv: UnreadCsv = None
    """In a file: a CSV with columns ``batch,tpot_ms`` to read instead of giving ``tpot_by_batch`` (the loader
    reads it; a validated curve always has ``None`` here)."""
    tpot_csv_source: str | None = None
    """Provenance only, never read: the ``tpot_csv`` the points were read from, relative to its instance file."""


class MeasuredTpot(StrictModel):
    """Mean TPOT measured on one decode instance of a running P/D system, at one load: a request rate per decode
    instance (the mean batch then follows by Little's law, B = rate x L_out x TPOT / 1000) or the mean running
    batch itself, exactly one of the two."""

    request_rate_rps: PositiveFloat | None = None
    """Requests per second one decode instance took during the run."""
    mean_batch: PositiveFloat | None = None
    """Mean number of requests running in the instance's batch during the run."""
    tpot_mean_ms: PositiveFloat
    output_tokens_mean: PositiveFloat | None = None
    """Mean output length of the run (default: the workload's)."""
    source: str = ""

    @model_validator(mode="after")
    def _rate_or_batch(self) -> MeasuredTpot:
        if (self.request_rate_rps is None) == (self.mean_batch is None):
            given = "both" if self.request_rate_rps is not None else "neither"
            raise ValueError(f"give exactly one of request_rate_rps (per decode instance) and mean_batch, got {given}")
        return self


class LoadCorrection(StrictModel):
    """A stated decode correction under load (docs/capacity.md, "Decode calibration under load"): TPOT at mean batch
    B is factor x T(B) + join_cost_ms x B / L_out, T the benchmarked fixed-concurrency curve."""

    factor: NonNegativeFloat = 1.0
    """Multiplies the benchmarked TPOT (speculative-decoding acceptance, scheduling slowdown, ...)."""
    join_cost_ms: NonNegativeFloat = 0.0
    """Stall of a decode instance's next iteration per request admitted into its batch, ms."""
    source: str
    """Where the numbers come from (required: a correction is the user's data)."""

    @model_validator(mode="after")
    def _not_zero(self) -> LoadCorrection:
        if self.factor == 0.0 and self.join_cost_ms == 0.0:
            raise ValueError("factor 0 with join_cost_ms 0 makes every TPOT zero; give a positive factor")
        return self


class DecodeProfile(_ProfileBase):
    """Decode benchmark: TPOT against batch (inline or a CSV with columns ``batch,tpot_ms``), or a 2-D table of
    such curves at several input lengths (``tpot_by_input``), interpolated at the workload's input length; and,
    optionally, TPOT measured under load (``measured_tpot``) or a stated correction (``load_correction``), which
    the capacity model and the simulator apply to the curve (pdopt/perf/decode_fit.py)."""

    role: Literal["decode"]
    tpot_by_batch: list[DecodePoint] = Field(default_factory=list)
    tpot_by_input: list[DecodeCurve] | None = None
    tpot_csv: UnreadCsv = None
    """In a file: a CSV with columns ``batch,tpot_ms`` to read instead of giving ``tpot_by_batch``, relative to
    the instance file (the loader reads it; a validated profile always has ``None`` here)."""
    tpot_csv_source: str | None = None
    """Provenance only, never read: the ``tpot_csv`` the points were read from, relative to its instance file."""
    input_tokens: PositiveFloat | None = None
    """Input length the curve was measured at (informative)."""
    output_tokens: PositiveFloat | None = None
    """Output length the curve was measured at (informative)."""
    measured_tpot: list[MeasuredTpot] | None = Field(default=None, min_length=1)
    """Mean TPOT measured in a running system at several loads: a correction of the curve is fitted to them."""
    load_correction: LoadCorrection | None = None
    """A stated correction of the curve under load (instead of ``measured_tpot``)."""

    @model_validator(mode="after")
    def _monotone_curve(self) -> DecodeProfile:
        if self.measured_tpot is not None and self.load_correction is not None:
            raise ValueError("give measured_tpot (a correction is fitted to it) or load_correction (a stated one), "
                             "not both")
        if self.tpot_by_input is None:
            _check_curve(self.tpot_by_batch, "tpot_by_batch")
            lo, hi = self.tpot_by_batch[0].batch, self.tpot_by_batch[-1].batch
            for i, pt in enumerate(self.measured_tpot or []):
                if pt.mean_batch is not None and not lo <= pt.mean_batch <= hi:
                    raise ValueError(f"measured_tpot[{i}].mean_batch: {pt.mean_batch:g} is outside the curve's "
                                     f"measured batches [{lo}, {hi}] (no extrapolation)")
            return self
        if self.tpot_by_batch:
            raise ValueError("give tpot_by_batch or tpot_by_input, not both")
        curves = self.tpot_by_input
        if len(curves) < 2:
            raise ValueError("tpot_by_input: needs curves at 2 or more input lengths (else use tpot_by_batch)")
        for i, curve in enumerate(curves):
            _check_curve(curve.tpot_by_batch, f"tpot_by_input[{i}].tpot_by_batch")
            if i and curve.input_tokens <= curves[i - 1].input_tokens:
                raise ValueError(f"tpot_by_input[{i}].input_tokens: must be strictly increasing")
        lo = max(c.tpot_by_batch[0].batch for c in curves)
        hi = min(c.tpot_by_batch[-1].batch for c in curves)
        if hi <= lo:
            raise ValueError(f"tpot_by_input: the curves share no batch range (smallest batches up to {lo}, "
                             f"largest from {hi}); a table with such gaps cannot be interpolated")
        return self

    def points_for(self, input_tokens: float) -> list[DecodePoint] | str:
        """The TPOT(batch) curve at ``input_tokens``: the 1-D curve, or, from a 2-D table, linear interpolation
        between the two measured input lengths around it, at every measured batch inside the range all curves
        share (nothing is extrapolated: outside the measured lengths, a reason string)."""
        if self.tpot_by_input is None:
            return self.tpot_by_batch
        curves = self.tpot_by_input
        if not curves[0].input_tokens <= input_tokens <= curves[-1].input_tokens:
            return (f"input length {input_tokens:g} is outside the decode table's measured lengths "
                    f"[{curves[0].input_tokens:g}, {curves[-1].input_tokens:g}] (no extrapolation)")
        j = next(i for i in range(1, len(curves)) if input_tokens <= curves[i].input_tokens)
        a, b = curves[j - 1], curves[j]
        w = (input_tokens - a.input_tokens) / (b.input_tokens - a.input_tokens)
        lo = max(c.tpot_by_batch[0].batch for c in curves)
        hi = min(c.tpot_by_batch[-1].batch for c in curves)
        batches = sorted({p.batch for c in (a, b) for p in c.tpot_by_batch if lo <= p.batch <= hi} | {lo, hi})
        out = []
        for batch in batches:
            ta = _interp_tpot(a.tpot_by_batch, batch)
            tb = _interp_tpot(b.tpot_by_batch, batch)
            out.append(DecodePoint(batch=batch, tpot_ms=(1 - w) * ta + w * tb))
        return out


def _interp_tpot(pts: list[DecodePoint], batch: int) -> float:
    for lo, hi in itertools.pairwise(pts):
        if lo.batch <= batch <= hi.batch:
            return lo.tpot_ms + (batch - lo.batch) / (hi.batch - lo.batch) * (hi.tpot_ms - lo.tpot_ms)
    raise ValueError(f"batch {batch} outside the curve")


class IterationModel(StrictModel):
    """Time of one engine iteration that runs a decode batch and prefill chunks together (chunked prefill), ms:

        t = overhead_ms + per_prefill_token_ms P + prefill_quadratic_ms Q + per_context_token_ms C
            + per_decode_seq_ms B

    with P the prompt tokens prefilled in the iteration, Q = sum over its chunks of p (2 o + p) (a chunk of p
    tokens at offset o attends to o + p tokens; over a whole prompt of L tokens the chunks telescope to L^2, so Q
    is DistServe's sum of squared prompt lengths whatever the chunking), C the context tokens of the B decoding
    requests (prompt plus tokens generated so far), and B the decode batch. DistServe's fitted vLLM coefficients
    map one to one: prefill [a, b, c] -> overhead a, per token b, quadratic c; decoding [a, b, c] -> per context
    token b, per decode request c (its decode overhead a is the same fixed cost, counted once per iteration).
    """

    overhead_ms: NonNegativeFloat
    """Fixed cost of one iteration (weights read once, kernel launches, scheduling)."""
    per_prefill_token_ms: NonNegativeFloat
    prefill_quadratic_ms: NonNegativeFloat = 0.0
    per_context_token_ms: NonNegativeFloat = 0.0
    per_decode_seq_ms: NonNegativeFloat = 0.0
    source: str = ""
    """Where the coefficients come from (a fit, a paper's table, a calibration)."""

    def time_ms(self, prefill_tokens: float, quadratic: float, context_tokens: float, batch: float) -> float:
        """The iteration time t(P, Q, C, B) above."""
        return (self.overhead_ms + self.per_prefill_token_ms * prefill_tokens + self.prefill_quadratic_ms * quadratic
                + self.per_context_token_ms * context_tokens + self.per_decode_seq_ms * batch)


class MeasuredRun(StrictModel):
    """One run of a request-rate sweep of one aggregated instance (``vllm bench serve`` at a fixed rate)."""

    request_rate_rps: PositiveFloat
    ttft_mean_s: PositiveFloat
    tpot_mean_ms: PositiveFloat


class AggregatedProfile(_ProfileBase):
    """An aggregated instance: prefill and decode in one engine with chunked prefill, as vLLM and SGLang run by
    default. Each iteration carries the running decode batch (one token each) and, within ``token_budget``
    tokens in all, chunks of the waiting prompts in arrival order; its time follows :class:`IterationModel`."""

    role: Literal["aggregated"]
    token_budget: PositiveInt
    """Tokens per iteration, decode tokens included (vLLM's ``max_num_batched_tokens``): prefill gets the
    budget left after the decode batch."""
    max_batch: PositiveInt
    """Most requests running at once, prefilling or decoding (vLLM's ``max_num_seqs``)."""
    iteration: IterationModel
    kv_tokens: PositiveInt | None = None
    """KV-cache capacity of one instance in tokens (``null``: derived from GPU memory, weights and the model's
    KV bytes per token, as for decode shapes)."""
    measured_runs: list[MeasuredRun] | None = None
    """Measured runs at several request rates: the iteration model's coefficients are calibrated to them
    (pdopt/perf/aggregated_fit.py) before capacities are computed."""

    @model_validator(mode="after")
    def _budget_above_one(self) -> AggregatedProfile:
        if self.token_budget < 2:
            raise ValueError("token_budget: needs at least 2 tokens per iteration (one decode token and room to "
                             "prefill)")
        if self.max_batch > self.token_budget:
            raise ValueError(f"max_batch {self.max_batch} exceeds token_budget {self.token_budget}: every running "
                             "decode request takes one token of the budget per iteration (vLLM requires "
                             "max_num_batched_tokens >= max_num_seqs)")
        return self


Profile = Annotated[PrefillProfile | DecodeProfile | AggregatedProfile, Field(discriminator="role")]

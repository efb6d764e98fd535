"""Estimates against measurements: per shape, the ratio estimate / measurement at every measured point.

The ratio is of the profile's own quantity: the maximum prefill throughput at each measured input length, the TPOT
at each measured batch (decode curves at their measured input and output lengths, else the workload's). A ratio
above 1 means the estimate is optimistic for prefill (more tokens/s than measured) and pessimistic for decode
(a longer TPOT). An estimated profile is compared at the measured points inside its own range (linear
interpolation; nothing is extrapolated).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pdopt.estimate.base import EstimatedProfile, ShapeRequest
from pdopt.instance import DecodeProfile, Instance, PrefillProfile


@dataclass(frozen=True)
class PointPair:
    """One measured point and the estimate there: ``x`` the input length (prefill) or the batch (decode)."""

    x: float
    measured: float
    estimated: float

    @property
    def ratio(self) -> float:
        """estimated / measured."""
        return self.estimated / self.measured


@dataclass(frozen=True)
class ShapeComparison:
    """The pairs of one shape (model, role, GPU type, GPUs per instance, variant)."""

    key: tuple[str, str, str, int, str]
    estimator: str
    pairs: tuple[PointPair, ...]

    @property
    def median_ratio(self) -> float:
        """Median estimated / measured."""
        return statistics.median(p.ratio for p in self.pairs)

    @property
    def mape(self) -> float:
        """Mean absolute error relative to the measurement, in percent."""
        return 100.0 * statistics.fmean(abs(p.ratio - 1.0) for p in self.pairs)

    @property
    def worst_ratio(self) -> float:
        """The ratio furthest from 1 (in log terms)."""
        return max((p.ratio for p in self.pairs), key=lambda r: abs(math.log(r)))


def _interp(xs: Sequence[float], ys: Sequence[float], x: float) -> float | None:
    """Linear interpolation of (xs, ys) at x; None outside [xs[0], xs[-1]]."""
    if not xs[0] <= x <= xs[-1]:
        return None
    for i in range(1, len(xs)):
        if x <= xs[i]:
            w = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
            return ys[i - 1] + w * (ys[i] - ys[i - 1])
    return ys[-1]


def measured_points(prof: PrefillProfile | DecodeProfile, instance: Instance) -> list[tuple[float, float]]:
    """The (x, value) points of a measured profile: (input length, max throughput) or (batch, TPOT ms) at the
    decode curve's own input length (the workload's for a 2-D table)."""
    if isinstance(prof, PrefillProfile):
        return [(p.input_tokens, p.max_throughput_tok_per_s) for p in prof.max_throughput_by_input]
    pts = prof.points_for(decode_lengths(prof, instance)[0])
    if isinstance(pts, str):
        return []
    return [(float(p.batch), p.tpot_ms) for p in pts]


def decode_lengths(prof: DecodeProfile, instance: Instance) -> tuple[float, float]:
    """(input, output) lengths a decode curve was measured at: its own, else the workload's."""
    wl = instance.workloads.get(prof.model)
    inp = prof.input_tokens or (wl.input_tokens_mean if wl else 1024.0)
    out = prof.output_tokens or (wl.output_tokens_mean if wl else 256.0)
    return inp, out


def variant_ep(variant: str) -> int:
    """The EP size a variant names (``ep8`` -> 8, as a shape search names its EP layouts), else 1."""
    match = re.fullmatch(r"ep(\d+)", variant)
    return int(match.group(1)) if match else 1


def shape_of(prof: PrefillProfile | DecodeProfile, instance: Instance) -> ShapeRequest | None:
    """The request that estimates a measured profile at its own points (its EP from an ``ep<E>`` variant); None
    when it has no points to compare (a decode table that does not reach the workload's input length, a
    single-batch curve)."""
    xs = [x for x, _ in measured_points(prof, instance)]
    if not xs or (isinstance(prof, DecodeProfile) and len(xs) < 2):
        return None
    base = {"model": prof.model, "gpu_type": prof.gpu_type, "tp": prof.gpus_per_instance,
            "ep": variant_ep(prof.variant), "variant": prof.variant, "spans_nodes": prof.spans_nodes,
            "roles": (prof.role,)}
    if isinstance(prof, PrefillProfile):
        return ShapeRequest(input_tokens=tuple(xs), **base)  # type: ignore[arg-type]
    inp, out = decode_lengths(prof, instance)
    return ShapeRequest(decode_input_tokens=inp, output_tokens=out, batches=tuple(int(x) for x in xs),
                        **base)  # type: ignore[arg-type]


def compare(measured: PrefillProfile | DecodeProfile, estimated: EstimatedProfile,
            instance: Instance) -> ShapeComparison | None:
    """The pairs of a measured profile and an estimate of the same shape (None when none overlap)."""
    if isinstance(estimated, PrefillProfile):
        ex = [p.input_tokens for p in estimated.max_throughput_by_input]
        ey = [p.max_throughput_tok_per_s for p in estimated.max_throughput_by_input]
    else:
        pts = estimated.points_for(decode_lengths(estimated, instance)[0])
        if isinstance(pts, str):
            return None
        ex, ey = [float(p.batch) for p in pts], [p.tpot_ms for p in pts]
    if (isinstance(measured, DecodeProfile) and isinstance(estimated, DecodeProfile)
            and not _same_lengths(measured, estimated, instance)):
        return None
    pairs = []
    for x, y in measured_points(measured, instance):
        e = _interp(ex, ey, x)
        if e is not None:
            pairs.append(PointPair(x, y, e))
    if not pairs:
        return None
    label = estimated.estimate.label() if estimated.estimate is not None else "estimate"
    return ShapeComparison(measured.key, label, tuple(pairs))


def _same_lengths(measured: DecodeProfile, estimated: DecodeProfile, instance: Instance) -> bool:
    """Whether two decode curves are at the same input and output lengths (within 1%): TPOT grows with the
    context, so curves at other lengths are not comparable point by point."""
    a, b = decode_lengths(measured, instance), decode_lengths(estimated, instance)
    return all(abs(x - y) <= 0.01 * max(x, y) for x, y in zip(a, b, strict=True))


def mismatch(measured: DecodeProfile, estimated: DecodeProfile, instance: Instance) -> str | None:
    """Why an estimated decode curve cannot be compared with a measured one (None when it can)."""
    if _same_lengths(measured, estimated, instance):
        return None
    (ai, ao), (bi, bo) = decode_lengths(measured, instance), decode_lengths(estimated, instance)
    return (f"measured at {ai:g} in / {ao:g} out tokens, estimated at {bi:g} / {bo:g}: TPOT depends on the context, "
            "estimate it at the measured lengths (--decode-input-tokens, --output-tokens)")


def format_comparisons(rows: Sequence[ShapeComparison]) -> str:
    """The per-shape table: points, median and worst ratio, mean absolute error."""
    head = f"{'model':<12} {'role':<8} {'gpu_type':<12} {'GPUs':>4} {'points':>6} {'median est/meas':>15} " \
           f"{'worst':>7} {'MAPE %':>7}  estimator"
    lines = [head, "-" * len(head)]
    for r in rows:
        model, role, gpu, gpus, variant = r.key
        name = model if variant == "default" else f"{model}/{variant}"
        lines.append(f"{name:<12} {role:<8} {gpu:<12} {gpus:>4} {len(r.pairs):>6} {r.median_ratio:>15.2f} "
                     f"{r.worst_ratio:>7.2f} {r.mape:>7.1f}  {r.estimator}")
    lines.append("ratio = estimate / measurement of the profile's quantity: prefill max throughput (above 1: "
                 "optimistic), decode TPOT (above 1: pessimistic)")
    return "\n".join(lines)


def comparison_dict(rows: Sequence[ShapeComparison]) -> list[dict[str, object]]:
    """The comparisons as JSON-ready rows, every pair included."""
    return [{"model": r.key[0], "role": r.key[1], "gpu_type": r.key[2], "gpus_per_instance": r.key[3],
             "variant": r.key[4], "estimator": r.estimator, "median_ratio": r.median_ratio,
             "worst_ratio": r.worst_ratio, "mape_percent": r.mape,
             "points": [{"x": p.x, "measured": p.measured, "estimated": p.estimated, "ratio": p.ratio}
                        for p in r.pairs]} for r in rows]

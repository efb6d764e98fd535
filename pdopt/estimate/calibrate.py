"""Calibrate estimates with a few measurements: one factor per (GPU type, role), fitted, applied, and its residuals.

Where a shape is both measured and estimated, each measured point i gives a pair (e_i, m_i) of the profile's
quantity (maximum prefill throughput, or decode TPOT). The correction of a (GPU type, role) is the factor f that
makes f e_i closest to m_i in relative terms, the least-squares fit of log m_i = log f + log e_i:

    log f = mean_i (log m_i - log e_i)          (f is the geometric mean of m_i / e_i)

a relative fit, so that a 10 ms TPOT and a 100 ms one weigh alike and a factor applies the same way to throughputs
and times. Every pair of every measured shape of that GPU type and role counts (as ``pdopt profile fit`` fits a
prefill model to all the runs of a sweep). The unmeasured shapes of the same GPU type and role then get f x their
estimate; the residuals (f e_i - m_i) / m_i of the pairs say how well one factor explains the measured shapes, and
``calibration_factor`` and ``calibrated_on`` are added to each corrected profile's ``estimate.inputs``. A (GPU type,
role) without any measured shape is left as estimated.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pdopt.estimate.base import EstimatedProfile
from pdopt.estimate.compare import ShapeComparison
from pdopt.instance import DecodeCurve, DecodePoint, DecodeProfile, PrefillPoint, PrefillProfile
from pdopt.instance.profiles import Estimate


@dataclass(frozen=True)
class Correction:
    """The fitted factor of one (GPU type, role), the shapes it rests on and the residuals of its pairs (%)."""

    gpu_type: str
    role: str
    factor: float
    shapes: tuple[tuple[str, str, str, int, str], ...]
    residuals_percent: tuple[float, ...]

    @property
    def pairs(self) -> int:
        """How many (estimate, measurement) pairs the factor was fitted to."""
        return len(self.residuals_percent)

    @property
    def rms_residual_percent(self) -> float:
        """Root mean square of the residuals, %."""
        return math.sqrt(statistics.fmean(r * r for r in self.residuals_percent))


def fit_corrections(comparisons: Iterable[ShapeComparison]) -> dict[tuple[str, str], Correction]:
    """One :class:`Correction` per (GPU type, role) from the comparisons of measured and estimated shapes."""
    groups: dict[tuple[str, str], list[ShapeComparison]] = {}
    for c in comparisons:
        groups.setdefault((c.key[2], c.key[1]), []).append(c)
    out = {}
    for (gpu, role), rows in sorted(groups.items()):
        pairs = [p for r in rows for p in r.pairs]
        factor = math.exp(statistics.fmean(math.log(p.measured / p.estimated) for p in pairs))
        residuals = tuple(100.0 * (factor * p.estimated - p.measured) / p.measured for p in pairs)
        out[(gpu, role)] = Correction(gpu, role, factor, tuple(r.key for r in rows), residuals)
    return out


def _inputs(prof: EstimatedProfile, corr: Correction) -> Estimate:
    assert prof.estimate is not None
    inputs = dict(prof.estimate.inputs)
    inputs["calibration_factor"] = round(corr.factor, 6)
    inputs["calibrated_on"] = "; ".join(f"{k[0]} {k[2]} x{k[3]}" + (f" {k[4]}" if k[4] != "default" else "")
                                        for k in corr.shapes)
    return prof.estimate.model_copy(update={"inputs": inputs})


def apply_correction(prof: EstimatedProfile, corr: Correction) -> EstimatedProfile:
    """The estimated profile with its quantity multiplied by the factor (throughput for prefill, TPOT for
    decode), marked as calibrated in its ``estimate.inputs``."""
    f = corr.factor
    if isinstance(prof, PrefillProfile):
        points = [PrefillPoint(input_tokens=p.input_tokens, max_throughput_tok_per_s=f * p.max_throughput_tok_per_s)
                  for p in prof.max_throughput_by_input]
        return PrefillProfile.model_validate({**prof.model_dump(), "max_throughput_by_input": points,
                                              "estimate": _inputs(prof, corr)})
    curve = [DecodePoint(batch=p.batch, tpot_ms=f * p.tpot_ms) for p in prof.tpot_by_batch]
    table = None if prof.tpot_by_input is None else [
        DecodeCurve(input_tokens=c.input_tokens, tpot_by_batch=[DecodePoint(batch=p.batch, tpot_ms=f * p.tpot_ms)
                                                                for p in c.tpot_by_batch])
        for c in prof.tpot_by_input]
    return DecodeProfile.model_validate({**prof.model_dump(), "tpot_by_batch": curve, "tpot_by_input": table,
                                         "estimate": _inputs(prof, corr)})


def calibrate(profiles: Sequence[EstimatedProfile],
              corrections: dict[tuple[str, str], Correction]) -> list[EstimatedProfile]:
    """Every estimated profile corrected by its (GPU type, role) factor, where one was fitted."""
    return [apply_correction(p, corrections[(p.gpu_type, p.role)]) if (p.gpu_type, p.role) in corrections else p
            for p in profiles]


def format_corrections(corrections: dict[tuple[str, str], Correction]) -> str:
    """The fitted factors and their residuals, one line per (GPU type, role)."""
    if not corrections:
        return "no calibration: no shape is both measured and estimated"
    lines = [f"{'gpu_type':<14} {'role':<8} {'factor':>8} {'pairs':>6} {'shapes':>6} {'rms resid %':>11} "
             f"{'max |resid| %':>13}"]
    for c in corrections.values():
        if c.pairs == 1:  # one pair is fitted exactly: no residual says anything
            spread = f"{'n/a (1 pair)':>11} {'n/a':>13}"
        else:
            spread = f"{c.rms_residual_percent:>11.1f} {max(abs(r) for r in c.residuals_percent):>13.1f}"
        lines.append(f"{c.gpu_type:<14} {c.role:<8} {c.factor:>8.3f} {c.pairs:>6} {len(c.shapes):>6} {spread}")
    lines.append("factor multiplies the estimate: prefill max throughput, decode TPOT (measured = factor x estimate)")
    return "\n".join(lines)

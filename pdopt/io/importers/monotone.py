"""Monotone curves from noisy measurements: a TPOT-vs-batch curve must not fall as the batch grows, yet measured
runs do where noise says so (a third or more of real sweeps). Instead of refusing such a curve, an import may fit
the closest non-decreasing one and say which points it moved and by how much.

Two fits, for points y_1..y_n in batch order with weights w_i (runs averaged into the point):

- ``isotonic``: the least-squares non-decreasing fit, min sum_i w_i (g_i - y_i)^2 subject to g_1 <= ... <= g_n,
  by pool-adjacent-violators (exact: adjacent blocks that violate the order are merged into their weighted mean
  until none does; Barlow et al. 1972). It is non-expansive in the sup norm, ||iso(y) - iso(z)||_inf <=
  ||y - z||_inf, and leaves a non-decreasing curve unchanged, so for a true curve f observed as y = f + e with
  |e_i| <= eps, |iso(y)_i - f_i| <= eps: the fit is within the noise of the truth.
- ``envelope``: the upper envelope g_i = max_{j <= i} y_j (a point below an earlier one is raised to it): also
  within eps of a non-decreasing truth (f_i + e_i <= g_i <= f_i + eps), and never below a measurement, so TPOT is
  never under-stated (conservative for the SLO).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MONOTONE_FITS", "Adjustment", "envelope", "isotonic", "monotone_fit", "moved_note"]

MONOTONE_FITS = ("refuse", "isotonic", "envelope")
"""``refuse``: a falling curve is an error naming the point (the default); the others fit it."""


@dataclass(frozen=True)
class Adjustment:
    """One point a fit moved."""

    index: int
    x: float
    measured: float
    fitted: float

    @property
    def delta(self) -> float:
        """fitted - measured."""
        return self.fitted - self.measured

    def describe(self, x_name: str, y_name: str) -> str:
        """``batch 16: tpot_ms 30.1 -> 30.4 (+0.3)``."""
        return (f"{x_name} {self.x:g}: {y_name} {self.measured:g} -> {self.fitted:g} "
                f"({self.delta:+.4g})")


def isotonic(ys: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """The weighted least-squares non-decreasing fit (pool-adjacent-violators)."""
    w = [1.0] * len(ys) if weights is None else [float(v) for v in weights]
    if len(w) != len(ys) or any(v <= 0 for v in w):
        raise ValueError("weights: one positive weight per point")
    blocks: list[list[float]] = []  # [weighted mean, total weight, count]
    for y, wi in zip(ys, w, strict=True):
        blocks.append([float(y), wi, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for mean, _, count in blocks:
        out += [mean] * int(count)
    return out


def envelope(ys: Sequence[float]) -> list[float]:
    """The upper envelope: each point raised to the largest before it."""
    out: list[float] = []
    for y in ys:
        out.append(max(float(y), out[-1]) if out else float(y))
    return out


def monotone_fit(xs: Sequence[float], ys: Sequence[float], how: str, weights: Sequence[float] | None = None,
                 digits: int = 6) -> tuple[list[float], list[Adjustment]]:
    """Fit ``ys`` (in order of ``xs``) non-decreasing by ``how`` (isotonic or envelope), rounded to ``digits``;
    the fitted values and the points moved."""
    if how == "isotonic":
        fitted = isotonic(ys, weights)
    elif how == "envelope":
        fitted = envelope(ys)
    else:
        raise ValueError(f"unknown monotone fit '{how}' (expected isotonic or envelope)")
    fitted = [round(g, digits) for g in fitted]
    for i in range(1, len(fitted)):  # rounding can not make a fit fall: equal means round equally
        fitted[i] = max(fitted[i], fitted[i - 1])
    moved = [Adjustment(i, float(x), float(y), g) for i, (x, y, g) in enumerate(zip(xs, ys, fitted, strict=True))
             if abs(g - float(y)) > 10.0 ** -digits / 2]
    return fitted, moved


def moved_note(moved: Sequence[Adjustment], how: str, x_name: str, y_name: str) -> str:
    """The provenance note of a fit: which points moved and by how much (empty when none did)."""
    if not moved:
        return ""
    return f"; {how} fit moved {len(moved)} point(s): " + ", ".join(a.describe(x_name, y_name) for a in moved)

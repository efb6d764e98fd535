"""Decode calibration under load: fit a correction of the fixed-concurrency TPOT curve to TPOT measured in a running
P/D system (docs/capacity.md, "Decode calibration under load").

A TPOT(batch) curve T measured at fixed concurrency misses what a running system adds: the prefill hand-off, the
KV cache arriving, scheduling, speculative decoding. The correction is

    TPOT_load(B) = f T(B) + s B / L_out   [ms],

f >= 0 a factor on the curve and s >= 0 the join cost: every admission of a request into a decode instance's batch
stalls that instance's next iteration by s ms. In steady state a batch of B requests, each running L_out
iterations, sees B / L_out admissions per iteration, so the iteration grows by s B / L_out. Both terms are linear
in B on each segment of the curve, so the correction maps the curve's points (b, t) to (b, f t + s b / L_out),
which keeps the curve non-decreasing: the capacity code runs unchanged on the mapped points.

**Data.** Point i is a measured mean TPOT y_i at a mean running batch B_i, given, or from the request rate per
decode instance lambda_i by Little's law on the measured run, B_i = lambda_i L_i y_i / 1000 (L_i the run's mean
output length, default the workload's). T(B_i) is the curve interpolated linearly; a B_i outside the curve's
measured batches is refused, naming the point (no extrapolation, no clamping).

**Fit.** y_i = f T(B_i) + s B_i / L_i is linear in (f, s). Rows are divided by y_i (relative residuals
r_i = prediction / y_i - 1), so that the heavily loaded runs do not outweigh the light ones. With a_i = T(B_i) / y_i,
c_i = B_i / (L_i y_i) and h the join cost held (the KV receive time when ``network.kv_arrival_stalls_decode``; 0
otherwise), each candidate is a non-negative least-squares problem (``scipy.optimize.nnls``) in the part of s
beyond h:

- ``factor``: s = h, minimise sum (f a_i + h c_i - 1)^2 over f >= 0;
- ``join``: f = 1, minimise sum (a_i + (h + s') c_i - 1)^2 over s' >= 0;
- ``both``: minimise over f, s' >= 0.

The form is chosen by what the data support: the one-parameter form of the smaller residual sum of squares (SSE;
``factor`` on a tie); ``both`` only with n >= 3 points and when the F-test of one extra parameter,
F = (SSE_1 - SSE_both) / (SSE_both / (n - 2)), exceeds the 95% quantile of F(1, n - 2).

The verifier calls :func:`fit_decode_load` too (a shared calibration formula, as :mod:`.calibrate`); it maps the
curve and recomputes the capacity with its own code. This module imports only the data model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pdopt.instance import MeasuredTpot

FORMS = ("factor", "join", "both")
"""The fitted forms: f alone (s = the held join cost), s alone (f = 1), or both."""
F_TEST_LEVEL = 0.05
"""Significance level of the F-test that admits the two-parameter form."""
NUMERICAL_SSE = 1e-24
"""An SSE improvement per point below this is rounding, not signal (exact data: no F-test)."""


@dataclass(frozen=True)
class DecodeFit:
    """A decode correction fitted to measured TPOT under load, with how well it fits (see the module docstring)."""

    form: str
    """``factor``, ``join`` or ``both``."""
    factor: float
    """f."""
    join_cost_ms: float
    """The fitted part of s, ms (the held KV receive time, when any, comes on top: :attr:`total_join_ms`)."""
    held_join_ms: float
    """The part of s held, not fitted: the KV receive time with ``kv_arrival_stalls_decode``, else 0."""
    n: int
    batches: tuple[float, ...]
    """B_i: the mean running batch of each point (given, or by Little's law from its rate)."""
    output_tokens: tuple[float, ...]
    """L_i of each point."""
    curve_tpot_ms: tuple[float, ...]
    """T(B_i): the fixed-concurrency curve at each point's batch."""
    measured_tpot_ms: tuple[float, ...]
    residuals: tuple[float, ...]
    """Relative residuals of the chosen form: prediction / measured - 1."""
    rms_residual: float
    """Root mean square of :attr:`residuals`."""
    sse: dict[str, float]
    """Residual sum of squares (relative) of every candidate form fitted (``both`` only with n >= 3)."""
    f_statistic: float | None
    """The F statistic of ``both`` against the better one-parameter form (None with n < 3)."""
    kv_receive_ms: float | None = None
    """Time to receive one prompt's KV cache over the decode instance's NICs, ms (None without NIC bandwidth)."""

    @property
    def total_join_ms(self) -> float:
        """s as applied: the fitted part plus the held one."""
        return self.join_cost_ms + self.held_join_ms

    @property
    def join_per_kv_receive(self) -> float | None:
        """s as a multiple of the KV receive time of one prompt (an interpretation: "the join cost equals 1.3 x the
        time to receive a prompt's KV"); None without a KV receive time."""
        if self.kv_receive_ms is None or self.kv_receive_ms <= 0.0:
            return None
        return self.total_join_ms / self.kv_receive_ms


@dataclass(frozen=True)
class DecodeCorrection:
    """The correction the capacity model and the simulator apply: (b, t) -> (b, f t + s b / L_out)."""

    factor: float
    join_cost_ms: float
    """s as applied, ms (KV receive time included when held)."""
    origin: str
    """The fitted form (``factor``, ``join``, ``both``), ``stated`` (``load_correction``) or ``kv_arrival`` (only
    the KV receive time, from ``kv_arrival_stalls_decode``)."""
    fit: DecodeFit | None = None
    kv_receive_ms: float | None = None

    def detail(self) -> dict[str, float | str]:
        """What the capacity table shows of the correction."""
        out: dict[str, float | str] = {"decode_correction": self.origin, "load_factor": self.factor,
                                       "join_cost_ms": self.join_cost_ms}
        if self.fit is not None:
            out.update(fit_rms_rel_residual=self.fit.rms_residual, fit_points=float(self.fit.n))
            if self.fit.join_per_kv_receive is not None:
                out["join_per_kv_receive"] = self.fit.join_per_kv_receive
        if self.kv_receive_ms is not None:
            out["kv_receive_ms"] = self.kv_receive_ms
        return out


def point_batch(point: MeasuredTpot, output_tokens: float) -> float:
    """B of one point: its mean batch, or Little's law on its run, lambda L_out TPOT / 1000."""
    if point.mean_batch is not None:
        return point.mean_batch
    assert point.request_rate_rps is not None  # the data model requires one of the two
    return point.request_rate_rps * output_tokens * point.tpot_mean_ms / 1000.0


def _nnls(columns: list[list[float]], target: list[float]) -> tuple[list[float], float]:
    """Non-negative least squares: coefficients and the residual sum of squares."""
    from scipy.optimize import nnls  # deferred: scipy loads only when a fit is made

    a = np.array(columns, dtype=float).T
    b = np.array(target, dtype=float)
    x, _ = nnls(a, b)
    r = a @ x - b
    return [float(v) for v in x], float(r @ r)


def fit_decode_load(points: Sequence[MeasuredTpot], batches: Sequence[float], tpots_ms: Sequence[float],
                    output_tokens_mean: float, kv_receive_ms: float | None = None,
                    held_join_ms: float = 0.0) -> DecodeFit:
    """Fit f and s of the correction to ``points`` on the curve (``batches``, ``tpots_ms``); see the module
    docstring. ``output_tokens_mean``: L_out of points that state none. ``held_join_ms``: a part of s taken as
    known (the KV receive time under ``kv_arrival_stalls_decode``). ValueError, naming the point, when a point's
    batch lies outside the curve's measured batches or when the fit makes every TPOT zero."""
    from scipy import stats  # deferred: scipy loads only when a fit is made

    if not points:
        raise ValueError("measured_tpot: no points to fit")
    xs = np.array(batches, dtype=float)
    ys = np.array(tpots_ms, dtype=float)
    bs, ls, ts, ms = [], [], [], []
    for i, pt in enumerate(points):
        out = pt.output_tokens_mean if pt.output_tokens_mean is not None else output_tokens_mean
        b = point_batch(pt, out)
        if not xs[0] <= b <= xs[-1]:
            how = (f"mean_batch {b:g}" if pt.mean_batch is not None else
                   f"mean batch {b:.4g} (Little's law: request_rate_rps {pt.request_rate_rps:g} x output tokens "
                   f"{out:g} x tpot_mean_ms {pt.tpot_mean_ms:g} / 1000)")
            raise ValueError(f"measured_tpot[{i}]: {how} is outside the decode curve's measured batches "
                             f"[{xs[0]:g}, {xs[-1]:g}] (no extrapolation)")
        bs.append(b)
        ls.append(out)
        ts.append(float(np.interp(b, xs, ys)))
        ms.append(pt.tpot_mean_ms)
    n = len(bs)
    a = [t / y for t, y in zip(ts, ms, strict=True)]
    c = [b / (out * y) for b, out, y in zip(bs, ls, ms, strict=True)]
    rhs = [1.0 - held_join_ms * ci for ci in c]
    (f_only,), sse_factor = _nnls([a], rhs)
    (s_only,), sse_join = _nnls([c], [r - ai for r, ai in zip(rhs, a, strict=True)])
    sse = {"factor": sse_factor, "join": sse_join}
    form, f, s = ("join", 1.0, s_only) if sse_join < sse_factor else ("factor", f_only, 0.0)
    f_stat: float | None = None
    if n >= 3:
        (f2, s2), sse_both = _nnls([a, c], rhs)
        sse["both"] = sse_both
        sse_one = min(sse_factor, sse_join)
        gain = sse_one - sse_both
        if gain <= NUMERICAL_SSE * n:  # the one-parameter form already fits as well as rounding allows
            f_stat = 0.0
        elif sse_both <= 0.0:
            f_stat = math.inf
        else:
            f_stat = gain / (sse_both / (n - 2))
        if f_stat > float(stats.f.ppf(1.0 - F_TEST_LEVEL, 1, n - 2)):
            form, f, s = "both", f2, s2
    if f == 0.0 and s + held_join_ms == 0.0:
        raise ValueError("measured_tpot: the fitted correction makes every TPOT zero (factor 0, join cost 0); the "
                         "points do not describe this curve")
    res = [(f * t + (s + held_join_ms) * b / out) / y - 1.0 for t, b, out, y in zip(ts, bs, ls, ms, strict=True)]
    return DecodeFit(
        form=form, factor=f, join_cost_ms=s, held_join_ms=held_join_ms, n=n, batches=tuple(bs),
        output_tokens=tuple(ls), curve_tpot_ms=tuple(ts), measured_tpot_ms=tuple(ms), residuals=tuple(res),
        rms_residual=math.sqrt(sum(r * r for r in res) / n), sse=sse, f_statistic=f_stat,
        kv_receive_ms=kv_receive_ms,
    )

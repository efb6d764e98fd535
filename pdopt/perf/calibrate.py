"""Calibrate the G/G/1 prefill model on a measured sweep of (request rate, TTFT) points of ONE prefill instance.

A sweep of ``vllm bench serve --request-rate R`` runs (``pdopt.io.importers.import_vllm_bench`` returns its points)
shows how TTFT grows with load. The capacity model (:mod:`pdopt.perf.capacity`, ``queue_model: gg1``) predicts

    TTFT_stat(lambda) = T_overhead + sojourn_stat(lambda; mu, c = 1, ca2, cs2),    mu = X / L_in,

where sojourn_stat is :func:`pdopt.perf.queueing.sojourn_statistic`: for the mean the Pollaczek-Khinchine/Kingman
value 1/mu + rho (ca2 + cs2) / (2 (mu - lambda)), rho = lambda / mu, exact for Poisson arrivals (ca2 = 1) and
any service distribution; percentiles by the two-moment gamma approximation. :func:`fit_gg1` chooses the service
SCV ``cs2``, the overhead ``T_overhead`` and, when not given, the max prefill throughput ``X`` so that the model
matches the points, and reports how well it does. ``ca2`` (the arrival SCV of the benchmark's traffic) is given,
not fitted: 1 for ``vllm bench serve``'s default Poisson arrivals, 1 / burstiness for its gamma arrivals.

The fit is least squares on RELATIVE residuals (predicted / measured - 1), one per measured statistic and run,
by ``scipy.optimize.least_squares`` (trust-region reflective, with bounds cs2 in [0, 20], T_overhead >= 0, and
X > the largest rate x L_in, since a queue at or above its service rate has no steady state). Relative residuals
keep the few heavily loaded runs, whose TTFT is large and noisy, from outweighing the lightly loaded ones that fix
the overhead. With X given the mean model is linear in (T_overhead, cs2), and the unconstrained linear least
squares solution (clipped to the bounds) starts the solver; with X fitted, X is first scanned over a geometric
grid above the largest rate, solving the bounded linear problem in (T_overhead, cs2) at each grid value, and the
best grid point starts the three-parameter fit.

Points are dicts with ``request_rate_rps`` and ``ttft_mean_s`` (and optionally ``ttft_p90_s`` etc.), as
``import_vllm_bench`` writes them, or ``(rate, mean TTFT)`` tuples. Dict points with ``rate_configured`` false
(``--request-rate inf``: a saturated queue, whose TTFT grows with the run's length) or with a ``max_concurrency``
(a closed loop, not an open arrival stream) are left out, and the result says which and why.

The second half calibrates an AGGREGATED instance's iteration-time model (prefill and decode in one engine) to
measured runs at several request rates: :func:`fit_aggregated`, documented in :mod:`pdopt.perf.aggregated_fit`
(which the planner calls). It lives here, generic over the forward model (a ``predict(iteration, rate)`` callable
giving the two means), so that the verifier can fit with its own statement of the analysis without importing
the planner's capacity code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pdopt.instance import AggregatedProfile, IterationModel, MeasuredRun, Workload
from pdopt.perf.queueing import STATISTICS, max_arrival_rate, sojourn_statistic

FloatArray = npt.NDArray[np.float64]

SCV_BOUNDS = (0.0, 20.0)
"""Bounds on the fitted service SCV: 0 (deterministic) to 20 (far burstier than any length mix seen in practice)."""
THROUGHPUT_GRID = 80
"""SweepGrid values of mu / max rate - 1, geometric from 1e-3 to 1e3, scanned to start the fit when X is fitted."""

Point = Mapping[str, Any] | Sequence[float]
"""A measured point: a dict as ``import_vllm_bench`` writes it, or a (rate req/s, mean TTFT s) pair."""


@dataclass(frozen=True)
class FitResult:
    """A G/G/1 prefill model fitted to measured (rate, TTFT) points, with its error on those points."""

    service_scv: float
    """Fitted cs2: the squared coefficient of variation of the prefill service time."""
    overhead_s: float
    """Fitted T_overhead (s): the part of TTFT that does not queue (P->D transfer, client I/O, tokenisation...)."""
    max_throughput_tok_per_s: float
    """X: given, or fitted when ``throughput_fitted``."""
    mu: float
    """Service rate X / L_in (req/s)."""
    input_tokens: float
    """L_in used for mu."""
    arrival_scv: float
    """ca2 of the benchmark's arrivals (given, not fitted)."""
    rmse_s: float
    """Root mean square of predicted - measured TTFT over every fitted value (s)."""
    max_rel_error: float
    """Largest |predicted - measured| / measured over every fitted value."""
    n_points: int
    """Runs (distinct measured points) used."""
    statistics: tuple[str, ...]
    """The TTFT statistics fitted: ``("mean",)``, or ``("mean", "p90")`` etc. when percentiles were used."""
    throughput_fitted: bool
    residuals_s: tuple[tuple[float, str, float, float], ...] = ()
    """Per fitted value: (rate req/s, statistic, measured s, predicted s)."""
    excluded: tuple[str, ...] = ()
    """Points left out, each with the reason."""
    at_bound: tuple[str, ...] = ()
    """Parameters that ended on a bound (``service_scv=0``, ``overhead_s=0``, ...): the data do not pin them down,
    or the model does not describe the data."""

    def predict_ttft_s(self, rate_rps: float, statistic: str = "mean") -> float:
        """Modelled TTFT ``statistic`` at arrival rate ``rate_rps`` (inf at or above mu)."""
        return self.overhead_s + sojourn_statistic(rate_rps, self.mu, 1, self.arrival_scv, self.service_scv,
                                                   statistic)

    def capacity_rps(self, target_s: float, statistic: str = "mean") -> float:
        """Largest arrival rate whose modelled TTFT ``statistic`` is at most ``target_s`` (0 when none is).

        :func:`pdopt.perf.queueing.max_arrival_rate` with c = 1 and the budget ``target_s - overhead_s``: the value
        ``pdopt.perf.capacity.prefill_capacity`` gives with ``queue_model: gg1`` and :meth:`workload_fields`.
        """
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
        budget = target_s - self.overhead_s
        if budget <= 0.0:
            return 0.0
        return max_arrival_rate(self.mu, 1, self.arrival_scv, self.service_scv, budget, statistic)

    def workload_fields(self) -> dict[str, Any]:
        """The workload settings that make the capacity model use this fit: ``queue_model: gg1``, ``service_scv``,
        ``ttft_overhead_s`` (``arrival_scv`` is the production traffic's, not the benchmark's: set it apart)."""
        return {"queue_model": "gg1", "service_scv": self.service_scv, "ttft_overhead_s": self.overhead_s}

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": "gg1", "service_scv": self.service_scv, "overhead_s": self.overhead_s,
            "max_throughput_tok_per_s": self.max_throughput_tok_per_s, "throughput_fitted": self.throughput_fitted,
            "service_rate_rps": self.mu, "input_tokens": self.input_tokens, "arrival_scv": self.arrival_scv,
            "rmse_s": self.rmse_s, "max_rel_error": self.max_rel_error, "n_points": self.n_points,
            "statistics": list(self.statistics),
            "residuals": [{"request_rate_rps": r, "statistic": s, "measured_s": m, "predicted_s": p}
                          for r, s, m, p in self.residuals_s],
            "excluded": list(self.excluded), "at_bound": list(self.at_bound),
        }


@dataclass(frozen=True)
class _Obs:
    """One measured value: TTFT ``statistic`` at ``rate``."""

    rate: float
    statistic: str
    ttft_s: float


def _positive_finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return float(value)


def _observations(points: Sequence[Point], percentiles: Sequence[str]) -> tuple[list[_Obs], int, list[str]]:
    """Measured values, number of runs used, and the reasons runs were left out."""
    obs: list[_Obs] = []
    excluded: list[str] = []
    used = 0
    for i, pt in enumerate(points):
        if isinstance(pt, Mapping):
            where = f"point {i}" + (f" ({pt['source']})" if pt.get("source") else "")
            if pt.get("rate_configured") is False:
                excluded.append(f"{where}: unlimited request rate (a saturated queue has no steady-state TTFT)")
                continue
            if pt.get("max_concurrency") is not None:
                excluded.append(f"{where}: max_concurrency {pt['max_concurrency']} (a closed loop, not an open "
                                "arrival stream)")
                continue
            if "request_rate_rps" not in pt or "ttft_mean_s" not in pt:
                raise ValueError(f"{where}: a point needs 'request_rate_rps' and 'ttft_mean_s'")
            rate = _positive_finite(pt["request_rate_rps"], f"{where}: request_rate_rps")
            obs.append(_Obs(rate, "mean", _positive_finite(pt["ttft_mean_s"], f"{where}: ttft_mean_s")))
            for stat in percentiles:
                value = pt.get(f"ttft_{stat}_s")
                if value is not None:
                    obs.append(_Obs(rate, stat, _positive_finite(value, f"{where}: ttft_{stat}_s")))
        else:
            if len(pt) != 2:
                raise ValueError(f"point {i}: a tuple point is (request rate req/s, mean TTFT s), got {pt!r}")
            rate = _positive_finite(pt[0], f"point {i}: request rate")
            obs.append(_Obs(rate, "mean", _positive_finite(pt[1], f"point {i}: mean TTFT")))
        used += 1
    return obs, used, excluded


def _predict(obs: Sequence[_Obs], cs2: float, overhead: float, mu: float, ca2: float) -> FloatArray:
    out: FloatArray = np.array([overhead + sojourn_statistic(o.rate, mu, 1, ca2, cs2, o.statistic) for o in obs],
                               dtype=float)
    return out


def _linear_start(rates: FloatArray, ttft: FloatArray, mu: float, ca2: float,
                  bounded: bool) -> tuple[float, float, float]:
    """(cs2, overhead, relative SSR) of the mean model at fixed mu, relative least squares.

    mean TTFT = overhead + 1/mu + q (ca2 + cs2), q = rho / (2 (mu - lambda)): linear in (overhead, cs2).
    ``bounded`` solves with the fit's bounds (lsq_linear), else unconstrained and then clipped.
    """
    from scipy.optimize import lsq_linear  # deferred: scipy loads only when needed

    q = rates / mu / (2.0 * (mu - rates))
    a = np.column_stack([q, np.ones_like(q)]) / ttft[:, None]
    b = (ttft - 1.0 / mu - q * ca2) / ttft
    if bounded:
        sol = lsq_linear(a, b, bounds=([SCV_BOUNDS[0], 0.0], [SCV_BOUNDS[1], np.inf]))
        cs2, overhead = float(sol.x[0]), float(sol.x[1])
    else:
        (cs2, overhead), *_ = np.linalg.lstsq(a, b, rcond=None)
        cs2, overhead = float(np.clip(cs2, *SCV_BOUNDS)), max(float(overhead), 0.0)
    res = a @ np.array([cs2, overhead]) - b
    return cs2, overhead, float(res @ res)


def fit_gg1(points: Sequence[Point], input_tokens: float, max_throughput_tok_per_s: float | None = None,
            arrival_scv: float = 1.0, percentiles: Sequence[str] = ()) -> FitResult:
    """Fit the G/G/1 TTFT model to a measured sweep of one prefill instance; see the module docstring.

    ``input_tokens``: the sweep's mean input length L_in. ``max_throughput_tok_per_s``: X, or None to fit it
    (then at least 3 distinct rates are needed, else 2). ``arrival_scv``: ca2 of the benchmark's arrivals.
    ``percentiles``: TTFT percentiles (``p50``, ``p90``, ``p95``, ``p99``) to fit besides the mean where a point
    has them (``ttft_p90_s`` ...). By default only the mean is fitted: its formula is exact for M/G/1, while the
    percentile formula is a two-moment approximation whose own error (a few percent, see
    :mod:`pdopt.perf.queueing`) would bias the fitted SCV.

    Raises ValueError for fewer distinct rates than that, non-positive or non-finite rates or TTFTs, and, when X
    is given, rates at or above the service rate X / L_in.
    """
    from scipy.optimize import least_squares  # deferred: scipy loads only when needed

    l_in = _positive_finite(input_tokens, "input_tokens")
    if isinstance(arrival_scv, bool) or not math.isfinite(arrival_scv) or arrival_scv < 0:
        raise ValueError(f"arrival_scv must be a finite number >= 0, got {arrival_scv!r}")
    for stat in percentiles:
        if stat == "mean" or stat not in STATISTICS:
            raise ValueError(f"percentiles: {stat!r} is not one of {', '.join(s for s in STATISTICS if s != 'mean')}")
    stats_used = ("mean", *dict.fromkeys(percentiles))
    obs, n_runs, excluded = _observations(points, stats_used[1:])
    fit_x = max_throughput_tok_per_s is None
    need = 3 if fit_x else 2
    distinct = sorted({o.rate for o in obs})
    if len(distinct) < need:
        what = "(service SCV, overhead and max throughput)" if fit_x else "(service SCV and overhead)"
        left = f"; {len(excluded)} left out: {'; '.join(excluded)}" if excluded else ""
        raise ValueError(f"fitting {what} needs points at {need} or more distinct request rates, got "
                         f"{len(distinct)}{left}")
    max_rate = distinct[-1]
    means = [o for o in obs if o.statistic == "mean"]
    rates: FloatArray = np.array([o.rate for o in means], dtype=float)
    ttft_mean: FloatArray = np.array([o.ttft_s for o in means], dtype=float)
    measured: FloatArray = np.array([o.ttft_s for o in obs], dtype=float)
    ca2 = float(arrival_scv)

    if not fit_x:
        x = _positive_finite(max_throughput_tok_per_s, "max_throughput_tok_per_s")
        mu = x / l_in
        if max_rate >= mu:
            raise ValueError(f"request rate {max_rate:g} req/s is at or above the service rate X / L_in = {x:g} / "
                             f"{l_in:g} = {mu:.6g} req/s: the queue is unstable there (no steady-state TTFT); "
                             "drop that point, or check X and L_in")
        cs2_0, oh_0, _ = _linear_start(rates, ttft_mean, mu, ca2, bounded=False)

        def residuals2(theta: FloatArray) -> FloatArray:
            return _predict(obs, float(theta[0]), float(theta[1]), mu, ca2) / measured - 1.0

        sol = least_squares(residuals2, np.array([cs2_0, oh_0]), bounds=([SCV_BOUNDS[0], 0.0], [SCV_BOUNDS[1], np.inf]),
                            method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        cs2, overhead = float(sol.x[0]), float(sol.x[1])
    else:
        mu_lo = max_rate * (1.0 + 1e-9)
        grid = max_rate * (1.0 + np.geomspace(1e-3, 1e3, THROUGHPUT_GRID))
        starts = []
        for m in grid:
            c0, o0, ssr = _linear_start(rates, ttft_mean, float(m), ca2, bounded=True)
            starts.append((ssr, c0, o0, float(m)))
        _, cs2_0, oh_0, mu_0 = min(starts)

        def residuals3(theta: FloatArray) -> FloatArray:
            return _predict(obs, float(theta[0]), float(theta[1]), float(theta[2]), ca2) / measured - 1.0

        sol = least_squares(residuals3, np.array([cs2_0, oh_0, mu_0]),
                            bounds=([SCV_BOUNDS[0], 0.0, mu_lo], [SCV_BOUNDS[1], np.inf, np.inf]),
                            method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        cs2, overhead, mu = float(sol.x[0]), float(sol.x[1]), float(sol.x[2])
        x = mu * l_in

    predicted = _predict(obs, cs2, overhead, mu, ca2)
    err = predicted - measured
    at_bound = []
    if cs2 <= SCV_BOUNDS[0] + 1e-6:
        at_bound.append(f"service_scv={SCV_BOUNDS[0]:g}")
    if cs2 >= SCV_BOUNDS[1] - 1e-6:
        at_bound.append(f"service_scv={SCV_BOUNDS[1]:g}")
    if overhead <= 1e-6:
        at_bound.append("overhead_s=0")
    if fit_x and mu <= max_rate * (1.0 + 1e-6):
        at_bound.append("max_throughput_tok_per_s=largest rate x L_in")
    return FitResult(
        service_scv=cs2, overhead_s=overhead, max_throughput_tok_per_s=x, mu=mu, input_tokens=l_in,
        arrival_scv=ca2, rmse_s=float(np.sqrt(np.mean(err * err))),
        max_rel_error=float(np.max(np.abs(err) / measured)), n_points=n_runs,
        statistics=tuple(s for s in stats_used if any(o.statistic == s for o in obs)), throughput_fitted=fit_x,
        residuals_s=tuple((o.rate, o.statistic, o.ttft_s, float(p)) for o, p in zip(obs, predicted, strict=True)),
        excluded=tuple(excluded), at_bound=tuple(at_bound),
    )



# Aggregated instances: the iteration model calibrated to measured runs (documented in pdopt/perf/aggregated_fit.py)

AGG_FITTED = ("overhead_ms", "per_prefill_token_ms", "per_decode_seq_ms")
"""The coefficients :func:`fit_aggregated` fits: a, b, e (e is held too when the workload has O <= 1)."""
AGG_HELD = ("prefill_quadratic_ms", "per_context_token_ms")
"""The coefficients held at the profile's values: c and d, which mean TTFT and TPOT cannot tell from b and e."""
SATURATED_RESIDUAL = 1e3
"""Relative residual of each mean of a run that a candidate saturates, so that the solver steps back."""
START_GRID = 32
"""Values of a scanned along the zero-load line for the start."""

Predict = Callable[[IterationModel, float], "tuple[float, float] | None"]
"""A forward model of the two means: (iteration model, rate req/s) -> (mean TTFT s, mean TPOT ms), or None when
the engine has no steady state at that rate. The planner passes one on
:func:`pdopt.perf.aggregated.aggregated_load`, the verifier one on its own statement of the analysis."""


@dataclass(frozen=True)
class _AggSetup:
    """The load-independent numbers of the start (ms, tokens): per prompt length (1 - h) L, (1 - h^2) L^2 and its
    probability; n = max(O - 1, 0); ctx = E[L] + O/2; the token budget K; the TTFT overhead; the held c and d."""

    tokens: tuple[float, ...]
    quad: tuple[float, ...]
    probs: tuple[float, ...]
    n: float
    ctx: float
    budget: float
    overhead_s: float
    c: float
    d: float


def _agg_setup(profile: AggregatedProfile, workload: Workload, overhead_s: float) -> _AggSetup:
    h, dist, out = workload.prefix_cache_hit_rate, workload.input_length_distribution, workload.output_tokens_mean
    lengths = [(workload.input_tokens_mean, 1.0)] if dist is None else [
        (x, w / sum(dist.weights)) for x, w in zip(dist.lengths, dist.weights, strict=True)]
    return _AggSetup(tuple((1 - h) * x for x, _ in lengths), tuple((1 - h * h) * x * x for x, _ in lengths),
                     tuple(p for _, p in lengths), max(out - 1.0, 0.0), sum(x * p for x, p in lengths) + out / 2.0,
                     float(profile.token_budget), overhead_s, profile.iteration.prefill_quadratic_ms,
                     profile.iteration.per_context_token_ms)


@dataclass(frozen=True)
class AggregatedSolution:
    """What :func:`fit_aggregated` found: the calibrated model and the least-squares solution behind it."""

    iteration: IterationModel
    fitted: tuple[str, ...]
    held: tuple[str, ...]
    start: dict[str, float]
    """The starting point (fitted coefficients)."""
    residuals: FloatArray
    """Relative residuals predicted / measured - 1 at the solution: TTFT, TPOT of run 0, then of run 1, ..."""
    jacobian: FloatArray
    """Their Jacobian in the fitted coefficients (ms units), for standard errors."""
    evaluations: int = 0
    """Calls of the forward model the fit made (the start's scan, the solver, the checks)."""


def _agg_start(s: _AggSetup, runs: Sequence[MeasuredRun], cost: Any) -> FloatArray:
    """At zero load TPOT_0 = a + e + d ctx and TTFT_0 = overhead + a E[max(1, ceil((1 - h) L / K))] + b E[(1 - h) L]
    + c E[(1 - h^2) L^2] (an arrival at an idle engine starts at once); straight lines through the lighter half of
    the runs give TPOT_0 and TTFT_0 (floored at a tenth of the least measured value). How TPOT_0 splits between a
    and e stays open: a is scanned over (0, a_max] (a_max keeps b, e >= 0), b and e follow, and the candidate of
    least cost starts the fit."""
    rates = np.array([r.request_rate_rps for r in runs])
    cut = np.unique(rates)[max(1, (len(np.unique(rates)) - 1) // 2)]
    zero = []
    for y in (np.array([r.ttft_mean_s for r in runs]), np.array([r.tpot_mean_ms for r in runs])):
        icept = float(np.polyfit(rates[rates <= cut], y[rates <= cut], 1)[1])
        zero.append(max(icept, 0.1 * float(np.min(y))) if math.isfinite(icept) else float(np.min(y)))
    k = sum(max(1, math.ceil(t / s.budget - 1e-9)) * p for t, p in zip(s.tokens, s.probs, strict=True))
    f0 = (zero[0] - s.overhead_s) * 1000.0 - s.c * sum(q * p for q, p in zip(s.quad, s.probs, strict=True))
    t0 = zero[1] - s.d * s.ctx
    a_max = f0 / k if s.n == 0 else min(t0, f0 / k)
    if not a_max > 0.0:  # the held c, d or the overhead already explain the light runs: start small
        a_max = 0.1 * (zero[1] if s.n > 0 else zero[0] * 1000.0)
    mean_tok = sum(t * p for t, p in zip(s.tokens, s.probs, strict=True))
    cands = [np.array([a, max(f0 - a * k, 0.0) / mean_tok] + ([max(t0 - a, 0.0)] if s.n > 0 else []))
             for a in a_max * np.arange(1, START_GRID + 1) / START_GRID]
    return min(cands, key=lambda th: float(cost(th)))


def fit_aggregated(runs: Sequence[MeasuredRun], profile: AggregatedProfile, workload: Workload, overhead_s: float,
                   predict: Predict) -> AggregatedSolution:
    """Fit a, b, e of ``profile``'s iteration model to ``runs`` with c, d held: the core of
    :func:`pdopt.perf.aggregated_fit.fit_iteration`, which documents the model, the choice and the errors.

    ``predict(iteration, rate_rps)`` is the forward model (:data:`Predict`): the caller's statement of the
    analysis' two means at the runs' workload (lengths, arrivals) and TTFT overhead ``overhead_s``; ``workload``
    and ``overhead_s`` here only set the start and the error messages.

    Least squares on the relative residuals of both means of every run (TTFT only when O <= 1), by
    ``scipy.optimize.least_squares`` (trust-region reflective, a, b, e >= 0; a candidate that saturates a run
    scores :data:`SATURATED_RESIDUAL` per mean), from :func:`_agg_start`. ValueError: fewer distinct rates than
    fitted coefficients, a run saturated under every candidate (with a = b = e = 0), a fit that saturates a run."""
    from scipy.optimize import least_squares  # deferred: scipy loads only when needed

    if isinstance(overhead_s, bool) or not math.isfinite(overhead_s) or overhead_s < 0:
        raise ValueError(f"overhead_s must be a finite number >= 0, got {overhead_s!r}")
    s = _agg_setup(profile, workload, overhead_s)
    names = AGG_FITTED if s.n > 0 else AGG_FITTED[:2]
    held = AGG_HELD if s.n > 0 else (*AGG_HELD, AGG_FITTED[2])
    e_held = profile.iteration.per_decode_seq_ms
    runs = list(runs)
    if len({r.request_rate_rps for r in runs}) < len(names):
        raise ValueError(f"fitting {', '.join(names)} needs measured runs at {len(names)} or more distinct request "
                         f"rates, got {len({r.request_rate_rps for r in runs})}")
    calls = 0

    def model(coef: tuple[float, float, float]) -> IterationModel:
        return profile.iteration.model_copy(update=dict(zip(AGG_FITTED, coef, strict=True)))

    def means(coef: tuple[float, float, float], rate: float) -> tuple[float, float] | None:
        nonlocal calls
        calls += 1
        return predict(model(coef), rate)

    lightest = (1e-9, 0.0, 0.0 if s.n > 0 else e_held)
    for r in runs:  # every load grows with a, b, e: the lightest candidate is their limit at 0 (a = 0 exactly
        # would leave a prompt no service time at all when c = d = 0, which the analysis calls saturated)
        if means(lightest, r.request_rate_rps) is None:
            raise ValueError(f"the run at {r.request_rate_rps:g} req/s is saturated under every candidate: even with "
                             f"{', '.join(names)} = 0, the held c = {s.c:g} and d = {s.d:g} ms and the token budget "
                             f"{profile.token_budget} give the engine no steady state at that rate")
    per_run = 2 if s.n > 0 else 1

    def coefs(theta: FloatArray) -> tuple[float, float, float]:
        return float(theta[0]), float(theta[1]), float(theta[2]) if s.n > 0 else e_held

    def residuals(theta: FloatArray) -> FloatArray:
        out: FloatArray = np.full(per_run * len(runs), SATURATED_RESIDUAL)
        coef = coefs(theta)
        for i, r in enumerate(runs):
            m = means(coef, r.request_rate_rps)
            if m is not None:
                out[per_run * i:per_run * (i + 1)] = np.array([m[0] / r.ttft_mean_s, m[1] / r.tpot_mean_ms]
                                                              )[:per_run] - 1.0
        return out

    theta0 = _agg_start(s, runs, lambda th: float(np.sum(np.square(residuals(th)))))
    sol = least_squares(residuals, theta0, bounds=(np.zeros(len(names)), np.full(len(names), np.inf)),
                        method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12)
    theta = np.maximum(np.asarray(sol.x, dtype=float), 0.0)
    res = residuals(theta)
    coef = coefs(theta)
    saturated = [f"{r.request_rate_rps:g}" for r, bad in zip(runs, res[::per_run] == SATURATED_RESIDUAL, strict=True)
                 if bad]
    if saturated:
        raise ValueError(f"the fitted model (a = {coef[0]:.6g}, b = {coef[1]:.6g}, e = {coef[2]:.6g} ms) saturates the "
                         f"runs at {', '.join(saturated)} req/s: the model does not describe these runs (overloaded, "
                         "or measured at other lengths than the workload's?)")
    fitted = dict(zip(names, (float(v) for v in theta), strict=True))
    source = (f"calibrated to {len(runs)} measured runs ({', '.join(names)} fitted; {', '.join(held)} held"
              + (f" from: {profile.iteration.source}" if profile.iteration.source else "") + ")")
    return AggregatedSolution(
        iteration=profile.iteration.model_copy(update={**fitted, "source": source}), fitted=names, held=held,
        start=dict(zip(names, (float(v) for v in theta0), strict=True)), residuals=res,
        jacobian=np.asarray(sol.jac, dtype=float), evaluations=calls)

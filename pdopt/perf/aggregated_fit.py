"""Calibrate an aggregated instance's iteration-time model to measured runs at several request rates.

A sweep of ``vllm bench serve --request-rate R`` runs against one aggregated engine (prefill and decode in one
engine, chunked prefill) reports, per rate, the mean TTFT and the mean TPOT (``MeasuredRun``; an aggregated
profile keeps them in ``measured_runs``). The capacity of such an instance (:mod:`pdopt.perf.aggregated`,
docs/capacity.md "Aggregated instances") follows from the iteration model t = a + b P + c Q + d C + e B (ms) by
a mean-value analysis; :func:`fit_iteration` chooses the coefficients that make that analysis reproduce the
measured means, as :func:`pdopt.perf.calibrate.fit_gg1` does for a prefill instance's queue.

The model's means (lambda in req/ms, h the prefix-cache hit rate, L the prompt lengths, O the output tokens,
n = O - 1, ctx = E[L] + O/2; w_p(L) = b (1 - h) L + c (1 - h^2) L^2, delta = e + d ctx, W = E[w_p] + n delta):

    TPOT(lambda) = a / (1 - lambda W) + delta
    TTFT(lambda) = overhead + (1 - rho_p) tau_d / 2 + W_q + E[S_own]        (docs/capacity.md, step 5)

with tau_d = a + delta B, B = lambda n TPOT, the prompt queue's service S(L) = (1 - h) L tau_d / (K - B) + w_p(L)
(utilisation rho_p = lambda E[S], Allen-Cunneen wait W_q) and S_own(L) = ceil((1 - h) L / (K - B)) tau_d + w_p(L).

**What the runs identify.** The coefficients reach the means only through a few combinations:

- a, the fixed cost per iteration;
- delta = e + d ctx, one decode request's cost per iteration, at the workload's single mean context ctx;
- E[w_p] = b E[(1 - h) L] + c E[(1 - h^2) L^2], a prompt's prefill work (its second moment E[w_p^2] enters only
  the prompt queue's SCV, weakly, and only when the lengths vary).

At low load TPOT = (a + delta) + a W lambda + a W^2 lambda^2 + ...: the intercept gives a + delta, the slope
a W and the curvature W, so TPOT against rate alone identifies a, delta and W (hence E[w_p] = W - n delta);
TTFT adds the zero-load value a (1/2 + E[ceil((1 - h) L / K)]) + E[w_p] + overhead and the prompt queue's
growth, which pin a and E[w_p] further. So three numbers are identified, and no more: e and d cannot be told
apart (they enter only as e + d ctx), nor b and c (only as E[w_p]). The fit therefore takes one coefficient of
each pair and holds the other at the profile's value (write 0 when unknown):

- fitted: a (``overhead_ms``), b (``per_prefill_token_ms``), e (``per_decode_seq_ms``);
- held: c (``prefill_quadratic_ms``) and d (``per_context_token_ms``).

A wrong held value does not spoil the fit at the benchmark's lengths: the fitted e absorbs d's error exactly
(e_fit = e + (d - d_held) ctx) and b absorbs most of c's (b_fit ~ b + (c - c_held) E[(1 - h^2) L^2] /
E[(1 - h) L]); the held values matter when the calibrated model is used at other lengths. With O <= 1 there is
no TPOT, e plays no part and is held too (a and b are fitted on TTFT alone).

**The fit.** Least squares on the relative residuals predicted / measured - 1 of both means of every run (equal
weights: a relative error of TTFT counts as much as one of TPOT, and light runs as much as heavy ones), by
``scipy.optimize.least_squares`` (trust-region reflective, a, b, e >= 0). A candidate that saturates a run (its
model has no steady state at the run's rate) scores a large residual there. The start: the model is linear in
(a, b, e) at zero load, and straight lines through the lighter half of the runs give the zero-load TTFT and TPOT;
the one direction they leave open (how TPOT_0 splits between a and e) is scanned. The result's standard errors
are the usual asymptotic ones, sqrt(diag(s^2 (J^T J)^-1)).

The measured runs are taken at the workload's lengths (``input_tokens_mean`` or ``input_length_distribution``,
``output_tokens_mean``, ``prefix_cache_hit_rate``) and its ``arrival_scv`` (``vllm bench serve``'s default
Poisson arrivals: 1; another value may be passed); ``overhead_s`` is the TTFT the engine does not cause (client
I/O), given, not fitted. ``kv_tokens`` only flags runs whose modelled running requests exceed the batch/KV cap
(``beyond_cap``), where admission waits the model leaves out may have lengthened TTFT.

Errors (ValueError): runs at fewer distinct rates than fitted coefficients (3, or 2 when O <= 1); a run
saturated under every candidate (even a = b = e = 0 leaves the engine at that rate without a steady state, with
the held c and d); a calibrated model that still saturates a run. Non-positive rates, TTFTs or TPOTs are refused
by the data model (``MeasuredRun``).

The least-squares core is :func:`pdopt.perf.calibrate.fit_aggregated`, with its own statement of the two means,
so that the verifier (which may import :mod:`pdopt.perf.calibrate` but not the planner's capacity code) fits the
same coefficients; :func:`fit_iteration` adds the per-run diagnostics by the planner's own
:func:`~pdopt.perf.aggregated.aggregated_load`. docs/calibration.md ("Aggregated instances") gives the recovery
measured on runs of the formula and of the simulator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdopt.instance import AggregatedProfile, Instance, IterationModel, MeasuredRun, Workload
from pdopt.perf.aggregated import (
    RUNNING_WITHIN_CAP,
    aggregated_load,
    aggregated_overhead_s,
    kv_token_capacity,
    running_cap,
)
from pdopt.perf.calibrate import AGG_FITTED, AGG_HELD, Predict, fit_aggregated

__all__ = ["AGG_FITTED", "AGG_HELD", "IterationFit", "RunFit", "calibrated_iteration", "fit_iteration",
           "planner_predict"]


@dataclass(frozen=True)
class RunFit:
    """One measured run and the calibrated model's means at its rate (:func:`pdopt.perf.aggregated.aggregated_load`;
    TPOT nan when O <= 1)."""

    request_rate_rps: float
    ttft_measured_s: float
    ttft_predicted_s: float
    tpot_measured_ms: float
    tpot_predicted_ms: float
    running_mean: float
    """Requests running at once on average in the model (decoding or prefilling)."""


@dataclass(frozen=True)
class IterationFit:
    """An aggregated profile's iteration model calibrated to measured runs (:func:`fit_iteration`)."""

    iteration: IterationModel
    """The calibrated model: fitted a, b, e; c, d held at the profile's values; ``source`` says so."""
    fitted: tuple[str, ...]
    """Names of the fitted coefficients (fields of :class:`~pdopt.instance.IterationModel`)."""
    held: tuple[str, ...]
    std_errors: Mapping[str, float]
    """Per fitted coefficient, its asymptotic standard error (its unit): sqrt(diag(s^2 (J^T J)^-1)), J the Jacobian
    of the relative residuals, s^2 their sum of squares over (residuals - coefficients); nan with no residual to
    spare, inf when J^T J is singular; not meaningful for a coefficient in ``at_bound``."""
    start: Mapping[str, float]
    """Where the solver started (from the low-load lines)."""
    runs: tuple[RunFit, ...]
    rms_rel_error: float
    """Root mean square of predicted / measured - 1 over every fitted mean."""
    max_rel_error: float
    n_runs: int
    at_bound: tuple[str, ...]
    """Fitted coefficients that ended at 0: the runs do not ask for them, or the model does not describe them."""
    beyond_cap: tuple[str, ...]
    """Runs at which the calibrated model's running requests exceed the batch/KV cap with probability over 1%
    (the capacity's memory condition): admission waits, which the model leaves out, may have lengthened TTFT."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"iteration": self.iteration.model_dump(), "fitted": list(self.fitted), "held": list(self.held),
                "std_errors": dict(self.std_errors), "start": dict(self.start), "n_runs": self.n_runs,
                "rms_rel_error": self.rms_rel_error, "max_rel_error": self.max_rel_error,
                "runs": [vars(r) for r in self.runs], "at_bound": list(self.at_bound),
                "beyond_cap": list(self.beyond_cap)}


def _std_errors(residuals: np.ndarray[Any, np.dtype[np.float64]], jac: np.ndarray[Any, np.dtype[np.float64]]
                ) -> list[float]:
    dof = len(residuals) - jac.shape[1]
    try:
        cov = np.linalg.inv(jac.T @ jac) * (float(residuals @ residuals) / dof if dof > 0 else math.nan)
    except np.linalg.LinAlgError:
        return [math.inf] * jac.shape[1]
    return [math.sqrt(v) if v >= 0 else math.nan for v in np.diag(cov)]


def planner_predict(profile: AggregatedProfile, workload: Workload, overhead_s: float) -> Predict:
    """The forward model the planner fits with: :func:`pdopt.perf.aggregated.aggregated_load`'s mean TTFT (s) and
    mean TPOT (ms) at ``profile``'s token budget, ``workload`` and ``overhead_s``; None when saturated."""

    def predict(iteration: IterationModel, rate_rps: float) -> tuple[float, float] | None:
        load = aggregated_load(iteration, profile.token_budget, workload, rate_rps, overhead_s)
        return None if load is None else (load.ttft_mean_s, load.tpot_mean_ms)

    return predict


def fit_iteration(runs: Sequence[MeasuredRun], profile: AggregatedProfile, workload: Workload, overhead_s: float,
                  kv_tokens: int, arrival_scv: float | None = None) -> IterationFit:
    """Calibrate ``profile``'s iteration model to ``runs`` (module docstring): a, b and e fitted, c and d held at
    the profile's values. The result's ``iteration`` is the calibrated model, with each run's measured and
    modelled means and the coefficients' standard errors.

    ``workload``: the runs' lengths and arrival SCV (``arrival_scv`` overrides the latter). ``overhead_s``: the
    TTFT outside the engine (client I/O). ``kv_tokens``: the instance's KV-cache tokens (for ``beyond_cap``).
    Raises ValueError as the module docstring says."""
    from scipy.special import pdtr  # deferred: scipy loads only when needed

    if isinstance(kv_tokens, bool) or not isinstance(kv_tokens, int) or kv_tokens < 0:
        raise ValueError(f"kv_tokens must be a whole number >= 0, got {kv_tokens!r}")
    if arrival_scv is not None:
        if isinstance(arrival_scv, bool) or not math.isfinite(arrival_scv) or arrival_scv < 0:
            raise ValueError(f"arrival_scv must be a finite number >= 0, got {arrival_scv!r}")
        workload = workload.model_copy(update={"arrival_scv": arrival_scv})
    sol = fit_aggregated(runs, profile, workload, overhead_s, planner_predict(profile, workload, overhead_s))
    cap = running_cap(profile, workload, kv_tokens)
    fits: list[RunFit] = []
    for r in runs:
        load = aggregated_load(sol.iteration, profile.token_budget, workload, r.request_rate_rps, overhead_s)
        assert load is not None  # the core refuses a fit that saturates a run, by the same arithmetic
        fits.append(RunFit(r.request_rate_rps, r.ttft_mean_s, load.ttft_mean_s, r.tpot_mean_ms,
                           load.tpot_mean_ms if workload.output_tokens_mean > 1.0 else math.nan, load.running_mean))
    res = sol.residuals
    return IterationFit(
        iteration=sol.iteration, fitted=sol.fitted, held=sol.held,
        std_errors=dict(zip(sol.fitted, _std_errors(res, sol.jacobian), strict=True)), start=sol.start,
        runs=tuple(fits), rms_rel_error=float(np.sqrt(np.mean(res * res))), max_rel_error=float(np.max(np.abs(res))),
        n_runs=len(fits), at_bound=tuple(k for k in sol.fitted if getattr(sol.iteration, k) <= 0.0),
        beyond_cap=tuple(f"{f.request_rate_rps:g} req/s: {f.running_mean:.4g} running on average, cap {cap}"
                         for f in fits if float(pdtr(cap, f.running_mean)) < RUNNING_WITHIN_CAP))


def calibrated_iteration(profile: AggregatedProfile, workload: Workload, overhead_s: float,
                         kv_tokens: int) -> IterationFit | str | None:
    """The fit to the profile's own ``measured_runs`` (what :func:`pdopt.perf.capacity.capacity_table` plans
    with): None when it has none, a reason string when the fit fails (the shape is then skipped)."""
    if not profile.measured_runs:
        return None
    try:
        return fit_iteration(profile.measured_runs, profile, workload, overhead_s, kv_tokens)
    except ValueError as exc:
        return f"cannot calibrate the iteration model to measured_runs: {exc}"


def planned_iteration(instance: Instance, profile: AggregatedProfile) -> IterationModel:
    """The iteration model a plan sizes an aggregated shape with: calibrated to its ``measured_runs`` when it has
    them (and the fit succeeds; otherwise the shape is skipped and never planned), else the profile's own. The
    simulator and the predictions use it too, so that a plan is checked under the model it was made with."""
    workload = instance.workloads[profile.model]
    fit = calibrated_iteration(profile, workload, aggregated_overhead_s(instance, workload),
                               kv_token_capacity(instance, profile))
    return fit.iteration if isinstance(fit, IterationFit) else profile.iteration

"""The simulator's defaults follow the capacity model each shape was planned with.

A plan "confirmed by simulation" must be confirmed under the assumptions it was planned with, so with the
default options (``auto``) the simulation takes them from each model's workload and each prefill shape's
profile (:func:`pdopt.perf.prefill.shape_workload`, the one place that says how a shape is sized):

- Prefill dispatch: ``random`` (capacity-weighted Poisson splitting) for the per-instance ``mm1`` and ``gg1``
  models, ``pooled`` for ``ggc``: one FCFS queue per prefill shape (the G/G/c the planner sizes), an arrival
  joining a shape's queue at random in proportion to the shape's planned capacity. (``--dispatch pooled`` set
  explicitly keeps one queue for all of a model's prefill instances.)
- Decode dispatch: ``least_loaded`` for the constant-batch ``paper`` decode model (every instance at its planned
  batch), ``random`` for ``under_load`` (whose Poisson batch is the number in service of a randomly split
  M/G/inf stream).
- Arrivals: Poisson, or, for a ``gg1``/``ggc`` model with ``arrival_scv`` other than 1, a renewal stream with
  gamma inter-arrival times of that SCV (``mm1`` assumes Poisson).
- Prefill service: the capacity model's total service-time SCV c_s^2 (1 for ``mm1``, exponential service; for
  ``gg1``/``ggc`` the calibrated, stated or length-derived value, :func:`pdopt.perf.prefill.service_scv`) is met
  by the lengths and a per-request factor together, never counted twice. Service time = t(L) x F with F
  independent of L, mean 1 and SCV c_F^2, so 1 + c_s^2 = (1 + c_L^2)(1 + c_F^2), where c_L^2 is the SCV of t(L)
  over the lengths actually simulated for that model (measured on them: fixed lengths give 0). Hence
  c_F^2 = (1 + c_s^2) / (1 + c_L^2) - 1, drawn gamma (exponential when 1, deterministic when 0); when the lengths
  alone exceed c_s^2 the factor is deterministic and the excess is reported.

Any option the user sets explicitly overrides the rule for every model; the result says what was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pdopt.instance import Instance, PrefillProfile
from pdopt.perf.prefill import prefill_service, service_scv, shape_workload
from pdopt.sim.options import SimOptions

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ServiceRule:
    """How one prefill shape's service times are drawn: t(L) x F, F of distribution ``distribution`` and SCV
    ``factor_scv``; ``target_scv`` the capacity model's total and ``lengths_scv`` the part the lengths carry."""

    distribution: str
    factor_scv: float
    target_scv: float | None
    lengths_scv: float

    def describe(self) -> dict[str, Any]:
        """JSON form."""
        total = (1.0 + self.lengths_scv) * (1.0 + self.factor_scv) - 1.0
        out: dict[str, Any] = {"distribution": self.distribution, "factor_scv": self.factor_scv,
                               "lengths_scv": self.lengths_scv, "total_scv": total}
        if self.target_scv is not None:
            out["capacity_model_scv"] = self.target_scv
            if self.lengths_scv > self.target_scv + 1e-9:
                out["note"] = (f"the simulated lengths alone give a service SCV of {self.lengths_scv:.3g}, above "
                               f"the {self.target_scv:.3g} the capacity model assumed")
        return out


def prefill_dispatch(instance: Instance, model: str, opts: SimOptions) -> str:
    """The prefill dispatch of ``model``: the user's, or the one its queue model assumes."""
    if opts.prefill_dispatch != "auto":
        return opts.prefill_dispatch
    return "pooled" if instance.workloads[model].queue_model == "ggc" else "random"


def decode_dispatch(instance: Instance, model: str, opts: SimOptions) -> str:
    """The decode dispatch of ``model``: the user's, or the one its decode model assumes."""
    if opts.decode_dispatch != "auto":
        return opts.decode_dispatch
    return "random" if instance.workloads[model].decode_model == "under_load" else "jsq"


def arrival_scv(instance: Instance, model: str, opts: SimOptions) -> float:
    """Inter-arrival SCV of ``model``'s generated stream (1: Poisson)."""
    w = instance.workloads[model]
    if opts.arrivals == "poisson" or w.queue_model == "mm1":
        return 1.0
    return w.arrival_scv


def target_service_scv(instance: Instance, profile: PrefillProfile) -> float | None:
    """The total prefill service SCV the capacity model used for ``profile`` (None: the shape cannot be sized,
    then the factor is exponential)."""
    w = instance.workloads[profile.model]
    if w.queue_model == "mm1":
        return 1.0
    shaped = shape_workload(instance, profile)
    if isinstance(shaped, str):
        return None
    svc = prefill_service(profile, shaped)
    return service_scv(shaped, 0.0 if isinstance(svc, str) else svc[1])


def lengths_scv(base_times: FloatArray) -> float:
    """SCV of the base service times t(L) of the requests simulated (0 for fewer than two)."""
    if len(base_times) < 2:
        return 0.0
    mean = float(base_times.mean())
    scv = float(base_times.var()) / (mean * mean) if mean > 0 else 0.0
    return scv if scv > 1e-12 else 0.0  # equal lengths leave rounding noise only


def service_rule(instance: Instance, profile: PrefillProfile, opts: SimOptions,
                 base_times: FloatArray) -> ServiceRule:
    """The service rule of one prefill shape, given the base times t(L) of its model's simulated requests."""
    c_len = lengths_scv(base_times)
    if opts.prefill_service != "auto":
        scv = {"deterministic": 0.0, "exponential": 1.0}.get(opts.prefill_service, opts.prefill_scv)
        return ServiceRule(opts.prefill_service, scv, None, c_len)
    target = target_service_scv(instance, profile)
    if target is None:
        return ServiceRule("exponential", 1.0, None, c_len)
    factor = max(0.0, (1.0 + target) / (1.0 + c_len) - 1.0)
    if factor < 1e-12:
        return ServiceRule("deterministic", 0.0, target, c_len)
    return ServiceRule("exponential" if abs(factor - 1.0) < 1e-12 else "gamma", factor, target, c_len)


def draw_factors(rng: np.random.Generator, n: int, rule: ServiceRule) -> FloatArray:
    """n service factors with mean 1 and the rule's SCV."""
    scv, dist = rule.factor_scv, rule.distribution
    if dist == "deterministic" or scv == 0:
        return np.ones(n)
    if dist == "exponential":
        return rng.exponential(1.0, n)
    if dist == "gamma":
        return rng.gamma(1.0 / scv, scv, n)
    sigma2 = np.log1p(scv)
    return rng.lognormal(-sigma2 / 2.0, np.sqrt(sigma2), n)


def renewal_gaps(rng: np.random.Generator, rate: float, scv: float, n: int) -> FloatArray:
    """``n`` inter-arrival times of a renewal stream at ``rate``: gamma of SCV ``scv`` (exponential at 1,
    constant at 0)."""
    if abs(scv - 1.0) < 1e-12:
        return rng.exponential(1.0 / rate, n)
    if scv <= 0:
        return np.full(n, 1.0 / rate)
    return rng.gamma(1.0 / scv, scv / rate, n)

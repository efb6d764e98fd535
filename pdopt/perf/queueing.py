"""Multi-server and non-exponential queueing formulas for pooled prefill: M/M/c, M/G/1 and G/G/c approximations.

The paper sizes each prefill instance as its own M/M/1 queue (:mod:`pdopt.perf.capacity`). When a router keeps one
FCFS queue in front of ``c`` identical instances (the simulator's ``pooled`` dispatch) the fleet is an M/M/c
queue, which carries more load at the same TTFT budget; when service times are not exponential (fixed input
length: nearly deterministic; mixed lengths: more variable) or arrivals are burstier than Poisson, two-moment
approximations apply. Everything here is a pure function of floats, in the units of the caller (rates in req/s,
times in s); notation:

- ``lam`` (lambda): total arrival rate; ``mu``: service rate of ONE server (1 / mean service time); ``c``: the
  number of servers sharing one queue; offered load ``a = lam / mu`` (erlangs); utilisation ``rho = a / c``.
- ``ca2``, ``cs2``: squared coefficients of variation (variance / mean^2) of the inter-arrival and the service
  times (1 and 1 for M/M/c; 0 for deterministic service).

Formulas, one place each:

- :func:`erlang_c`: the M/M/c probability of waiting C(c, a), through the Erlang B recursion.
- :func:`mean_wait_ggc`: mean wait in queue W_q by Allen-Cunneen (exact for M/M/c and, with c = 1, for M/G/1).
- :func:`sojourn_statistic`: mean or percentile of the sojourn time T = W + S (two-moment gamma approximation
  for percentiles; exact for M/M/1).
- :func:`max_arrival_rate`: the largest lam whose sojourn statistic meets a budget (reduces to
  :func:`pdopt.perf.capacity.mm1_max_arrival_rate` for c = 1, ca2 = cs2 = 1).
- :func:`service_scv_from_lengths`: the service-time SCV implied by a distribution of input lengths.

References: L. Kleinrock, *Queueing Systems Vol. 1* (1975), sec. 3.5 (M/M/c, Erlang C) and 5.6-5.7 (M/G/1,
Pollaczek-Khinchine); A. O. Allen, *Probability, Statistics and Queueing Theory* (2nd ed., 1990), sec. 6.4
(the Allen-Cunneen approximation); J. F. C. Kingman, "The single server queue in heavy traffic" (1961);
W. Whitt, "Approximations for the GI/G/m queue", Prod. Oper. Manag. 2 (1993) (the wait as an atom at zero plus
an exponential tail).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

QUANTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
"""The percentile statistics an SLO may name, as probabilities (``mean`` is the other statistic). Defined here,
in the pure formulas that every other module may import, so that this module imports nothing of pdopt."""

STATISTICS = ("mean", *QUANTILES)


def erlang_c(c: int, offered_load: float) -> float:
    """Probability that an arrival must wait in an M/M/c queue (Erlang C), offered load ``a = lam/mu < c``.

    Closed form: C(c, a) = [a^c / c! x c / (c - a)] / [sum_{k<c} a^k / k! + a^c / c! x c / (c - a)]. Evaluated
    without factorials through the Erlang B (loss) recursion B(0, a) = 1, B(k, a) = a B(k-1, a) / (k + a B(k-1, a)),
    every term of which lies in [0, 1], and the identity C(c, a) = c B(c, a) / (c - a (1 - B(c, a)))
    (Kleinrock 1975, sec. 3.5). Stable for c in the thousands. C(1, a) = a = rho (an M/M/1 arrival waits when the
    server is busy); C(c, 0) = 0.
    """
    if c < 1:
        raise ValueError(f"c must be at least 1, got {c}")
    if not 0.0 <= offered_load < c:
        raise ValueError(f"offered load must lie in [0, c) = [0, {c}), got {offered_load}")
    b = 1.0
    for k in range(1, c + 1):
        b = offered_load * b / (k + offered_load * b)
    return c * b / (c - offered_load * (1.0 - b))


def mean_wait_ggc(lam: float, mu: float, c: int, ca2: float, cs2: float) -> float:
    """Mean time in queue (before service) of a G/G/c queue by the Allen-Cunneen approximation; inf if lam >= c mu.

    W_q = C(c, a) / (c mu - lam) x (ca2 + cs2) / 2, with a = lam / mu and C the Erlang C probability.

    - ca2 = cs2 = 1 (M/M/c): exact; the wait given waiting is exponential with rate c mu - lam, so
      W_q = C(c, a) / (c mu - lam) (Kleinrock 1975, eq. 3.43).
    - c = 1: C(1, a) = rho, so W_q = rho / (mu - lam) x (ca2 + cs2) / 2, Kingman's heavy-traffic G/G/1 formula;
      with ca2 = 1 (Poisson arrivals) it is the exact Pollaczek-Khinchine mean W_q = rho (1 + cs2) / (2 (mu - lam))
      for M/G/1.
    - Otherwise: the M/M/c wait scaled by the G/G/1 variability factor (Allen 1990, sec. 6.4), accurate to a few
      percent for moderate SCVs and not too light traffic.
    """
    if lam < 0.0 or mu <= 0.0 or ca2 < 0.0 or cs2 < 0.0:
        raise ValueError(f"need lam >= 0, mu > 0, ca2 >= 0, cs2 >= 0; got {lam}, {mu}, {ca2}, {cs2}")
    if lam >= c * mu:
        return math.inf
    return erlang_c(c, lam / mu) / (c * mu - lam) * (ca2 + cs2) / 2.0


def sojourn_moments(lam: float, mu: float, c: int, ca2: float, cs2: float) -> tuple[float, float]:
    """Mean and variance of the sojourn time T = W + S under the model of :func:`sojourn_statistic`; inf if lam >= c mu.

    E[T] = W_q + 1/mu. The wait W is 0 with probability 1 - P_w and otherwise exponential with mean W_q / P_w,
    where P_w = C(c, a) (= rho for c = 1), so E[W^2] = P_w x 2 (W_q / P_w)^2 = 2 W_q^2 / P_w and
    Var W = 2 W_q^2 / P_w - W_q^2. The service S is independent of W with Var S = cs2 / mu^2, so
    Var T = Var W + Var S.
    """
    w_q = mean_wait_ggc(lam, mu, c, ca2, cs2)
    if math.isinf(w_q):
        return math.inf, math.inf
    p_w = erlang_c(c, lam / mu)
    var_w = 2.0 * w_q * w_q / p_w - w_q * w_q if p_w > 0.0 else 0.0
    return w_q + 1.0 / mu, var_w + cs2 / (mu * mu)


def sojourn_statistic(lam: float, mu: float, c: int, ca2: float, cs2: float, statistic: str) -> float:
    """Mean or percentile (``p50``, ``p90``, ``p95``, ``p99``) of the sojourn time (wait + service); inf if lam >= c mu.

    Mean: W_q + 1/mu with W_q from :func:`mean_wait_ggc` (exact for M/M/c and M/G/1).

    Percentiles: a two-moment approximation. The wait is modelled as 0 with probability P_w' = 1 - P_w and
    otherwise exponential with mean W_q / P_w, P_w = C(c, a) (= rho for c = 1); this is exact for M/M/c, where
    the conditional wait is exponential with rate c mu - lam, and is the usual heavy-traffic form for G/G/c
    (Whitt 1993). The service is independent of the wait, with mean 1/mu and SCV cs2. The sojourn T = W + S is
    then replaced by the gamma distribution with T's exact mean m and variance v (:func:`sojourn_moments`):
    shape k = m^2 / v, scale v / m, and the p-quantile is scale x P^{-1}(k, p) (P the regularised lower
    incomplete gamma function).

    Since T >= S, the percentile is floored at the same percentile of the service time alone, modelled the same
    way (gamma with mean 1/mu and SCV cs2; 1/mu when cs2 = 0). The floor binds only at light load when the wait
    is small and less variable than the service (cs2 > 1 with ca2 < 1 and many servers, or cs2 ~ 0): there, adding
    the wait raises the fitted gamma's shape and can lower its upper percentiles (by up to about 0.05%) below
    the unloaded value, which would make the statistic decrease in lam. With the floor the statistic is
    non-decreasing in lam (checked on a grid of c <= 256, ca2 <= 4, cs2 <= 8 in the tests).

    For M/M/1 (c = 1, ca2 = cs2 = 1): m = 1/(mu - lam) and v = rho (2 - rho)/(mu - lam)^2 + 1/mu^2
    = 1/(mu - lam)^2, so the gamma has shape 1: it is the exponential with rate mu - lam, the exact M/M/1 FCFS
    sojourn time (never below the floor, Exp(mu)), and the percentile equals ln(1/(1-p)) / (mu - lam) as in
    :func:`pdopt.perf.capacity.sojourn_factor`. With zero variance (deterministic service, no wait) it is the mean.

    Accuracy, measured against exact distributions in tests/test_queueing.py: M/M/c (c <= 64, rho 0.3-0.95)
    within 1.8% at p50-p99 (p90 within 0.8%); M/G/1 with gamma service at p90: +2.5% (SCV 0.5) and -2.9%
    (SCV 2) at rho 0.5, +1.5% and -1.6% at rho 0.8. Worst seen: light load with very variable service (SCV 4,
    rho 0.5): p50 +17%, p90 -5.7%.
    """
    from scipy.special import gammaincinv  # deferred: scipy loads only when needed

    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    mean, var = sojourn_moments(lam, mu, c, ca2, cs2)
    if statistic == "mean" or math.isinf(mean):
        return mean
    p = QUANTILES[statistic]
    service_only = 1.0 / mu if cs2 <= 0.0 else cs2 / mu * float(gammaincinv(1.0 / cs2, p))
    if var <= 0.0:
        return max(mean, service_only)
    shape, scale = mean * mean / var, var / mean
    return max(float(scale * gammaincinv(shape, p)), service_only)


def max_arrival_rate(mu: float, c: int, ca2: float, cs2: float, budget_s: float, statistic: str) -> float:
    """Largest total arrival rate to ``c`` pooled servers whose sojourn ``statistic`` is at most ``budget_s``.

    The statistic of :func:`sojourn_statistic` is non-decreasing in lam (W_q and Var W increase; percentiles are
    floored at the service's own; the tests check it on a grid) from its value at lam = 0 (the bare service time)
    to infinity at lam -> c mu, so the answer is the root of statistic(lam) = budget on (0, c mu), found by
    Brent's method to a relative tolerance of about 1e-13.
    Returns 0.0 when the statistic at lam -> 0 already exceeds the budget (or equals it). For c = 1 and
    ca2 = cs2 = 1 this is mu - f / budget with f = ln(1/(1-p)) for a percentile or 1 for the mean, i.e.
    :func:`pdopt.perf.capacity.mm1_max_arrival_rate` where that is positive.
    """
    from scipy.optimize import brentq  # deferred: scipy loads only when needed

    if budget_s <= 0.0 or sojourn_statistic(0.0, mu, c, ca2, cs2, statistic) >= budget_s:
        return 0.0

    def excess(lam: float) -> float:
        return sojourn_statistic(lam, mu, c, ca2, cs2, statistic) - budget_s

    cap = c * mu
    hi = cap * 0.5
    gap = 0.5
    while excess(hi) <= 0.0:
        gap *= 0.5
        if gap < 1e-15:
            return hi  # the budget is met up to numerical saturation
        hi = cap * (1.0 - gap)
    return float(brentq(excess, 0.0, hi, xtol=cap * 1e-14, rtol=1e-14))


def service_scv_from_lengths(lengths: Sequence[float], weights: Sequence[float],
                             time_of_length: Callable[[float], float]) -> float:
    """SCV of the service time when input lengths follow a discrete distribution: E[t^2] / E[t]^2 - 1.

    ``lengths`` L_i occur with probabilities proportional to ``weights`` w_i (normalised here); one request of
    length L takes t(L) = ``time_of_length(L)``, e.g. L / X(L) with X the benchmarked prefill throughput at L.
    E[t] = sum_i w_i t(L_i) / sum_i w_i and E[t^2] likewise. With t proportional to L this is the SCV of the
    lengths themselves. The result is the cs2 to pass to the formulas above when each request's service time is
    its length's t(L) (times any per-request noise, whose SCV combines as (1 + cs2_len)(1 + cs2_noise) - 1 for
    independent noise with mean 1).
    """
    if len(lengths) != len(weights) or not lengths:
        raise ValueError("lengths and weights must be non-empty and of equal length")
    if any(w < 0.0 for w in weights) or sum(weights) <= 0.0:
        raise ValueError("weights must be non-negative with a positive sum")
    total = float(sum(weights))
    times = [float(time_of_length(float(length))) for length in lengths]
    m1 = sum(w * t for w, t in zip(weights, times, strict=True)) / total
    m2 = sum(w * t * t for w, t in zip(weights, times, strict=True)) / total
    if m1 <= 0.0:
        raise ValueError("the mean service time must be positive")
    return max(0.0, m2 / (m1 * m1) - 1.0)


"""pdopt.perf.queueing: Erlang C, Allen-Cunneen, the gamma sojourn approximation and pooled capacity, against exact
formulas, exact numerical references and the simulator.

Exact references used here (independent of the module's code paths):

- M/M/c FCFS sojourn distribution (:func:`mmc_sojourn_quantile`): T = S + W with S ~ Exp(mu) and W = 0 with
  probability 1 - C, else W ~ Exp(c mu - lam), independent. So P(T > t) = (1 - C) e^{-mu t} + C P(S + E > t)
  with E ~ Exp(r), r = c mu - lam, and P(S + E > t) = (r e^{-mu t} - mu e^{-r t}) / (r - mu) ((1 + mu t) e^{-mu t}
  when r = mu). C is computed by the textbook factorial formula, not by the module's recursion.
- M/G/1 FCFS sojourn distribution with gamma service (:func:`mg1_gamma_sojourn_cdf`): by Pollaczek-Khinchine the
  wait is a geometric(rho) sum of equilibrium residual service times, W = R_1 + ... + R_N with
  P(N = n) = (1 - rho) rho^n, so in transform space phi_W = (1 - rho) / (1 - rho phi_R) and phi_T = phi_W phi_S.
  Both densities are put on a grid of step 0.001/mu (mass rounded to the nearest grid point), the product is
  formed with an FFT of twice the horizon (400/mu, beyond which less than 1e-9 of the mass lies in all cases used)
  and the CDF read off by linear interpolation. Checked against the exponential (SCV 1: M/M/1) to 1e-4 and
  against the P-K mean.

Simulation statistics: the first 10% and last 5% of requests (by arrival) are dropped as in ``pdopt.sim.run``;
the kept sojourns, in arrival order, are cut into 30 consecutive batches. The mean's 99% half-width is
t(0.995, 29) x sd(batch means) / sqrt(30); the p90's is the same with batch 90th percentiles in place of batch
means (every batch holds at least 5,600 requests, so the bias of a batch quantile is negligible). Every simulation
test asserts that the half-widths are at most 3% of the estimate (so a test cannot pass by being imprecise), that
the exact mean (Erlang C / Pollaczek-Khinchine) and the exact p90 (references above) lie inside the intervals, and
that the module's p90 approximation is within 5% of the simulated p90: the approximation's own error, measured
exactly below, is at most 2.9% in these cases and the sampling half-width at most 2.1% in pilot runs.

Sample sizes come from pilot runs with seeds 11-14 (not the test seed, which was fixed before any run of this
file): estimated asymptotic variances sigma2 of the sojourn (mu = 1 per server) of 3-5 s^2 (M/M/3, rho 0.5),
164-266 (M/M/3, 0.8), 12-21 (M/G/1 gamma SCV 0.5, rho 0.5), 106-143 (SCV 2, 0.5), 590-1160 (SCV 0.5, 0.8) and
5000-11200 (SCV 2, 0.8). Each size keeps the expected half-width t x sqrt(sigma2 / (0.85 n)) near 1.2-1.8% of the
mean, well inside the 3% bound (see each test's parameters). The rho = 0.8 runs take 5-25 s each and are
marked ``slow``; the rest of the file runs in about 10-15 s.

Arrivals in the simulator are Poisson (ca2 = 1), so the "G/G/1" cases are M/G/1, where Allen-Cunneen's mean is
the exact P-K mean; the ca2 != 1 (Kingman) branch is checked only against its closed form here.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from scipy.optimize import brentq
from scipy.special import gammainc

from pdopt.instance import Instance
from pdopt.io import instance_from_dict
from pdopt.perf.capacity import mm1_max_arrival_rate, sojourn_factor
from pdopt.perf.queueing import (
    erlang_c,
    max_arrival_rate,
    mean_wait_ggc,
    service_scv_from_lengths,
    sojourn_moments,
    sojourn_statistic,
)
from pdopt.plan import Plan
from pdopt.sim.run import SimOptions, simulate

FloatArray = npt.NDArray[np.float64]

SEED = 4242
STATS = ("mean", "p50", "p90", "p95", "p99")
QUANTILE = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
BATCHES = 30
CONFIDENCE = 0.99
MAX_RELATIVE_HALF_WIDTH = 0.03
WARMUP, COOLDOWN = 0.1, 0.05
P90_APPROX_TOLERANCE = 0.05

PAPER_MU = 28309 / 6144
"""Service rate of one paper prefill instance, req/s (28,309 tok/s at 6144 input tokens)."""
PAPER_BUDGET_S = 1.9
"""Mean TTFT target 2 s minus 0.1 s overhead."""
PAPER_DEMAND_RPS = 5e6 / 60 / (6144 + 512)
"""5 M tok/min at 6144 input + 512 output tokens: 12.52 req/s."""


# ----------------------------------------------------------------------------------------------------------------
# exact references


def erlang_c_direct(c: int, a: float) -> float:
    """Textbook Erlang C with factorials: [a^c/c! c/(c-a)] / [sum_{k<c} a^k/k! + a^c/c! c/(c-a)]."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def erlang_c_log_space(c: int, a: float) -> float:
    """The same formula in log space (lgamma, log-sum-exp), for c in the hundreds."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    log_top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    peak = max([*logs, log_top])
    total = sum(math.exp(x - peak) for x in logs) + math.exp(log_top - peak)
    return math.exp(log_top - peak) / total


def mmc_sojourn_survival(t: float, lam: float, mu: float, c: int) -> float:
    """P(T > t) for the M/M/c FCFS sojourn (see the module docstring)."""
    cw = erlang_c_direct(c, lam / mu)
    r = c * mu - lam
    conv = (1 + mu * t) * math.exp(-mu * t) if abs(r - mu) < 1e-12 * mu else \
        (r * math.exp(-mu * t) - mu * math.exp(-r * t)) / (r - mu)
    return (1 - cw) * math.exp(-mu * t) + cw * conv


def mmc_sojourn_quantile(p: float, lam: float, mu: float, c: int) -> float:
    hi = 1.0 / mu
    while mmc_sojourn_survival(hi, lam, mu, c) > 1 - p:
        hi *= 2.0
    return float(brentq(lambda t: mmc_sojourn_survival(t, lam, mu, c) - (1 - p), 0.0, hi, xtol=1e-13))


@functools.cache
def mg1_gamma_sojourn_cdf(rho: float, scv: float, dx: float = 1e-3, horizon: float = 400.0
                          ) -> tuple[FloatArray, FloatArray]:
    """SweepGrid points and the M/G/1 (mu = 1, gamma service of SCV ``scv``) sojourn CDF there; see the docstring.

    Service S ~ Gamma(k = 1/scv, theta = scv); residual R has CDF F_R(x) = mu int_0^x (1 - F_S) =
    x (1 - F_S(x)) + k theta P(k + 1, x / theta). SweepGrid cell i collects the mass of [(i - 1/2) dx, (i + 1/2) dx).
    """
    k, theta = 1.0 / scv, scv
    length = round(horizon / dx)
    edges = np.clip(np.arange(length + 1) - 0.5, 0.0, None) * dx
    f_s = gammainc(k, edges / theta)
    f_r = edges * (1.0 - f_s) + k * theta * gammainc(k + 1.0, edges / theta)
    n = 2 * length
    phi_s, phi_r = np.fft.rfft(np.diff(f_s), n), np.fft.rfft(np.diff(f_r), n)
    pmf = np.fft.irfft((1.0 - rho) / (1.0 - rho * phi_r) * phi_s, n)[:length]
    cdf = np.cumsum(pmf)
    assert cdf[-1] > 1 - 1e-9, "horizon too short"
    grid: FloatArray = (np.arange(length, dtype=np.float64) + 0.5) * dx
    return grid, cdf


def mg1_gamma_sojourn_quantile(p: float, rho: float, scv: float) -> float:
    x, cdf = mg1_gamma_sojourn_cdf(rho, scv)
    return float(np.interp(p, cdf, x))


def mg1_gamma_sojourn_mean(rho: float, scv: float) -> float:
    x, cdf = mg1_gamma_sojourn_cdf(rho, scv)
    return float(np.sum(1.0 - cdf) * (x[1] - x[0]))


# ----------------------------------------------------------------------------------------------------------------
# closed forms


def test_erlang_c_known_values() -> None:
    """C(1, a) = a (an M/M/1 arrival waits iff the server is busy); C(2, 1) = 1/3; C(c, 0) = 0; C -> 1 as a -> c."""
    for a in (0.0, 0.1, 0.5, 0.9, 0.999):
        assert erlang_c(1, a) == pytest.approx(a, abs=1e-15)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-14)
    assert erlang_c(5, 0.0) == 0.0
    assert erlang_c(10, 10 * (1 - 1e-9)) == pytest.approx(1.0, abs=1e-6)
    for c, a in ((1, 1.0), (3, 3.5), (2, -0.1), (0, 0.5)):
        with pytest.raises(ValueError):
            erlang_c(c, a)


def test_erlang_c_matches_direct_formula() -> None:
    """The Erlang B recursion agrees with the factorial formula (c <= 12, rel 1e-12) and with a log-space evaluation
    for c up to 500 (rel 1e-9) at utilisations 0.05-0.999; the result is a probability, increasing in a."""
    for c in range(1, 13):
        for rho in (0.05, 0.3, 0.5, 0.8, 0.95, 0.999):
            assert erlang_c(c, rho * c) == pytest.approx(erlang_c_direct(c, rho * c), rel=1e-12)
    for c in (50, 128, 300, 500):
        values = [erlang_c(c, rho * c) for rho in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)]
        for rho, v in zip((0.5, 0.8, 0.9, 0.95, 0.99, 0.999), values, strict=True):
            assert v == pytest.approx(erlang_c_log_space(c, rho * c), rel=1e-9)
            assert 0.0 <= v <= 1.0
        assert values == sorted(values)


def test_mean_wait_special_cases() -> None:
    """W_q: M/M/1 rho/(mu - lam); M/G/1 Pollaczek-Khinchine rho (1 + cs2) / (2 (mu - lam)); M/M/c C/(c mu - lam);
    G/G/1 Kingman rho/(mu - lam) (ca2 + cs2)/2; infinite at or beyond capacity."""
    mu = 2.0
    for rho in (0.2, 0.5, 0.9):
        lam = rho * mu
        assert mean_wait_ggc(lam, mu, 1, 1.0, 1.0) == pytest.approx(rho / (mu - lam), rel=1e-13)
        for cs2 in (0.0, 0.5, 2.0):
            assert mean_wait_ggc(lam, mu, 1, 1.0, cs2) == pytest.approx(rho * (1 + cs2) / (2 * (mu - lam)), rel=1e-13)
        assert mean_wait_ggc(lam, mu, 1, 3.0, 0.5) == pytest.approx(rho / (mu - lam) * 1.75, rel=1e-13)
        for c in (2, 4, 16):
            lam_c = rho * c * mu
            assert mean_wait_ggc(lam_c, mu, c, 1.0, 1.0) == pytest.approx(
                erlang_c_direct(c, lam_c / mu) / (c * mu - lam_c), rel=1e-12)
    assert mean_wait_ggc(4.0, 2.0, 2, 1.0, 1.0) == math.inf
    assert sojourn_statistic(5.0, 2.0, 2, 1.0, 1.0, "p99") == math.inf
    with pytest.raises(ValueError):
        sojourn_statistic(1.0, 2.0, 2, 1.0, 1.0, "p42")


def test_mm1_gamma_is_the_exact_exponential() -> None:
    """M/M/1: the gamma approximation has shape mean^2/var = 1 (var = 1/(mu - lam)^2), i.e. it IS the exact
    exponential sojourn, so every statistic equals sojourn_factor(stat) / (mu - lam) (rel 1e-12)."""
    for mu in (1.0, PAPER_MU):
        for rho in (0.01, 0.3, 0.7, 0.95):
            lam = rho * mu
            mean, var = sojourn_moments(lam, mu, 1, 1.0, 1.0)
            assert mean * mean / var == pytest.approx(1.0, rel=1e-12)
            for stat in STATS:
                assert sojourn_statistic(lam, mu, 1, 1.0, 1.0, stat) == pytest.approx(
                    sojourn_factor(stat) / (mu - lam), rel=1e-12)  # type: ignore[arg-type]


def test_mm1_special_case_of_max_arrival_rate() -> None:
    """c = 1, ca2 = cs2 = 1: max_arrival_rate equals pdopt.perf.capacity.mm1_max_arrival_rate for every statistic
    (rel 1e-10) where that is positive, and is 0.0 where it is not."""
    checked = zeroed = 0
    for mu in (1.0, PAPER_MU, 50.0):
        for budget in (0.05, 0.5, PAPER_BUDGET_S, 1.0995, 10.0):
            for stat in STATS:
                expected = mm1_max_arrival_rate(mu, budget, stat)  # type: ignore[arg-type]
                got = max_arrival_rate(mu, 1, 1.0, 1.0, budget, stat)
                if expected > 0:
                    assert got == pytest.approx(expected, rel=1e-10)
                    checked += 1
                else:
                    assert got == 0.0
                    zeroed += 1
    assert checked > 0 and zeroed > 0 and checked + zeroed == 75
    assert max_arrival_rate(1.0, 3, 1.0, 1.0, 0.0, "mean") == 0.0
    assert max_arrival_rate(1.0, 3, 1.0, 1.0, 1.0, "mean") == 0.0  # the bare service time alone is 1 s


def test_statistic_is_monotone_in_load() -> None:
    """Every statistic is non-decreasing in lam on a 200-point grid over [0, 0.9999 c mu] for c in
    {1, 2, 3, 8, 64, 256}, ca2 in {0, 0.5, 1, 2, 4}, cs2 in {0, 0.5, 1, 2, 8} (rel 1e-12). Without the floor at the
    service's own percentile, 59 of the 1,344 curves of a finer, wider grid dipped (by at most 0.05%) at light load,
    e.g. p99 with c = 64, ca2 = 0.5, cs2 = 2 (checked below: the floor binds there)."""
    mu = 1.0
    for c in (1, 2, 3, 8, 64, 256):
        grid = np.linspace(0.0, c * mu * 0.9999, 200)
        for ca2 in (0.0, 0.5, 1.0, 2.0, 4.0):
            for cs2 in (0.0, 0.5, 1.0, 2.0, 8.0):
                for stat in STATS:
                    curve = np.array([sojourn_statistic(float(x), mu, c, ca2, cs2, stat) for x in grid])
                    assert np.all(np.diff(curve) >= -1e-12 * curve[1:]), (c, ca2, cs2, stat)
    service_p99 = 2.0 * float(stats.gamma.ppf(0.99, 0.5))  # gamma service, mean 1, SCV 2
    for lam in (0.0, 20.0, 50.0):
        assert sojourn_statistic(lam, 1.0, 64, 0.5, 2.0, "p99") == pytest.approx(service_p99, rel=1e-12)
    assert sojourn_statistic(60.0, 1.0, 64, 0.5, 2.0, "p99") > service_p99


def test_max_arrival_rate_round_trip() -> None:
    """For c in {1, 2, 3, 8, 64}, ca2 in {0.5, 1, 2}, cs2 in {0, 0.5, 1, 2}, every statistic and budgets of 2, 5 and 20
    mean service times: the statistic at the returned rate equals the budget (rel 1e-9) and the rate lies in
    (0, c mu), or the rate is 0.0 and the unloaded statistic already misses the budget."""
    mu = 1.0
    returned_zero = 0
    for c in (1, 2, 3, 8, 64):
        for ca2 in (0.5, 1.0, 2.0):
            for cs2 in (0.0, 0.5, 1.0, 2.0):
                for stat in STATS:
                    for budget in (2.0, 5.0, 20.0):
                        lam = max_arrival_rate(mu, c, ca2, cs2, budget, stat)
                        if lam == 0.0:
                            assert sojourn_statistic(0.0, mu, c, ca2, cs2, stat) >= budget
                            returned_zero += 1
                            continue
                        assert 0.0 < lam < c * mu
                        assert sojourn_statistic(lam, mu, c, ca2, cs2, stat) == pytest.approx(budget, rel=1e-9)
    assert returned_zero < 450  # the round trip is exercised: 135 of the 900 cases are 0.0 (p99 with cs2 >= 1, ...)


def test_paper_example_pooled_prefill() -> None:
    """Paper instance: mu = 28309/6144 = 4.6076 req/s, mean TTFT budget 1.9 s, M/M/c.

    c = 1: 4.0813 req/s (the paper's mu - 1/1.9). c pooled instances: 8.673, 13.273, 17.875 req/s in total, i.e.
    per-instance marginal gains 4.081, 4.592, 4.600, 4.603 (tending to mu as the pool grows). At the paper's
    demand of 12.52 req/s (5 M tok/min at 6144 + 512 tokens) independent M/M/1 instances need
    ceil(12.52 / 4.0813) = ceil(3.068) = 4, while 3 pooled instances carry 13.27 req/s >= 12.52 (2 carry 8.67).
    """
    totals = [max_arrival_rate(PAPER_MU, c, 1.0, 1.0, PAPER_BUDGET_S, "mean") for c in range(1, 5)]
    assert totals[0] == pytest.approx(PAPER_MU - 1 / PAPER_BUDGET_S, rel=1e-12)
    assert totals[0] == pytest.approx(4.0813, abs=5e-5)
    assert totals[2] == pytest.approx(13.27, abs=5e-3)
    gains = np.diff([0.0, *totals])
    np.testing.assert_allclose(gains, [4.0813, 4.5916, 4.5998, 4.6027], atol=5e-4)
    assert math.ceil(PAPER_DEMAND_RPS / totals[0]) == 4
    assert totals[1] < PAPER_DEMAND_RPS <= totals[2]
    assert mean_wait_ggc(PAPER_DEMAND_RPS, PAPER_MU, 3, 1, 1) + 1 / PAPER_MU < PAPER_BUDGET_S


def test_service_scv_from_lengths() -> None:
    """Hand computations. Constant throughput: the SCV of the lengths, e.g. lengths 1000 and 3000 with weights 3:1:
    E[L] = 1500, E[L^2] = 3e6, SCV = 3e6 / 2.25e6 - 1 = 1/3. Throughput 1000 tok/s at 1000 and 2000 tok/s at 3000:
    t = 1 s and 1.5 s, E[t] = 1.125, E[t^2] = (3 + 2.25) / 4 = 1.3125, SCV = 1.3125 / 1.265625 - 1 = 0.037037.
    One length (or equal times): 0."""
    assert service_scv_from_lengths([1000, 3000], [3, 1], lambda length: length / 1e4) == pytest.approx(1 / 3)
    rate = {1000.0: 1000.0, 3000.0: 2000.0}
    assert service_scv_from_lengths([1000, 3000], [0.75, 0.25], lambda length: length / rate[length]) == \
        pytest.approx(1.3125 / 1.125**2 - 1, rel=1e-12)
    assert service_scv_from_lengths([512], [1.0], lambda length: length / 100) == 0.0
    assert service_scv_from_lengths([1, 2], [1, 1], lambda length: 1.0) == 0.0
    for lengths, weights in (([1, 2], [1]), ([], []), ([1], [0]), ([1, 2], [1, -1])):
        with pytest.raises(ValueError):
            service_scv_from_lengths(lengths, weights, lambda length: length)


# ----------------------------------------------------------------------------------------------------------------
# the percentile approximation against exact distributions

MMC_GRID_MAX_ERROR = 0.02


def test_gamma_approximation_against_exact_mmc() -> None:
    """M/M/c, c in {1, 2, 3, 4, 8, 16, 64}, rho in {0.3, 0.5, 0.7, 0.8, 0.9, 0.95}, p50/p90/p95/p99: the gamma
    percentile against the exact M/M/c sojourn quantile. Measured: the largest error is 1.8% (p99, c = 3,
    rho 0.7); p50 errors are at most 1.4%, p90 errors at most 0.8%; c = 1 is exact (< 1e-9). Bound asserted: 2%.
    Specific values pinned (to 0.05 points): p90 at c = 3 is -0.47% (rho 0.5) and -0.23% (rho 0.8)."""
    worst = 0.0
    for c in (1, 2, 3, 4, 8, 16, 64):
        for rho in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95):
            for stat, p in QUANTILE.items():
                err = sojourn_statistic(rho * c, 1.0, c, 1.0, 1.0, stat) / mmc_sojourn_quantile(p, rho * c, 1.0, c) - 1
                if c == 1:
                    assert abs(err) < 1e-9
                worst = max(worst, abs(err))
    assert worst <= MMC_GRID_MAX_ERROR
    for rho, expected in ((0.5, -0.0047), (0.8, -0.0023)):
        err = sojourn_statistic(3 * rho, 1.0, 3, 1.0, 1.0, "p90") / mmc_sojourn_quantile(0.9, 3 * rho, 1.0, 3) - 1
        assert err == pytest.approx(expected, abs=5e-4)


def test_mg1_reference_is_exact_where_known() -> None:
    """The FFT reference: with SCV 1 it reproduces the M/M/1 exponential quantiles ln(1/(1-p)) / (1 - rho) (rel 1e-4)
    and for SCV 0.5 and 2 its mean is the P-K mean 1 + rho (1 + SCV) / (2 (1 - rho)) (rel 1e-4)."""
    for rho in (0.5, 0.8):
        for p in QUANTILE.values():
            assert mg1_gamma_sojourn_quantile(p, rho, 1.0) == pytest.approx(math.log(1 / (1 - p)) / (1 - rho), rel=1e-4)
        for scv in (0.5, 2.0):
            assert mg1_gamma_sojourn_mean(rho, scv) == pytest.approx(1 + rho * (1 + scv) / (2 * (1 - rho)), rel=1e-4)


MG1_MEASURED_ERRORS = {
    # (rho, SCV): measured relative error of the gamma approximation at (p50, p90, p95, p99)
    (0.5, 0.5): (-0.0017, +0.0252, +0.0184, +0.0025),
    (0.5, 2.0): (+0.0408, -0.0289, -0.0246, -0.0118),
    (0.8, 0.5): (+0.0062, +0.0147, +0.0103, +0.0017),
    (0.8, 2.0): (+0.0033, -0.0162, -0.0121, -0.0038),
}


def test_gamma_approximation_against_exact_mg1() -> None:
    """M/G/1 with gamma service, mu = 1: the gamma approximation's percentiles against the exact FFT reference.

    Measured relative errors (p50, p90, p95, p99), pinned here to 0.05 points:
    rho 0.5: SCV 0.5 -0.2%, +2.5%, +1.8%, +0.3%;  SCV 2 +4.1%, -2.9%, -2.5%, -1.2%.
    rho 0.8: SCV 0.5 +0.6%, +1.5%, +1.0%, +0.2%;  SCV 2 +0.3%, -1.6%, -1.2%, -0.4%.
    The errors shrink with load (the wait, nearly exponential in heavy traffic, dominates) and grow with the
    service variability at light load: outside these cases, at rho 0.5 and SCV 4 the p50 is off by +17.3% and the
    p90 by -5.7% (asserted too, as a documented limitation), and SCV 0.25 gives p90 +4.4%.
    """
    for (rho, scv), errors in MG1_MEASURED_ERRORS.items():
        for (stat, p), expected in zip(QUANTILE.items(), errors, strict=True):
            err = sojourn_statistic(rho, 1.0, 1, 1.0, scv, stat) / mg1_gamma_sojourn_quantile(p, rho, scv) - 1
            assert err == pytest.approx(expected, abs=5e-4), (rho, scv, stat)
    p50 = sojourn_statistic(0.5, 1.0, 1, 1.0, 4.0, "p50") / mg1_gamma_sojourn_quantile(0.5, 0.5, 4.0) - 1
    p90 = sojourn_statistic(0.5, 1.0, 1, 1.0, 4.0, "p90") / mg1_gamma_sojourn_quantile(0.9, 0.5, 4.0) - 1
    assert p50 == pytest.approx(0.174, abs=0.002)
    assert p90 == pytest.approx(-0.057, abs=0.002)


# ----------------------------------------------------------------------------------------------------------------
# against the simulator


def queue_instance(servers: int, lam: float, prefill_points: list[tuple[float, float]] | None = None) -> Instance:
    """One model, ``servers`` prefill instances and one cheap decode instance; total demand ``lam`` req/s.

    By default the prefill profile is X = 1000 tok/s at the workload's 1000 input tokens: mu = 1 req/s per server.
    """
    points = prefill_points or [(1000.0, 1000.0)]
    return instance_from_dict({
        "name": "pooled-queue",
        "gpu_types": {"gpu": {"memory_gb": 1000.0, "price_usd_per_gpu_hour": 1.0}},
        "node_pools": {"pool": {"gpu_type": "gpu", "gpus_per_node": 1, "node_count": servers + 1}},
        "models": {"m": {"kv_bytes_per_token": 1.0, "weights_gb": 1.0}},
        "workloads": {"m": {
            "demand": {"requests_per_s": lam},
            "input_tokens_mean": 1000.0,
            "output_tokens_mean": 1.0,
            "ttft": {"target_s": 100.0},
            "tpot": {"target_ms": 100.0},
        }},
        "profiles": [
            {"model": "m", "role": "prefill", "gpu_type": "gpu", "gpus_per_instance": 1,
             "max_throughput_by_input": [{"input_tokens": length, "max_throughput_tok_per_s": x}
                                         for length, x in points]},
            {"model": "m", "role": "decode", "gpu_type": "gpu", "gpus_per_instance": 1,
             "tpot_by_batch": [{"batch": 1, "tpot_ms": 1.0}, {"batch": 1000, "tpot_ms": 1.0}]},
        ],
    })


def pooled_plan(servers: int) -> dict[str, Any]:
    """A hand-written plan: ``servers`` prefill instances (all of capacity 1 req/s) and one decode instance."""
    def placement(role: str, count: int) -> dict[str, Any]:
        return {"model": "m", "role": role, "gpu_type": "gpu", "gpus_per_instance": 1, "pool": "pool",
                "count": count, "capacity_rps": 1.0, "cost_usd_per_hour": 0.0}
    return {"instance": "pooled-queue", "status": "optimal", "scale_demand": 1.0,
            "placements": [placement("prefill", servers), placement("decode", 1)]}


def kept_sojourns(instance: Instance, servers: int, options: SimOptions) -> tuple[FloatArray, FloatArray]:
    """Prefill sojourns and input lengths of the requests kept after warm-up and cool-down, in arrival order."""
    result = simulate(instance, Plan.from_dict(pooled_plan(servers)), options)
    assert result.engine is not None
    req = result.engine.requests
    n = len(req.arrival_s)
    lo, hi = int(n * WARMUP), n - int(n * COOLDOWN)
    sojourn: FloatArray = (req.prefill_end_s - req.arrival_s)[lo:hi]
    lengths: FloatArray = req.input_tokens[lo:hi]
    return sojourn, lengths


def batch_ci(values: FloatArray, statistic: str) -> tuple[float, float]:
    """The statistic of all values and its 99% batch-means half-width (30 consecutive batches, Student t)."""
    def stat(v: FloatArray) -> float:
        return float(v.mean()) if statistic == "mean" else float(np.percentile(v, 100 * QUANTILE[statistic]))
    per_batch = np.array([stat(b) for b in np.array_split(values, BATCHES)])
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, BATCHES - 1))
    return stat(values), t * float(per_batch.std(ddof=1)) / math.sqrt(BATCHES)


def assert_in_ci(values: FloatArray, statistic: str, expected: float) -> float:
    """Assert the half-width bound and that ``expected`` lies in the interval; return the estimate."""
    est, half = batch_ci(values, statistic)
    assert half <= MAX_RELATIVE_HALF_WIDTH * est, f"{statistic}: CI too wide: {est:.5g} +- {half:.3g}"
    assert est - half <= expected <= est + half, f"{statistic}: exact {expected:.5g} outside {est:.5g} +- {half:.3g}"
    return est


SIM_CASES = [
    # servers, rho, service, SCV, requests
    pytest.param(3, 0.5, "exponential", 1.0, 200_000, id="M/M/3-rho0.5"),
    pytest.param(3, 0.8, "exponential", 1.0, 2_000_000, id="M/M/3-rho0.8", marks=pytest.mark.slow),
    pytest.param(1, 0.5, "gamma", 0.5, 300_000, id="M/G/1-scv0.5-rho0.5"),
    pytest.param(1, 0.5, "gamma", 2.0, 1_000_000, id="M/G/1-scv2-rho0.5"),
    pytest.param(1, 0.8, "gamma", 0.5, 2_000_000, id="M/G/1-scv0.5-rho0.8", marks=pytest.mark.slow),
    pytest.param(1, 0.8, "gamma", 2.0, 5_000_000, id="M/G/1-scv2-rho0.8", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("servers", "rho", "service", "scv", "requests"), SIM_CASES)
def test_simulated_sojourn_against_formulas(servers: int, rho: float, service: str, scv: float, requests: int) -> None:
    """Pooled prefill (one FCFS queue, ``servers`` servers of mu = 1 req/s, Poisson arrivals at rho x servers).

    Mean: the module's mean (exact for M/M/c and M/G/1) inside the 99% CI. p90: the exact p90 inside the 99% CI,
    and the module's gamma approximation within 5% of the simulated p90 (measured bias vs exact: M/M/3 -0.47% /
    -0.23% at rho 0.5 / 0.8; M/G/1 SCV 0.5 +2.5% / +1.5%; SCV 2 -2.9% / -1.6%).

    Requests and the pilots' (seeds 11-14) half-widths of the mean and of p90: M/M/3 0.5: 200,000, 1.1-1.2% and
    1.1-1.5% (~1.5 s). M/M/3 0.8: 2,000,000, 1.3-1.6% and 1.5-1.8% (slow, ~10 s). M/G/1 SCV 0.5, 0.5: 300,000,
    1.1-1.4% and 1.3-1.7% (~2 s). SCV 2, 0.5: 1,000,000, 1.2-1.4% and 1.2-1.5% (~5 s). SCV 0.5, 0.8: 2,000,000,
    1.3-1.8% and 1.6-2.0% (slow, ~10 s). SCV 2, 0.8: 5,000,000, 1.4-1.9% and 1.6-1.9% (slow, ~25 s). (Pilot
    half-widths at the largest sizes are scaled from pilot runs at 1.5 M requests.)
    """
    cs2 = 1.0 if service == "exponential" else scv
    lam = rho * servers
    opts = SimOptions(requests=requests, seed=SEED, prefill_dispatch="pooled", prefill_service=service,
                      prefill_scv=scv, warmup_fraction=WARMUP, cooldown_fraction=COOLDOWN)
    sojourn, _ = kept_sojourns(queue_instance(servers, lam), servers, opts)
    assert_in_ci(sojourn, "mean", sojourn_statistic(lam, 1.0, servers, 1.0, cs2, "mean"))
    exact_p90 = (mmc_sojourn_quantile(0.9, lam, 1.0, servers) if service == "exponential"
                 else mg1_gamma_sojourn_quantile(0.9, rho, scv))
    simulated_p90 = assert_in_ci(sojourn, "p90", exact_p90)
    approx_p90 = sojourn_statistic(lam, 1.0, servers, 1.0, cs2, "p90")
    assert approx_p90 == pytest.approx(simulated_p90, rel=P90_APPROX_TOLERANCE)


LENGTH_PROFILE = [(100.0, 500.0), (1000.0, 1000.0), (5000.0, 1250.0)]
"""Prefill throughput (tok/s) by input length: linear between the points, clamped beyond them (as the engine)."""


def service_time_of_length(length: float) -> float:
    """t(L) = L / X(L) with X interpolated as the engine does."""
    xs, ys = zip(*LENGTH_PROFILE, strict=True)
    return length / float(np.interp(length, xs, ys))


def test_length_driven_service_scv_in_simulation() -> None:
    """Service variability from input lengths alone: deterministic service factor, input lengths
    max(1, round(Exp(mean 1000))) as the simulator draws them, service L / X(L) with X rising from 500 to 1250
    tok/s (:data:`LENGTH_PROFILE`). The exact length distribution (P(L = k) = P(k - 1/2 <= E < k + 1/2), L = 1
    also taking E < 1/2; lengths up to 40,000 tokens, tail below 1e-17) gives E[t] = 1.0273 s and, through
    service_scv_from_lengths, cs2 = 0.6266. At lam = 0.5 / E[t] (rho 0.5) the P-K mean 1.8628 s must lie in the
    99% CI of the simulated mean and the sample SCV of the kept requests' service times must be within 3% of
    cs2. 500,000 requests (425,000 kept): pilot sigma2 19-43 s^2 gives half-widths near 1.1-1.6% (~3 s)."""
    k = np.arange(1, 40_001, dtype=float)
    weights = np.exp(-(k - 0.5) / 1000.0) - np.exp(-(k + 0.5) / 1000.0)
    weights[0] = 1.0 - math.exp(-1.5 / 1000.0)
    cs2 = service_scv_from_lengths(list(k), list(weights), service_time_of_length)
    mean_t = float(np.sum(weights * np.array([service_time_of_length(x) for x in k])) / weights.sum())
    assert mean_t == pytest.approx(1.0273, abs=1e-4)
    assert cs2 == pytest.approx(0.6266, abs=1e-4)
    lam = 0.5 / mean_t
    opts = SimOptions(requests=500_000, seed=SEED, prefill_dispatch="pooled", prefill_service="deterministic",
                      lengths="exponential", warmup_fraction=WARMUP, cooldown_fraction=COOLDOWN)
    sojourn, lengths = kept_sojourns(queue_instance(1, lam, LENGTH_PROFILE), 1, opts)
    service = np.array([service_time_of_length(float(x)) for x in lengths])
    assert float(service.var() / service.mean() ** 2) == pytest.approx(cs2, rel=0.03)
    assert_in_ci(sojourn, "mean", sojourn_statistic(lam, 1.0 / mean_t, 1, 1.0, cs2, "mean"))

"""Capacity of one aggregated instance (chunked prefill in one engine), recomputed from docs/capacity.md
("Aggregated instances", the analysis steps 1-7) alone, never from :mod:`pdopt.perf.aggregated`. Notation as there
(ms, lambda per ms inside; req/s outside). Steps 1, 2, 7 use all lengths; steps 3-6 the classes (more than 6 bins
merged into 6 of probability 1/6 by work, a straddling bin split, a class taking the mean u and w). With O <= 1
nothing decodes: B = 0 and no TPOT condition. Numerical choices the document leaves open:

- b ~ Poisson(B) on 0..K - 1 within B +- (10 sqrt B + 10), renormalised; "I(u) > 1": u above its smallest room.
- Chain (step 2) on states 0..M, M the first N with P(Poisson(lambda C(N)) > N) < 1e-16, at most 512 (overflow
  folded into 512); saturated when lambda C(512) >= 512. Stationary law by a sparse linear solve.
- TPOT fixed point: secant steps from a + delta to relative 1e-14, else a doubling bracket and Brent's method; no
  fixed point before the analysis ends (B >= K, the chain) is saturation, as is rho >= 1.
- Poisson N_a, N_b to mean + 12 sd + 20; E[min(H, kappa)] exact below kappa, E[H] past E[H] + 40 sd + 60.
- Step 5: G on a 2^13-point lattice spanning mean + 40 sd of the window's work (at least kappa w-bar), a prompt's
  work split linearly between two lattice points; Newton's method per frequency; the blurred mixture's quantile by
  Brent's method (discrete without blur). Percentiles to about 1e-4 relative.
- Step 6: a run's classes weighted within N by p_L' c(N, L'); U at (i + 1/2) / 16; atoms below 1e-15 dropped; the
  smallest atom whose cumulative weight reaches p.

Search on x = lambda (w-bar + n delta) (x K / (a (n + u-bar)) when that work is 0): bisection for the saturation
load (relative 1e-13), GRID loads up to it scanned for the first failure, Brent's method back to the crossing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pdopt.instance import AggregatedProfile, Instance, IterationModel, Workload
from pdopt.perf import queueing

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

MEMORY_PROBABILITY = 0.99  # step 7
GRID = 24  # loads scanned, evenly up to the engine's saturation by work, for the first at which a condition fails
CHAIN_STATES = 512  # most prompts per run (step 2)
CLASSES = 6  # most length classes (steps 3-6)
RESIDUAL_POINTS = 16  # points of U (step 6)
LATTICE = 1 << 13  # FFT lattice of the window's prefill work (step 5)
_RTOL = 1e-13
_NAMES = {"ttft_target": "the TTFT target", "tpot_target": "the TPOT target", "kv_memory": "the batch and KV cap"}


@dataclass(frozen=True)
class AggregatedRecomputation:
    """One instance's recomputed capacity in req/s, the condition that limits it (``ttft_target``,
    ``tpot_target``, ``kv_memory`` or ``saturated``), and why it serves nothing (None when it serves)."""

    capacity_rps: float
    binding: str | None
    unusable: str | None = None


@dataclass(frozen=True)
class _Setup:
    """The load-independent numbers (ms, tokens): all lengths (steps 1, 2, 7) and the classes (steps 3-6)."""

    a: float
    k: int
    n: float
    delta: float
    probs: Floats  # all lengths: probabilities, u, w
    us: Floats
    ws: Floats
    cprobs: Floats  # the classes: probabilities, u, w
    cus: Floats
    cws: Floats
    u_m: float  # u-bar, w-bar, Var w, E[L]
    w_m: float
    var_w: float
    mean_len: float
    overhead_ms: float


@dataclass(frozen=True)
class _State:
    """The analysis at one rate (lambda per ms) with the decode-side solution."""

    lam: float
    tpot: float  # step 4 (tau_seen when nothing decodes)
    tau_d: float
    tau_seen: float
    batch: float
    rooms: Floats  # K - b and its probabilities
    qs: Floats
    chain_n: Floats  # the chain's states N, C(N), stationary law
    chain_c: Floats
    pi: Floats
    idle: float
    ttft_l: Floats  # engine TTFT per class (no overhead)
    succ_l: Floats  # work of the successors in the last prefill iteration, per class
    running: float


def _setup(it: IterationModel, k: int, wl: Workload, overhead_s: float) -> _Setup:
    import numpy as np

    dist = wl.input_length_distribution
    lengths = np.array(dist.lengths if dist is not None else [wl.input_tokens_mean], dtype=float)
    weights = np.array(dist.weights if dist is not None else [1.0], dtype=float)
    probs = weights / weights.sum()
    h, o = wl.prefix_cache_hit_rate, wl.output_tokens_mean
    us = (1.0 - h) * lengths
    ws = it.per_prefill_token_ms * us + it.prefill_quadratic_ms * (1.0 - h * h) * lengths ** 2
    mean_len = float(probs @ lengths)
    u_m, w_m = float(probs @ us), float(probs @ ws)
    cprobs, cus, cws = probs, us, ws
    if len(lengths) > CLASSES:
        order = np.argsort(ws, kind="stable")
        edges = np.concatenate([[0.0], np.cumsum(probs[order])])
        cp, cu, cw = [], [], []
        for j in range(CLASSES):
            lo, hi = j / CLASSES, (j + 1) / CLASSES
            part = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
            cp.append(part.sum())
            cu.append(float(part @ us[order]) / part.sum())
            cw.append(float(part @ ws[order]) / part.sum())
        cprobs, cus, cws = np.array(cp) / sum(cp), np.array(cu), np.array(cw)
    return _Setup(a=it.overhead_ms, k=k, n=max(o - 1.0, 0.0),
                  delta=it.per_decode_seq_ms + it.per_context_token_ms * (mean_len + o / 2.0),
                  probs=probs, us=us, ws=ws, cprobs=cprobs, cus=cus, cws=cws, u_m=u_m, w_m=w_m,
                  var_w=float(probs @ (ws - w_m) ** 2), mean_len=mean_len, overhead_ms=overhead_s * 1000.0)


def _poisson(mean: float, kmax: int | None = None) -> Floats:
    """P(N = j) for j = 0..kmax (default mean + 12 sd + 20)."""
    import numpy as np
    from scipy.stats import poisson

    top = kmax if kmax is not None else math.ceil(mean + 12.0 * math.sqrt(mean) + 20.0)
    return np.asarray(poisson.pmf(np.arange(top + 1), mean), dtype=float)


def _iters(x: Any, rooms: Floats, qs: Floats) -> Floats:
    """I(x) = E_b[max(1, ceil(x / (K - b)))] for an array of token counts x."""
    import numpy as np

    xs = np.asarray(x, dtype=float)
    return np.asarray(np.maximum(1.0, np.ceil(xs[..., None] / rooms)) @ qs, dtype=float)


def _emin_poisson(limits: Floats, mean: float) -> Floats:
    """E[min(z, N)] for N ~ Poisson(mean), for each z >= 0 of limits (in units of N)."""
    import numpy as np

    pmf = _poisson(mean)
    surv = np.clip(1.0 - np.cumsum(pmf), 0.0, None)  # P(N > j)
    cs = np.concatenate([[0.0], np.cumsum(surv)])  # cs[m] = sum_{j < m} P(N > j) = E[min(m, N)]
    z = np.clip(limits, 0.0, None)
    fl = np.minimum(np.floor(z).astype(int), len(surv) - 1)
    frac = np.where(np.floor(z) < len(surv) - 1, z - fl, 0.0)
    return np.asarray(cs[fl] + frac * surv[fl], dtype=float)


def _chain(s: _Setup, lam: float, tau_d: float, rooms: Floats, qs: Floats) -> tuple[Floats, Floats, Floats] | None:
    """Step 2's chain: its states N, C(N) and stationary law, or None when the prompt queue saturates."""
    import numpy as np
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve
    from scipy.stats import poisson

    ns = np.arange(CHAIN_STATES + 1, dtype=float)
    cs = tau_d * _iters(ns * s.u_m, rooms, qs) + ns * s.w_m
    if lam * cs[-1] >= CHAIN_STATES:
        return None
    tails = poisson.sf(ns, lam * cs)
    small = np.nonzero(tails < 1e-16)[0]
    top = int(small[0]) if len(small) else CHAIN_STATES
    ns, cs = ns[:top + 1], cs[:top + 1]
    trans = poisson.pmf(ns[None, :], lam * cs[:, None])
    trans[:, -1] += poisson.sf(top, lam * cs)
    mat = trans.T - np.eye(top + 1)
    mat[np.abs(mat) < 1e-300] = 0.0
    mat[-1, :] = 1.0
    pi = np.clip(spsolve(csc_matrix(mat), np.eye(top + 1)[-1]), 0.0, None)  # sparse LU: no threaded BLAS
    return ns, cs, pi / pi.sum()


def _gp_emin(theta: float, mu: float, kappa: float) -> float:
    """E[min(H, kappa)], H generalised Poisson(theta, mu) (step 4)."""
    import numpy as np
    from scipy.special import gammaln

    if theta <= 0.0:
        return 0.0
    mean = theta / (1.0 - mu)
    top = mean + 40.0 * math.sqrt(theta / (1.0 - mu) ** 3) + 60.0
    if kappa > top:
        return mean
    k = np.arange(math.ceil(kappa))  # k < kappa
    logp = math.log(theta) + (k - 1) * np.log(theta + k * mu) - theta - k * mu - gammaln(k + 1)
    return float(kappa - np.exp(logp) @ (kappa - k))


def _analyse(s: _Setup, lam: float, tpot: float) -> tuple[float, _State] | None:
    """Steps 1-4 and 7 at lambda (per ms) given the TPOT: (the TPOT they give, the state), None if saturated."""
    import numpy as np
    from scipy.stats import poisson

    batch = lam * s.n * tpot
    if batch >= s.k:
        return None
    spread = 10.0 * math.sqrt(batch) + 10.0  # b ~ Poisson(B) on 0..K - 1 within B +- (10 sqrt B + 10)
    bs = np.arange(max(0, math.floor(batch - spread)), min(s.k - 1, math.ceil(batch + spread)) + 1)
    qs = np.asarray(poisson.pmf(bs, batch), dtype=float)
    rooms, qs = s.k - bs.astype(float), qs / qs.sum()
    tau_d = s.a + s.delta * batch
    chain = _chain(s, lam, tau_d, rooms, qs)
    if chain is None:
        return None
    ns, cs, pi = chain
    total = float(pi @ cs)
    idle = float(pi[0] * cs[0] / total) * math.exp(-batch)
    resid = float(pi @ (cs * cs + ns * s.var_w)) / (2.0 * total) - idle * tau_d / 2.0
    beta = s.w_m / s.u_m if s.u_m > 0.0 else 0.0
    room_m = s.k - batch
    ttft_l, succ_l = np.empty(len(s.cus)), np.empty(len(s.cus))
    na_pmf = _poisson(lam * resid)
    na = np.arange(len(na_pmf), dtype=float)
    for j, (u, w) in enumerate(zip(s.cus, s.cws, strict=True)):
        ia = _iters(s.u_m * na + u, rooms, qs)
        t_big = float(na_pmf @ ia) * tau_d + lam * resid * s.w_m + w
        t_last = tau_d + beta * min(room_m, u) if u > rooms.min() else tau_d + w + lam * resid * s.w_m
        left = np.clip(ia * room_m - s.u_m * na - u, 0.0, None)
        emin = 0.0
        if s.u_m > 0.0:
            emin = s.u_m * float(na_pmf @ _emin_poisson(left / s.u_m, max(0.0, lam * (resid + t_big - t_last))))
        succ_l[j] = beta * emin
        ttft_l[j] = resid + t_big + succ_l[j]
    tau_seen = s.a + s.delta * (1.0 + batch)
    new_tpot = tau_seen
    if s.n > 0.0 and s.w_m > 0.0:
        theta = lam * (s.n * tau_seen + float(s.cprobs @ ttft_l) - tpot) - float(s.cprobs @ succ_l) / s.w_m
        kappa = s.n * room_m / s.u_m
        new_tpot += _gp_emin(max(theta, 0.0), lam * s.w_m, kappa) * s.w_m / s.n
    own = float(s.probs @ (_iters(s.us, rooms, qs) * tau_d + s.ws))
    running = lam * (s.n * tpot + own)
    return new_tpot, _State(lam=lam, tpot=tpot, tau_d=tau_d, tau_seen=tau_seen, batch=batch, rooms=rooms, qs=qs,
                            chain_n=ns, chain_c=cs, pi=pi, idle=idle, ttft_l=ttft_l,
                            succ_l=succ_l, running=running)


def _solve(s: _Setup, lam: float) -> _State | None:
    """The analysis at lambda (per ms) at the TPOT fixed point, or None when saturated."""
    from scipy.optimize import brentq

    if lam * (s.w_m + s.n * s.delta) >= 1.0:
        return None
    if s.n == 0.0 or lam == 0.0:
        out = _analyse(s, lam, s.a + s.delta)
        return None if out is None else out[1]

    def gap(t: float) -> float | None:
        out = _analyse(s, lam, t)
        return None if out is None else out[0] - t

    lo = max(s.a + s.delta, 1e-9)
    g_lo = gap(lo)
    if g_lo is None:
        return None
    t0, g0, t1 = lo, g_lo, lo + g_lo  # secant steps first (they converge in a few), else a bracket
    for _ in range(40):
        g1 = gap(t1)
        if g1 is None or g1 == g0:
            break
        t0, g0, t1 = t1, g1, t1 - g1 * (t1 - t0) / (g1 - g0)
        if not t1 > lo:
            break
        if abs(t1 - t0) <= 1e-14 * t1:
            out = _analyse(s, lam, t1)
            return None if out is None else out[1]
    hi = 2.0 * lo  # a bracket by doubling; the analysis ending before the fixed point is saturation
    while (g_hi := gap(hi)) is not None and g_hi >= 0.0 and hi < 1e12:
        lo, hi = hi, 2.0 * hi
    if g_hi is None or g_hi >= 0.0:
        return None
    t = float(brentq(lambda x: gap(x) or 0.0, lo, hi, xtol=1e-300, rtol=1e-14, maxiter=300))
    out = _analyse(s, lam, t)
    return None if out is None else out[1]


def _tpot_quantile(s: _Setup, st: _State, p: float) -> float:
    """Step 5: the p-quantile of TPOT (ms)."""
    import numpy as np
    from scipy.optimize import brentq
    from scipy.special import ndtr

    lam, n = st.lam, s.n
    rho = lam * (s.w_m + n * s.delta)
    var = lam * st.tau_seen * (s.w_m * s.delta * n + 2.0 / 3.0 * s.delta ** 2 * n * n) / n / (1.0 - rho) ** 2
    cap = max(st.tau_seen + (s.w_m / s.u_m if s.u_m > 0 else 0.0) * (s.k - st.batch), st.tpot)
    mu = lam * s.w_m
    thetas = np.clip(lam * (n * st.tau_seen + st.ttft_l - st.tpot) - (st.succ_l / s.w_m if s.w_m > 0 else 0.0),
                     0.0, None)
    kw = n * (s.k - st.batch) * s.w_m / s.u_m if s.u_m > 0 else 0.0
    if s.w_m == 0.0 or float(thetas.max()) == 0.0:
        vals, wts = np.array([st.tau_seen]), np.array([1.0])
    else:
        m1 = s.w_m / (1.0 - mu)
        ey2 = float(s.probs @ s.ws ** 2) * (1.0 + lam * m1) ** 2 / (1.0 - mu)
        th = float(thetas.max())
        span = max(th * m1 + 40.0 * math.sqrt(th * ey2) + float(s.ws.max()), kw * 1.0000001, float(s.ws.max()) * 2)
        dx = span / LATTICE
        freq = np.exp(-2j * np.pi * np.arange(LATTICE // 2 + 1) / LATTICE)
        pos = s.ws / dx
        fl = np.floor(pos)
        fr = pos - fl
        own = (1.0 - fr)[:, None] * freq[None, :] ** fl[:, None] + fr[:, None] * freq[None, :] ** (fl[:, None] + 1)
        lw = lam * s.ws[:, None]
        g = np.ones_like(freq)
        for _ in range(100):
            ex = own * np.exp(lw * (g[None, :] - 1.0))
            f = g - s.probs @ ex
            step = f / (1.0 - s.probs @ (lw * ex))
            g = g - step
            if float(np.abs(step).max()) < 1e-15:
                break
        grid = np.arange(LATTICE) * dx
        vals = st.tau_seen + np.minimum(grid, kw) / n
        wts = np.zeros(LATTICE)
        for pl, th_l in zip(s.cprobs, thetas, strict=True):
            wts += pl * np.clip(np.fft.irfft(np.exp(th_l * (g - 1.0)), LATTICE), 0.0, None)
        wts /= wts.sum()
    if var <= 0.0:
        order = np.argsort(vals, kind="stable")
        cum = np.cumsum(wts[order])
        q = float(vals[order][min(int(np.searchsorted(cum, p - 1e-15)), len(cum) - 1)])
    else:
        sd = math.sqrt(var)

        def cdf(y: float) -> float:
            return float(wts @ ndtr((y - vals) / sd)) - p

        lo, hi = float(vals.min()) - 10.0 * sd, float(vals.max()) + 10.0 * sd
        q = float(brentq(cdf, lo, hi, xtol=1e-12, rtol=1e-14))
    return min(q, cap)


def _ttft_quantile(s: _Setup, st: _State, p: float) -> float:
    """Step 6: the p-quantile of TTFT (ms, with the overhead)."""
    import numpy as np
    from scipy.stats import poisson

    lam, tau_d = st.lam, st.tau_d
    beta = s.w_m / s.u_m if s.u_m > 0.0 else 0.0
    room_m = s.k - st.batch
    total = float(st.pi @ st.chain_c)
    shares = st.pi * st.chain_c / total
    runs_c, runs_w = [0.0, tau_d], [st.idle, shares[0] - st.idle]
    for big_n, sh in zip(st.chain_n[1:], shares[1:], strict=True):
        if sh < 1e-15:
            continue
        cl = tau_d * _iters((big_n - 1.0) * s.u_m + s.cus, st.rooms, st.qs) + (big_n - 1.0) * s.w_m + s.cws
        wl = s.cprobs * cl
        runs_c.extend(cl.tolist())
        runs_w.extend((sh * wl / wl.sum()).tolist())
    rc, rw = np.array(runs_c), np.array(runs_w)
    rc, rw = rc[rw > 1e-15], rw[rw > 1e-15]
    us_ = (np.arange(RESIDUAL_POINTS) + 0.5) / RESIDUAL_POINTS
    vals_all, wts_all = [], []
    for pl, u, w in zip(s.cprobs, s.cus, s.cws, strict=True):
        e_l = (float(_iters(u, st.rooms, st.qs)) - 1.0) * (tau_d + beta * min(room_m, u))
        cu = (rc[:, None] * us_[None, :]).ravel()  # U c
        ce = (rc[:, None] * (1.0 - us_[None, :])).ravel()  # (1 - U) c
        cw = np.repeat(rw / RESIDUAL_POINTS, RESIDUAL_POINTS) * pl
        na_top = math.ceil(lam * ce.max() + 12.0 * math.sqrt(lam * ce.max()) + 20.0)
        na = np.arange(na_top + 1, dtype=float)
        pa = poisson.pmf(na[None, :], lam * ce[:, None]) * cw[:, None]
        ia = _iters(s.u_m * na + u, st.rooms, st.qs)
        left = np.clip(ia * room_m - s.u_m * na - u, 0.0, None)
        base = cu[:, None] + (ia * tau_d + na * s.w_m + w + s.overhead_ms)[None, :]
        idx = np.nonzero(pa > 1e-15)
        bw, bv, bl = pa[idx], base[idx], left[idx[1]]
        mb = lam * (cu[idx[0]] + e_l)
        nb_top = math.ceil(float(mb.max()) + 12.0 * math.sqrt(float(mb.max())) + 20.0)
        nb = np.arange(nb_top + 1, dtype=float)
        pb = poisson.pmf(nb[None, :], mb[:, None]) * bw[:, None]
        vb = bv[:, None] + beta * np.minimum(bl[:, None], s.u_m * nb[None, :])
        sel = pb > 1e-15
        vals_all.append(vb[sel])
        wts_all.append(pb[sel])
    vals, wts = np.concatenate(vals_all), np.concatenate(wts_all)
    order = np.argsort(vals, kind="stable")
    cum = np.cumsum(wts[order])
    cum /= cum[-1]
    return float(vals[order][min(int(np.searchsorted(cum, p - 1e-13)), len(cum) - 1)])


def predict_means(iteration: IterationModel, token_budget: int, workload: Workload, rate_rps: float,
                  overhead_s: float) -> tuple[float, float] | None:
    """Mean TTFT (s, with the overhead) and mean TPOT (ms) at ``rate_rps`` by the analysis (module docstring),
    or None when the engine saturates there."""
    s = _setup(iteration, token_budget, workload, overhead_s)
    st = _solve(s, rate_rps / 1000.0)
    if st is None:
        return None
    return (float(s.cprobs @ st.ttft_l) + s.overhead_ms) / 1000.0, st.tpot


def kv_tokens_of(instance: Instance, profile: AggregatedProfile) -> int:
    """KV-cache tokens of one instance: the profile's ``kv_tokens``, else
    floor((memory_gb x GPUs x ``kv_usable_fraction`` - weights_gb) x 1e9 / KV bytes per token), at least 0."""
    if profile.kv_tokens is not None:
        return profile.kv_tokens
    usable_gb = (instance.gpu_types[profile.gpu_type].memory_gb * profile.gpus_per_instance
                 * instance.options.kv_usable_fraction)
    m = instance.models[profile.model]
    if m.weights_gb is not None:
        weights_gb = m.weights_gb
    else:
        assert m.architecture is not None  # the data model requires one or the other
        weights_gb = m.architecture.num_parameters_billion * m.architecture.bytes_per_parameter
    free_bytes = max(0.0, (usable_gb - weights_gb) * 1e9)
    return int(free_bytes // instance.models[profile.model].kv_bytes_per_token_value)


def recompute_aggregated_detail(profile: AggregatedProfile, workload: Workload, kv_tokens: int,
                                overhead_s: float) -> AggregatedRecomputation:
    """The capacity of one aggregated instance (req/s) with the binding condition; see the module docstring."""
    from scipy.optimize import brentq
    from scipy.special import pdtr

    it = profile.iteration
    s = _setup(it, profile.token_budget, workload, overhead_s)
    cap = min(profile.max_batch, math.floor(kv_tokens / (s.mean_len + workload.output_tokens_mean)))
    if cap < 1:
        return AggregatedRecomputation(0.0, None, f"the KV cache ({kv_tokens} tokens) holds no whole request of "
                                                  f"E[L] + O = {s.mean_len + workload.output_tokens_mean:g} tokens")
    work = s.w_m + s.n * s.delta
    if work > 0.0:
        lam_ref = 1.0 / work
    elif s.a > 0.0:
        lam_ref = s.k / (s.a * (s.n + s.u_m))
    else:
        return AggregatedRecomputation(0.0, None, "the iteration model takes no time at all (every coefficient "
                                                  "0): no finite capacity")
    ttft_t, tpot_t = workload.ttft.target_s * 1000.0, workload.tpot.target_ms
    ttft_stat, tpot_stat = workload.ttft.statistic, workload.tpot.statistic
    conditions: dict[str, Callable[[_State], float]] = {
        "ttft_target": lambda st: (float(s.cprobs @ st.ttft_l) + s.overhead_ms if ttft_stat == "mean" else
                                  _ttft_quantile(s, st, queueing.QUANTILES[ttft_stat])) / ttft_t - 1.0,
        "tpot_target": lambda st: (st.tpot if tpot_stat == "mean" else _tpot_quantile(
            s, st, queueing.QUANTILES[tpot_stat])) / tpot_t - 1.0,
        "kv_memory": lambda st: MEMORY_PROBABILITY - float(pdtr(cap, st.running)),
    }
    if s.n == 0.0:
        del conditions["tpot_target"]
    light = _solve(s, 0.0)
    assert light is not None
    for name, cond in conditions.items():
        if cond(light) > 0.0:
            return AggregatedRecomputation(0.0, name, f"{_NAMES[name]} fails at the lightest load")
    conditions["saturated"] = lambda st: -1.0  # a state exists: not saturated (None, beyond, counts as failing)
    x_sat = 1.0  # lam_ref: the engine's work alone fills it; nothing holds at or beyond
    while work == 0.0 and _solve(s, x_sat * lam_ref) is not None:
        x_sat *= 2.0
    prev = 0.0
    for i in range(1, GRID + 1):
        x_i = x_sat * i / GRID
        at = _solve(s, x_i * lam_ref)
        failing = ["saturated"] if at is None else [name for name, cond in conditions.items() if cond(at) > 0.0]
        if not failing:
            prev = x_i
            continue
        best_x, binding = x_i, failing[0]
        for name in failing:
            def excess(x: float, cond: Callable[[_State], float] = conditions[name]) -> float:
                state = _solve(s, x * lam_ref)
                return 1.0 if state is None else cond(state)

            x = prev if excess(prev) == 0.0 else float(brentq(excess, prev, x_i, xtol=1e-300, rtol=_RTOL))
            step = 4.0 * _RTOL * max(x, 1e-300)
            while x > prev and excess(x) > 0.0:  # stepped back onto the feasible side
                x, step = max(prev, x - step), 2.0 * step
            if x < best_x:
                best_x, binding = x, name
        if best_x <= 1e-9 * x_sat:
            return AggregatedRecomputation(0.0, binding, f"{_NAMES[binding]} fails at any positive load")
        return AggregatedRecomputation(best_x * lam_ref * 1000.0, binding)
    return AggregatedRecomputation(x_sat * lam_ref * 1000.0, "saturated")


def recompute_aggregated(profile: AggregatedProfile, workload: Workload, kv_tokens: int,
                         overhead_s: float) -> tuple[float, str | None]:
    """The largest arrival rate (req/s) one aggregated instance serves at the workload's TTFT and TPOT
    statistics within its batch and KV-cache cap, and None, or 0 and why it serves nothing (module docstring)."""
    out = recompute_aggregated_detail(profile, workload, kv_tokens, overhead_s)
    return out.capacity_rps, out.unusable

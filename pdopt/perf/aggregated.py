"""Aggregated instances (prefill and decode in one engine, chunked prefill): the largest arrival rate one instance
serves while meeting the TTFT and the TPOT target at their statistics.

The engine (vLLM's and SGLang's default scheduler, as :mod:`pdopt.sim.aggregated` simulates it) runs iterations
back to back, each carrying every decoding request (one token each) and, within the token budget K, prompt chunks
in arrival order; an iteration takes t = a + b P + c Q + d C + e B ms (:class:`pdopt.instance.IterationModel`).
docs/capacity.md states the analysis and its check against the simulator. In short (lambda per ms; a prompt of L
tokens computes u = (1 - h) L of them, prefill work w = b u + c (1 - h^2) L^2; n = O - 1; delta = e + d (E[L] +
O / 2); B = lambda n TPOT the decode batch, b ~ Poisson(B) its value in one iteration, tau_d = a + delta B):

1. Prefill is a gated polling system: an iteration serves the prompts present at its start. A run serving N
   prompts lasts C(N) = tau_d E[max(1, ceil(N u / (K - b)))] + N w; the next serves those that arrived meanwhile,
   N' ~ Poisson(lambda C(N)). From this chain's stationary law: the run in progress at an arrival (size-biased),
   of which it waits a uniform fraction, the prompts ahead of it (arrived during the elapsed part) and behind it
   (arrived before its last iteration, sharing the budget that iteration leaves). Mean TTFT in mean-value form,
   percentiles from the mixture over these.
2. Decode: a request's n iterations carry its own decode, the others' (Little) and the prefill landing in its
   window, a Poisson cluster (a prompt of work w lengthens the window by w and lets Poisson(lambda w) more in)
   started by the window's arrivals and the prompts queued when it opens: theta = lambda (n tau_seen + X), X from
   the request's own TTFT. At most n full iterations of prefill fit in a window. Percentiles: that work's law
   (generalised Poisson for one length) blurred by the others' decode (Campbell), capped at a full iteration.
3. Memory and batch: the requests running at once are about Poisson(lambda (n TPOT + own prefill)); with
   probability 0.99 within min(max_batch, KV tokens / (E[L] + O)).

The capacity is the rate at which a condition first fails (:mod:`pdopt.perf.aggregated_search`: a scan below
saturation, then bisection; a statistic need not be monotone near saturation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pdopt.instance import AggregatedProfile, Instance, IterationModel, Statistic, Workload
from pdopt.perf.queueing import QUANTILES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

RUNNING_WITHIN_CAP = 0.99
"""Probability with which the requests running at once must stay within the batch and KV-memory cap."""
RESIDUAL_POINTS = 16
"""Points of the uniform residual fraction in the TTFT mixture (midpoint rule)."""
LENGTH_CLASSES = 6
"""Most prompt classes the analysis distinguishes (a length distribution's bins are merged beyond that)."""
MAX_PROMPTS_PER_RUN = 512
"""Largest state of the prompt chain; a heavier tail is treated as a saturated prompt queue."""


@dataclass(frozen=True)
class AggregatedLoad:
    """The analysis of one aggregated instance at one arrival rate (times in ms unless named _s)."""

    rate_rps: float
    engine_load: float
    """rho = lambda (E[w] + n delta): the share of time spent on per-request work."""
    iteration_ms: float
    """Mean iteration time while the engine runs."""
    decode_iteration_ms: float
    """tau_d: an iteration with the mean decode batch and no prefill."""
    mean_batch: float
    prefill_load: float
    """Share of time in iterations that carry prefill."""
    tpot_mean_ms: float
    ttft_mean_s: float
    running_mean: float
    """Mean number of requests admitted (decoding or prefilling)."""
    window_shift_ms: float
    """X: prompts queued when a request's decode window opens, beyond those at its end, over lambda."""
    _prefill: _PrefillState = field(repr=False, compare=False)
    _decode: _DecodeState = field(repr=False, compare=False)


@dataclass(frozen=True)
class _PrefillState:
    lam: float
    us: Floats
    ws: Floats
    ps: Floats
    u_m: float
    w_m: float
    tau_d: float
    room: float
    rooms: tuple[Floats, Floats]
    cycle_w: Floats  # time shares of the run in progress at an arrival: idle, decode only, then runs of prompts
    cycle_len: Floats
    overhead_ms: float


@dataclass(frozen=True)
class _DecodeState:
    tau_seen: float
    mu: float
    hit_ms: float
    n: float
    hit_cap: float
    noise_ms: float
    full_ms: float
    ws: Floats
    ps: Floats
    thetas: Floats  # theta per class of the request: its own prefill sets the prompts queued at its window


def prompt_lengths(workload: Workload) -> list[tuple[float, float]]:
    """(length, probability) pairs of the workload's prompt lengths."""
    dist = workload.input_length_distribution
    if dist is None:
        return [(workload.input_tokens_mean, 1.0)]
    total = sum(dist.weights)
    return [(x, w / total) for x, w in zip(dist.lengths, dist.weights, strict=True)]


def _classes(us: Floats, ws: Floats, ps: Floats) -> tuple[Floats, Floats, Floats]:
    """At most LENGTH_CLASSES prompt classes (tokens, work, probability): lengths merged into bins of equal
    probability by work, each with its mean tokens and work (a long histogram would make the mixtures slow)."""
    import numpy as np

    if len(ps) <= LENGTH_CLASSES:
        return us, ws, ps
    order = np.argsort(ws)
    us, ws, ps = us[order], ws[order], ps[order]
    edge = np.minimum((np.cumsum(ps) - ps / 2.0) * LENGTH_CLASSES, LENGTH_CLASSES - 1).astype(int)
    mass = np.asarray(np.bincount(edge, ps, LENGTH_CLASSES), dtype=np.float64)
    keep = mass > 0
    return ((np.bincount(edge, ps * us, LENGTH_CLASSES)[keep] / mass[keep]),
            (np.bincount(edge, ps * ws, LENGTH_CLASSES)[keep] / mass[keep]), mass[keep])


def kv_token_capacity(instance: Instance, profile: AggregatedProfile) -> int:
    """KV tokens one instance holds: stated on the profile, else (memory x GPUs x usable fraction - weights) / KV
    bytes per token."""
    if profile.kv_tokens is not None:
        return profile.kv_tokens
    m = instance.models[profile.model]
    free = (instance.gpu_types[profile.gpu_type].memory_gb * profile.gpus_per_instance
            * instance.options.kv_usable_fraction - m.weights_gb_value) * 1e9
    return max(0, int(free // m.kv_bytes_per_token_value))


def _poisson(mean: Any, kmax: int) -> Floats:
    """Poisson pmf at 0..kmax for each mean (shape mean.shape + (kmax + 1,))."""
    import numpy as np

    m = np.asarray(mean, dtype=np.float64)[..., None]
    k = np.arange(kmax + 1, dtype=np.float64)
    lgk = np.cumsum(np.log(np.maximum(k, 1.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.exp(-m + k * np.log(np.where(m > 0, m, 1.0)) - lgk)
    return np.asarray(np.where(m > 0, out, (k == 0).astype(np.float64)), dtype=np.float64)


def _kmax(mean: float) -> int:
    """A count beyond which a Poisson(mean) has less than about 1e-9 of its mass."""
    return int(mean + 7.0 * math.sqrt(mean) + 4)


def _rooms(budget: int, batch: float) -> tuple[Floats, Floats]:
    """The prefill room K - b with its probability, b ~ Poisson(batch) (below K)."""
    import numpy as np

    lo = max(0, int(batch - 7 * math.sqrt(batch) - 2))
    hi = min(budget - 1, int(batch + 7 * math.sqrt(batch) + 3))
    b = np.arange(lo, hi + 1, dtype=np.float64)
    pb = _poisson(batch, hi)[lo:]
    return budget - b, pb / pb.sum()


def _iterations(tokens: Any, rooms: tuple[Floats, Floats]) -> Floats:
    """E[max(1, ceil(tokens / room))]: iterations that compute ``tokens`` prompt tokens from a fresh iteration."""
    import numpy as np

    t = np.atleast_1d(np.asarray(tokens, dtype=np.float64))
    return np.maximum(1.0, np.ceil(t[:, None] / rooms[0][None, :] - 1e-9)) @ rooms[1]


def _prompt_chain(lam: float, tau_d: float, u_m: float, w_m: float,
                  rooms: tuple[Floats, Floats]) -> tuple[Floats, Floats] | None:
    """(C(N), stationary probability of N) for the prompts served by one run of iterations; None when the chain
    has no stationary law within MAX_PROMPTS_PER_RUN states (the prompt queue saturates)."""
    import numpy as np

    nmax = 16
    while nmax <= MAX_PROMPTS_PER_RUN:
        n_prompts = np.arange(nmax, dtype=np.float64)
        length = tau_d * _iterations(n_prompts * u_m, rooms) + n_prompts * w_m
        trans = _poisson(lam * length, nmax - 1)
        trans[:, -1] += np.maximum(0.0, 1.0 - trans.sum(axis=1))
        system = trans.T - np.eye(nmax)
        system[-1, :] = 1.0
        try:
            pi = np.maximum(np.linalg.solve(system, np.eye(nmax)[-1]), 0.0)
        except np.linalg.LinAlgError:
            return None
        pi /= pi.sum()
        if pi[-max(2, nmax // 4):].sum() < 1e-10:
            return length, pi
        nmax *= 2
    return None


def _gp_pmf(theta: float, mu: float) -> Floats:
    """pmf of the generalised Poisson (Consul) count theta (theta + k mu)^(k-1) e^(-theta - k mu) / k!: the total
    of a Poisson(theta) cluster in which each member brings Poisson(mu) more."""
    import numpy as np

    if theta <= 0.0:
        return np.ones(1)
    kmax = int(theta / (1 - mu) + 12 * math.sqrt(theta / (1 - mu) ** 3) + 10)
    k = np.arange(kmax + 1, dtype=np.float64)
    lgk = np.cumsum(np.log(np.maximum(k, 1.0)))
    return np.asarray(np.exp(math.log(theta) + (k - 1) * np.log(theta + k * mu) - theta - k * mu - lgk))


def _tagged_prompt(lam: float, residual: float, u: float, w: float, u_m: float, w_m: float, tau_d: float,
                   room: float, rooms: tuple[Floats, Floats]) -> tuple[float, float, float]:
    """(mean TTFT beyond the residual, mean work of its successors in its last iteration, own prefill time) of a
    prompt of u tokens and work w waiting ``residual`` for the run in progress: :func:`_ttft_mixture` in
    mean-value form (Poisson(lambda residual) prompts ahead; behind, the arrivals before its last iteration)."""
    import numpy as np

    beta = w_m / u_m
    ahead = lam * residual
    ka = np.arange(_kmax(ahead) + 1, dtype=np.float64)
    pa = _poisson(ahead, len(ka) - 1)
    its = _iterations(u_m * ka + u, rooms)
    n_it = float(pa @ its)
    left = float(pa @ np.maximum(its * room - u_m * ka - u, 0.0))
    n_own = float(_iterations(u, rooms)[0])
    core = n_it * tau_d + ahead * w_m + w
    last = tau_d + (beta * min(room, u) if n_own > 1.0 + 1e-9 else w + ahead * w_m)  # an average of whole numbers
    behind = lam * max(residual + core - last, residual)
    kb = np.arange(_kmax(behind) + 1, dtype=np.float64)
    succ = beta * float(_poisson(behind, len(kb) - 1) @ np.minimum(left, u_m * kb))
    return core + succ, succ, n_own * tau_d + w


def aggregated_load(it: IterationModel, token_budget: int, workload: Workload, rate_rps: float,
                    overhead_s: float) -> AggregatedLoad | None:
    """The analysis of the module docstring at ``rate_rps``; None when the engine, the prompt queue or the token
    budget saturates."""
    import numpy as np

    lam = rate_rps / 1000.0
    h = workload.prefix_cache_hit_rate
    out = workload.output_tokens_mean
    n = max(out - 1.0, 0.0)
    lengths = prompt_lengths(workload)
    xs = np.array([x for x, _ in lengths])
    ps = np.array([p for _, p in lengths])
    us = (1.0 - h) * xs
    ws = it.per_prefill_token_ms * us + it.prefill_quadratic_ms * (1.0 - h * h) * xs * xs
    u_m, w_m = float(ps @ us), float(ps @ ws)
    w_var = max(float(ps @ ws ** 2) - w_m * w_m, 0.0)
    delta = it.per_decode_seq_ms + it.per_context_token_ms * (float(ps @ xs) + out / 2.0)
    us, ws, ps = _classes(us, ws, ps)
    beta = w_m / u_m
    a = it.overhead_ms
    rho = lam * (w_m + n * delta)
    if rho >= 1.0 or lam <= 0.0:
        return None
    tpot = (a + delta) / (1.0 - rho)
    shift = 0.0
    previous: tuple[float, float] | None = None
    for _ in range(60):  # TPOT is a fixed point (the batch depends on it): secant steps on new(TPOT) - TPOT
        batch = lam * n * tpot
        if batch >= token_budget - 1:
            return None
        tau_d = a + delta * batch
        room = token_budget - batch
        rooms = _rooms(token_budget, batch)
        chain = _prompt_chain(lam, tau_d, u_m, w_m, rooms)
        if chain is None:
            return None
        length, pi = chain
        mean_c = float(pi @ length)
        share = pi * length / mean_c
        busy_decode = 1.0 - math.exp(-batch)
        idle = (1.0 - float(share[1:].sum())) * (1.0 - busy_decode)
        n_prompts = np.arange(len(pi), dtype=np.float64)
        residual = float(pi @ (length ** 2 + n_prompts * w_var)) / (2.0 * mean_c) - idle * tau_d / 2.0
        parts = [_tagged_prompt(lam, residual, u, w, u_m, w_m, tau_d, room, rooms)
                 for u, w in zip(us, ws, strict=True)]
        ttft = residual + sum(p * t for p, (t, _, _) in zip(ps, parts, strict=True))
        succ = sum(p * s for p, (_, s, _) in zip(ps, parts, strict=True))
        own = sum(p * o for p, (_, _, o) in zip(ps, parts, strict=True))
        shift = max(ttft - succ / (lam * w_m) - tpot, 0.0) if w_m > 0.0 else 0.0
        tau_seen = a + delta * (1.0 + batch)
        theta, mu = lam * (n * tau_seen + shift), lam * w_m
        cap = max(n, 1.0) * beta * room / w_m if w_m > 0.0 else math.inf
        if w_m > 0.0:  # prefill work landing in the window (none when prefill is free: w = 0)
            pmf = _gp_pmf(theta, mu)
            hits = float(pmf @ np.minimum(np.arange(len(pmf)), cap)) + max(0.0, 1.0 - float(pmf.sum())) * cap
        else:
            hits = 0.0
        new = tau_seen + hits * w_m / max(n, 1.0)
        gap = new - tpot
        if abs(gap) <= 1e-9 * tpot:
            tpot = new
            break
        step = gap
        if previous is not None and gap != previous[1]:
            secant = gap * (tpot - previous[0]) / (previous[1] - gap)
            step = secant if 0.0 < secant / gap < 20.0 else gap
        previous = (tpot, gap)
        tpot += step
    noise = lam * tau_seen * (w_m * delta * n + 2.0 / 3.0 * delta * delta * n * n) / max(n, 1.0) / (1.0 - rho) ** 2
    runs = float(pi @ _iterations(np.arange(len(pi)) * u_m, rooms))
    # a run of N >= 1 prompts: one of them of each class, the others at the mean work (size-biased by length)
    run_len = (length[1:, None] - w_m + ws[None, :]).ravel()
    run_w = (share[1:, None] * ps[None, :] * (length[1:, None] - w_m + ws[None, :]) / length[1:, None]).ravel()
    cycle_w = np.concatenate([[idle, 1.0 - float(share[1:].sum()) - idle], run_w])
    prefill = _PrefillState(lam, us, ws, ps, u_m, w_m, tau_d, room, rooms, cycle_w,
                            np.concatenate([[0.0, tau_d], run_len]), overhead_s * 1000.0)
    shifts = np.array([max(residual + t - su / (lam * w_m) - tpot, 0.0) if w_m > 0.0 else 0.0
                       for t, su, _ in parts])
    decode = _DecodeState(tau_seen, mu, w_m, max(n, 1.0), cap, math.sqrt(noise), tau_seen + beta * room,
                          ws, ps, lam * (n * tau_seen + shifts))
    return AggregatedLoad(
        rate_rps=rate_rps, engine_load=rho, iteration_ms=mean_c / runs, decode_iteration_ms=tau_d,
        mean_batch=batch, prefill_load=float(share[1:].sum()), tpot_mean_ms=tpot,
        ttft_mean_s=ttft / 1000.0 + overhead_s, running_mean=lam * (n * tpot + own), window_shift_ms=shift,
        _prefill=prefill, _decode=decode)


def _ttft_mixture(s: _PrefillState) -> tuple[Floats, Floats]:
    """TTFT values (ms, sorted) and their cumulative probabilities: over the run in progress at the arrival
    (idle, decode only, N prompts), the residual fraction U of it, the prompts ahead (Poisson(lambda (1 - U) c))
    and behind (Poisson(lambda (U c + own earlier iterations)), within the budget left in its last iteration)."""
    import numpy as np

    keep = s.cycle_w > 1e-7
    cw, cl = s.cycle_w[keep] / s.cycle_w[keep].sum(), s.cycle_len[keep]
    grid = (np.arange(RESIDUAL_POINTS) + 0.5) / RESIDUAL_POINTS
    beta = s.w_m / s.u_m
    values, probs = [], []
    for u, w, p in zip(s.us, s.ws, s.ps, strict=True):
        n_own = float(_iterations(u, s.rooms)[0])
        early = max(n_own - 1.0, 0.0) * (s.tau_d + beta * min(s.room, u))
        ka = np.arange(_kmax(s.lam * float(cl.max())) + 1, dtype=np.float64)
        kb = np.arange(_kmax(s.lam * (float(cl.max()) + early)) + 1, dtype=np.float64)
        its = _iterations(s.u_m * ka + u, s.rooms)
        left = np.maximum(its * s.room - s.u_m * ka - u, 0.0)
        res = grid[None, :] * cl[:, None]
        p_ahead = _poisson(s.lam * (cl[:, None] - res), len(ka) - 1)
        p_behind = _poisson(s.lam * (res + early), len(kb) - 1)
        value = (res[..., None, None] + (its * s.tau_d + ka * s.w_m + w)[:, None]
                 + beta * np.minimum(left[:, None], s.u_m * kb[None, :]))
        prob = (cw[:, None, None, None] / RESIDUAL_POINTS) * p_ahead[..., :, None] * p_behind[..., None, :]
        values.append(value.ravel())
        probs.append(p * prob.ravel())
    v, q = np.concatenate(values), np.concatenate(probs)
    v, q = v[q > 1e-13], q[q > 1e-13]
    order = np.argsort(v)
    return v[order] + s.overhead_ms, np.cumsum(q[order]) / q.sum()


def ttft_statistic_s(load: AggregatedLoad, statistic: Statistic) -> float:
    """TTFT mean, or its percentile from the mixture of :func:`_ttft_mixture`."""
    import numpy as np

    if statistic == "mean":
        return load.ttft_mean_s
    values, cdf = _ttft_mixture(load._prefill)
    return float(values[min(int(np.searchsorted(cdf, QUANTILES[statistic])), len(values) - 1)]) / 1000.0


def _window_prefill(d: _DecodeState) -> tuple[Floats, Floats]:
    """(probability, value ms) of the prefill work in a decode window (lattice: 1/32 of the least work): Poisson(theta)
    prompts, each rooting a cluster where work w lets Poisson(lambda w) more in. The cluster's generating function
    G(z) = sum_j p_j z^(w_j) exp(lambda w_j (G(z) - 1)) is iterated on the FFT grid (a contraction, factor mu), a
    window's is exp(theta (G(z) - 1)) mixed over the request's class (theta per class)."""
    import numpy as np

    step = max(float(d.ws.min()), 1e-12) / 32.0
    m2 = float(d.ps @ d.ws ** 2)
    theta = float(d.thetas.max())
    top = (theta * d.hit_ms / (1.0 - d.mu) + 12.0 * math.sqrt(theta * m2 / (1.0 - d.mu) ** 3)
           + 2.0 * float(d.ws.max()))
    size = 1 << max(6, math.ceil(math.log2(top / step + 2.0)))
    phase = np.exp(-2j * math.pi * np.arange(size // 2 + 1) / size)
    powers = [phase ** round(w / step) for w in d.ws]
    lam_w = d.mu / d.hit_ms * d.ws if d.hit_ms > 0.0 else np.zeros_like(d.ws)
    g = np.ones(size // 2 + 1, dtype=np.complex128)
    for _ in range(400):
        new = sum(p * zw * np.exp(lw * (g - 1.0)) for p, zw, lw in zip(d.ps, powers, lam_w, strict=True))
        g, change = new, float(np.max(np.abs(new - g)))
        if change < 1e-13:
            break
    window = sum(p * np.exp(t * (g - 1.0)) for p, t in zip(d.ps, d.thetas, strict=True))
    pmf = np.maximum(np.fft.irfft(window, size), 0.0)
    return np.asarray(pmf / pmf.sum(), dtype=np.float64), np.arange(size, dtype=np.float64) * step


def tpot_statistic_ms(load: AggregatedLoad, statistic: Statistic) -> float:
    """TPOT mean, or its percentile: tau_seen + min(W, cap) / n with W the prefill work of the hits
    (:func:`_window_prefill`), blurred by a normal with the other requests' decode noise, never above a full
    iteration."""
    import numpy as np
    from scipy.special import ndtr  # deferred: scipy loads only when a model needs it (docs/architecture.md)

    if statistic == "mean":
        return load.tpot_mean_ms
    d = load._decode
    pmf, work = _window_prefill(d)
    lattice = d.tau_seen + np.minimum(work, d.hit_cap * d.hit_ms) / d.n
    p = QUANTILES[statistic]
    lo, hi = d.tau_seen - 10.0 * d.noise_ms, float(lattice.max()) + 10.0 * d.noise_ms
    for _ in range(60):
        mid = (lo + hi) / 2.0
        cdf = float(pmf @ (ndtr((mid - lattice) / d.noise_ms) if d.noise_ms > 0 else (lattice <= mid)))
        lo, hi = (mid, hi) if cdf < p else (lo, mid)
    return min(hi, max(d.full_ms, load.tpot_mean_ms))


def running_cap(profile: AggregatedProfile, workload: Workload, kv_tokens: int) -> int:
    """Most requests that may run at once: the batch cap, and the KV tokens over one request's mean context
    E[L] + O (E[L] over the length distribution when given)."""
    per_request = sum(x * p for x, p in prompt_lengths(workload)) + workload.output_tokens_mean
    return min(profile.max_batch, int(kv_tokens // per_request))


def violations(load: AggregatedLoad | None, workload: Workload, cap: int) -> list[str]:
    """Which conditions fail at this load: ``saturated``, ``ttft_target``, ``tpot_target``, ``kv_memory``."""
    from scipy import stats  # deferred: scipy loads only when a model needs it (docs/architecture.md)

    if load is None:
        return ["saturated"]
    out = []
    if ttft_statistic_s(load, workload.ttft.statistic) > workload.ttft.target_s:
        out.append("ttft_target")
    if workload.output_tokens_mean > 1.0 and tpot_statistic_ms(load, workload.tpot.statistic) > workload.tpot.target_ms:
        out.append("tpot_target")
    if float(stats.poisson.cdf(cap, load.running_mean)) < RUNNING_WITHIN_CAP:
        out.append("kv_memory")
    return out


def aggregated_overhead_s(instance: Instance, workload: Workload) -> float:
    """Fixed time added to an aggregated instance's TTFT: client I/O only (no KV moves between instances) when
    the network states it, else the workload's ``ttft_overhead_s``."""
    net = instance.network
    if net is not None and net.client_io_s is not None:
        return net.client_io_s
    return workload.ttft_overhead_s

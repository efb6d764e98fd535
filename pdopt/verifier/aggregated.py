"""Capacity of one aggregated instance (prefill and decode in one engine, chunked prefill), recomputed from
docs/capacity.md ("Aggregated instances") alone, never from :mod:`pdopt.perf.aggregated`.

Notation (times in ms inside, as the iteration model is; lambda in requests per ms inside, req/s outside):
iteration time t = a + b P + c Q + d C + e B, token budget K, batch cap ``max_batch``, prompt lengths L (the
workload's ``input_length_distribution`` normalised, else its mean alone), prefix-cache hit rate h, O output
tokens, n = max(O - 1, 0) decode iterations per request, E[.] over the lengths.

1. Work beyond the fixed cost: prefill w_p(L) = b (1 - h) L + c (1 - h^2) L^2; per decode iteration
   delta = e + d (E[L] + O / 2); per request W = E[w_p] + n delta. Engine load rho = lambda W < 1.
2. Mean iteration time tau = a / (1 - rho) (the engine never idles: fixed costs fill what the work leaves).
3. TPOT: mean tau + delta; variance lambda n tau (E[w_p^2] + E[w_p] delta n + 2/3 delta^2 n^2) / n^2 / (1 - rho)^2.
   With O <= 1 nothing decodes and there is no TPOT condition (the document leaves this case open).
4. Decode batch B = lambda n TPOT_mean; a decode-only iteration takes tau_d = a + delta B and leaves K - B
   prefill tokens (saturated when K - B <= 0).
5. TTFT: a G/G/1 queue of prompts with service S(L) = (1 - h) L tau_d / (K - B) + w_p(L), utilisation
   rho_p = lambda E[S] < 1 (saturated otherwise), service SCV E[S^2] / E[S]^2 - 1, arrival SCV the workload's,
   Allen-Cunneen wait W_q = (ca2 + cs2) / 2 x rho_p / (1 - rho_p) x E[S]. Own prefill
   S_own(L) = ceil((1 - h) L / (K - B)) tau_d + w_p(L).
   TTFT_mean = (1 - rho_p) tau_d / 2 + W_q + E[S_own] + overhead;
   Var = (2 W_q^2 / rho_p - W_q^2) + Var(S_own) + (1 - rho_p) tau_d^2 / 12.
   The workload's ``queue_model`` and ``service_scv`` are those of disaggregated prefill and play no part here.
6. Percentiles: the gamma quantile with that mean and variance (:func:`pdopt.perf.queueing.gamma_quantile`);
   a TTFT percentile is never below min_L S_own(L) + overhead.
7. Memory: running requests ~ Poisson(m), m = lambda (n TPOT_mean + E[S_own]); need P(N <= cap) >= 0.99 with
   cap = min(max_batch, floor(KV tokens / (E[L] + O))), E[L] the mean of the length distribution.

The capacity is the largest lambda up to which every condition holds: the first load at which one fails. Not
the largest lambda at which all hold: a gamma percentile of TPOT is not monotone in lambda. Its variance grows
like (1 - rho)^-3 and its squared mean like (1 - rho)^-2, so near saturation the fitted gamma's shape tends to 0
and every fixed quantile falls back towards 0, under the target again while the mean TPOT is far above it; a
bisection that assumes monotone statistics can land in that region.

The search runs on the engine load x = rho in [0, 1) (lambda = x / W; when W = 0, lambda = x lambda_ref with
lambda_ref = K / (a (n + E[(1 - h) L])), where rho_p reaches 1): Brent's method on the saturation margin
min(1 - rho, 1 - B / K, 1 - rho_p) gives the largest unsaturated x_sat; the loads x_sat i / GRID are scanned
for the first at which a condition fails, and Brent's method on each failing condition's relative excess
between that load and the one before it gives the crossing, stepped back onto the feasible side. The smallest
crossing is the capacity and its condition binds (``saturated`` when none fails below x_sat). A condition that
fails only inside a window narrower than x_sat / GRID can be missed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pdopt.instance import AggregatedProfile, Instance, Workload
from pdopt.perf import queueing

MEMORY_PROBABILITY = 0.99
"""The running requests stay within the batch and KV-cache cap with this probability (docs/capacity.md, step 7)."""

GRID = 128
"""Loads scanned (evenly up to saturation) for the first at which a condition fails."""

_AT_ZERO = 1e-9
"""A first failure below this share of the saturation load is a failure at any positive load (capacity 0)."""

_NAMES = {"ttft_target": "the TTFT target", "tpot_target": "the TPOT target", "kv_memory": "the batch and KV cap"}

_RTOL = 1e-13
"""Relative tolerance of each root in the load variable (the capacity is accurate to a few times this)."""


@dataclass(frozen=True)
class AggregatedRecomputation:
    """One instance's recomputed capacity in req/s, the condition that limits it (``ttft_target``,
    ``tpot_target``, ``kv_memory`` or ``saturated``), and why it serves nothing (None when it serves)."""

    capacity_rps: float
    binding: str | None
    unusable: str | None = None


@dataclass(frozen=True)
class _Setup:
    """The load-independent numbers of one (profile, workload) pair, in ms and tokens."""

    a: float
    k: float
    prefill_tokens: tuple[float, ...]  # (1 - h) L per length
    probs: tuple[float, ...]
    wp: tuple[float, ...]  # w_p(L) per length
    ewp: float
    ewp2: float
    n: float
    delta: float
    work: float  # W = E[w_p] + n delta
    lam_ref: float  # lambda (req/ms) at load variable x = 1
    cap: int
    overhead_ms: float
    ca2: float


@dataclass(frozen=True)
class _State:
    """The statistics at one arrival rate below saturation (ms, and the mean number running)."""

    tpot_mean: float
    tpot_var: float
    ttft_mean: float
    ttft_var: float
    ttft_floor: float
    running: float


def _weights_gb(instance: Instance, model: str) -> float:
    """Weight size in GB: stated, or parameters (billions) x bytes per parameter."""
    m = instance.models[model]
    if m.weights_gb is not None:
        return m.weights_gb
    assert m.architecture is not None  # the data model requires one or the other
    return m.architecture.num_parameters_billion * m.architecture.bytes_per_parameter


def kv_tokens_of(instance: Instance, profile: AggregatedProfile) -> int:
    """KV-cache tokens of one instance: the profile's ``kv_tokens``, else
    floor((memory_gb x GPUs x ``kv_usable_fraction`` - weights_gb) x 1e9 / KV bytes per token), at least 0."""
    if profile.kv_tokens is not None:
        return profile.kv_tokens
    usable_gb = (instance.gpu_types[profile.gpu_type].memory_gb * profile.gpus_per_instance
                 * instance.options.kv_usable_fraction)
    free_bytes = max(0.0, (usable_gb - _weights_gb(instance, profile.model)) * 1e9)
    return int(free_bytes // instance.models[profile.model].kv_bytes_per_token_value)


def _setup(profile: AggregatedProfile, wl: Workload, kv_tokens: int, overhead_s: float) -> _Setup | str:
    """The load-independent quantities (step 1 and the caps), or why the shape cannot serve at all."""
    it = profile.iteration
    a, b, c = it.overhead_ms, it.per_prefill_token_ms, it.prefill_quadratic_ms
    d, e = it.per_context_token_ms, it.per_decode_seq_ms
    dist = wl.input_length_distribution
    lengths = list(dist.lengths) if dist is not None else [wl.input_tokens_mean]
    weights = list(dist.weights) if dist is not None else [1.0]
    total = sum(weights)
    probs = tuple(w / total for w in weights)
    mean_len = sum(p * x for p, x in zip(probs, lengths, strict=True))
    h, o = wl.prefix_cache_hit_rate, wl.output_tokens_mean
    n = max(o - 1.0, 0.0)  # O <= 1: nothing decodes, and there is no TPOT to meet
    wp = tuple(b * (1.0 - h) * x + c * (1.0 - h * h) * x * x for x in lengths)
    ewp = sum(p * w for p, w in zip(probs, wp, strict=True))
    ewp2 = sum(p * w * w for p, w in zip(probs, wp, strict=True))
    delta = e + d * (mean_len + o / 2.0)
    work = ewp + n * delta
    k = float(profile.token_budget)
    prefill_tokens = tuple((1.0 - h) * x for x in lengths)
    if work > 0.0:
        lam_ref = 1.0 / work
    elif a > 0.0:  # only the fixed cost: tau = tau_d = a, and rho_p = 1 at lambda a = K / (n + E[(1 - h) L])
        lam_ref = k / (a * (n + sum(p * x for p, x in zip(probs, prefill_tokens, strict=True))))
    else:
        return "the iteration model takes no time at all (every coefficient 0): no finite capacity"
    cap = min(profile.max_batch, math.floor(kv_tokens / (mean_len + o)))
    if cap < 1:
        return (f"the KV cache ({kv_tokens} tokens) holds no whole request of E[L] + O = {mean_len + o:g} "
                "tokens")
    return _Setup(a=a, k=k, prefill_tokens=prefill_tokens, probs=probs, wp=wp, ewp=ewp,
                  ewp2=ewp2, n=n, delta=delta, work=work, lam_ref=lam_ref, cap=cap,
                  overhead_ms=overhead_s * 1000.0, ca2=wl.arrival_scv)


def _saturation_margin(s: _Setup, lam: float) -> float:
    """min(1 - rho, 1 - B / K, 1 - rho_p) as far as it is defined: positive exactly when lambda (req/ms) is
    below saturation (each part falls as lambda grows; rho_p -> inf as B -> K)."""
    rho = lam * s.work
    if rho >= 1.0:
        return 1.0 - rho
    tau = s.a / (1.0 - rho)
    batch = lam * s.n * (tau + s.delta)
    if batch >= s.k:
        return 1.0 - batch / s.k
    tau_d = s.a + s.delta * batch
    es = sum(p * (t * tau_d / (s.k - batch) + w) for p, t, w in zip(s.probs, s.prefill_tokens, s.wp, strict=True))
    return min(1.0 - rho, 1.0 - batch / s.k, 1.0 - lam * es)


def _state(s: _Setup, lam: float) -> _State:
    """Steps 2-5 and 7 at an unsaturated lambda (req/ms)."""
    rho = lam * s.work
    tau = s.a / (1.0 - rho)
    tpot_mean = tau + s.delta
    n, dl = s.n, s.delta
    tpot_var = 0.0
    if n > 0.0:
        tpot_var = lam * n * tau * (s.ewp2 + s.ewp * dl * n + 2.0 / 3.0 * dl * dl * n * n) / (n * n) / (1.0 - rho) ** 2
    batch = lam * n * tpot_mean
    room = s.k - batch
    tau_d = s.a + dl * batch
    serv = [t * tau_d / room + w for t, w in zip(s.prefill_tokens, s.wp, strict=True)]
    own = [math.ceil(t / room) * tau_d + w for t, w in zip(s.prefill_tokens, s.wp, strict=True)]
    es = sum(p * x for p, x in zip(s.probs, serv, strict=True))
    es2 = sum(p * x * x for p, x in zip(s.probs, serv, strict=True))
    e_own = sum(p * x for p, x in zip(s.probs, own, strict=True))
    var_own = max(0.0, sum(p * x * x for p, x in zip(s.probs, own, strict=True)) - e_own * e_own)
    rho_p = lam * es
    if rho_p > 0.0:
        cs2 = max(0.0, es2 / (es * es) - 1.0)
        w_q = queueing.mean_wait_ggc(lam, 1.0 / es, 1, s.ca2, cs2)  # (ca2 + cs2)/2 rho_p/(1 - rho_p) E[S]
        var_w = 2.0 * w_q * w_q / rho_p - w_q * w_q
    else:
        w_q = var_w = 0.0
    ttft_mean = (1.0 - rho_p) * tau_d / 2.0 + w_q + e_own + s.overhead_ms
    ttft_var = var_w + var_own + (1.0 - rho_p) * tau_d * tau_d / 12.0
    return _State(tpot_mean=tpot_mean, tpot_var=tpot_var, ttft_mean=ttft_mean, ttft_var=ttft_var,
                  ttft_floor=min(own) + s.overhead_ms, running=lam * (n * tpot_mean + e_own))


def _statistic(mean: float, var: float, statistic: str) -> float:
    """The mean, or the gamma two-moment p-quantile (the mean itself when the variance is 0)."""
    if statistic == "mean":
        return mean
    return queueing.gamma_quantile(mean, var, queueing.QUANTILES[statistic])


def _ttft_ms(st: _State, statistic: str) -> float:
    """The TTFT statistic in ms: the mean, or the gamma quantile floored at min_L S_own(L) + overhead."""
    if statistic == "mean":
        return st.ttft_mean
    return max(_statistic(st.ttft_mean, st.ttft_var, statistic), st.ttft_floor)


def _memory_probability(st: _State, cap: int) -> float:
    """P(Poisson(m) <= cap), m the mean number of requests running."""
    from scipy.special import pdtr  # deferred: scipy loads only when needed

    return float(pdtr(cap, st.running))


def _last_feasible(excess: Callable[[float], float], lo: float, hi: float, strict: bool = False) -> float:
    """A point x in [lo, hi] where excess stops being feasible (excess <= 0, or < 0 when ``strict``), given lo
    feasible and hi not: Brent's method on excess (which may jump at the crossing), then the result stepped back
    until it is feasible itself."""
    from scipy.optimize import brentq  # deferred: scipy loads only when needed

    def infeasible(x: float) -> bool:
        return excess(x) >= 0.0 if strict else excess(x) > 0.0

    if excess(lo) == 0.0:
        return lo
    x = float(brentq(excess, lo, hi, xtol=1e-300, rtol=_RTOL, maxiter=500))
    step = 4.0 * _RTOL * max(x, 1e-300)
    while x > lo and infeasible(x):
        x = max(lo, x - step)
        step *= 2.0
    return x


def recompute_aggregated_detail(profile: AggregatedProfile, workload: Workload, kv_tokens: int,
                                overhead_s: float) -> AggregatedRecomputation:
    """The capacity of one aggregated instance (req/s) with the binding condition; see the module docstring."""
    s = _setup(profile, workload, kv_tokens, overhead_s)
    if isinstance(s, str):
        return AggregatedRecomputation(0.0, None, s)
    ttft_target_ms = workload.ttft.target_s * 1000.0
    tpot_target_ms = workload.tpot.target_ms
    ttft_stat, tpot_stat = workload.ttft.statistic, workload.tpot.statistic

    def sat_excess(x: float) -> float:
        return 1.0 if x >= 1.0 else -_saturation_margin(s, x * s.lam_ref)

    x_sat = _last_feasible(sat_excess, 0.0, 1.0, strict=True)  # sat_excess(0) = -1, so x_sat > 0

    conditions: dict[str, Callable[[_State], float]] = {
        "ttft_target": lambda st: _ttft_ms(st, ttft_stat) / ttft_target_ms - 1.0,
        "tpot_target": lambda st: _statistic(st.tpot_mean, st.tpot_var, tpot_stat) / tpot_target_ms - 1.0,
        "kv_memory": lambda st: MEMORY_PROBABILITY - _memory_probability(st, s.cap),
    }
    if s.n == 0.0:
        del conditions["tpot_target"]
    light = _state(s, 0.0)
    for name, cond in conditions.items():
        if cond(light) > 0.0:
            return AggregatedRecomputation(0.0, name, _zero_reason(name, light, workload, s.cap))
    prev = 0.0
    for i in range(1, GRID + 1):
        x_i = x_sat * i / GRID
        at = _state(s, x_i * s.lam_ref)
        failing = [name for name, cond in conditions.items() if cond(at) > 0.0]
        if not failing:
            prev = x_i
            continue
        best_x, binding = x_i, failing[0]
        for name in failing:
            def excess(x: float, cond: Callable[[_State], float] = conditions[name]) -> float:
                return cond(_state(s, x * s.lam_ref))

            x = _last_feasible(excess, prev, x_i)
            if x < best_x:
                best_x, binding = x, name
        if best_x <= _AT_ZERO * x_sat:  # e.g. ceil((1 - h) L / (K - B)) steps up as soon as B > 0
            return AggregatedRecomputation(0.0, binding, f"{_NAMES[binding]} fails at any positive load")
        return AggregatedRecomputation(best_x * s.lam_ref * 1000.0, binding)
    return AggregatedRecomputation(x_sat * s.lam_ref * 1000.0, "saturated")


def _zero_reason(name: str, st: _State, wl: Workload, cap: int) -> str:
    """Why a condition already fails at the lightest load."""
    if name == "ttft_target":
        return (f"{wl.ttft.statistic} TTFT {_ttft_ms(st, wl.ttft.statistic) / 1000.0:.4g} s at the "
                f"lightest load exceeds the target {wl.ttft.target_s:g} s")
    if name == "tpot_target":
        return (f"{wl.tpot.statistic} TPOT {_statistic(st.tpot_mean, st.tpot_var, wl.tpot.statistic):.4g} ms at "
                f"the lightest load exceeds the target {wl.tpot.target_ms:g} ms")
    return f"the batch cap {cap} is exceeded with probability over 1% at the lightest load"


def recompute_aggregated(profile: AggregatedProfile, workload: Workload, kv_tokens: int,
                         overhead_s: float) -> tuple[float, str | None]:
    """The largest arrival rate (req/s) one aggregated instance serves at the workload's TTFT and TPOT
    statistics within its batch and KV-cache cap, and None, or 0 and why it serves nothing (module docstring)."""
    out = recompute_aggregated_detail(profile, workload, kv_tokens, overhead_s)
    return out.capacity_rps, out.unusable

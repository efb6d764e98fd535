"""An independent check of a plan against its instance: every constraint recomputed from the instance alone.

Why independent: a verifier that reused :mod:`pdopt.capacity`, :mod:`pdopt.model_data`, :mod:`pdopt.milp` or
:mod:`pdopt.plan` would share their bugs and approve whatever they produce. This module therefore imports only
the data model (:mod:`pdopt.instance`) and reimplements, from the maths stated in the capacity module's
docstring, the per-instance capacities (M/M/1 prefill, TPOT-curve decode), the demand in req/s, the spares, the
prices and billing of node pools, and the packing of instances onto nodes. It never solves anything and needs
no solver: node packing is decided exactly by its own search. The one exception is the G/G/1 and G/G/c queueing
formulas, taken from :mod:`pdopt.queueing` (pure functions checked against the simulator): for pooled prefill it
evaluates the exact pooled capacity of the plan's group sizes, not the MILP's linearisation of it; and, for a
profile with a measured TTFT sweep, the fit of :mod:`pdopt.calibrate`.

It reads the plan in its JSON form (``Plan.to_dict()`` or a plan file read back), because that is what users
keep and exchange; a malformed plan (missing keys, wrong types) becomes ``bad_plan_field`` violations rather
than an exception, so that ``pdopt verify`` can always say what is wrong.

The semantics checked:

- A placement's shape is (model, role, gpu_type, gpus_per_instance, variant); ``variant`` defaults to
  ``default`` (also when the key is missing).
- Demand in req/s = base (``requests_per_s``, or ``tokens_per_min / 60 / (L_in + L_out)``) x the plan's
  ``scale_demand`` x its ``scale`` (maximize-scale mode; ``null`` means 1). With ``k`` spare instances for a
  role (N+k), ``sum(capacity x count) - k x (largest per-instance capacity among the role's usable shapes)``
  must reach the demand.
- A pool's cost: node-billed pools (``billing: node_hour``, or a node-hour price and no billing) pay
  ``nodes_used x (node price + activation)``; GPU-billed pools pay their instances' GPUs x the GPU type's price
  plus ``activation x nodes_used``. A placement's ``cost_usd_per_hour`` is its share of its pool's cost by GPUs;
  the objective is the sum of pool costs, and must stay within ``limits.budget_usd_per_hour``.
- Packing, node by node: an instance of at most a node's GPUs sits inside one node; a larger one (only when its
  profile ``spans_nodes`` and its size is a multiple of the node size) takes ``size / node size`` whole nodes.
  The fewest nodes that hold a pool's instances must not exceed the plan's ``nodes_used``, which must not exceed
  the pool's ``node_count``. First-fit decreasing settles most pools; when it does not fit, a memoised
  depth-first search over count vectors by node patterns, pruned by the configuration-LP bound, decides exactly.
- GPUs rented per GPU type (node-billed pools rent ``nodes_used x gpus_per_node``, GPU-billed pools their
  instances' GPUs) must not exceed its ``max_gpus``.

Checks (the ``check`` names of :class:`Violation`):

- ``bad_plan_field``: a field is missing, of the wrong type, not finite, or a count is not positive.
- ``instance_mismatch``: the plan names another instance.
- ``unknown_shape``: a placement's (model, role, gpu_type, gpus_per_instance, variant) is no profile.
- ``unusable_shape``: the shape exists but serves nothing at the SLOs (no workload, weights do not fit, TTFT or
  TPOT target unreachable); it still costs GPUs.
- ``unknown_pool`` / ``pool_gpu_type``: the pool does not exist, or holds another GPU type.
- ``integrality``: an instance count is not a whole number.
- ``capacity_mismatch``: the plan's per-instance ``capacity_rps`` differs from the recomputed one.
- ``demand_cover``: recomputed capacity x count summed over a model's role, less the spares' reserve, falls short
  of its (scaled) demand.
- ``pool_gpu_capacity``: a pool's instances use more GPUs than all its nodes hold.
- ``node_packing``: the pool's instances cannot be placed on its ``node_count`` nodes, or on the plan's
  ``nodes_used`` nodes (proved: by a lower bound or by exhaustive search), or an instance larger than a node
  may not span nodes.
- ``node_packing_undecided``: the exact search hit its limit (never seen in practice; reported, not assumed).
- ``pool_node_limit``: the plan's ``nodes_used`` of a pool exceeds its ``node_count``.
- ``gpu_type_availability``: GPUs rented of a type exceed its ``max_gpus``.
- ``budget``: the plan's (recomputed) hourly cost exceeds ``limits.budget_usd_per_hour``.
- ``cost_mismatch`` / ``objective_mismatch``: a placement's or pool's cost, or the total, differs from the
  recomputed price.
- ``summary_mismatch``: the plan's per-model summary (``models``), ``pools`` entries or ``gpus_used`` disagree
  with its placements or the instance.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from pdopt import calibrate, queueing
from pdopt.instance import DecodeProfile, Instance, NodePool, PrefillProfile

PLANNED_STATUSES: frozenset[str] = frozenset({"optimal", "feasible"})
"""Statuses whose plan holds placements; any other status has nothing to verify."""

ROLE_NAMES: tuple[str, str] = ("prefill", "decode")

PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}

DEFAULT_VARIANT = "default"

MAX_SEARCH_STATES = 200_000
"""States the exact packing search may expand before it gives up (``node_packing_undecided``)."""

MAX_PATTERNS = 20_000
"""Node patterns the exact packing search may enumerate before it gives up."""


@dataclass(frozen=True)
class Violation:
    """One broken constraint, named by a snake_case ``check`` and explained in the instance's terms."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


def format_violations(violations: list[Violation]) -> str:
    """One line per violation, grouped under a count, for people reading a terminal."""
    if not violations:
        return "no violations: the plan satisfies every checked constraint"
    lines = [f"{len(violations)} violation(s):"]
    lines.extend(f"  {v.check}: {v.message}" for v in violations)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Recomputation from the instance (no pdopt module other than the data model)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecomputedShape:
    """What the verifier derives for one shape: capacity of one instance in req/s, or why it serves nothing."""

    capacity_rps: float
    unusable: str | None = None


def demand_rps(instance: Instance, model: str, scale_demand: float = 1.0) -> float:
    """Requests per second to serve for ``model``: stated, or tokens per minute over (L_in + L_out), scaled."""
    wl = instance.workloads[model]
    if wl.demand.requests_per_s is not None:
        base = wl.demand.requests_per_s
    else:
        assert wl.demand.tokens_per_min is not None  # the data model guarantees exactly one is given
        base = wl.demand.tokens_per_min / 60.0 / (wl.input_tokens_mean + wl.output_tokens_mean)
    return base * scale_demand


def _weights_gb(instance: Instance, model: str) -> float:
    """Weight size in GB, stated or parameters x bytes per parameter (recomputed, not the model's property)."""
    m = instance.models[model]
    if m.weights_gb is not None:
        return m.weights_gb
    assert m.architecture is not None  # the data model requires one or the other
    return m.architecture.num_parameters_billion * m.architecture.bytes_per_parameter


def _service(profile: PrefillProfile, wl: Any) -> tuple[float, float] | str:
    """Mean and SCV of a request's prefill time: (1 - h) L / X((1 - h) L) over the input lengths (the stated
    distribution, or the mean), X interpolated between measured lengths and never beyond them."""
    xs = np.array([p.input_tokens for p in profile.max_throughput_by_input], dtype=float)
    ys = np.array([p.max_throughput_tok_per_s for p in profile.max_throughput_by_input], dtype=float)
    dist = wl.input_length_distribution
    lengths = np.array(dist.lengths if dist is not None else [wl.input_tokens_mean], dtype=float)
    weights = np.array(dist.weights if dist is not None else [1.0], dtype=float)
    eff = lengths * (1.0 - wl.prefix_cache_hit_rate)
    if eff.min() < xs[0] or eff.max() > xs[-1]:
        return f"input lengths {eff.min():g}-{eff.max():g} leave the benchmarked lengths [{xs[0]:g}, {xs[-1]:g}]"
    t = eff / np.interp(eff, xs, ys)
    p = weights / weights.sum()
    mean = float(np.dot(p, t))
    return mean, max(0.0, float(np.dot(p, t * t)) / mean ** 2 - 1.0)


def _cs2(wl: Any, derived: float) -> float:
    if wl.service_scv is not None:
        return float(wl.service_scv)
    return derived if wl.input_length_distribution is not None else 1.0


def _prefill_rps(profile: PrefillProfile, instance: Instance) -> RecomputedShape:
    """M/M/1: lambda = 1/E[t] - f/(T - overhead) (E[t] = L_in / X for one length); G/G/1 through queueing."""
    wl = instance.workloads[profile.model]
    service = _service(profile, wl)
    if isinstance(service, str):
        return RecomputedShape(0.0, service)
    mean_t, derived = service
    mu = 1.0 / mean_t
    if wl.queue_model == "gg1" and profile.measured_ttft:
        x = float(np.interp(wl.input_tokens_mean, [p.input_tokens for p in profile.max_throughput_by_input],
                            [p.max_throughput_tok_per_s for p in profile.max_throughput_by_input]))
        fit = calibrate.fit_gg1([(p.request_rate_rps, p.ttft_mean_s) for p in profile.measured_ttft],
                                wl.input_tokens_mean, x, wl.arrival_scv)
        wl = wl.model_copy(update={"service_scv": fit.service_scv, "ttft_overhead_s": fit.overhead_s})
    target, overhead = wl.ttft.target_s, wl.ttft_overhead_s
    if target <= mean_t + overhead:
        return RecomputedShape(0.0, f"TTFT target {target:g} s is not above the unloaded TTFT "
                                    f"{mean_t + overhead:.4g} s")
    if wl.queue_model != "mm1":
        lam = queueing.max_arrival_rate(mu, 1, wl.arrival_scv, _cs2(wl, derived), target - overhead,
                                        wl.ttft.statistic)
        return RecomputedShape(lam, None if lam > 0 else f"{wl.ttft.statistic} TTFT exceeds {target:g} s at any load")
    factor = 1.0 if wl.ttft.statistic == "mean" else math.log(1.0 / (1.0 - PERCENTILES[wl.ttft.statistic]))
    lam = mu - factor / (target - overhead)
    if lam <= 0.0:
        return RecomputedShape(0.0, f"{wl.ttft.statistic} TTFT exceeds {target:g} s at any load under M/M/1")
    return RecomputedShape(lam)


def _decode_batch(batches: np.ndarray[Any, np.dtype[np.float64]], tpots: np.ndarray[Any, np.dtype[np.float64]],
                  target_ms: float, rule: str) -> float | None:
    """B*: the largest batch (integer for ``whole``) whose interpolated TPOT meets the target, capped at the
    largest measured batch; None when even the smallest measured batch misses the target."""
    if tpots[0] > target_ms:
        return None
    if tpots[-1] <= target_ms:
        return float(batches[-1])
    i = int(np.argmax(tpots > target_ms))  # first measured point above the target; i >= 1 here
    lo_b, hi_b, lo_t, hi_t = batches[i - 1], batches[i], tpots[i - 1], tpots[i]
    if rule == "fractional":
        return float(lo_b + (target_ms - lo_t) / (hi_t - lo_t) * (hi_b - lo_b))
    candidates = np.arange(lo_b, hi_b, dtype=float)  # integers in [lo, hi); hi itself misses the target
    ok = candidates[np.interp(candidates, batches, tpots) <= target_ms]
    return float(ok.max()) if ok.size else float(lo_b)


def _kv_cap(profile: DecodeProfile, instance: Instance) -> int:
    """Batches whose KV cache (KV bytes per token x (L_in + L_out) per request) fits in the memory the engine may
    use (memory x GPUs x usable fraction) beside the weights."""
    wl = instance.workloads[profile.model]
    model = instance.models[profile.model]
    usable = instance.gpu_types[profile.gpu_type].memory_gb * profile.gpus_per_instance \
        * instance.options.kv_usable_fraction
    per_request = model.kv_bytes_per_token_value * (wl.input_tokens_mean + wl.output_tokens_mean)
    return int(max(0.0, (usable - model.weights_gb_value) * 1e9) // per_request)


def _under_load_rps(batches: np.ndarray[Any, np.dtype[np.float64]], tpots: np.ndarray[Any, np.dtype[np.float64]],
                    cap: int, instance: Instance, profile: DecodeProfile) -> float:
    """Decode under load, recomputed: others running ~ Poisson(m); a request's batch is 1 + N clamped to
    [first batch, cap]; find the largest m whose TPOT statistic meets the target with P(N <= cap - 1) >= 0.99,
    then lambda = m / (L_out x mean TPOT)."""
    wl = instance.workloads[profile.model]
    quant = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}

    def dist(m: float) -> tuple[list[float], list[float]]:
        pmf, p = [], math.exp(-m)
        for n in range(cap):
            pmf.append(p)
            p = p * m / (n + 1)
        pmf.append(max(0.0, 1.0 - sum(pmf)))
        t = [float(np.interp(min(max(n + 1, batches[0]), cap), batches, tpots)) for n in range(cap + 1)]
        return pmf, t

    def stat(m: float, which: str) -> float:
        pmf, t = dist(m)
        if which == "mean":
            return sum(a * b for a, b in zip(pmf, t, strict=True))
        acc = 0.0
        for a, b in zip(pmf, t, strict=True):
            acc += a
            if acc >= quant[which]:
                return b
        return t[-1]

    def ok(m: float) -> bool:
        return stat(m, wl.tpot.statistic) <= wl.tpot.target_ms and sum(dist(m)[0][:cap]) >= 0.99

    if not ok(0.0):
        return 0.0
    lo, hi = 0.0, float(cap)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo / (wl.output_tokens_mean * stat(lo, "mean") / 1000.0)


def _decode_rps(profile: DecodeProfile, instance: Instance) -> RecomputedShape:
    """Little's law at the planned batch: B* / (TPOT(B*) / 1000 x L_out) req/s, B* within the KV-cache bound;
    or the under-load model when the workload asks for it."""
    wl = instance.workloads[profile.model]
    curve = profile.points_for(wl.input_tokens_mean)
    if isinstance(curve, str):
        return RecomputedShape(0.0, curve)
    batches = np.array([p.batch for p in curve], dtype=float)
    tpots = np.array([p.tpot_ms for p in curve], dtype=float)
    cap = min(int(batches[-1]), _kv_cap(profile, instance))
    if cap < 1:
        return RecomputedShape(0.0, "the KV cache of one request does not fit beside the weights")
    if wl.decode_model == "under_load":
        rate = _under_load_rps(batches, tpots, cap, instance, profile)
        return RecomputedShape(rate, None if rate > 0 else "TPOT target missed at the lightest load")
    batch = _decode_batch(batches, tpots, wl.tpot.target_ms, instance.options.decode_batch_rule)
    if batch is None:
        return RecomputedShape(0.0, f"TPOT target {wl.tpot.target_ms:g} ms is below the TPOT "
                                    f"{tpots[0]:g} ms at the smallest benchmarked batch")
    batch = min(batch, float(cap))
    if batch < batches[0]:
        return RecomputedShape(0.0, "the KV-cache bound is below the smallest benchmarked batch")
    tpot = float(np.interp(batch, batches, tpots))
    return RecomputedShape(batch / (tpot / 1000.0 * wl.output_tokens_mean))


def _find_profile(instance: Instance, model: str, role: str, gpu_type: str, gpus_per_instance: int,
                  variant: str) -> PrefillProfile | DecodeProfile | None:
    """The profile with this full key (model, role, gpu_type, gpus_per_instance, variant), or None."""
    key = (model, role, gpu_type, gpus_per_instance, variant)
    return next((p for p in instance.profiles
                 if (p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant) == key), None)


def recompute_shape(instance: Instance, model: str, role: str, gpu_type: str, gpus_per_instance: int,
                    variant: str = DEFAULT_VARIANT) -> RecomputedShape | None:
    """Per-instance capacity of a shape, recomputed; None when the instance has no such profile."""
    prof = _find_profile(instance, model, role, gpu_type, gpus_per_instance, variant)
    if prof is None:
        return None
    if model not in instance.workloads:
        return RecomputedShape(0.0, f"model '{model}' has no workload, so no SLO to size it at")
    need = _weights_gb(instance, model)
    have = instance.gpu_types[gpu_type].memory_gb * gpus_per_instance
    if need >= have:
        return RecomputedShape(0.0, f"weights {need:g} GB do not fit in {gpus_per_instance} x "
                                    f"{instance.gpu_types[gpu_type].memory_gb:g} GB")
    if isinstance(prof, PrefillProfile):
        return _prefill_rps(prof, instance)
    return _decode_rps(prof, instance)


def largest_usable_capacity(instance: Instance, model: str, role: str) -> float:
    """The largest per-instance capacity among the usable shapes of a model's role (0 when none is usable):
    what one lost instance can take away, so ``k`` spares hold ``k`` times it in reserve."""
    best = 0.0
    for p in instance.profiles:
        if p.model != model or p.role != role:
            continue
        shape = recompute_shape(instance, p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)
        if shape is not None and shape.unusable is None:
            best = max(best, shape.capacity_rps)
    return best


def billed_per_node(pool: NodePool) -> bool:
    """Whole nodes are billed: ``billing: node_hour``, or a node-hour price and no ``billing`` stated."""
    if pool.billing is not None:
        return pool.billing == "node_hour"
    return pool.price_usd_per_node_hour is not None


def pool_cost_usd_per_hour(instance: Instance, pool_id: str, nodes_used: int, instance_gpus: float) -> float:
    """Hourly cost of a pool using ``nodes_used`` nodes whose instances occupy ``instance_gpus`` GPUs.

    Node billing: every used node is paid in full, plus its activation cost. GPU billing: the instances' GPUs at
    the GPU type's price, plus the activation cost of every used node.
    """
    pool = instance.node_pools[pool_id]
    activation = nodes_used * pool.activation_cost_usd_per_hour
    if billed_per_node(pool):
        assert pool.price_usd_per_node_hour is not None  # the data model requires it for node billing
        return nodes_used * pool.price_usd_per_node_hour + activation
    return instance_gpus * instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour + activation


# --------------------------------------------------------------------------------------------------------------
# Node packing: first-fit decreasing, a configuration-LP lower bound, and an exact search
# --------------------------------------------------------------------------------------------------------------


def first_fit_decreasing(sizes: Mapping[int, int], gpus_per_node: int, node_count: int) -> dict[int, int]:
    """Pack instances node by node, largest first, each inside one node; return size -> instances left over.

    First-fit places each instance in the first open node with room and opens a new node only when none has.
    Identical instances are placed in bulk (a node takes as many as its free GPUs allow), which is the same
    packing as placing them one at a time but bounded by the node count rather than the instance count, so an
    absurd count in a corrupt plan cannot stall the check. For sizes that divide each other and the node size
    first-fit decreasing is exact (it fails only when no packing exists); for other sizes (3 with 2 and 4 on
    8-GPU nodes) it may fail where a packing exists, so a failure is only a hint: see :func:`fits_in_nodes`.
    """
    free: list[int] = []
    left: dict[int, int] = {}
    for size in sorted(sizes, reverse=True):
        remaining = sizes[size]
        if size > gpus_per_node or remaining <= 0:
            if remaining > 0:
                left[size] = remaining
            continue
        for i, room in enumerate(free):
            take = min(remaining, room // size)
            free[i] -= take * size
            remaining -= take
            if remaining == 0:
                break
        per_node = gpus_per_node // size
        while remaining > 0 and len(free) < node_count:
            take = min(remaining, per_node)
            free.append(gpus_per_node - take * size)
            remaining -= take
        if remaining > 0:
            left[size] = remaining
    return left


def node_patterns(sizes: tuple[int, ...], gpus_per_node: int) -> list[tuple[int, ...]] | None:
    """Every non-empty way to fill one node: count vectors aligned with ``sizes`` whose GPUs fit in a node,
    fullest first; None when there are more than :data:`MAX_PATTERNS`."""
    out: list[tuple[int, ...]] = []

    def rec(i: int, left: int, acc: list[int]) -> bool:
        if i == len(sizes):
            if any(acc):
                out.append(tuple(acc))
            return len(out) <= MAX_PATTERNS
        for c in range(left // sizes[i] + 1):
            acc.append(c)
            ok = rec(i + 1, left - c * sizes[i], acc)
            acc.pop()
            if not ok:
                return False
        return True

    if not rec(0, gpus_per_node, []):
        return None
    out.sort(key=lambda q: (-sum(c * s for c, s in zip(q, sizes, strict=True)), tuple(-c for c in q)))
    return out


def _dual_points(sizes: tuple[int, ...], gpus_per_node: int,
                 patterns: list[tuple[int, ...]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Feasible points w >= 0 of the dual of the configuration LP (q.w <= 1 for every node pattern q).

    Each gives the lower bound ``ceil(n.w)`` on the nodes needed for counts ``n`` (weak duality: every node holds
    a pattern, and each pattern contributes at most 1). The vertices of this small polytope (one dimension per
    size, at most a few) are enumerated when that is cheap, so that ``max_w n.w`` is the LP bound itself; the
    volume point ``w = size / node size`` and the one-size points are always included.
    """
    d = len(sizes)
    smallest = min(sizes)
    maximal = [p for p in patterns
               if gpus_per_node - sum(c * s for c, s in zip(p, sizes, strict=True)) < smallest]
    q = np.array(maximal, dtype=float).reshape(-1, d)  # with w >= 0 the maximal patterns imply the others
    points = [np.array(sizes, dtype=float) / gpus_per_node]
    points += [np.eye(d)[i] / (gpus_per_node // s) for i, s in enumerate(sizes)]
    rows = np.vstack([q, -np.eye(d)])
    rhs = np.concatenate([np.ones(len(q)), np.zeros(d)])
    if math.comb(len(rows), d) <= 200_000:
        idx = np.array(list(itertools.combinations(range(len(rows)), d)), dtype=np.intp).reshape(-1, d)
        a, b = rows[idx], rhs[idx]  # every choice of d tight constraints, solved at once
        regular = np.abs(np.linalg.det(a)) > 1e-9
        w = np.linalg.solve(a[regular], b[regular][..., None])[..., 0]
        feasible = (w >= -1e-9).all(axis=1) & (w @ q.T <= 1.0 + 1e-9).all(axis=1)
        points.extend(w[feasible])
    out = np.clip(np.array(points), 0.0, None)
    worst = np.maximum((out @ q.T).max(axis=1), 1.0)  # rescale away any rounding: strictly dual feasible
    return np.asarray(out / worst[:, None] * (1.0 - 1e-12), dtype=np.float64)


def _ceil_bound(x: float) -> int:
    """ceil(x), forgiving the rounding of a float that should have been an integer."""
    return math.ceil(x - 1e-9 * max(1.0, abs(x)))


@dataclass
class _Packer:
    """Exact bin packing of instance counts (sizes within a node) into nodes, for one node size."""

    sizes: tuple[int, ...]
    """Distinct sizes above 1, largest first (size-1 instances fill any free GPU and are handled by volume)."""
    gpus_per_node: int
    patterns: list[tuple[int, ...]]
    duals: np.ndarray[Any, np.dtype[np.float64]]

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def create(sizes: tuple[int, ...], gpus_per_node: int) -> _Packer | None:
        patterns = node_patterns(sizes, gpus_per_node)
        if patterns is None:
            return None
        return _Packer(sizes, gpus_per_node, patterns, _dual_points(sizes, gpus_per_node, patterns))

    def lower_bound(self, counts: tuple[int, ...]) -> int:
        """Fewest nodes any packing of ``counts`` can use: the configuration-LP bound (at least the volume)."""
        if not any(counts):
            return 0
        return _ceil_bound(float((self.duals @ np.array(counts, dtype=float)).max()))

    def _children(self, v: tuple[int, ...]) -> list[tuple[int, ...]]:
        """What may remain after one more node: that node holds an instance of the largest size left, and is
        maximal for what is left (no further instance fits). Some optimal packing has such a node: moving
        instances into it from other nodes never adds a node. So this branching loses no packing."""
        first = next(i for i, c in enumerate(v) if c)
        out = []
        for q in self.patterns:
            if q[first] == 0 or any(c > n for c, n in zip(q, v, strict=True)):
                continue
            room = self.gpus_per_node - sum(c * s for c, s in zip(q, self.sizes, strict=True))
            if any(c < n and s <= room for c, n, s in zip(q, v, self.sizes, strict=True)):
                continue  # not maximal: the same node with one more instance dominates it
            out.append(tuple(n - c for c, n in zip(q, v, strict=True)))
        return out

    def fits(self, counts: tuple[int, ...], nodes: int) -> bool | None:
        """Whether ``counts`` pack into ``nodes`` nodes, by depth-first search over count vectors with the LP bound
        pruning and a memo of (vector, largest failing budget); None when :data:`MAX_SEARCH_STATES` is reached."""
        if self.lower_bound(counts) > nodes:
            return False
        if not any(counts):
            return True
        failed: dict[tuple[int, ...], int] = {}
        stack: list[tuple[tuple[int, ...], int, Any]] = [(counts, nodes, iter(self._children(counts)))]
        expanded = 1
        while stack:
            v, budget, children = stack[-1]
            pushed = False
            for child in children:
                if not any(child):
                    return True
                if failed.get(child, -1) >= budget - 1 or self.lower_bound(child) > budget - 1:
                    continue
                expanded += 1
                if expanded > MAX_SEARCH_STATES:
                    return None
                stack.append((child, budget - 1, iter(self._children(child))))
                pushed = True
                break
            if not pushed:
                stack.pop()
                failed[v] = max(failed.get(v, -1), budget)
        return False


def _split_ones(counts: Mapping[int, int]) -> tuple[dict[int, int], int]:
    """Sizes above 1 with positive counts, and the GPUs of all instances."""
    rest = {s: n for s, n in counts.items() if n > 0 and s > 1}
    return rest, sum(s * n for s, n in counts.items() if n > 0)


def fits_in_nodes(counts: Mapping[int, int], gpus_per_node: int, nodes: int) -> bool | None:
    """Exactly: can these instances (size -> count, every size at most ``gpus_per_node``) be placed on ``nodes``
    nodes, each instance inside one node? None only when the search limit is reached.

    Size-1 instances fill any free GPU, so they only add to the volume; the rest go to first-fit decreasing and,
    when it fails, to an exact search (first-fit decreasing is not exact for sizes such as 3, or 3 with 2 and 4).
    """
    if any(s > gpus_per_node or s <= 0 for s, n in counts.items() if n > 0):
        raise ValueError("every size must be positive and fit inside a node")
    rest, volume = _split_ones(counts)
    if volume > nodes * gpus_per_node:
        return False
    if not rest or not first_fit_decreasing(rest, gpus_per_node, nodes):
        return True
    packer = _Packer.create(tuple(sorted(rest, reverse=True)), gpus_per_node)
    if packer is None:
        return None
    return packer.fits(tuple(rest[s] for s in packer.sizes), nodes)


def node_lower_bound(counts: Mapping[int, int], gpus_per_node: int) -> int:
    """A lower bound on the nodes these instances need: the configuration-LP bound (the volume bound when the
    node patterns are too many to enumerate)."""
    rest, volume = _split_ones(counts)
    bound = _ceil_bound(volume / gpus_per_node)
    if rest:
        packer = _Packer.create(tuple(sorted(rest, reverse=True)), gpus_per_node)
        if packer is not None:
            bound = max(bound, packer.lower_bound(tuple(rest[s] for s in packer.sizes)))
    return bound


def min_nodes(counts: Mapping[int, int], gpus_per_node: int) -> int | None:
    """The fewest nodes that hold these instances (each inside one node); None when the search limit is hit."""
    n = node_lower_bound(counts, gpus_per_node)
    while True:
        ok = fits_in_nodes(counts, gpus_per_node, n)
        if ok is None:
            return None
        if ok:
            return n
        n += 1


# --------------------------------------------------------------------------------------------------------------
# Reading the plan defensively
# --------------------------------------------------------------------------------------------------------------


def _is_number(value: object) -> TypeGuard[int | float]:
    """A finite JSON number (bool excluded: JSON true is not a count)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _close(a: float, b: float, rel: float) -> bool:
    """Equal within a relative tolerance of the larger magnitude (so 0 only matches 0)."""
    return abs(a - b) <= rel * max(abs(a), abs(b))


@dataclass(frozen=True)
class _Placement:
    """A placement whose identifying fields parsed; ``count`` may be fractional (reported as integrality)."""

    where: str
    model: str
    role: str
    gpu_type: str
    gpus: int
    pool: str
    count: float
    capacity_rps: float | None
    cost_usd_per_hour: float | None
    variant: str = DEFAULT_VARIANT

    @property
    def label(self) -> str:
        var = "" if self.variant == DEFAULT_VARIANT else f" variant {self.variant}"
        return f"{self.where} ({self.model} {self.role} {self.gpu_type} x{self.gpus}{var} in pool '{self.pool}')"

    @property
    def gpus_total(self) -> float:
        return self.gpus * self.count


def _parse_placement(i: int, raw: object, out: list[Violation]) -> _Placement | None:
    """Parse one placement; report each bad field; None when it cannot be attributed or counted."""
    where = f"placements[{i}]"
    if not isinstance(raw, dict):
        out.append(Violation("bad_plan_field", f"{where}: expected an object, got {type(raw).__name__}"))
        return None
    ok = True
    texts: dict[str, str] = {}
    for key in ("model", "role", "gpu_type", "pool"):
        val = raw.get(key)
        if isinstance(val, str):
            texts[key] = val
        else:
            ok = False
            out.append(Violation("bad_plan_field", f"{where}.{key}: expected a string, got {val!r}"))
    variant = raw.get("variant", DEFAULT_VARIANT)
    if variant is None:
        variant = DEFAULT_VARIANT
    if not isinstance(variant, str):
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.variant: expected a string, got {variant!r}"))
    gpus = raw.get("gpus_per_instance")
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus <= 0:
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.gpus_per_instance: expected a positive integer, "
                                               f"got {gpus!r}"))
    count = raw.get("count")
    if not _is_number(count):
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.count: expected a number, got {count!r}"))
    elif count <= 0:
        ok = False
        out.append(Violation("bad_plan_field", f"{where}.count: {count!r} instances; a placement's count must be "
                                               "positive"))
    extras: dict[str, float | None] = {}
    for key in ("capacity_rps", "cost_usd_per_hour"):
        val = raw.get(key)
        if _is_number(val):
            extras[key] = float(val)
        else:
            extras[key] = None
            out.append(Violation("bad_plan_field", f"{where}.{key}: expected a finite number, got {val!r}"))
    if not ok:
        return None
    assert isinstance(gpus, int) and _is_number(count) and isinstance(variant, str)
    p = _Placement(where, texts["model"], texts["role"], texts["gpu_type"], gpus, texts["pool"], float(count),
                   extras["capacity_rps"], extras["cost_usd_per_hour"], variant)
    if not float(count).is_integer():
        out.append(Violation("integrality", f"{p.label}: count {count!r} is not a whole number of instances"))
    return p


def _summary_number(container: object, key: str, where: str, out: list[Violation]) -> float | None:
    """A finite number at ``container[key]``, or None after reporting why it is unusable."""
    if not isinstance(container, dict):
        out.append(Violation("bad_plan_field", f"{where}: expected an object, got {type(container).__name__}"))
        return None
    val = container.get(key)
    if not _is_number(val):
        out.append(Violation("bad_plan_field", f"{where}.{key}: expected a finite number, got {val!r}"))
        return None
    return float(val)


def _positive_factor(plan: dict[str, Any], key: str, nullable: bool, out: list[Violation]) -> float:
    """A positive demand multiplier at ``plan[key]``; 1 when absent (older plans), or ``null`` if ``nullable``."""
    if key not in plan:
        return 1.0
    val = plan[key]
    if val is None and nullable:
        return 1.0
    if not _is_number(val) or val <= 0:
        zero = " (a plan must serve a positive multiple of the demand)" if _is_number(val) and val == 0 else ""
        out.append(Violation("bad_plan_field", f"{key}: expected a positive number, got {val!r}{zero}; checking "
                                               f"demand with {key} = 1"))
        return 1.0
    return float(val)


@dataclass
class _PoolUse:
    """What the verifier knows about one pool the plan uses: its placements and the plan's ``pools`` entry."""

    placements: list[_Placement]
    entry: dict[str, Any] | None
    nodes_used: int | None
    """The plan's ``nodes_used`` when it reads as a whole number >= 0, else None."""

    @property
    def instance_gpus(self) -> float:
        return sum(p.gpus_total for p in self.placements)


def _parse_pools(instance: Instance, plan: dict[str, Any], placements: list[_Placement],
                 out: list[Violation]) -> dict[str, _PoolUse]:
    """Pools of the instance that the plan uses (placements or a ``pools`` entry), with the plan's node counts."""
    raw = plan.get("pools")
    if not isinstance(raw, dict):
        out.append(Violation("bad_plan_field", f"pools: expected an object of pool id -> use, got {raw!r}; "
                                               "costs that depend on nodes in use cannot be checked"))
        raw = {}
    for pid in sorted(set(raw) - set(instance.node_pools), key=str):
        out.append(Violation("unknown_pool", f"pools.{pid}: the instance has no node pool {pid!r} "
                                             f"(pools: {', '.join(sorted(instance.node_pools))})"))
    used: dict[str, _PoolUse] = {}
    for pid in instance.node_pools:
        here = [p for p in placements if p.pool == pid]
        entry = raw.get(pid)
        if not here and pid not in raw:
            continue
        nodes: int | None = None
        if entry is None:
            if isinstance(plan.get("pools"), dict):
                out.append(Violation("bad_plan_field", f"pools.{pid}: missing, but {len(here)} placement(s) use "
                                                       "the pool"))
        elif not isinstance(entry, dict):
            out.append(Violation("bad_plan_field", f"pools.{pid}: expected an object, got {entry!r}"))
            entry = None
        else:
            val = entry.get("nodes_used")
            if _is_number(val) and val >= 0 and float(val).is_integer():
                nodes = int(val)
            else:
                out.append(Violation("bad_plan_field", f"pools.{pid}.nodes_used: expected a whole number >= 0, "
                                                       f"got {val!r}"))
        used[pid] = _PoolUse(here, entry, nodes)
    return used


# --------------------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------------------


def verify(instance: Instance, plan: dict[str, Any], tol: float = 1e-6) -> list[Violation]:
    """Every violation of ``instance``'s constraints by ``plan`` (its JSON form); [] when it satisfies them all.

    ``tol`` is the relative tolerance of every numeric comparison (demand cover, capacities, costs, budget). A
    plan whose status is not ``optimal`` or ``feasible`` holds no fleet, so there is nothing to verify.
    """
    out: list[Violation] = []
    if not isinstance(plan, dict):
        return [Violation("bad_plan_field", f"the plan must be a JSON object, got {type(plan).__name__}")]
    status = plan.get("status")
    if not isinstance(status, str):
        return [Violation("bad_plan_field", f"status: expected a string, got {status!r}")]
    if status not in PLANNED_STATUSES:
        return []

    name = plan.get("instance")
    if name is not None and name != instance.name:
        out.append(Violation("instance_mismatch", f"the plan is for instance {name!r}, not '{instance.name}'"))

    # scale_demand is always written; scale is null unless the plan maximised it (older plans lack the key)
    scale = _positive_factor(plan, "scale_demand", False, out) * _positive_factor(plan, "scale", True, out)

    raw_placements = plan.get("placements")
    if not isinstance(raw_placements, list):
        # Without the fleet every other check would only echo this one (nothing covers demand, ...).
        out.append(Violation("bad_plan_field", f"placements: expected a list, got {raw_placements!r}"))
        return out
    placements: list[_Placement] = []
    for i, raw in enumerate(raw_placements):
        parsed = _parse_placement(i, raw, out)
        if parsed is not None:
            placements.append(parsed)

    capacity = _check_shapes(instance, placements, tol, out)
    _check_demand_cover(instance, placements, capacity, scale, tol, out)
    pools = _parse_pools(instance, plan, placements, out)
    _check_pools(instance, pools, out)
    total = _check_costs(instance, pools, placements, len(raw_placements), plan, tol, out)
    _check_budget(instance, total, tol, out)
    _check_gpu_types(instance, pools, placements, plan, out)
    _check_models_summary(instance, placements, plan, scale, tol, out)
    _check_network(instance, placements, capacity, plan, scale, tol, out)
    _check_domain_loss(instance, placements, capacity, scale, tol, out)
    return out


def _single_capacity(instance: Instance, p: _Placement) -> float:
    """The shape's single-instance capacity (what the flow and domain-loss rows count per instance)."""
    shape = recompute_shape(instance, p.model, p.role, p.gpu_type, p.gpus, p.variant)
    return shape.capacity_rps if shape is not None and shape.unusable is None else 0.0


def _route_shares(instance: Instance, src: str, dst: str) -> dict[tuple[str, str], float]:
    """Shares of a src -> dst flow per link, recomputed with networkx from the instance's links: one fewest-hop
    path (lowest latency, then smallest name sequence) or an even split over all fewest-hop paths (ecmp)."""
    import networkx as nx

    net = instance.network
    assert net is not None
    g = nx.Graph()
    for link in net.links:
        k = tuple(sorted((link.a, link.b)))
        lat = g.edges[k]["lat"] if g.has_edge(*k) else math.inf
        g.add_edge(*k, lat=min(lat, link.latency_ms))
    paths = [list(x) for x in nx.all_shortest_paths(g, src, dst)]
    if net.routing == "shortest_path":
        paths = [min(paths, key=lambda q: (sum(g.edges[tuple(sorted(e))]["lat"] for e in itertools.pairwise(q)), q))]
    shares: dict[tuple[str, str], float] = {}
    for q in paths:
        for u, v in itertools.pairwise(q):
            k2 = (u, v) if u < v else (v, u)
            shares[k2] = shares.get(k2, 0.0) + 1.0 / len(paths)
    return shares


def _check_network(instance: Instance, placements: list[_Placement], capacity: dict[int, float],
                   plan: dict[str, Any], scale: float, tol: float, out: list[Violation]) -> None:
    """KV flows: conserved within prefill and decode capacity per domain, covering demand, fitting every link."""
    net = instance.network
    if net is None or len({p.domain for p in instance.node_pools.values()}) < 2:
        return
    raw = plan.get("kv_flows")
    if not isinstance(raw, list):
        out.append(Violation("bad_plan_field", f"kv_flows: expected a list (the instance has a network), got {raw!r}"))
        return
    flows: list[tuple[str, str, str, float]] = []
    for i, f in enumerate(raw):
        keys_ok = isinstance(f, dict) and all(isinstance(f.get(k), str) for k in ("model", "from_domain", "to_domain"))
        if not keys_ok or not _is_number(f.get("rps")) or f["rps"] < 0:
            out.append(Violation("bad_plan_field", f"kv_flows[{i}]: needs model, from_domain, to_domain and rps >= 0"))
            continue
        flows.append((f["model"], f["from_domain"], f["to_domain"], float(f["rps"])))
    dom = {pid: pool.domain for pid, pool in instance.node_pools.items()}
    for model in instance.workloads:
        mine = [f for f in flows if f[0] == model]
        total = sum(f[3] for f in mine)
        demand = demand_rps(instance, model, scale)
        if total < demand * (1.0 - tol):
            out.append(Violation("kv_flow_total", f"model '{model}': KV flows carry {total:.6g} req/s, below the "
                                                  f"demand {demand:.6g}"))
        for role, end in (("prefill", 1), ("decode", 2)):
            for d in sorted({f[end] for f in mine}):
                cap = sum(_single_capacity(instance, p) * p.count for p in placements
                          if p.model == model and p.role == role and dom.get(p.pool) == d)
                sent = sum(f[3] for f in mine if f[end] == d)
                if sent > cap * (1.0 + tol) + 1e-9:
                    out.append(Violation("kv_flow_capacity", f"model '{model}': {sent:.6g} req/s flow through "
                                                             f"{role} in domain '{d}', which serves {cap:.6g}"))
    load: dict[tuple[str, str], float] = {}
    for model, d, e, rps in flows:
        if d == e or model not in instance.models:
            continue
        gbit = instance.models[model].kv_bytes_per_token_value * instance.workloads[model].input_tokens_mean * 8e-9
        for k, share in _route_shares(instance, d, e).items():
            load[k] = load.get(k, 0.0) + gbit * share * rps
    bandwidth: dict[tuple[str, str], float] = {}
    for link in net.links:
        k = (link.a, link.b) if link.a < link.b else (link.b, link.a)
        bandwidth[k] = bandwidth.get(k, 0.0) + link.bandwidth_gbps
    for k, used in sorted(load.items()):
        if used > bandwidth[k] * (1.0 + tol):
            out.append(Violation("link_bandwidth", f"link {k[0]}-{k[1]}: {used:.6g} Gbit/s of KV traffic over its "
                                                   f"{bandwidth[k]:g} Gbit/s"))


def _check_domain_loss(instance: Instance, placements: list[_Placement], capacity: dict[int, float], scale: float,
                       tol: float, out: list[Violation]) -> None:
    """After losing every instance in any one domain, each model and role keeps the stated share of demand."""
    if instance.resilience is None:
        return
    fraction = instance.resilience.domain_loss_fraction
    dom = {pid: pool.domain for pid, pool in instance.node_pools.items()}
    for lost in sorted(set(dom.values())):
        for model in instance.workloads:
            need = fraction * demand_rps(instance, model, scale)
            for role in ROLE_NAMES:
                left = sum(_single_capacity(instance, p) * p.count for p in placements
                           if p.model == model and p.role == role and dom.get(p.pool) != lost)
                if left < need * (1.0 - tol):
                    out.append(Violation("domain_loss_cover", f"losing domain '{lost}' leaves model '{model}' "
                                                              f"{left:.6g} req/s of {role}, below {need:.6g}"))


def _check_shapes(instance: Instance, placements: list[_Placement], tol: float,
                  out: list[Violation]) -> dict[int, float]:
    """Shapes and pools exist and agree; per-instance capacity recomputed. Returns id(placement) -> capacity."""
    capacity: dict[int, float] = {}
    for p in placements:
        if p.pool not in instance.node_pools:
            out.append(Violation("unknown_pool", f"{p.label}: the instance has no node pool '{p.pool}' "
                                                 f"(pools: {', '.join(sorted(instance.node_pools))})"))
        elif instance.node_pools[p.pool].gpu_type != p.gpu_type:
            out.append(Violation("pool_gpu_type", f"{p.label}: pool '{p.pool}' holds "
                                                  f"{instance.node_pools[p.pool].gpu_type} GPUs, not {p.gpu_type}"))
        shape = recompute_shape(instance, p.model, p.role, p.gpu_type, p.gpus, p.variant)
        if shape is None:
            out.append(Violation("unknown_shape", f"{p.label}: no {p.role} profile for model '{p.model}' on "
                                                  f"{p.gpu_type} with {p.gpus} GPUs per instance and variant "
                                                  f"'{p.variant}'"))
            continue
        capacity[id(p)] = shape.capacity_rps
        if shape.unusable is not None:
            out.append(Violation("unusable_shape", f"{p.label}: this shape serves nothing at the SLOs "
                                                   f"({shape.unusable})"))
        pooled = _pooled_per_instance(instance, p, placements)
        if pooled is not None and shape.unusable is None:
            capacity[id(p)] = pooled
            if p.capacity_rps is not None and p.capacity_rps > pooled * (1.0 + tol):
                out.append(Violation("capacity_mismatch", f"{p.label}: capacity_rps {p.capacity_rps:.10g} per "
                                                          f"instance over-states the pooled G/G/c capacity "
                                                          f"{pooled:.10g} of its group"))
            continue
        if p.capacity_rps is not None and not _close(p.capacity_rps, shape.capacity_rps, tol):
            out.append(Violation("capacity_mismatch", f"{p.label}: capacity_rps {p.capacity_rps:.10g} per instance, "
                                                      f"recomputed {shape.capacity_rps:.10g} req/s"))
    return capacity


def _pooled_per_instance(instance: Instance, p: _Placement, placements: list[_Placement]) -> float | None:
    """For a ``ggc`` prefill placement: the pooled capacity of all instances of its shape (one queue in front of
    n = their total count, computed exactly by :func:`pdopt.queueing.max_arrival_rate`, independently of the
    MILP's linearisation) over n. None for any other placement."""
    wl = instance.workloads.get(p.model)
    if wl is None or p.role != "prefill" or wl.queue_model != "ggc":
        return None
    prof = _find_profile(instance, p.model, p.role, p.gpu_type, p.gpus, p.variant)
    if not isinstance(prof, PrefillProfile):
        return None
    service = _service(prof, wl)
    if isinstance(service, str):
        return None
    mu = 1.0 / service[0]
    n = int(sum(q.count for q in placements if (q.model, q.role, q.gpu_type, q.gpus, q.variant)
                == (p.model, p.role, p.gpu_type, p.gpus, p.variant)))
    if n < 1:
        return None
    budget = wl.ttft.target_s - wl.ttft_overhead_s
    return queueing.max_arrival_rate(mu, n, wl.arrival_scv, _cs2(wl, service[1]), budget, wl.ttft.statistic) / n


def _check_demand_cover(instance: Instance, placements: list[_Placement], capacity: dict[int, float],
                        scale: float, tol: float, out: list[Violation]) -> None:
    """Recomputed capacity x count over each model's role, less k spares x its largest usable instance, must
    reach its demand x every multiplier of the plan."""
    for model, wl in instance.workloads.items():
        demand = demand_rps(instance, model, scale)
        for role in ROLE_NAMES:
            served = [p for p in placements if p.model == model and p.role == role]
            supply = sum(capacity.get(id(p), 0.0) * p.count for p in served)
            k = next((n for r, n in wl.spare_instances.items() if r == role), 0)
            reserve = k * largest_usable_capacity(instance, model, role) if k else 0.0
            if supply < (demand + reserve) * (1.0 - tol):
                parts = ", ".join(f"{p.count:g} x {capacity.get(id(p), 0.0):.6g} ({p.gpu_type} x{p.gpus}"
                                  + ("" if p.variant == DEFAULT_VARIANT else f" {p.variant}") + ")"
                                  for p in served) or "no instances"
                spare = (f" plus {k} spare(s) x {reserve / k:.6g} req/s (its largest usable instance) = "
                         f"{demand + reserve:.6g} req/s" if k else "")
                out.append(Violation("demand_cover", f"model '{model}', role {role}: capacity {supply:.6g} req/s "
                                                     f"({parts}) is below the demand {demand:.6g} req/s{spare}"))


def _spans(instance: Instance, p: _Placement, node_gpus: int) -> bool:
    """Whether an instance larger than a node may take ``size / node`` whole nodes: its profile spans nodes and
    the size is a multiple of the node size (an unknown shape, already reported, gets the benefit of the doubt)."""
    if p.gpus % node_gpus:
        return False
    prof = _find_profile(instance, p.model, p.role, p.gpu_type, p.gpus, p.variant)
    return prof is None or prof.spans_nodes


def _check_pools(instance: Instance, pools: dict[str, _PoolUse], out: list[Violation]) -> None:
    """Per pool: GPUs in total, the plan's node count against the inventory, then an exact packing of the
    instances into whole nodes (spanning instances take whole nodes of their own) within both."""
    for pid, use in pools.items():
        pool = instance.node_pools[pid]
        k = pool.gpus_per_node
        total = k * pool.node_count
        gpus = use.instance_gpus
        if gpus > total:
            out.append(Violation("pool_gpu_capacity", f"pool '{pid}': instances use {gpus:g} GPUs but its "
                                                      f"{pool.node_count} nodes x {k} GPUs hold {total}"))
        if use.nodes_used is not None and use.nodes_used > pool.node_count:
            out.append(Violation("pool_node_limit", f"pool '{pid}': the plan uses {use.nodes_used} nodes, but the "
                                                    f"pool holds {pool.node_count}"))
        small: dict[int, int] = {}
        spanning_nodes = 0
        for p in use.placements:  # a fractional count still needs a whole slot: round up for packing
            n = math.ceil(p.count)
            if p.gpus <= k:
                small[p.gpus] = small.get(p.gpus, 0) + n
            elif _spans(instance, p, k):
                spanning_nodes += n * (p.gpus // k)
            else:
                why = "its profile does not span nodes" if p.gpus % k == 0 else "it is no multiple of the node size"
                out.append(Violation("node_packing", f"{p.label}: an instance of {p.gpus} GPUs cannot be placed on "
                                                     f"pool '{pid}' ({k}-GPU nodes): {why}"))
        limits = [("its", pool.node_count)]
        if use.nodes_used is not None and use.nodes_used < pool.node_count:
            limits.append(("the plan's nodes_used:", use.nodes_used))
        for label, limit in limits:
            ok = fits_in_nodes(small, k, limit - spanning_nodes)
            if ok:
                continue
            what = _describe_pool(use, small, spanning_nodes, k)
            if ok is None:
                out.append(Violation("node_packing_undecided", f"pool '{pid}': could not decide within the search "
                                                               f"limit whether {what} fit in {label} {limit} nodes"))
            else:
                out.append(Violation("node_packing", f"pool '{pid}' ({k}-GPU nodes): {what} do not fit in {label} "
                                                     f"{limit} nodes, each instance inside one node"
                                                     + _need_nodes(small, k, spanning_nodes)))
            break


def _describe_pool(use: _PoolUse, small: dict[int, int], spanning_nodes: int, k: int) -> str:
    parts = [f"{n} x {g} GPUs (" + ", ".join(sorted({f"{p.model} {p.role}" for p in use.placements
                                                      if p.gpus == g})) + ")"
             for g, n in sorted(small.items(), reverse=True)]
    if spanning_nodes:
        parts.append(f"instances spanning {spanning_nodes} whole node(s)")
    return "the instances " + "; ".join(parts) if parts else "no instances"


def _need_nodes(small: dict[int, int], k: int, spanning_nodes: int) -> str:
    """`` (they need N nodes)``: exact when the instances are few enough to search, else a lower bound."""
    if sum(small.values()) <= 10_000:
        need = min_nodes(small, k)
        if need is not None:
            return f" (they need {need + spanning_nodes})"
    return f" (they need at least {node_lower_bound(small, k) + spanning_nodes})"


def _gpu_type_of(instance: Instance, p: _Placement) -> str:
    """The GPUs a placement occupies: its pool's type when the pool exists (physical truth), else its own."""
    pool = instance.node_pools.get(p.pool)
    return pool.gpu_type if pool is not None else p.gpu_type


def _check_gpu_types(instance: Instance, pools: dict[str, _PoolUse], placements: list[_Placement],
                     plan: dict[str, Any], out: list[Violation]) -> None:
    """Availability caps per GPU type on GPUs rented, and the plan's ``gpus_used`` against its placements."""
    used: dict[str, float] = {}
    for p in placements:
        g = _gpu_type_of(instance, p)
        used[g] = used.get(g, 0.0) + p.gpus_total
    rented: dict[str, float] = {}
    how: dict[str, list[str]] = {}
    for p in placements:  # instances outside any known pool still take GPUs of their type
        if p.pool not in instance.node_pools:
            rented[p.gpu_type] = rented.get(p.gpu_type, 0.0) + p.gpus_total
    for pid, use in pools.items():
        pool = instance.node_pools[pid]
        if billed_per_node(pool):
            # whole nodes are rented; without a readable nodes_used, the GPU volume is a lower bound
            nodes = use.nodes_used if use.nodes_used is not None else math.ceil(use.instance_gpus / pool.gpus_per_node)
            n = float(nodes * pool.gpus_per_node)
            how.setdefault(pool.gpu_type, []).append(f"{pid}: {nodes} node(s) x {pool.gpus_per_node}")
        else:
            n = use.instance_gpus
            how.setdefault(pool.gpu_type, []).append(f"{pid}: {n:g} instance GPUs")
        rented[pool.gpu_type] = rented.get(pool.gpu_type, 0.0) + n
    for g, gt in instance.gpu_types.items():
        if gt.max_gpus is not None and rented.get(g, 0.0) > gt.max_gpus:
            out.append(Violation("gpu_type_availability", f"GPU type '{g}': the plan rents {rented[g]:g} GPUs ("
                                                          + ", ".join(how.get(g, ["outside known pools"]))
                                                          + f"), above its cap max_gpus = {gt.max_gpus}"))
    stated = plan.get("gpus_used")
    if not isinstance(stated, dict):
        out.append(Violation("bad_plan_field", f"gpus_used: expected an object, got {stated!r}"))
        return
    for g in sorted(set(stated) | set(used), key=str):
        val = stated.get(g, 0)
        if not _is_number(val):
            out.append(Violation("bad_plan_field", f"gpus_used.{g}: expected a number, got {val!r}"))
        elif val != used.get(g, 0.0):
            out.append(Violation("summary_mismatch", f"gpus_used.{g} = {val:g}, but the placements use "
                                                     f"{used.get(g, 0.0):g} GPUs of type '{g}'"))


def _check_costs(instance: Instance, pools: dict[str, _PoolUse], placements: list[_Placement], n_raw: int,
                 plan: dict[str, Any], tol: float, out: list[Violation]) -> float | None:
    """Each pool's cost at the instance's prices and billing, its entry in ``pools``, each placement's share of
    it by GPUs, and the objective as their sum. Returns the recomputed total (None when some cost is unknown)."""
    total = 0.0
    complete = len(placements) == n_raw and all(p.pool in instance.node_pools for p in placements)
    for pid, use in pools.items():
        pool = instance.node_pools[pid]
        gpus = use.instance_gpus
        nodes = use.nodes_used
        if nodes is None and not billed_per_node(pool) and pool.activation_cost_usd_per_hour == 0.0:
            nodes = 0  # GPU billing with no activation cost: the cost does not depend on the nodes
        if nodes is None:
            complete = False
            continue
        cost = pool_cost_usd_per_hour(instance, pid, nodes, gpus)
        total += cost
        if billed_per_node(pool):
            basis = (f"{nodes} node(s) x ({pool.price_usd_per_node_hour:g} USD/node-hour + "
                     f"{pool.activation_cost_usd_per_hour:g} activation)")
        else:
            basis = (f"{gpus:g} GPUs x {instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour:g} USD/GPU-hour + "
                     f"{nodes} node(s) x {pool.activation_cost_usd_per_hour:g} activation")
        for p in use.placements:
            share = cost * p.gpus_total / gpus
            if p.cost_usd_per_hour is not None and not _close(p.cost_usd_per_hour, share, tol):
                out.append(Violation("cost_mismatch", f"{p.label}: cost_usd_per_hour {p.cost_usd_per_hour:.10g}, "
                                                      f"but its {p.gpus_total:g} of the pool's {gpus:g} instance "
                                                      f"GPUs share the pool's {cost:.10g} USD/hour ({basis}): "
                                                      f"{share:.10g}"))
        if use.entry is not None:
            _check_pool_entry(instance, pid, use, cost, basis, tol, out)
    objective = plan.get("objective_usd_per_hour")
    if not _is_number(objective):
        out.append(Violation("bad_plan_field", f"objective_usd_per_hour: expected a finite number, got "
                                               f"{objective!r}"))
    elif complete and not _close(float(objective), total, tol):
        out.append(Violation("objective_mismatch", f"objective_usd_per_hour {objective:.10g}, but the pools cost "
                                                   f"{total:.10g} USD/hour at the instance's prices"))
    if complete:
        return total
    return float(objective) if _is_number(objective) else None


def _check_pool_entry(instance: Instance, pid: str, use: _PoolUse, cost: float, basis: str, tol: float,
                      out: list[Violation]) -> None:
    """``pools.<id>``: its cost, its GPUs in use, and what it repeats of the instance."""
    pool = instance.node_pools[pid]
    entry = use.entry
    assert entry is not None
    where = f"pools.{pid}"
    stated = _summary_number(entry, "cost_usd_per_hour", where, out)
    if stated is not None and not _close(stated, cost, tol):
        out.append(Violation("cost_mismatch", f"{where}.cost_usd_per_hour = {stated:.10g}, recomputed "
                                              f"{cost:.10g} USD/hour ({basis})"))
    gpus = _summary_number(entry, "gpus_used", where, out)
    if gpus is not None and gpus != use.instance_gpus:
        out.append(Violation("summary_mismatch", f"{where}.gpus_used = {gpus:g}, but its placements use "
                                                 f"{use.instance_gpus:g} GPUs"))
    count = _summary_number(entry, "node_count", where, out)
    if count is not None and count != pool.node_count:
        out.append(Violation("summary_mismatch", f"{where}.node_count = {count:g}, but the pool holds "
                                                 f"{pool.node_count} nodes"))
    for key, truth in (("gpu_type", pool.gpu_type), ("domain", pool.domain)):
        val = entry.get(key)
        if not isinstance(val, str):
            out.append(Violation("bad_plan_field", f"{where}.{key}: expected a string, got {val!r}"))
        elif val != truth:
            out.append(Violation("summary_mismatch", f"{where}.{key} = {val!r}, but the pool's is {truth!r}"))
    packing = entry.get("packing")
    if not isinstance(packing, str):
        out.append(Violation("bad_plan_field", f"{where}.packing: expected a string, got {packing!r}"))


def _check_budget(instance: Instance, total: float | None, tol: float, out: list[Violation]) -> None:
    """The hourly cost (recomputed when every pool's cost is known, else the plan's objective) within budget."""
    budget = instance.limits.budget_usd_per_hour
    if budget is None or total is None:
        return
    if total > budget + tol * max(abs(budget), abs(total)):
        out.append(Violation("budget", f"the plan costs {total:.10g} USD/hour, above the budget "
                                       f"limits.budget_usd_per_hour = {budget:g}"))


def _check_models_summary(instance: Instance, placements: list[_Placement], plan: dict[str, Any], scale: float,
                          tol: float, out: list[Violation]) -> None:
    """``models.<id>``: demand, and per role the instances and GPUs, must match the placements."""
    models = plan.get("models")
    if not isinstance(models, dict):
        out.append(Violation("bad_plan_field", f"models: expected an object, got {models!r}"))
        return
    for extra in sorted(set(models) - set(instance.workloads), key=str):
        out.append(Violation("summary_mismatch", f"models.{extra}: the instance has no workload for it"))
    for model in instance.workloads:
        entry = models.get(model)
        where = f"models.{model}"
        if not isinstance(entry, dict):
            out.append(Violation("bad_plan_field", f"{where}: expected an object, got {entry!r}"))
            continue
        stated_demand = _summary_number(entry, "demand_rps", where, out)
        demand = demand_rps(instance, model, scale)
        if stated_demand is not None and not _close(stated_demand, demand, tol):
            out.append(Violation("summary_mismatch", f"{where}.demand_rps = {stated_demand:.10g}, recomputed "
                                                     f"{demand:.10g} req/s"))
        for role in ROLE_NAMES:
            served = [p for p in placements if p.model == model and p.role == role]
            role_entry = entry.get(role)
            for key, actual in (("instances", sum(p.count for p in served)),
                                ("gpus", sum(p.gpus_total for p in served))):
                stated = _summary_number(role_entry, key, f"{where}.{role}", out)
                if stated is not None and stated != actual:
                    out.append(Violation("summary_mismatch", f"{where}.{role}.{key} = {stated:g}, but its "
                                                             f"placements sum to {actual:g}"))
                if role_entry is None or not isinstance(role_entry, dict):
                    break  # reported once by _summary_number

"""The MILP's optimum equals an exhaustive enumeration of instance counts on tiny generated instances.

The enumerator shares no code with the formulation (no PuLP, no ``pdopt.optimize``, or ``pdopt.plan``);
per-instance capacities come from ``pdopt.perf.capacity.capacity_table`` and are checked against the values the
generator designed. It states the placement semantics directly:

- every vector of instance counts over the (shape, pool) pairs is tried, the pool's GPUs bounding each count;
- a pool's instances must pack exactly into its nodes: an instance of at most a node's GPUs sits inside one node
  (any sizes, e.g. 3 + 3 + 2 on 8 GPUs; the fewest nodes is found by exhaustive bin packing), one that spans
  nodes takes ``gpus / gpus_per_node`` whole nodes of its own; the nodes used may not exceed ``node_count``;
- cost: a node-billed pool pays nodes x (node price + activation); a GPU-billed pool pays its instances' GPUs x
  the GPU type's price plus activation x nodes;
- a GPU type's cap counts rented GPUs: nodes x GPUs per node in node-billed pools, instance GPUs otherwise;
- the budget bounds the total cost; N+k spares: sum of capacity x count - k x the largest usable per-instance
  capacity of the role >= demand.

Generated numbers are dyadic (capacities X / L_in - 1 / b with b = 1 s and B* / (0.0625 s x 128), demands and
prices in quarters), so every sum is exact in floating point and there are no near-ties at the demand boundary.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pdopt
from pdopt.instance import Instance
from pdopt.io import instance_from_dict, load_instance
from pdopt.optimize.solver import SolverOptions, available_solvers
from pdopt.perf.capacity import capacity_table
from pdopt.plan import SolveStatus
from pdopt.verifier import verify
from tests.conftest import ROOT

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

L_IN, L_OUT = 1000.0, 128.0
TTFT_S, TPOT_MS = 1.0, 62.5
"""With L_in 1000 and a 1 s TTFT budget, prefill capacity is X / 1000 - 1; at 62.5 ms and L_out 128 a decode
instance at batch B* serves B* / 8 req/s."""

QUARTERS = st.integers(1, 12).map(lambda q: q / 4)
"""0.25 .. 3.0 in quarters."""


# ----------------------------------------------------------------------------------------------------------
# Generated instances
# ----------------------------------------------------------------------------------------------------------


@st.composite
def tiny_instances(draw: st.DrawFn, sizes_drawn: tuple[int, ...] = (1, 2, 3, 4, 8)) -> dict[str, Any]:
    """1-2 models, 1-2 pools of 1-3 nodes (4 or 8 GPUs), 2-4 shapes of 1, 2, 3, 4 or 8 GPUs (8 spanning 4-GPU
    nodes), node- or GPU-billed pools with activation costs, caps, spares and budgets.

    Two models get one pool of 3 x 4 or 2 x 8 GPUs and shapes of at most 4 GPUs, so that they are often feasible
    while the enumeration stays small."""
    n_models = draw(st.sampled_from([1, 2]))
    gpu_types: dict[str, Any] = {
        "ga": {"memory_gb": 80.0, "price_usd_per_gpu_hour": draw(st.sampled_from([1.0, 1.5, 2.0, 2.5]))},
        "gb": {"memory_gb": 80.0, "price_usd_per_gpu_hour": draw(st.sampled_from([2.0, 3.0, 4.0]))},
    }
    for g in gpu_types:
        cap = draw(st.sampled_from([None, None, None, None, 6, 8, 12, 16]))
        if cap is not None:
            gpu_types[g]["max_gpus"] = cap
    pools: dict[str, Any] = {}
    for i in range(draw(st.sampled_from([2, 1])) if n_models == 1 else 1):
        gtype = "ga" if i == 0 else draw(st.sampled_from(["ga", "gb"]))
        node = draw(st.sampled_from([4, 8]))
        count = draw(st.integers(2, 3) if node == 4 else st.integers(1, 2)) if n_models == 1 else {4: 3, 8: 2}[node]
        pool: dict[str, Any] = {"gpu_type": gtype, "gpus_per_node": node, "node_count": count}
        billing = draw(st.sampled_from(["node_default", "node_explicit", "gpu_default", "gpu_explicit"]))
        if billing != "gpu_default":
            factor = draw(st.sampled_from([0.75, 1.0, 1.25, 1.5]))
            pool["price_usd_per_node_hour"] = node * gpu_types[gtype]["price_usd_per_gpu_hour"] * factor
        if billing == "node_explicit":
            pool["billing"] = "node_hour"
        if billing == "gpu_explicit":
            pool["billing"] = "gpu_hour"  # a node price is given but GPUs are paid one by one at the type's price
        activation = draw(st.sampled_from([0.0, 0.0, 0.5, 1.5]))
        if activation:
            pool["activation_cost_usd_per_hour"] = activation
        pools[f"p{i}"] = pool
    types_with_pools = sorted({p["gpu_type"] for p in pools.values()})

    def sizes_for(gtype: str) -> list[int]:
        nodes = {p["gpus_per_node"] for p in pools.values() if p["gpu_type"] == gtype}
        return [g for g in sizes_drawn if any(g <= n or g % n == 0 for n in nodes)]

    models, workloads, profiles = {}, {}, []
    seen: set[tuple[str, str, str, int, str]] = set()
    for mi in range(n_models):
        m = f"m{mi}"
        models[m] = {"kv_bytes_per_token": 65536.0, "weights_gb": 10.0}
        spares = {r: draw(st.sampled_from([0, 0, 0, 1] if n_models == 1 else [0, 0, 0, 0, 0, 1]))
                  for r in ("prefill", "decode")}
        workloads[m] = {
            "demand": {"requests_per_s": draw(QUARTERS if n_models == 1 else st.integers(1, 6).map(lambda q: q / 4))},
            "input_tokens_mean": L_IN, "output_tokens_mean": L_OUT,
            "ttft": {"target_s": TTFT_S, "statistic": "mean"},
            "tpot": {"target_ms": TPOT_MS, "statistic": "mean"},
            "spare_instances": {r: k for r, k in spares.items() if k},
        }
        per_role = 1 if n_models == 2 else None
        for role in ("prefill", "decode"):
            for _ in range(per_role or draw(st.integers(1, 2))):
                gtype = draw(st.sampled_from(types_with_pools))
                sizes = [g for g in sizes_for(gtype) if n_models == 1 or g <= 4]  # two models: no spanning
                small = [g for g in sizes if g <= 4]
                size = draw(st.sampled_from(sizes + small))  # larger ones less often
                variant = "default" if (m, role, gtype, size, "default") not in seen else "v2"
                if (m, role, gtype, size, variant) in seen:
                    continue
                seen.add((m, role, gtype, size, variant))
                prof: dict[str, Any] = {"model": m, "role": role, "gpu_type": gtype, "gpus_per_instance": size,
                                        "variant": variant, "spans_nodes": size >= 8}
                per_gpu = draw(st.integers(2, 8))  # capacity per GPU in quarters of a req/s: 0.5 .. 2
                if role == "prefill":
                    cap = per_gpu * size / 4
                    prof["max_throughput_by_input"] = [{"input_tokens": L_IN,
                                                        "max_throughput_tok_per_s": L_IN * (cap + 1.0 / TTFT_S)}]
                else:
                    batch = 2 * per_gpu * size  # B*, capacity B* / 8 req/s
                    prof["tpot_by_batch"] = [{"batch": 1, "tpot_ms": 20.0}, {"batch": batch, "tpot_ms": TPOT_MS},
                                             {"batch": batch + 8, "tpot_ms": 100.0}]
                profiles.append(prof)
    doc: dict[str, Any] = {"name": "bruteforce", "gpu_types": gpu_types, "node_pools": pools, "models": models,
                           "workloads": workloads, "profiles": profiles}
    budget = draw(st.sampled_from([None, None, None, None, 12.0, 20.0, 32.0, 48.0]))
    if budget is not None:
        doc["limits"] = {"budget_usd_per_hour": budget}
    return doc


def designed_capacity(prof: dict[str, Any]) -> float:
    """What the generator meant one instance of the profile to serve, req/s."""
    if prof["role"] == "prefill":
        return float(prof["max_throughput_by_input"][0]["max_throughput_tok_per_s"]) / L_IN - 1.0 / TTFT_S
    return float(prof["tpot_by_batch"][1]["batch"]) / (TPOT_MS / 1000.0 * L_OUT)


# ----------------------------------------------------------------------------------------------------------
# The enumerator
# ----------------------------------------------------------------------------------------------------------


@functools.cache
def min_bins(node_gpus: int, sizes: tuple[int, ...], counts: tuple[int, ...]) -> int:
    """Fewest nodes of ``node_gpus`` GPUs that hold ``counts[i]`` instances of ``sizes[i]`` GPUs (each <= a node).

    Exhaustive: the first remaining instance of the largest size opens a node; every sub-multiset of the other
    instances that fits beside it is tried as that node's content.
    """
    if not any(counts):
        return 0
    first = next(i for i, c in enumerate(counts) if c)
    rest = list(counts)
    rest[first] -= 1
    best = math.inf
    contents: list[tuple[int, ...]] = [()]
    for c in rest:
        contents = [(*t, k) for t in contents for k in range(c + 1)]
    for take in contents:
        if sizes[first] + sum(k * s for k, s in zip(take, sizes, strict=True)) > node_gpus:
            continue
        left = tuple(c - k for c, k in zip(rest, take, strict=True))
        best = min(best, 1 + min_bins(node_gpus, sizes, left))
    return int(best)


@dataclass(frozen=True)
class Arc:
    """One (shape, pool) pair: an instance of the shape may sit in the pool."""

    shape: str
    model: str
    role: str
    gpu_type: str
    variant: str
    gpus: int
    capacity_rps: float
    pool: str
    spanned_nodes: int
    """Whole nodes one instance takes when it spans nodes, else 0."""


@dataclass(frozen=True)
class PoolOption:
    """One vector of instance counts for one pool, with what it uses and costs."""

    counts: tuple[int, ...]
    nodes: int
    rented_gpus: int
    cost: float
    supply: tuple[float, ...]
    """Capacity per (model, role) key, in ``Enumeration.keys`` order."""


@dataclass
class Enumeration:
    keys: list[tuple[str, str]]
    arcs: dict[str, list[Arc]]
    need: np.ndarray  # demand + spare capacity per key
    best_cost: float | None
    best_plan: dict[tuple[str, str], int] | None
    vectors: int
    max_scale: float | None
    """The largest s such that some vector covers s x demand + spares within the limits (None: not even the
    spares fit); 0 when no vector serves any positive multiplier."""


def arcs_of(inst: Instance) -> dict[str, list[Arc]]:
    """Usable shapes (capacity table) and the pools that can host them, by pool."""
    out: dict[str, list[Arc]] = {pid: [] for pid in inst.node_pools}
    for s in capacity_table(inst).shapes:
        for pid, pool in inst.node_pools.items():
            if pool.gpu_type != s.gpu_type:
                continue
            if s.gpus_per_instance <= pool.gpus_per_node:
                span = 0
            elif s.spans_nodes and s.gpus_per_instance % pool.gpus_per_node == 0:
                span = s.gpus_per_instance // pool.gpus_per_node
            else:
                continue
            out[pid].append(Arc(s.shape_id, s.model, s.role, s.gpu_type, s.variant, s.gpus_per_instance,
                                s.capacity_rps, pid, span))
    return out


def pool_usage(inst: Instance, pid: str, arcs: list[Arc], counts: tuple[int, ...]) -> tuple[int, int, float] | None:
    """(nodes, rented GPUs, cost) of a count vector in a pool, or None when it does not pack into the pool."""
    pool = inst.node_pools[pid]
    spanned = sum(a.spanned_nodes * c for a, c in zip(arcs, counts, strict=True))
    by_size: dict[int, int] = {}
    for a, c in zip(arcs, counts, strict=True):
        if not a.spanned_nodes and c:
            by_size[a.gpus] = by_size.get(a.gpus, 0) + c
    sizes = tuple(sorted(by_size, reverse=True))
    nodes = spanned + min_bins(pool.gpus_per_node, sizes, tuple(by_size[s] for s in sizes))
    if nodes > pool.node_count:
        return None
    gpus = sum(a.gpus * c for a, c in zip(arcs, counts, strict=True))
    if pool.billed_per_node:
        assert pool.price_usd_per_node_hour is not None
        return nodes, nodes * pool.gpus_per_node, nodes * (pool.price_usd_per_node_hour
                                                           + pool.activation_cost_usd_per_hour)
    price = inst.gpu_types[pool.gpu_type].price_usd_per_gpu_hour
    return nodes, gpus, gpus * price + nodes * pool.activation_cost_usd_per_hour


def pool_options(inst: Instance, pid: str, arcs: list[Arc], keys: list[tuple[str, str]]) -> list[PoolOption]:
    """Every count vector over the pool's arcs (each bounded by the pool's GPUs) that packs into its nodes."""
    pool = inst.node_pools[pid]
    total = pool.gpus_per_node * pool.node_count
    out: list[PoolOption] = []

    def rec(i: int, left: int, counts: list[int]) -> None:
        if i == len(arcs):
            vec = tuple(counts)
            use = pool_usage(inst, pid, arcs, vec)
            if use is None:
                return
            supply = [0.0] * len(keys)
            for a, c in zip(arcs, vec, strict=True):
                supply[keys.index((a.model, a.role))] += a.capacity_rps * c
            out.append(PoolOption(vec, use[0], use[1], use[2], tuple(supply)))
            return
        for c in range(left // arcs[i].gpus + 1):
            counts.append(c)
            rec(i + 1, left - c * arcs[i].gpus, counts)
            counts.pop()

    rec(0, total, [])
    return out


def _served_ratio(keys: list[tuple[str, str]], supply: np.ndarray, spare: np.ndarray,
                  demand: np.ndarray) -> np.ndarray:
    """Per count vector, the smallest over models of the demand multiple it serves: a model's roles' capacity
    net of spares (a role with no capacity holds none when its model has another mode), then, for P/D, the smaller
    of prefill and decode, plus the aggregated capacity when the model may be served both ways (the router
    splits the demand). A role of the model's only mode with no instance still owes its spares (negative)."""
    out = np.full(supply.shape[0], np.inf)
    for m in dict.fromkeys(k[0] for k in keys):
        idx = {r: i for i, (mm, r) in enumerate(keys) if mm == m}
        both = len(idx) == 3
        net = {r: supply[:, i] - spare[i] * ((supply[:, i] > 0) if both else 1.0) for r, i in idx.items()}
        pairs = np.minimum(net["prefill"], net["decode"]) if "prefill" in net else None
        if both:
            assert pairs is not None
            served = np.maximum(net["aggregated"], 0.0) + np.maximum(pairs, 0.0)
            served = np.where((net["aggregated"] < -1e-9) | (pairs < -1e-9), -np.inf, served)
        else:
            served = net["aggregated"] if pairs is None else pairs
        d = demand[next(iter(idx.values()))]
        out = np.minimum(out, served / d)
    return out


@dataclass
class Vectors:
    """Every combination of per-pool count vectors, with its cost and whether it meets every constraint."""

    keys: list[tuple[str, str]]
    arcs: dict[str, list[Arc]]
    need: np.ndarray
    pids: list[str]
    opts: dict[str, list[PoolOption]]
    index: list[np.ndarray]
    """Per pool, the option index of each combined vector."""
    cost: np.ndarray
    limits: np.ndarray
    served: np.ndarray
    ok: np.ndarray

    def counts(self, i: int) -> dict[tuple[str, str], int]:
        """Combined vector i as (shape, pool) -> count (nonzero only)."""
        out: dict[tuple[str, str], int] = {}
        for pid, idx in zip(self.pids, self.index, strict=False):
            for a, c in zip(self.arcs[pid], self.opts[pid][int(idx[i])].counts, strict=True):
                if c:
                    out[(a.shape, pid)] = c
        return out


def all_vectors(inst: Instance, scale_demand: float = 1.0) -> Vectors:
    """Every vector of instance counts, costed and checked (the enumerator's semantics, module docstring)."""
    modes = {m: inst.serving_modes(m) for m in inst.workloads}
    keys = [(m, r) for m in inst.workloads for r in ("prefill", "decode", "aggregated")
            if ("aggregated" if r == "aggregated" else "disaggregated") in modes[m]]
    table = capacity_table(inst)
    demand = np.array([inst.workloads[m].demand_rps() for m, _ in keys])
    spare = np.array([dict(inst.workloads[m].spare_instances).get(r, 0)
                      * max((s.capacity_rps for s in table.for_role(m, r)), default=0.0) for m, r in keys])
    need = demand * scale_demand + spare
    arcs = arcs_of(inst)
    pids = list(inst.node_pools)
    opts = {pid: pool_options(inst, pid, arcs[pid], keys) for pid in pids}
    types = sorted(inst.gpu_types)
    caps = np.array([inst.gpu_types[g].max_gpus if inst.gpu_types[g].max_gpus is not None else np.inf
                     for g in types])
    budget = inst.limits.budget_usd_per_hour

    def arrays(pid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = opts[pid]
        cost = np.array([x.cost for x in o])
        rented = np.zeros((len(o), len(types)))
        rented[:, types.index(inst.node_pools[pid].gpu_type)] = [x.rented_gpus for x in o]
        supply = np.array([x.supply for x in o]).reshape(len(o), len(keys))
        return cost, rented, supply

    # Combine the pools: every pair of per-pool vectors (one pool: each vector alone).
    cost, rented, supply = arrays(pids[0])
    index = [np.arange(len(cost))]
    if len(pids) == 2:
        c2, r2, s2 = arrays(pids[1])
        n1, n2 = len(cost), len(c2)
        cost = (cost[:, None] + c2[None, :]).ravel()
        rented = (rented[:, None, :] + r2[None, :, :]).reshape(n1 * n2, len(types))
        supply = (supply[:, None, :] + s2[None, :, :]).reshape(n1 * n2, len(keys))
        index = [np.repeat(np.arange(n1), n2), np.tile(np.arange(n2), n1)]
    limits = np.all(rented <= caps[None, :], axis=1)
    if budget is not None:
        limits &= cost <= budget + 1e-9
    served = _served_ratio(keys, supply, spare, demand)  # per vector: the smallest model's served share of demand
    ok = limits & (served >= scale_demand * (1 - 1e-12) - 1e-9)
    return Vectors(keys, arcs, need, pids, opts, index, cost, limits, served, ok)


def enumerate_plans(inst: Instance, scale_demand: float = 1.0) -> Enumeration:
    """The cheapest vector of instance counts satisfying every constraint, by trying them all."""
    v = all_vectors(inst, scale_demand)
    ratio = v.served[v.limits]
    max_scale = float(ratio.max()) if ratio.size and ratio.max() >= -1e-9 else None
    if not v.ok.any():
        return Enumeration(v.keys, v.arcs, v.need, None, None, len(v.cost), max_scale)
    best = int(np.flatnonzero(v.ok)[np.argmin(v.cost[v.ok])])
    return Enumeration(v.keys, v.arcs, v.need, float(v.cost[best]), v.counts(best), len(v.cost), max_scale)


def evaluate(inst: Instance, en: Enumeration, plan: pdopt.Plan) -> tuple[float, list[str]]:
    """Cost of the MILP's placements under the enumerator's rules, and every rule they break."""
    problems: list[str] = []
    total = 0.0
    supply = dict.fromkeys(en.keys, 0.0)
    rented: dict[str, int] = {}
    for pid, arcs in en.arcs.items():
        counts = [0] * len(arcs)
        for p in plan.placements:
            if p.pool != pid:
                continue
            hit = [i for i, a in enumerate(arcs) if (a.model, a.role, a.gpu_type, a.gpus, a.variant)
                   == (p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)]
            if len(hit) != 1:
                problems.append(f"placement {p} matches no single (shape, pool) arc")
                continue
            counts[hit[0]] += p.count
            supply[(p.model, p.role)] += p.capacity_rps * p.count
        use = pool_usage(inst, pid, arcs, tuple(counts))
        if use is None:
            problems.append(f"pool {pid}: {counts} does not pack into its nodes")
            continue
        total += use[2]
        gtype = inst.node_pools[pid].gpu_type
        rented[gtype] = rented.get(gtype, 0) + use[1]
    for (key, have), need in zip(supply.items(), en.need, strict=True):
        if have < need - 1e-9:
            problems.append(f"{key}: capacity {have} below demand + spares {need}")
    for g, n in rented.items():
        cap = inst.gpu_types[g].max_gpus
        if cap is not None and n > cap:
            problems.append(f"GPU type {g}: {n} rented GPUs above the cap {cap}")
    budget = inst.limits.budget_usd_per_hour
    if budget is not None and total > budget + 1e-9:
        problems.append(f"cost {total} above the budget {budget}")
    return total, problems


# ----------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------


def test_min_bins_exact_on_known_packings() -> None:
    assert min_bins(8, (3,), (3,)) == 2  # three TP3 need 2 nodes though 9 GPUs < 16
    assert min_bins(8, (3, 2), (2, 1)) == 1  # 3 + 3 + 2
    assert min_bins(8, (3, 2), (2, 2)) == 2
    assert min_bins(4, (3, 1), (2, 2)) == 2
    assert min_bins(8, (4, 3, 1), (1, 1, 1)) == 1
    assert min_bins(4, (3, 2), (1, 2)) == 2  # 3 alone; 2 + 2
    assert min_bins(8, (3, 2, 1), (2, 0, 3)) == 2


def test_enumerator_counts_whole_nodes() -> None:
    """One 8-GPU node-billed node at 10/h and a 2-GPU shape per role: one node holds both roles."""
    doc = {
        "name": "bf-check",
        "gpu_types": {"ga": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 1.0}},
        "node_pools": {"p0": {"gpu_type": "ga", "gpus_per_node": 8, "node_count": 2,
                              "price_usd_per_node_hour": 10.0, "activation_cost_usd_per_hour": 0.5}},
        "models": {"m0": {"kv_bytes_per_token": 65536.0, "weights_gb": 10.0}},
        "workloads": {"m0": {"demand": {"requests_per_s": 1.0}, "input_tokens_mean": L_IN,
                             "output_tokens_mean": L_OUT, "ttft": {"target_s": TTFT_S},
                             "tpot": {"target_ms": TPOT_MS}}},
        "profiles": [
            {"model": "m0", "role": "prefill", "gpu_type": "ga", "gpus_per_instance": 2,
             "max_throughput_by_input": [{"input_tokens": L_IN, "max_throughput_tok_per_s": 3000.0}]},
            {"model": "m0", "role": "decode", "gpu_type": "ga", "gpus_per_instance": 2,
             "tpot_by_batch": [{"batch": 1, "tpot_ms": 20.0}, {"batch": 16, "tpot_ms": TPOT_MS},
                               {"batch": 24, "tpot_ms": 100.0}]},
        ],
    }
    en = enumerate_plans(instance_from_dict(doc))
    assert en.best_cost == pytest.approx(10.5)
    assert sum(en.best_plan.values()) == 2  # type: ignore[union-attr]


@SETTINGS
@given(doc=tiny_instances())
def test_milp_matches_bruteforce(doc: dict[str, Any]) -> None:
    inst = instance_from_dict(doc)
    table = capacity_table(inst)
    for prof in doc["profiles"]:
        shape = next(s for s in table.shapes if (s.model, s.role, s.gpu_type, s.gpus_per_instance, s.variant)
                     == (prof["model"], prof["role"], prof["gpu_type"], prof["gpus_per_instance"], prof["variant"]))
        assert shape.capacity_rps == designed_capacity(prof)
    en = enumerate_plans(inst)
    plan = pdopt.solve(inst)
    if en.best_cost is None:
        assert plan.status is SolveStatus.INFEASIBLE, (plan.status, plan.to_dict()["placements"])
        assert plan.reason
        return
    assert plan.status is SolveStatus.OPTIMAL, (plan.status, plan.reason, en.best_plan, en.best_cost)
    assert plan.objective_usd_per_hour == pytest.approx(en.best_cost, rel=1e-6), (en.best_plan, en.best_cost)
    cost, problems = evaluate(inst, en, plan)
    assert problems == []
    assert cost == pytest.approx(en.best_cost, rel=1e-6)
    assert verify(inst, plan.to_dict()) == []


@pytest.mark.skipif("highs" not in available_solvers(), reason="highspy not installed")
@SETTINGS
@given(doc=tiny_instances())
def test_cbc_and_highs_agree(doc: dict[str, Any]) -> None:
    inst = instance_from_dict(doc)
    cbc = pdopt.solve(inst)
    highs = pdopt.solve(inst, SolverOptions(name="highs"))
    assert cbc.status is highs.status
    if cbc.has_plan:
        assert cbc.status is SolveStatus.OPTIMAL
        assert highs.objective_usd_per_hour == pytest.approx(cbc.objective_usd_per_hour, rel=1e-6)


def test_spanning_shape_kept_when_smaller_ones_do_not_pack() -> None:
    """A TP16 prefill spanning two 8-GPU nodes (10.0 req/s) against TP3 instances (2.125 req/s): five TP3 serve
    more (10.625) in fewer GPUs (15 <= 16) but need three nodes, not two. With 3 nodes and a TP8 decode (16
    req/s, one node) the only plan for 9.5 req/s is TP16 + TP8 on all 3 nodes, 24 GPUs x 1.00 = 24.00 USD/h;
    five TP3 + TP8 would need 4 nodes. A GPU-total argument that drops TP16 as dominated loses that plan."""
    lengths = {"input_tokens_mean": L_IN, "output_tokens_mean": L_OUT, "ttft": {"target_s": TTFT_S},
               "tpot": {"target_ms": TPOT_MS}}
    doc = {
        "name": "span-vs-tp3",
        "gpu_types": {"g": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 1.0}},
        "node_pools": {"p": {"gpu_type": "g", "gpus_per_node": 8, "node_count": 3}},
        "models": {"m": {"kv_bytes_per_token": 65536.0, "weights_gb": 10.0}},
        "workloads": {"m": {"demand": {"requests_per_s": 9.5}, **lengths}},
        "profiles": [
            {"model": "m", "role": "prefill", "gpu_type": "g", "gpus_per_instance": 16, "spans_nodes": True,
             "max_throughput_by_input": [{"input_tokens": L_IN, "max_throughput_tok_per_s": 11000.0}]},
            {"model": "m", "role": "prefill", "gpu_type": "g", "gpus_per_instance": 3,
             "max_throughput_by_input": [{"input_tokens": L_IN, "max_throughput_tok_per_s": 3125.0}]},
            {"model": "m", "role": "decode", "gpu_type": "g", "gpus_per_instance": 8,
             "tpot_by_batch": [{"batch": 1, "tpot_ms": 20.0}, {"batch": 128, "tpot_ms": TPOT_MS},
                               {"batch": 136, "tpot_ms": 100.0}]},
        ],
    }
    inst = instance_from_dict(doc)
    en = enumerate_plans(inst)
    assert en.best_cost == 24.0
    assert en.best_plan == {("m__prefill__g__g16", "p"): 1, ("m__decode__g__g8", "p"): 1}
    plan = pdopt.solve(inst)
    assert plan.status is SolveStatus.OPTIMAL, plan.reason
    assert plan.objective_usd_per_hour == pytest.approx(24.0, rel=1e-9)


# ----------------------------------------------------------------------------------------------------------
# The bundled tiny instances
# ----------------------------------------------------------------------------------------------------------

TINY = ROOT / "instances" / "tiny"
KNOWN = yaml.safe_load((ROOT / "instances" / "known_answers.yaml").read_text())["instances"]
BUNDLED = sorted(p.name for p in TINY.glob("*.yaml"))


@pytest.mark.parametrize("name", BUNDLED)
def test_enumerator_reproduces_known_answers(name: str) -> None:
    """The enumerator, which shares no code with the MILP, gives each tiny instance's known answer."""
    inst = load_instance(TINY / name)
    entry = next(e for e in KNOWN[f"tiny/{name}"] if e.get("scale_demand", 1.0) == 1.0)
    if "period_usd_per_hour" in entry:  # a horizon: each period's own optimum
        for period, cost in entry["period_usd_per_hour"].items():
            assert enumerate_plans(inst.period_instance(period)).best_cost == pytest.approx(cost, rel=1e-9)
        return
    if "horizon_cost_usd" in entry:  # a horizon whose fleets are not each period's own optimum (spot losses)
        pytest.skip("a horizon bought with purchase options: derived by hand in its description "
                    "(tests/test_purchase.py)")
    en = enumerate_plans(inst)
    if entry["status"] == "infeasible":
        assert en.best_cost is None
    else:
        assert en.best_cost == pytest.approx(entry["objective_usd_per_hour"], rel=1e-9)


def test_whole_node_billing_changes_the_optimum() -> None:
    """whole-node-pricing.yaml: 22.00 with node-hour billing; 20.00 with the same pool billed per GPU at the
    prorated price, where all ten instances move to the cheap pool."""
    doc = yaml.safe_load((TINY / "whole-node-pricing.yaml").read_text())
    node = enumerate_plans(instance_from_dict(doc))
    pool = doc["node_pools"]["cheap_nodes"]
    assert pool["price_usd_per_node_hour"] / pool["gpus_per_node"] == doc["gpu_types"]["cheap"][
        "price_usd_per_gpu_hour"]
    pool["billing"] = "gpu_hour"
    per_gpu_inst = instance_from_dict(doc)
    per_gpu = enumerate_plans(per_gpu_inst)
    assert (node.best_cost, per_gpu.best_cost) == (22.0, 20.0)
    assert node.best_plan is not None and per_gpu.best_plan is not None
    assert sum(c for (_, p), c in node.best_plan.items() if p == "cheap_nodes") == 8
    assert sum(c for (_, p), c in per_gpu.best_plan.items() if p == "cheap_nodes") == 10
    plan = pdopt.solve(per_gpu_inst)
    assert plan.objective_usd_per_hour == pytest.approx(20.0, rel=1e-9)
    assert verify(per_gpu_inst, plan.to_dict()) == []


def test_tp3_packing_needs_patterns() -> None:
    """tp3-packing.yaml: five TP3 instances (15 GPUs) do not fit 2 nodes of 8; the optimum packs 3 + 3 + 2."""
    assert min_bins(8, (3,), (5,)) == 3
    assert min_bins(8, (3, 2), (4, 2)) == 2
    inst = load_instance(TINY / "tp3-packing.yaml")
    plan = pdopt.solve(inst)
    assert plan.objective_usd_per_hour == pytest.approx(48.0, rel=1e-9)
    assert plan.pools["g_nodes"].nodes_used == 2
    by_size: dict[int, int] = {}
    for p in plan.placements:
        by_size[p.gpus_per_instance] = by_size.get(p.gpus_per_instance, 0) + p.count
    assert by_size == {3: 4, 2: 2}

"""Plain sets and parameters for the MILP: no pydantic, no I/O, nothing the solver layer cannot read directly."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pdopt.instance import ROLES, Instance, ServingMode, fits_nodes
from pdopt.optimize import topology
from pdopt.perf.capacity import CapacityTable, ShapeCapacity

Arc = tuple[str, str]
"""(shape id, pool id): where an instance of a shape may be placed."""
K = TypeVar("K")


def is_divisibility_chain(sizes: list[int], node_gpus: int) -> bool:
    """True when every size divides the node size and, sorted, each divides the next.

    Then first-fit decreasing packs any multiset of instances whose GPU total is at most ``nodes x node_gpus``
    into ``nodes`` nodes: a size-s instance always finds a free aligned block, as in a buddy allocator.
    """
    ordered = sorted(set(sizes))
    return all(node_gpus % s == 0 for s in ordered) and all(b % a == 0 for a, b in itertools.pairwise(ordered))


def maximal_patterns(sizes: list[int], node_gpus: int) -> list[tuple[int, ...]]:
    """All maximal ways to fill one node with instances of the given sizes (each <= node size).

    A pattern is a tuple of counts aligned with ``sorted(set(sizes))``; maximal means no further instance of any
    size fits. Non-maximal patterns are dominated (``pattern_cover`` rows are inequalities).
    """
    ordered = sorted(set(sizes))
    out: list[tuple[int, ...]] = []

    def rec(i: int, left: int, counts: list[int]) -> None:
        if i == len(ordered):
            if all(s > left for s in ordered):
                out.append(tuple(counts))
            return
        for c in range(left // ordered[i], -1, -1):
            counts.append(c)
            rec(i + 1, left - c * ordered[i], counts)
            counts.pop()

    rec(0, node_gpus, [])
    return out


@dataclass(frozen=True)
class PoolData:
    """A node pool reduced to what the MILP needs."""

    gpu_type: str
    gpus_per_node: int
    node_count: int
    domain: str
    billed_per_node: bool
    price_usd_per_node_hour: float
    """Node-hour price (node-billed pools)."""
    price_usd_per_gpu_hour: float
    """GPU-hour price (GPU-billed pools); for node-billed pools the node price over its GPUs, for reports."""
    activation_usd_per_node_hour: float
    packing: str
    """``aggregate`` (GPU totals suffice: sizes form a divisibility chain) or ``patterns`` (per-node patterns)."""
    sizes: tuple[int, ...]
    """Instance sizes (GPUs) within one node admitted to the pool, ascending."""
    patterns: tuple[tuple[int, ...], ...]
    """Maximal node patterns over ``sizes`` (``patterns`` packing only)."""

    @property
    def gpus(self) -> int:
        """GPUs in the pool."""
        return self.gpus_per_node * self.node_count


@dataclass(frozen=True)
class ModelData:
    """Index sets and parameters of the formulation (formulations/f1.yaml)."""

    demand_rps: dict[tuple[str, str], float]
    """(model, role) -> requests per second to serve (after ``scale_demand``)."""
    shapes: dict[str, ShapeCapacity]
    """shape id -> capacity of one instance."""
    pools: dict[str, PoolData]
    arcs: tuple[Arc, ...]
    """(shape id, pool id) pairs where an instance of the shape may be placed."""
    gpu_caps: dict[str, int]
    """GPU type -> availability cap, only for capped types."""
    spare_rps: dict[tuple[str, str], float]
    """(model, role) -> capacity to hold in reserve: k spares x the largest per-instance capacity of the role."""
    spares: dict[tuple[str, str], int]
    budget_usd_per_hour: float | None
    links: dict[tuple[str, str], float] = field(default_factory=dict)
    """Network links (a, b) -> bandwidth, Gbit/s (empty without a network)."""
    routes: dict[tuple[str, str], dict[tuple[str, str], float]] = field(default_factory=dict)
    """(prefill domain, decode domain) -> link -> share of the flow on it."""
    kv_gbit_per_request: dict[str, float] = field(default_factory=dict)
    """Model -> KV cache of one request's prompt, Gbit."""
    domain_loss_fraction: float | None = None
    modes: dict[str, tuple[ServingMode, ...]] = field(default_factory=dict)
    """Model -> the serving modes the plan may use (absent: disaggregated only). A model with both is *mixed*:
    its demand is split between aggregated and disaggregated instances by a ``mode_share`` variable."""

    # -- serving modes ---------------------------------------------------------------------------------------

    def modes_of(self, model: str) -> tuple[ServingMode, ...]:
        """The serving modes of a model (disaggregated when unstated)."""
        return self.modes.get(model, ("disaggregated",))

    def is_mixed(self, model: str) -> bool:
        """True when the plan chooses how to split the model's demand between both modes."""
        return len(self.modes_of(model)) == 2

    @functools.cached_property
    def mixed_models(self) -> tuple[str, ...]:
        """Models whose demand the plan splits between the modes, sorted."""
        return tuple(m for m in self.models if self.is_mixed(m))

    @functools.cached_property
    def disaggregated_models(self) -> tuple[str, ...]:
        """Models that may be served by P/D pairs (the ones whose KV cache may cross the network), sorted."""
        return tuple(m for m in self.models if "disaggregated" in self.modes_of(m))

    def model_demand_rps(self, model: str) -> float:
        """The model's demand, req/s (every role of the model has this demand in :attr:`demand_rps`)."""
        return next(d for (m, _), d in self.demand_rps.items() if m == model)

    # -- the index: arcs grouped once, so that every family builds its rows in time linear in the arcs --------

    @functools.cached_property
    def arcs_by_role(self) -> Mapping[tuple[str, str], tuple[Arc, ...]]:
        """(model, role) -> its arcs, in arc order."""
        return _group(self.arcs, lambda a: (self.shapes[a[0]].model, self.shapes[a[0]].role))

    @functools.cached_property
    def arcs_by_pool(self) -> Mapping[str, tuple[Arc, ...]]:
        """pool id -> the arcs placed in it."""
        return _group(self.arcs, lambda a: a[1])

    @functools.cached_property
    def arcs_by_shape(self) -> Mapping[str, tuple[Arc, ...]]:
        """shape id -> the arcs of that shape (one per pool it fits)."""
        return _group(self.arcs, lambda a: a[0])

    @functools.cached_property
    def pools_in_use(self) -> tuple[str, ...]:
        """Pools some arc can use, sorted (the pools that get a node-count variable)."""
        return tuple(sorted(self.arcs_by_pool))

    @functools.cached_property
    def domains(self) -> tuple[str, ...]:
        """Domains that hold at least one pool, sorted."""
        return tuple(sorted({p.domain for p in self.pools.values()}))

    @functools.cached_property
    def models(self) -> tuple[str, ...]:
        """Models with a demand, sorted."""
        return tuple(sorted({m for m, _ in self.demand_rps}))

    # -- the price book: one rule for the objective, extraction, the greedy start and the baselines -----------

    def node_cost_usd_per_hour(self, pool_id: str) -> float:
        """Hourly cost of one node in use: its activation cost, plus its price when the pool bills whole nodes."""
        pool = self.pools[pool_id]
        return pool.activation_usd_per_node_hour + (pool.price_usd_per_node_hour if pool.billed_per_node else 0.0)

    def arc_cost_usd_per_hour(self, shape_id: str, pool_id: str) -> float:
        """Hourly cost of one instance beyond its nodes' cost: its GPUs x the GPU price in a GPU-billed pool, 0 in
        a node-billed one (the node price pays for it)."""
        if self.pools[pool_id].billed_per_node:
            return 0.0
        return self.shapes[shape_id].gpus_per_instance * self.pools[pool_id].price_usd_per_gpu_hour

    def pool_cost_usd_per_hour(self, pool_id: str, counts: Mapping[Arc, int], nodes: int) -> float:
        """A pool's hourly cost: node cost x nodes in use + the arc cost of each of its instances.

        The objective is this sum over pools with the same coefficients (:func:`pdopt.optimize.build`), so a
        plan's reported cost and the solver's objective (less its tie-break terms) are one rule.
        """
        return nodes * self.node_cost_usd_per_hour(pool_id) + sum(
            counts.get(a, 0) * self.arc_cost_usd_per_hour(*a) for a in self.arcs_by_pool.get(pool_id, ()))

    def cost_usd_per_hour(self, shape_id: str, pool_id: str) -> float:
        """Hourly cost of one instance at the pool's per-GPU price (exact for GPU billing, prorated by GPUs for node
        billing): the price a heuristic ranks shapes by, before it knows how nodes fill."""
        return self.shapes[shape_id].gpus_per_instance * self.pools[pool_id].price_usd_per_gpu_hour

    def nodes_spanned(self, shape_id: str, pool_id: str) -> int:
        """Whole nodes one instance occupies when it spans nodes, else 0."""
        g, k = self.shapes[shape_id].gpus_per_instance, self.pools[pool_id].gpus_per_node
        return g // k if g > k else 0


def _group(arcs: tuple[Arc, ...], key: Callable[[Arc], K]) -> dict[K, tuple[Arc, ...]]:
    """Arcs grouped by ``key``, each group in arc order."""
    out: dict[K, list[Arc]] = {}
    for a in arcs:
        out.setdefault(key(a), []).append(a)
    return {k: tuple(v) for k, v in out.items()}


def pool_price_per_gpu_hour(instance: Instance, pool_id: str) -> float:
    """Per-GPU price of a pool: node-hour price over the node's GPUs when billed per node, else the type's price."""
    pool = instance.node_pools[pool_id]
    if pool.billed_per_node and pool.price_usd_per_node_hour is not None:
        return pool.price_usd_per_node_hour / pool.gpus_per_node
    return instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour


def _pool_data(instance: Instance, pid: str, shapes: list[ShapeCapacity]) -> PoolData:
    p = instance.node_pools[pid]
    sizes = sorted({s.gpus_per_instance for s in shapes if s.gpu_type == p.gpu_type
                    and s.gpus_per_instance <= p.gpus_per_node})
    chain = is_divisibility_chain(sizes, p.gpus_per_node)
    return PoolData(
        gpu_type=p.gpu_type, gpus_per_node=p.gpus_per_node, node_count=p.node_count, domain=p.domain,
        billed_per_node=p.billed_per_node,
        price_usd_per_node_hour=(p.price_usd_per_node_hour or 0.0) if p.billed_per_node else 0.0,
        price_usd_per_gpu_hour=pool_price_per_gpu_hour(instance, pid),
        activation_usd_per_node_hour=p.activation_cost_usd_per_hour,
        packing="aggregate" if chain else "patterns",
        sizes=tuple(sizes),
        patterns=() if chain else tuple(maximal_patterns(sizes, p.gpus_per_node)),
    )


def _fits(shape: ShapeCapacity, pool: PoolData) -> bool:
    return shape.gpu_type == pool.gpu_type and fits_nodes(shape.gpus_per_instance, pool.gpus_per_node,
                                                          shape.spans_nodes)


def dominated_shapes(shapes: dict[str, ShapeCapacity], pools: dict[str, PoolData]) -> set[str]:
    """Shapes that some combination of other shapes of the same model, role and GPU type beats outright.

    Shape s (g GPUs, capacity c) is dominated when instances of other shapes that fit every pool s fits, packed
    into the GPUs s occupies, serve strictly more than c (unbounded knapsack over GPUs): within one node, at most
    g GPUs; for an instance spanning g/k whole k-GPU nodes, g/k times the best packing of one node (with the
    smallest k among its pools). Swapping one s for that combination keeps every constraint (it packs into the
    GPUs s frees, costs no more, since a pool's price is per GPU or per node, and rents no more GPUs) and raises
    capacity, so removing s loses no optimum.
    """
    fits = {sid: frozenset(p for p, pool in pools.items() if _fits(s, pool)) for sid, s in shapes.items()}
    groups: dict[tuple[str, str, str], list[str]] = {}
    for sid, s in shapes.items():
        groups.setdefault((s.model, s.role, s.gpu_type), []).append(sid)
    out: set[str] = set()
    for members in groups.values():
        for sid in members:
            g = shapes[sid].gpus_per_instance
            if not fits[sid] or shapes[sid].pooled_gains:
                continue  # a pooled shape's capacity is not linear in its count: never pruned
            # the replacement must fit where s sits: inside s's GPUs of one node, or, for an instance spanning
            # whole nodes, node by node (g/k copies of the best packing of one k-GPU node)
            worst = min(pools[p].gpus_per_node for p in fits[sid])
            per_node = min(g, worst)
            items = [(shapes[o].gpus_per_instance, shapes[o].capacity_rps) for o in members
                     if o != sid and fits[o] >= fits[sid] and shapes[o].gpus_per_instance <= per_node]
            best = [0.0] * (per_node + 1)
            for budget in range(1, per_node + 1):
                best[budget] = max([best[budget - 1]] + [best[budget - n] + c for n, c in items if n <= budget])
            copies = 1 if g <= per_node else min(g // pools[p].gpus_per_node for p in fits[sid])
            if copies * best[per_node] > shapes[sid].capacity_rps * (1 + 1e-9):
                out.add(sid)
    return out


def build_model_data(instance: Instance, table: CapacityTable, scale_demand: float = 1.0,
                     prune: bool = True) -> ModelData:
    """Reduce an instance and its capacity table to the formulation's sets and parameters.

    With ``prune``, shapes dominated by combinations of others (:func:`dominated_shapes`) get no arcs.
    """
    shapes = {s.shape_id: s for s in table.shapes}
    pools = {pid: _pool_data(instance, pid, list(table.shapes)) for pid in instance.node_pools}
    drop = dominated_shapes(shapes, pools) if prune else set()
    arcs = tuple((sid, pid) for sid, s in shapes.items() if sid not in drop
                 for pid, p in pools.items() if _fits(s, p))
    served: set[tuple[str, str]] = {(shapes[sid].model, str(shapes[sid].role)) for sid, _ in arcs}
    modes = {m: usable_modes(instance, served, m) for m in instance.workloads}
    roles = {m: _mode_roles(modes[m]) for m in instance.workloads}
    demand: dict[tuple[str, str], float] = {
        (m, r): w.demand_rps() * scale_demand for m, w in instance.workloads.items() for r in roles[m]
    }
    spares: dict[tuple[str, str], int] = {}
    for m, w in instance.workloads.items():
        stated = {str(r): k for r, k in w.spare_instances.items()}
        spares.update({(m, r): stated.get(r, 0) for r in roles[m]})
    spare_rps: dict[tuple[str, str], float] = {}
    for (m, r), k in spares.items():
        role_caps = [s.capacity_rps for s in table.shapes if s.model == m and s.role == r]
        spare_rps[(m, r)] = k * max(role_caps, default=0.0)
    caps = {g: t.max_gpus for g, t in instance.gpu_types.items() if t.max_gpus is not None}
    links: dict[tuple[str, str], float] = {}
    routes: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
    kv: dict[str, float] = {}
    if instance.network is not None:
        g = topology.graph(instance.network)
        links = {(a, b): float(d["bandwidth_gbps"]) for a, b, d in g.edges(data=True)}
        links = {topology.link_key(a, b): bw for (a, b), bw in links.items()}
        doms = topology.domains(instance)
        routes = {(d, e): topology.route_shares(instance.network, d, e) for d in doms for e in doms if d != e}
        kv = {m: instance.models[m].kv_bytes_per_token_value * w.input_tokens_mean * 8.0 / 1e9
              for m, w in instance.workloads.items()}
    fraction = instance.resilience.domain_loss_fraction if instance.resilience is not None else None
    return ModelData(demand, shapes, pools, arcs, caps, spare_rps, spares, instance.limits.budget_usd_per_hour,
                     links, routes, kv, fraction, modes)


def _mode_roles(modes: tuple[ServingMode, ...]) -> tuple[str, ...]:
    """The roles that serve the given modes, in the order prefill, decode, aggregated."""
    return (*(ROLES if "disaggregated" in modes else ()), *(("aggregated",) if "aggregated" in modes else ()))


def usable_modes(instance: Instance, served: set[tuple[str, str]], model: str) -> tuple[ServingMode, ...]:
    """The serving modes the plan may use for a model: those the workload allows and has profiles for
    (:meth:`Instance.serving_modes`) whose every role has a usable shape some pool hosts (``served``: the
    (model, role) pairs with an arc). When none has, all the allowed modes are kept, so that the plan reports
    each role without a usable shape."""
    allowed = instance.serving_modes(model)
    usable = tuple(mode for mode in allowed if all((model, r) in served for r in _mode_roles((mode,))))
    return usable or allowed


def unservable_roles(data: ModelData) -> list[tuple[str, str]]:
    """(model, role) pairs with positive demand and no (shape, pool) arc at all."""
    served = {(data.shapes[s].model, data.shapes[s].role) for s, _ in data.arcs}
    return [key for key, d in data.demand_rps.items() if d > 0 and key not in served]

"""Pool classes: node pools identical in everything the formulation sees are solved as one pool, and the plan is
split back into the pools deterministically.

Two pools are identical when they agree on GPU type, GPUs per node, domain, billing (node-hour price or GPU-hour),
activation cost: every row and the objective then treat their nodes alike, and only the node counts differ. A
class of such pools with N = sum N_p nodes replaces them, which removes the symmetry between copies (a solver
otherwise explores every way of spreading the same fleet over them) and shrinks the problem.

Exact where packing is by GPU totals and nothing spans nodes: the instance sizes the pools admit form a divisibility
chain of the node size k (``aggregate`` packing, :mod:`pdopt.optimize.model_data`) and no usable shape of the GPU
type spans nodes. Then any plan of the class splits into the pools at the same cost: sort the class's instances by
size, largest first, and fill the member pools in order of their ids, each to its N_p k GPUs; every size divides
every larger one and k, so each pool's free room is a multiple of the next size and the pools fill without a gap,
all but the last completely, so that the nodes used add up to ceil(G / k), what the class needs. Where that does not
hold (``patterns`` packing, spanning shapes) the pools stay apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pdopt.instance import Instance
from pdopt.optimize.model_data import Arc, ModelData, is_divisibility_chain
from pdopt.perf.capacity import CapacityTable


@dataclass(frozen=True)
class PoolClasses:
    """Class id (its first member pool's id) -> the member pools, sorted; only classes of two or more."""

    members: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.members)


def pool_classes(instance: Instance, table: CapacityTable) -> PoolClasses:
    """The classes of identical pools where merging is exact (module docstring)."""
    groups: dict[tuple[object, ...], list[str]] = {}
    for pid, p in sorted(instance.node_pools.items()):
        shapes = [s for s in table.shapes if s.gpu_type == p.gpu_type]
        if any(s.gpus_per_instance > p.gpus_per_node for s in shapes):
            continue  # a spanning shape (or one too large for the node): keep the pool apart
        if not is_divisibility_chain([s.gpus_per_instance for s in shapes], p.gpus_per_node):
            continue
        key = (p.gpu_type, p.gpus_per_node, p.domain, p.billed_per_node,
               p.price_usd_per_node_hour if p.billed_per_node else None, p.activation_cost_usd_per_hour)
        groups.setdefault(key, []).append(pid)
    return PoolClasses({ids[0]: tuple(ids) for ids in groups.values() if len(ids) > 1})


def merged_instance(instance: Instance, classes: PoolClasses) -> Instance:
    """The instance with each class as one pool (the first member's id and fields, the members' node count)."""
    if not classes:
        return instance
    pools = {}
    gone = {m for ids in classes.members.values() for m in ids[1:]}
    for pid, p in instance.node_pools.items():
        if pid in gone:
            continue
        if pid in classes.members:
            total = sum(instance.node_pools[m].node_count for m in classes.members[pid])
            p = p.model_copy(update={"node_count": total})
        pools[pid] = p
    return instance.model_copy(update={"node_pools": pools})


def split_counts(data: ModelData, classes: PoolClasses, counts: Mapping[Arc, int],
                 nodes: Mapping[str, int]) -> tuple[dict[Arc, int], dict[str, int]]:
    """A merged plan's counts and nodes, split into the member pools (module docstring); ``data`` is the
    unmerged model data. Pools outside any class keep theirs."""
    out = {arc: n for arc, n in counts.items() if arc[1] not in classes.members}
    out_nodes = {p: n for p, n in nodes.items() if p not in classes.members}
    for cid, ids in classes.members.items():
        k = data.pools[cid].gpus_per_node
        items = sorted(((data.shapes[s].gpus_per_instance, s) for (s, p), n in counts.items() if p == cid
                        for _ in range(n)), key=lambda t: (-t[0], t[1]))
        room = {m: data.pools[m].node_count * k for m in ids}
        used = dict.fromkeys(ids, 0)
        i = 0
        for g, s in items:
            while i < len(ids) and room[ids[i]] - used[ids[i]] < g:
                i += 1
            if i == len(ids):
                raise ValueError(f"pool class {cid}: the plan's instances do not fit its pools")
            used[ids[i]] += g
            out[(s, ids[i])] = out.get((s, ids[i]), 0) + 1
        for m in ids:
            out_nodes[m] = -(-used[m] // k)
    return out, out_nodes

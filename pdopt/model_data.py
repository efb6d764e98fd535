"""Plain sets and parameters for the MILP: no pydantic, no I/O, nothing the solver layer cannot read directly."""

from __future__ import annotations

from dataclasses import dataclass

from pdopt.capacity import CapacityTable, ShapeCapacity
from pdopt.instance import ROLES, Instance


@dataclass(frozen=True)
class PoolData:
    """A node pool reduced to what F1 needs."""

    gpu_type: str
    gpus_per_node: int
    node_count: int
    price_usd_per_gpu_hour: float
    """The pool's node-hour price over its GPUs per node when given, else the GPU type's price."""

    @property
    def gpus(self) -> int:
        """GPUs in the pool."""
        return self.gpus_per_node * self.node_count


@dataclass(frozen=True)
class ModelData:
    """Index sets and parameters of formulation F1."""

    demand_rps: dict[tuple[str, str], float]
    """(model, role) -> requests per second to serve (after ``scale_demand``)."""
    shapes: dict[str, ShapeCapacity]
    """shape id -> capacity of one instance."""
    pools: dict[str, PoolData]
    arcs: tuple[tuple[str, str], ...]
    """(shape id, pool id) pairs where an instance of the shape may be placed."""
    gpu_caps: dict[str, int]
    """GPU type -> availability cap, only for capped types."""

    def cost_usd_per_hour(self, shape_id: str, pool_id: str) -> float:
        """Hourly cost of one instance of ``shape_id`` placed in ``pool_id``."""
        return self.shapes[shape_id].gpus_per_instance * self.pools[pool_id].price_usd_per_gpu_hour


def pool_price_per_gpu_hour(instance: Instance, pool_id: str) -> float:
    """Per-GPU price of a pool: node-hour price prorated over the node's GPUs, else the GPU type's price."""
    pool = instance.node_pools[pool_id]
    if pool.price_usd_per_node_hour is not None:
        return pool.price_usd_per_node_hour / pool.gpus_per_node
    return instance.gpu_types[pool.gpu_type].price_usd_per_gpu_hour


def build_model_data(instance: Instance, table: CapacityTable, scale_demand: float = 1.0) -> ModelData:
    """Reduce an instance and its capacity table to F1's sets and parameters."""
    pools = {
        pid: PoolData(p.gpu_type, p.gpus_per_node, p.node_count, pool_price_per_gpu_hour(instance, pid))
        for pid, p in instance.node_pools.items()
    }
    shapes = {s.shape_id: s for s in table.shapes}
    arcs = tuple(
        (sid, pid)
        for sid, s in shapes.items()
        for pid, p in pools.items()
        if p.gpu_type == s.gpu_type and p.gpus_per_node % s.gpus_per_instance == 0 and p.node_count > 0
    )
    demand: dict[tuple[str, str], float] = {
        (m, r): w.demand_rps() * scale_demand for m, w in instance.workloads.items() for r in ROLES
    }
    caps = {g: t.max_gpus for g, t in instance.gpu_types.items() if t.max_gpus is not None}
    return ModelData(demand, shapes, pools, arcs, caps)


def unservable_roles(data: ModelData) -> list[tuple[str, str]]:
    """(model, role) pairs with positive demand and no (shape, pool) arc at all."""
    served = {(data.shapes[s].model, data.shapes[s].role) for s, _ in data.arcs}
    return [key for key, d in data.demand_rps.items() if d > 0 and key not in served]

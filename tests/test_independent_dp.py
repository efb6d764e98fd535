"""Known optima recomputed by an exact dynamic program, independent of the MILP and of ``pdopt.capacity``.

Capacities come from the verifier's own recomputation (``pdopt.verify.recompute_shape``). For each model and
role an unbounded knapsack over the lattice of GPUs used per pool gives the largest capacity that usage can
buy; the usage vectors that cover the demand, minimal in every pool, form the role's frontier. In F1 the cost
of a role depends only on its GPUs per pool (each pool has one price per GPU), so the optimum is the cheapest
combination of one frontier vector per role whose sum fits every pool and every GPU-type cap. This is exact,
and shares no code with the MILP path.
"""

import itertools
from pathlib import Path

import pytest
import yaml

from pdopt.instance import Instance
from pdopt.io import load_instance
from pdopt.verify import demand_rps, pool_price_per_gpu_hour, recompute_shape
from tests.conftest import INSTANCES

Usage = tuple[int, ...]


def _role_frontier(inst: Instance, pools: list[str], model: str, role: str, demand: float) -> list[Usage]:
    """Minimal per-pool GPU usage vectors whose best capacity covers ``demand``.

    best[u] = max(best[u - e_a] for each pool a (an idle GPU), best[u - n e_a] + cap for each item of size n in
    pool a), filled in lexicographic order so that every predecessor is final: an unbounded knapsack.
    """
    dims = [inst.node_pools[p].gpus_per_node * inst.node_pools[p].node_count for p in pools]
    items = []
    for prof in inst.profiles:
        if (prof.model, prof.role) != (model, role):
            continue
        shape = recompute_shape(inst, model, role, prof.gpu_type, prof.gpus_per_instance)
        if shape is None or shape.capacity_rps <= 0:
            continue
        for axis, pid in enumerate(pools):
            pool = inst.node_pools[pid]
            if pool.gpu_type == prof.gpu_type and pool.gpus_per_node % prof.gpus_per_instance == 0:
                items.append((axis, prof.gpus_per_instance, shape.capacity_rps))
    best: dict[Usage, float] = {}
    lattice = list(itertools.product(*[range(d + 1) for d in dims]))
    for u in lattice:
        val = 0.0
        for a in range(len(dims)):
            if u[a] > 0:
                val = max(val, best[tuple(v - (i == a) for i, v in enumerate(u))])
        for a, n, cap in items:
            if u[a] >= n:
                val = max(val, best[tuple(v - n * (i == a) for i, v in enumerate(u))] + cap)
        best[u] = val
    ok = {u for u in lattice if best[u] >= demand * (1 - 1e-9)}
    return [u for u in ok if all(u[a] == 0 or tuple(v - (i == a) for i, v in enumerate(u)) not in ok
                                 for a in range(len(dims)))]


def dp_optimum(inst: Instance, scale: float) -> float | None:
    """Cheapest cost over all roles, or None when no combination fits the inventory."""
    pools = sorted(inst.node_pools)
    price = [pool_price_per_gpu_hour(inst, p) for p in pools]
    size = [inst.node_pools[p].gpus_per_node * inst.node_pools[p].node_count for p in pools]
    states: dict[Usage, float] = {tuple(0 for _ in pools): 0.0}
    for model in inst.workloads:
        for role in ("prefill", "decode"):
            frontier = _role_frontier(inst, pools, model, role, demand_rps(inst, model, scale))
            new: dict[Usage, float] = {}
            for used, cost in states.items():
                for u in frontier:
                    tot = tuple(a + b for a, b in zip(used, u, strict=True))
                    if any(t > s for t, s in zip(tot, size, strict=True)):
                        continue
                    c = cost + sum(x * p for x, p in zip(u, price, strict=True))
                    if c < new.get(tot, float("inf")):
                        new[tot] = c
            states = new
    for g, t in inst.gpu_types.items():
        if t.max_gpus is not None:
            idx = [i for i, p in enumerate(pools) if inst.node_pools[p].gpu_type == g]
            states = {u: c for u, c in states.items() if sum(u[i] for i in idx) <= t.max_gpus}
    return min(states.values()) if states else None


KNOWN = yaml.safe_load((INSTANCES / "known_answers.yaml").read_text())["instances"]
CASES = [(p, e) for p, entries in KNOWN.items() for e in entries]


@pytest.mark.parametrize(("path", "entry"), CASES, ids=[f"{p}@{e.get('scale_demand', 1.0)}" for p, e in CASES])
def test_dp_agrees_with_known_answer(path: str, entry: dict[str, object]) -> None:
    inst = load_instance(Path(INSTANCES) / path)
    opt = dp_optimum(inst, float(entry.get("scale_demand", 1.0)))  # type: ignore[arg-type]
    if entry["status"] == "infeasible":
        assert opt is None
    else:
        assert opt == pytest.approx(entry["objective_usd_per_hour"], rel=1e-6)

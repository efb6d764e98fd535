"""Known optima recomputed by an exact dynamic program, independent of the MILP and of ``pdopt.perf.capacity``.

Capacities come from the verifier's own recomputation (``pdopt.verifier.recompute_shape``). For each model and
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
from pdopt.verifier import demand_rps, recompute_shape
from tests.conftest import INSTANCES

Usage = tuple[int, ...]


def _role_best(inst: Instance, pools: list[str], model: str, role: str) -> dict[Usage, float]:
    """best[u]: the largest capacity of a role that per-pool GPU usage u buys.

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
    return best


def _minimal(ok: set[Usage]) -> list[Usage]:
    """The usage vectors of ``ok`` from which no single GPU can be removed while staying in ``ok``."""
    return [u for u in ok if all(u[a] == 0 or tuple(v - (i == a) for i, v in enumerate(u)) not in ok
                                 for a in range(len(u)))]


def _role_frontier(inst: Instance, pools: list[str], model: str, role: str, demand: float) -> list[Usage]:
    """Minimal per-pool GPU usage vectors whose best capacity covers ``demand``."""
    best = _role_best(inst, pools, model, role)
    return _minimal({u for u, v in best.items() if v >= demand * (1 - 1e-9)})


def _add(a: Usage, b: Usage) -> Usage:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _mixed_usages(inst: Instance, pools: list[str], model: str, demand: float,
                  spares: dict[str, float]) -> set[Usage]:
    """Usage vectors of a model served both ways, the router splitting its demand: aggregated usage u_a (its
    capacity, less its spares when used, takes a share) plus a P/D pair of usages covering the rest (each less
    its spares when used). Every minimal u_a level is tried against the P and D frontiers for what is left."""
    best_a = _role_best(inst, pools, model, "aggregated")
    zero = tuple(0 for _ in pools)
    out: set[Usage] = set()
    levels: dict[float, set[Usage]] = {}
    for u, v in best_a.items():
        levels.setdefault(v, set()).add(u)
    for v, us in levels.items():
        share = max(0.0, v - spares["aggregated"]) if v > 0 else 0.0
        rest = demand - share
        for u_a in _minimal(us) if v > 0 else [zero]:
            if rest <= 1e-9 * demand:
                out.add(u_a)
                continue
            fp = _role_frontier(inst, pools, model, "prefill", rest + spares["prefill"])
            fd = _role_frontier(inst, pools, model, "decode", rest + spares["decode"])
            out |= {_add(_add(u_a, a), b) for a in fp for b in fd}
    return out


def _chain_pools(inst: Instance) -> bool:
    """The DP counts GPUs per pool, exact only when every pool packs by GPU totals (a divisibility chain)."""
    for pool in inst.node_pools.values():
        sizes = sorted({p.gpus_per_instance for p in inst.profiles
                        if p.gpu_type == pool.gpu_type and p.gpus_per_instance <= pool.gpus_per_node})
        if any(pool.gpus_per_node % a or b % a for a, b in itertools.pairwise(sizes)) or \
                any(pool.gpus_per_node % a for a in sizes):
            return False
    return True


def _pool_cost(inst: Instance, pid: str, gpus: int) -> float:
    """Whole nodes for node-billed pools (ceil(gpus / k) nodes), GPUs otherwise, plus activation per node."""
    pool = inst.node_pools[pid]
    nodes = -(-gpus // pool.gpus_per_node)
    cost = nodes * pool.activation_cost_usd_per_hour
    if pool.billed_per_node:
        return cost + nodes * (pool.price_usd_per_node_hour or 0.0)
    return cost + gpus * inst.gpu_types[pool.gpu_type].price_usd_per_gpu_hour


def _rented(inst: Instance, pid: str, gpus: int) -> int:
    """GPUs rented: whole nodes for node-billed pools."""
    pool = inst.node_pools[pid]
    return -(-gpus // pool.gpus_per_node) * pool.gpus_per_node if pool.billed_per_node else gpus


def dp_optimum(inst: Instance, scale: float) -> float | None:
    """Cheapest cost over all roles, or None when no combination fits the inventory."""
    pools = sorted(inst.node_pools)
    size = [inst.node_pools[p].gpus_per_node * inst.node_pools[p].node_count for p in pools]
    states: set[Usage] = {tuple(0 for _ in pools)}
    for model, w in inst.workloads.items():
        modes = inst.serving_modes(model)
        if "aggregated" in modes:
            spares = {}
            for role in ("prefill", "decode", "aggregated"):
                caps = [c.capacity_rps for prof in inst.profiles if (prof.model, prof.role) == (model, role)
                        and (c := recompute_shape(inst, model, role, prof.gpu_type, prof.gpus_per_instance))
                        is not None]
                spares[role] = dict(w.spare_instances).get(role, 0) * max(caps, default=0.0)
            demand = demand_rps(inst, model, scale)
            if "disaggregated" in modes:
                usages = _mixed_usages(inst, pools, model, demand, spares)
            else:
                usages = set(_role_frontier(inst, pools, model, "aggregated", demand + spares["aggregated"]))
            sums = (_add(used, u) for used in states for u in usages)
            states = {tot for tot in sums if all(t <= s for t, s in zip(tot, size, strict=True))}
            continue
        for role in ("prefill", "decode"):
            caps = [c.capacity_rps for prof in inst.profiles if (prof.model, prof.role) == (model, role)
                    and (c := recompute_shape(inst, model, role, prof.gpu_type, prof.gpus_per_instance)) is not None]
            need = demand_rps(inst, model, scale) + w.spare_instances.get(role, 0) * max(caps, default=0.0)
            frontier = _role_frontier(inst, pools, model, role, need)
            sums = (tuple(a + b for a, b in zip(used, u, strict=True)) for used in states for u in frontier)
            states = {tot for tot in sums if all(t <= s for t, s in zip(tot, size, strict=True))}
    for g, t in inst.gpu_types.items():
        if t.max_gpus is not None:
            idx = [i for i, p in enumerate(pools) if inst.node_pools[p].gpu_type == g]
            states = {u for u in states if sum(_rented(inst, pools[i], u[i]) for i in idx) <= t.max_gpus}
    costs = [sum(_pool_cost(inst, p, u[i]) for i, p in enumerate(pools)) for u in states]
    budget = inst.limits.budget_usd_per_hour
    costs = [c for c in costs if budget is None or c <= budget + 1e-9]
    return min(costs) if costs else None


KNOWN = yaml.safe_load((INSTANCES / "known_answers.yaml").read_text())["instances"]
CASES = [(p, e) for p, entries in KNOWN.items() for e in entries if e["status"] != "best_known"]


@pytest.mark.parametrize(("path", "entry"), CASES, ids=[f"{p}@{e.get('scale_demand', 1.0)}" for p, e in CASES])
def test_dp_agrees_with_known_answer(path: str, entry: dict[str, object]) -> None:
    if path.startswith("generated/"):
        pytest.skip("generated fleets are beyond the exhaustive DP (their answers are solver proofs, checked twice)")
    inst = load_instance(Path(INSTANCES) / path)
    if not _chain_pools(inst):
        pytest.skip("pattern-packed pools: the GPU-count DP does not apply (tests/test_bruteforce.py covers them)")
    if inst.network is not None or inst.resilience is not None or any(
            w.queue_model == "ggc" for w in inst.workloads.values()):
        pytest.skip("networks, domain losses and pooled queues are outside the DP (their tests derive by hand)")
    if "period_usd_per_hour" in entry:  # a horizon: each period's own optimum, hour by hour
        hourly = entry["period_usd_per_hour"]
        assert isinstance(hourly, dict)
        for period, cost in hourly.items():
            assert dp_optimum(inst.period_instance(period), 1.0) == pytest.approx(cost, rel=1e-6), period
        return
    if "sum_of_period_optima_usd" in entry:  # a horizon: the periods alone, a lower bound on the horizon's cost
        assert inst.horizon is not None
        alone = 0.0
        for p in inst.horizon.periods:
            opt = dp_optimum(inst.period_instance(p.name), 1.0)
            assert opt is not None, p.name
            alone += p.hours * opt
        assert alone == pytest.approx(entry["sum_of_period_optima_usd"], rel=1e-6)
        assert alone <= float(entry["horizon_cost_usd"]) * (1 + 1e-9)  # type: ignore[arg-type]
        return
    if "horizon_cost_usd" in entry:  # a horizon whose fleets are not each period's own optimum (spot losses)
        pytest.skip("a horizon bought with purchase options: its fleets answer the buying, not each period alone; "
                    "its known answer is derived by hand in its description (tests/test_purchase.py)")
    opt = dp_optimum(inst, float(entry.get("scale_demand", 1.0)))  # type: ignore[arg-type]
    if entry["status"] == "infeasible":
        assert opt is None
    else:
        assert opt == pytest.approx(entry["objective_usd_per_hour"], rel=1e-6)

"""Pool classes (pdopt/optimize/pool_classes.py): identical pools solved as one and split back, exactly.

Checks: the classes found on generated fleets (identical GPU type, node size, domain, billing); the same optimum
with classes and without, and the plan verifies; the split fills the member pools in id order without a gap (a
hand case and random cases); pools that differ in any field the model sees, or whose shapes span nodes, stay apart;
and the solver options' deadline.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pdopt
from pdopt.comparison.generate import FAMILIES, generate
from pdopt.optimize.model_data import build_model_data
from pdopt.optimize.options import MIN_SOLVE_S, SolverOptions, with_deadline
from pdopt.optimize.pool_classes import PoolClasses, pool_classes, split_counts
from pdopt.perf.capacity import capacity_table
from pdopt.verifier import verify


def fleet_s(seed: int) -> pdopt.Instance:
    return pdopt.instance_from_dict(generate(dataclasses.replace(FAMILIES["fleet-S"], seed=seed)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_optimum_with_and_without_classes(seed: int) -> None:
    inst = fleet_s(seed)
    classes = pool_classes(inst, capacity_table(inst))
    assert classes, "fleet-S has copies of one pool"
    on = pdopt.solve(inst, SolverOptions(pool_classes=True), explain_mode=False)
    off = pdopt.solve(inst, SolverOptions(pool_classes=False), explain_mode=False)
    assert on.status.value == off.status.value == "optimal"
    assert on.objective_usd_per_hour == pytest.approx(off.objective_usd_per_hour, rel=1e-9)
    assert verify(inst, on.to_dict()) == []
    used = {p.pool for p in on.placements}
    assert used <= set(inst.node_pools)  # the plan names the instance's pools, never a class


def test_what_merges_and_what_stays_apart() -> None:
    inst = fleet_s(0)
    classes = pool_classes(inst, capacity_table(inst))
    for cid, ids in classes.members.items():
        assert cid == ids[0] and list(ids) == sorted(ids)
        first = inst.node_pools[cid]
        for m in ids[1:]:
            p = inst.node_pools[m]
            assert (p.gpu_type, p.gpus_per_node, p.domain, p.billed_per_node, p.price_usd_per_node_hour,
                    p.activation_cost_usd_per_hour) == (first.gpu_type, first.gpus_per_node, first.domain,
                                                        first.billed_per_node, first.price_usd_per_node_hour,
                                                        first.activation_cost_usd_per_hour)
    cid, ids = next(iter(classes.members.items()))
    doc = inst.model_dump(mode="json", exclude_none=True)
    doc["node_pools"][ids[1]]["domain"] = "elsewhere"
    moved = pdopt.instance_from_dict(doc)
    assert ids[1] not in {m for g in pool_classes(moved, capacity_table(moved)).members.values() for m in g}


def test_split_by_hand() -> None:
    """Two 8-GPU pools of 2 and 3 nodes as one class holding 2 x TP4 + 5 x TP2 + 2 x TP1 (20 GPUs): sorted by
    size, 4 4 2 2 2 2 2 1 1; the first pool takes its 16 GPUs (4 4 2 2 2 2), the second the rest (2 1 1: 4 GPUs,
    1 node); nodes 2 + 1 = 3 = ceil(20 / 8)."""
    inst = fleet_s(0)
    data = build_model_data(inst, capacity_table(inst))
    cid, ids = next(iter(pool_classes(inst, capacity_table(inst)).members.items()))
    g = data.pools[cid].gpu_type
    by_size = {}
    for s in data.shapes.values():
        if s.gpu_type == g and s.gpus_per_instance in (1, 2, 4):
            by_size.setdefault(s.gpus_per_instance, s.shape_id)
    if set(by_size) != {1, 2, 4}:
        pytest.skip("fleet-S seed 0 has no 1-, 2- and 4-GPU shapes on this GPU type")
    pools = {ids[0]: dataclasses.replace(data.pools[ids[0]], node_count=2, gpus_per_node=8),
             ids[1]: dataclasses.replace(data.pools[ids[1]], node_count=3, gpus_per_node=8)}
    data = dataclasses.replace(data, pools={**data.pools, **pools})
    counts = {(by_size[4], cid): 2, (by_size[2], cid): 5, (by_size[1], cid): 2}
    out, nodes = split_counts(data, PoolClasses({cid: ids[:2]}), counts, {cid: 3})
    assert out == {(by_size[4], ids[0]): 2, (by_size[2], ids[0]): 4, (by_size[2], ids[1]): 1,
                   (by_size[1], ids[1]): 2}
    assert nodes == {ids[0]: 2, ids[1]: 1}


@settings(max_examples=60, deadline=None)
@given(nodes=st.lists(st.integers(1, 4), min_size=2, max_size=4),
       mix=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=0, max_size=30))
def test_random_splits_fill_without_gaps(nodes: list[int], mix: list[int]) -> None:
    """Any mix of 1/2/4/8-GPU instances that fits the class's GPUs splits into the pools, each within its GPUs,
    nodes adding up to ceil(total / 8)."""
    inst = fleet_s(0)
    data = build_model_data(inst, capacity_table(inst))
    cid = next(iter(pool_classes(inst, capacity_table(inst)).members))
    ids = tuple(f"{cid}_{i}" for i in range(len(nodes)))
    base = dataclasses.replace(data.pools[cid], gpus_per_node=8)
    pools = {pid: dataclasses.replace(base, node_count=n) for pid, n in zip(ids, nodes, strict=True)}
    shapes = {g: dataclasses.replace(next(iter(data.shapes.values())), gpus_per_instance=g) for g in (1, 2, 4, 8)}
    sid = {g: s.shape_id for g, s in shapes.items()}
    data = dataclasses.replace(data, pools={**data.pools, **pools, cid: base},
                               shapes={**data.shapes, **{s.shape_id: s for s in shapes.values()}})
    total = sum(mix)
    if total > 8 * sum(nodes):
        return
    counts: dict[tuple[str, str], int] = {}
    for g in mix:
        counts[(sid[g], cid)] = counts.get((sid[g], cid), 0) + 1
    out, out_nodes = split_counts(data, PoolClasses({cid: ids}), counts, {cid: -(-total // 8)})
    for pid, n in zip(ids, nodes, strict=True):
        used = sum(data.shapes[s].gpus_per_instance * c for (s, p), c in out.items() if p == pid)
        assert used <= 8 * n
        assert out_nodes[pid] == -(-used // 8)
    assert sum(out_nodes.values()) == -(-total // 8)
    assert sum(out.values()) == len(mix)


def test_deadline_shares_the_time_limit() -> None:
    opts = with_deadline(SolverOptions(time_limit_s=10.0))
    assert opts.deadline is not None and opts.deadline <= time.monotonic() + 10.0
    assert with_deadline(opts) is opts  # one deadline for every solve of a call
    left = opts.within_deadline().time_limit_s
    assert left is not None and left <= 10.0
    late = dataclasses.replace(opts, deadline=time.monotonic() - 5.0)
    assert late.within_deadline().time_limit_s == MIN_SOLVE_S
    assert SolverOptions().within_deadline() == SolverOptions()

"""Node packing, decided exactly: can a pool's instances be placed on a number of nodes, each inside one node?

This is bin packing with few item sizes (GPUs per instance) and one bin size (GPUs per node), so the verifier
works on count vectors n (instances per size) rather than on single instances:

- First-fit decreasing (:func:`first_fit_decreasing`) settles most pools at once: it is exact when the sizes
  divide each other and the node size, and its success is always a packing.
- A lower bound (:func:`node_lower_bound`): the configuration LP min sum_q x_q s.t. sum_q q x_q >= n over the node
  patterns q (count vectors that fit in a node), bounded by weak duality: for every w >= 0 with q.w <= 1 for all
  patterns, ceil(n.w) nodes are needed. The vertices of this small dual polytope are enumerated when cheap, so
  the bound is the LP's own (always at least the volume bound ceil(GPUs / node size)).
- An exact depth-first search (:meth:`_Packer.fits`) over count vectors, one node pattern at a time (a node that
  holds an instance of the largest size left and is maximal), pruned by the LP bound and memoised by the largest
  node budget that failed. It gives up after :data:`MAX_SEARCH_STATES` states (or :data:`MAX_PATTERNS` patterns)
  and then answers None, which the checks report as ``node_packing_undecided``.

Size-1 instances fill any free GPU, so they only add to the volume. Instances larger than a node never reach
these functions: the pool check gives them whole nodes of their own (when their profile spans nodes).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_SEARCH_STATES = 200_000
"""States the exact packing search may expand before it gives up (``node_packing_undecided``). The search reads
this module global at call time, so tests may lower it with ``monkeypatch.setattr`` on this module."""

MAX_PATTERNS = 20_000
"""Node patterns the exact packing search may enumerate before it gives up."""


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
        """Extend ``acc`` with every count of ``sizes[i]`` that fits in ``left`` GPUs; False once past the limit."""
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
        """The packer of these sizes (patterns and dual points computed once per size set and node size, cached);
        None when the node patterns are too many to enumerate."""
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

"""Sweeps: the cheapest plan over a grid of what-ifs from one instance (demand, SLO targets, GPU availability,
prices), solved in parallel on any :class:`concurrent.futures.Executor`.

Operators plan against questions, not one instance: what does the fleet cost if traffic doubles, if the TTFT
target is halved, if H100s cannot be had, if A100 prices fall 20%? (vLLM semantic-router #3091). A sweep states
the axes once and solves every point of their product:

- ``demand``: a multiplier of every workload's demand (the plan's ``scale_demand``);
- ``ttft_target_s`` / ``tpot_target_ms``: every workload's TTFT (seconds) or TPOT (milliseconds) target, its
  statistic kept;
- ``available``: the GPU types that may be used (the others are removed with their pools and profiles, as
  ``plan --without``); ``all`` keeps every type;
- ``price:<gpu_type>``: a multiplier of every hourly price of that GPU type: its price per GPU-hour, and its
  pools' node-hour prices and activation costs.

Each point is solved independently (:func:`solve_point`, a top-level function so that a process pool or a Dask
worker can run it); the rows hold only what the solve decides, never timings, so the same grid gives the same
table serially, on ``--jobs N`` local processes, or on a cluster's executor (``Client.get_executor()`` of
dask.distributed). CPU seconds per point, the solver's and its child process's, are kept apart (``cpu_s``).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pdopt.errors import InputError
from pdopt.instance import Instance
from pdopt.optimize.options import SolverOptions

AXES = ("demand", "ttft_target_s", "tpot_target_ms", "available")
"""The axes every sweep row carries, in column order (``price:<gpu_type>`` axes follow)."""

ALL = "all"
"""The ``available`` value that keeps every GPU type."""


@dataclass(frozen=True)
class SweepGrid:
    """The values of each axis; an empty axis is not varied (the instance's own value)."""

    demand: tuple[float, ...] = ()
    ttft_target_s: tuple[float, ...] = ()
    tpot_target_ms: tuple[float, ...] = ()
    available: tuple[tuple[str, ...], ...] = ()
    """Each value a set of GPU types (``()`` or ``("all",)``: every type)."""
    price: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """GPU type -> price multipliers."""

    def axes(self) -> list[tuple[str, Sequence[Any]]]:
        """Each axis's name and values (an axis not varied: the instance's own value, None, or all types)."""
        return [
            ("demand", self.demand or (1.0,)), ("ttft_target_s", self.ttft_target_s or (None,)),
            ("tpot_target_ms", self.tpot_target_ms or (None,)),
            ("available", [_available_label(a) for a in self.available] or (ALL,)),
            *((f"price:{g}", v) for g, v in sorted(self.price.items()))]

    @property
    def size(self) -> int:
        """The number of points, without making them (a grid too large is refused before it is built)."""
        return math.prod(len(v) for _, v in self.axes())

    def points(self) -> list[dict[str, Any]]:
        """The product of the axes, in a fixed order (each axis's values as given, the last axis fastest)."""
        axes = self.axes()
        names = [n for n, _ in axes]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))]


def _available_label(types: Sequence[str]) -> str:
    return ALL if not types or tuple(types) == (ALL,) else "+".join(types)


def check_grid(instance: Instance, grid: SweepGrid) -> None:
    """InputError naming the axis and value that cannot apply to the instance (before any solve)."""
    if instance.horizon is not None:
        raise InputError("sweep: plans one period; this instance has a horizon (sweep a period's instance)")
    for name, values in (("--demand", grid.demand), ("--ttft-target", grid.ttft_target_s),
                         ("--tpot-target", grid.tpot_target_ms)):
        for v in values:
            if not (v > 0 and v < float("inf")):
                raise InputError(f"{name}: each value must be positive and finite, got {v!r}")
    for types in grid.available:
        for g in types:
            if g != ALL and g not in instance.gpu_types:
                raise InputError(f"--available: no GPU type '{g}' in the instance ({', '.join(instance.gpu_types)})")
    for g, values in grid.price.items():
        if g not in instance.gpu_types:
            raise InputError(f"--price: no GPU type '{g}' in the instance ({', '.join(instance.gpu_types)})")
        for v in values:
            if not (v >= 0 and v < float("inf")):
                raise InputError(f"--price {g}: each multiplier must be >= 0 and finite, got {v!r}")
    # a value the instance format refuses is named before any solve: each value of each axis, alone (the format's
    # rules are per field, so a combination of valid values is valid)
    for name, axis_values in grid.axes():
        if name not in ("demand", "available"):
            for v in axis_values:
                apply_point(instance, {name: v}, availability=False)


def apply_point(instance: Instance, point: Mapping[str, Any], availability: bool = True) -> Instance:
    """The instance with the point's SLO targets, availability and prices (demand is the solve's multiplier).

    Validated as a loaded file is, so that a value the format refuses is named (InputError). Removing GPU types
    may leave a model without a profile of some role: that too is an InputError, which a sweep records as a
    point with no plan (:func:`solve_point`), not as bad input."""
    from pdopt.instance.schema import validate_instance

    doc = instance.model_dump(mode="json")
    if point.get("ttft_target_s") is not None:
        for w in doc["workloads"].values():
            w["ttft"]["target_s"] = point["ttft_target_s"]
    if point.get("tpot_target_ms") is not None:
        for w in doc["workloads"].values():
            w["tpot"]["target_ms"] = point["tpot_target_ms"]
    for key, factor in point.items():
        if key.startswith("price:"):
            g = key.removeprefix("price:")
            doc["gpu_types"][g]["price_usd_per_gpu_hour"] *= factor
            for pool in doc["node_pools"].values():
                if pool["gpu_type"] != g:
                    continue
                for key in ("price_usd_per_node_hour", "activation_cost_usd_per_hour"):
                    if pool.get(key) is not None:
                        pool[key] *= factor
    changed = validate_instance(doc, f"sweep point {_label(point)}")
    available = point.get("available", ALL)
    if availability and available != ALL:
        keep = set(available.split("+"))
        changed = changed.without_gpu_types([g for g in changed.gpu_types if g not in keep])
    return changed


def _label(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items() if v is not None)


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (CBC runs as a child process)."""
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime


def solve_point(instance: Instance, point: dict[str, Any], options: SolverOptions | None) -> dict[str, Any]:
    """Solve one point: its row (the axes, then what the plan decides) and ``cpu_s`` (kept out of the row)."""
    from pdopt.optimize.pipeline import solve

    start = _cpu_s()
    try:
        changed = apply_point(instance, point)
    except InputError as exc:  # e.g. availability that leaves a model without a profile of some role
        row = {**point, "status": "no_plan", "cost_usd_per_hour": None, "gpus": None, "prefill_instances": None,
               "decode_instances": None, "aggregated_instances": None, "reason": _one_line(str(exc))}
        return {"row": row, "cpu_s": _cpu_s() - start}
    plan = solve(changed, options, scale_demand=point.get("demand", 1.0), explain_mode=False)
    counts = {r: sum(p.count for p in plan.placements if p.role == r) for r in ("prefill", "decode", "aggregated")}
    row = {**point, "status": plan.status.value, "cost_usd_per_hour": plan.objective_usd_per_hour,
           "gpus": sum(plan.gpus_used.values()) if plan.has_plan else None,
           "prefill_instances": counts["prefill"] if plan.has_plan else None,
           "decode_instances": counts["decode"] if plan.has_plan else None,
           "aggregated_instances": counts["aggregated"] if plan.has_plan else None,
           "reason": "" if plan.has_plan else _one_line(plan.reason or "")}
    return {"row": row, "cpu_s": _cpu_s() - start}


def _one_line(text: str) -> str:
    """A multi-line reason (the diagnosis of an infeasible plan) as one CSV cell: its lines joined by '; ' (by a
    space after a line that ends with a colon)."""
    out = ""
    for line in (x.strip() for x in text.splitlines()):
        if line:
            out += ("" if not out else " " if out.endswith(":") else "; ") + line
    return out


@dataclass(frozen=True)
class SweepResult:
    """The rows in grid order (each with ``pareto_ttft``), and each point's CPU seconds."""

    rows: list[dict[str, Any]]
    cpu_s: list[float]
    points: int


def sweep(instance: Instance, grid: SweepGrid, options: SolverOptions | None = None,
          executor: concurrent.futures.Executor | None = None,
          progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Solve every point of ``grid``: in this process when ``executor`` is None, else on the executor (a
    ``ProcessPoolExecutor``, or a cluster's, e.g. ``dask.distributed.Client(...).get_executor()``); rows come back
    in grid order whatever the order of completion. ``progress(done, total)`` is called as points finish."""
    check_grid(instance, grid)
    points = grid.points()
    results: list[dict[str, Any] | None] = [None] * len(points)
    if executor is None:
        for i, point in enumerate(points):
            results[i] = solve_point(instance, point, options)
            if progress is not None:
                progress(i + 1, len(points))
    else:
        futures = {executor.submit(solve_point, instance, point, options): i for i, point in enumerate(points)}
        for done, fut in enumerate(concurrent.futures.as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress(done, len(points))
    rows = [r["row"] for r in results if r is not None]
    mark_pareto(rows)
    return SweepResult(rows, [r["cpu_s"] for r in results if r is not None], len(points))


def is_axis(key: str) -> bool:
    """True for a row's axis columns (:data:`AXES` and the ``price:<gpu_type>`` ones), not its results."""
    return key in AXES or key.startswith("price:")


def _others(row: Mapping[str, Any], axis: str) -> tuple[Any, ...]:
    """The row's values of every axis but ``axis`` (the point it is compared within)."""
    return tuple(v for k, v in row.items() if is_axis(k) and k != axis)


def mark_pareto(rows: list[dict[str, Any]]) -> None:
    """``pareto_ttft``: among the planned points with the same values of every other axis (the same demand,
    availability, prices...), True for a point no other beats on both the TTFT target and the cost (one with a
    target at least as tight, t' <= t, at a cost at most as high, better in one): the targets worth choosing, each
    the tightest its cost buys. None on every row when the grid does not vary the TTFT target."""
    varied = len({r["ttft_target_s"] for r in rows}) > 1
    for r in rows:
        r["pareto_ttft"] = False if varied else None
    if not varied:
        return
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        if r["cost_usd_per_hour"] is not None:
            groups.setdefault(_others(r, "ttft_target_s"), []).append(r)
    for planned in groups.values():
        for r in planned:
            t, c = r["ttft_target_s"] or 0.0, r["cost_usd_per_hour"]
            r["pareto_ttft"] = not any(
                (o["ttft_target_s"] or 0.0) <= t and o["cost_usd_per_hour"] <= c
                and ((o["ttft_target_s"] or 0.0) < t or o["cost_usd_per_hour"] < c) for o in planned)


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table's columns: the axes (prices last among them), then the results."""
    prices = sorted({k for r in rows for k in r if k.startswith("price:")})
    return [*AXES, *prices, "status", "cost_usd_per_hour", "gpus", "prefill_instances", "decode_instances",
            "aggregated_instances", "pareto_ttft", "reason"]


def parse_values(text: str, what: str) -> tuple[float, ...]:
    """``0.5,1,2`` or a range ``START:STOP:STEP`` (STOP included when the steps land on it); InputError naming
    ``what`` and the text otherwise."""
    bad = InputError(f"{what}: expected numbers like 0.5,1,2 or a range START:STOP:STEP, got {text!r}")
    try:
        if ":" not in text:
            return tuple(float(x) for x in text.split(","))
        start, stop, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise bad from None
    if not step > 0 or not stop >= start:
        raise bad
    n = int((stop - start) / step + 1e-9) + 1
    if n > 10_000:
        raise InputError(f"{what}: {text!r} is {n:,} values; at most 10,000")
    return tuple(round(start + i * step, 12) for i in range(n))

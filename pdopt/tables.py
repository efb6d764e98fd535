"""The tables a plan, a capacity table and a simulation are read as: plain rows (lists of dicts with one
meaning per column), CSV text, and pandas DataFrames for analysis.

The rows are the one source: ``--format csv`` writes them with the csv module, and :func:`frame` turns them into a
DataFrame, so a CSV read back and a frame hold the same numbers. pandas is an optional extra (``frames``:
``pip install '.[frames]'`` in a clone; installed in the development environment): it is imported only when a
frame is asked for, so ``import pdopt`` and every command without frames never load it.

Columns:

- placements (:func:`placement_rows`): ``model, role, gpu_type, gpus_per_instance, variant, pool, count,
  gpus, capacity_rps_each, capacity_rps, cost_usd_per_hour, estimated`` (``gpus`` = count x GPUs per instance,
  ``capacity_rps`` = count x per-instance capacity, ``estimated`` the estimator of an estimated profile, empty
  when measured);
- pools (:func:`pool_rows`): ``pool, gpu_type, domain, node_count, nodes_used, gpus_used, packing,
  cost_usd_per_hour``;
- cost breakdown (:func:`cost_rows`): ``axis`` (``model``, ``role``, ``gpu_type``), ``key``,
  ``cost_usd_per_hour``, ``share`` of the plan's hourly cost;
- capacity table (:func:`capacity_rows`): ``model, role, gpu_type, gpus_per_instance, variant, capacity_rps,
  throughput_tok_per_s, binding, formula, estimated`` per usable shape;
- simulation (:func:`simulation_rows`): per model, metric (``ttft_s``, ``tpot_ms``) and statistic, the simulated
  value, its 99% half-width (means), the prediction and the SLO target when that statistic is the SLO's;
- comparison (:func:`comparison_rows`): per approach (the MILP, each baseline) :data:`COMPARISON_COLUMNS`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdopt.perf.capacity import CapacityTable
    from pdopt.plan import Plan
    from pdopt.sim.run import SimResult

__all__ = ["COMPARISON_COLUMNS", "capacity_rows", "comparison_rows", "cost_rows", "frame", "placement_rows",
           "pool_rows", "rows_csv", "simulation_rows"]

Row = dict[str, Any]


def placement_rows(plan: Plan) -> list[Row]:
    """One row per placement."""
    return [{"model": p.model, "role": p.role, "gpu_type": p.gpu_type, "gpus_per_instance": p.gpus_per_instance,
             "variant": p.variant, "pool": p.pool, "count": p.count, "gpus": p.count * p.gpus_per_instance,
             "capacity_rps_each": p.capacity_rps, "capacity_rps": p.count * p.capacity_rps,
             "cost_usd_per_hour": p.cost_usd_per_hour, "estimated": p.estimated or ""} for p in plan.placements]


def pool_rows(plan: Plan) -> list[Row]:
    """One row per pool the plan reports."""
    return [{"pool": name, "gpu_type": u.gpu_type, "domain": u.domain, "node_count": u.node_count,
             "nodes_used": u.nodes_used, "gpus_used": u.gpus_used, "packing": u.packing,
             "cost_usd_per_hour": u.cost_usd_per_hour} for name, u in plan.pools.items()]


def cost_rows(plan: Plan) -> list[Row]:
    """The hourly cost by model, by role and by GPU type, with each key's share of the whole."""
    axes: dict[str, dict[str, float]] = {"model": {}, "role": {}, "gpu_type": {}}
    for p in plan.placements:
        for axis, key in (("model", p.model), ("role", p.role), ("gpu_type", p.gpu_type)):
            axes[axis][key] = axes[axis].get(key, 0.0) + p.cost_usd_per_hour
    total = sum(axes["model"].values())
    out = []
    for axis, table in axes.items():
        for key, cost in sorted(table.items()):
            out.append({"axis": axis, "key": key, "cost_usd_per_hour": cost,
                        "share": cost / total if total > 0 else 0.0})
    return out


def capacity_rows(table: CapacityTable) -> list[Row]:
    """One row per usable shape."""
    return [{"model": s.model, "role": str(s.role), "gpu_type": s.gpu_type, "gpus_per_instance": s.gpus_per_instance,
             "variant": s.variant, "capacity_rps": s.capacity_rps, "throughput_tok_per_s": s.throughput_tok_per_s,
             "binding": s.binding, "formula": s.formula, "estimated": s.estimated or ""} for s in table.shapes]


def simulation_rows(result: SimResult) -> list[Row]:
    """Per model, metric and statistic: simulated, its 99% half-width (means), predicted, and the SLO target
    where the statistic is the SLO's."""
    out = []
    for model, m in result.models.items():
        slo = m["slo"]
        for metric, target, stat_of_slo in (("ttft_s", slo["ttft_target_s"], slo["ttft_statistic"]),
                                            ("tpot_ms", slo["tpot_target_ms"], slo["tpot_statistic"])):
            predicted = (m.get("predicted") or {}).get(metric) or {}
            for stat in ("mean", "p50", "p90", "p95", "p99"):
                out.append({"model": model, "metric": metric, "statistic": stat, "simulated": m[metric][stat],
                            "ci99_half_width": m[metric].get("ci99_half_width") if stat == "mean" else None,
                            "predicted": predicted.get(stat),
                            "slo_target": target if stat == stat_of_slo else None})
    return out


COMPARISON_COLUMNS = ("name", "cost_usd_per_hour", "gpus", "nodes", "feasible", "violations",
                      "saving_vs_milp_usd_per_hour", "saving_pct", "slo_met", "attainment", "reason")
"""The columns of a comparison row (``pdopt compare``): each approach's plan and what the MILP saves on it."""


def comparison_rows(rows: Sequence[Row]) -> list[Row]:
    """``pdopt compare``'s rows (:func:`pdopt.comparison.baselines.compare`) with the scalar columns of
    :data:`COMPARISON_COLUMNS` (None where a row has none)."""
    out = []
    for r in rows:
        row = {c: r.get(c) for c in COMPARISON_COLUMNS}
        if isinstance(row["violations"], list):  # the verifier's findings: their number in a table
            row["violations"] = len(row["violations"])
        out.append(row)
    return out


def rows_csv(rows: Sequence[Row]) -> str:
    """CSV text with a header (the first row's columns); empty cells for None."""
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def frame(rows: Sequence[Row]) -> Any:
    """A pandas DataFrame of the rows (pandas imported here, not before: the ``frames`` extra)."""
    try:
        import pandas as pd
    except ModuleNotFoundError:
        raise ModuleNotFoundError("frames need pandas: the 'frames' extra (pip install '.[frames]' in a clone) "
                                  "or pip install pandas") from None
    return pd.DataFrame(list(rows))

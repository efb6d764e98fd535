"""`pdopt bench`: solve a set of instances and write what it measured: a table (CSV, Markdown), plots (PNG) of
solve time, gap and size and of cost against the baselines, and the machine and package versions."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from pdopt.comparison.baselines import all_baselines
from pdopt.comparison.generate import FAMILIES, generate
from pdopt.errors import InputError
from pdopt.instance import Instance
from pdopt.interrupt import PartialResult
from pdopt.io import instance_from_dict, library, load_instance
from pdopt.io.files import dump_json, new_folder, write_new
from pdopt.optimize.build import build_problem
from pdopt.optimize.model_data import build_model_data
from pdopt.optimize.pipeline import solve
from pdopt.optimize.solver import SolverOptions
from pdopt.perf.capacity import capacity_table
from pdopt.plan import Plan
from pdopt.verifier import verify

COLUMNS = ("instance", "models", "gpu_types", "pools", "variables", "rows", "read_s", "build_s", "solve_s",
           "plan_wall_s", "time_limit_s", "status", "cost_usd_per_hour", "gap", "bound", "verified", "best_baseline",
           "best_baseline_usd_per_hour", "saving_pct", "known_answer")
"""``read_s``: reading the instance and its capacities (what ``pdopt validate`` does); ``plan_wall_s``: the whole
planning under ``time_limit_s`` (capacities, building, starts and every solve), which the limit bounds."""


def load_set(name: str) -> list[str]:
    """The entries of a named set of the bundled library's sets.yaml."""
    return library.load_set(name)


def _instance(entry: str) -> Instance:
    if entry.startswith("generate:"):
        _, family, seed = entry.split(":")
        return instance_from_dict(generate(dataclasses.replace(FAMILIES[family], seed=int(seed))))
    return load_instance(library.path(entry))


def known_answer_check(entry: str, plan: Plan) -> str:
    """The plan against the library's known answer (instances/known_answers.yaml, at demand scale 1): ``optimal``
    entries must be matched (within their tolerance; a plan not proven optimal must not beat them), ``best_known``
    ones (a best plan and a bound, SCIP .solu style) need a verified plan costing at least the bound; ``-`` without
    an entry. Returns ``ok``, or what is wrong."""
    entries = [e for e in library.known_answers().get(entry, []) if e.get("scale_demand", 1.0) == 1.0]
    if not entries:
        return "-"
    e, cost = entries[0], plan.objective_usd_per_hour
    if e["status"] == "infeasible":
        return "ok" if not plan.has_plan else "a plan for an infeasible instance"
    if cost is None:
        return "no plan"
    if e["status"] == "optimal":
        tol = float(e.get("tolerance_rel", 1e-6)) * max(1.0, abs(e["objective_usd_per_hour"]))
        if cost < e["objective_usd_per_hour"] - tol:
            return f"below the known optimum {e['objective_usd_per_hour']}"
        if plan.status.value == "optimal" and cost > e["objective_usd_per_hour"] + tol:
            return f"proven {cost:.6g}, known optimum {e['objective_usd_per_hour']}"
        return "ok"
    if cost < e["bound_usd_per_hour"] * (1 - 1e-9):
        return f"below the known bound {e['bound_usd_per_hour']}"
    return "ok" if cost >= e["objective_usd_per_hour"] - 1e-6 else f"better than best known ({cost:.2f})"


def measure(entry: str, options: SolverOptions, baselines: bool) -> dict[str, Any]:
    """One row: size, build and solve time, status, cost, gap and bound, verification, best feasible baseline."""
    t0 = time.perf_counter()
    inst = _instance(entry)
    data = build_model_data(inst, capacity_table(inst))
    read_s = time.perf_counter() - t0  # what `pdopt validate` does: read, check, capacities
    start = time.perf_counter()
    built = build_problem(data, cuts=options.cuts)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    plan = solve(inst, options)
    plan_s = time.perf_counter() - start
    if plan.solver.interrupted:
        raise KeyboardInterrupt
    row: dict[str, Any] = {
        "instance": entry, "models": len(inst.models), "gpu_types": len(inst.gpu_types),
        "pools": len(inst.node_pools), "variables": len(built.problem.variables()),
        "rows": built.problem.numConstraints(), "build_s": build_s, "solve_s": plan.solver.runtime_s,
        "read_s": read_s, "plan_wall_s": plan_s, "time_limit_s": options.time_limit_s,
        "status": plan.status.value, "cost_usd_per_hour": plan.objective_usd_per_hour, "gap": plan.solver.gap,
        "bound": plan.solver.bound, "verified": (verify(inst, plan.to_dict()) == []) if plan.has_plan else None,
        "best_baseline": None, "best_baseline_usd_per_hour": None, "saving_pct": None,
    }
    row["known_answer"] = known_answer_check(entry, plan)
    if baselines and plan.has_plan:
        feasible = [(b.plan.objective_usd_per_hour or 0.0, b.name) for b in all_baselines(inst)
                    if b.plan is not None and not verify(inst, b.plan.to_dict())]
        if feasible:
            cost, name = min(feasible)
            row.update(best_baseline=name, best_baseline_usd_per_hour=cost,
                       saving_pct=100.0 * (cost - (plan.objective_usd_per_hour or 0.0)) / cost if cost else 0.0)
    return row


def machine() -> dict[str, Any]:
    """Where the numbers were measured: platform, CPUs, Python and package versions."""
    versions: dict[str, str | None] = {}
    for pkg in ("pdopt", "pulp", "highspy", "numpy", "scipy", "pydantic", "networkx", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": sys.version.split()[0], "packages": versions}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def write_report(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """results.csv, results.md, machine.json, solve_time.png, cost_vs_baselines.png in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    files.append(write_new(out / "results.csv", buf.getvalue(), "results table"))
    md = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    md += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    files.append(write_new(out / "results.md", "\n".join(md) + "\n", "results table"))
    files.append(write_new(out / "machine.json", dump_json(machine()), "machine description"))
    solved = [r for r in rows if r["cost_usd_per_hour"] is not None]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].scatter([r["variables"] for r in solved], [r["solve_s"] for r in solved])
    for r in solved:
        ax[0].annotate(r["instance"].split("/")[-1][:18], (r["variables"], r["solve_s"]), fontsize=6)
    ax[0].set(xscale="log", yscale="log", xlabel="variables", ylabel="solve time (s)", title="solve time by size")
    gaps = [100.0 * (r["gap"] or 0.0) for r in solved]
    ax[1].bar(range(len(solved)), gaps)
    ax[1].set(xticks=range(len(solved)), ylabel="relative gap (%)", title="gap at the end of the solve")
    ax[1].set_xticklabels([r["instance"].split("/")[-1][:14] for r in solved], rotation=60, fontsize=6)
    fig.tight_layout()
    files.append(_write_png(fig, out / "solve_time.png"))
    plt.close(fig)
    compared = [r for r in solved if r["best_baseline_usd_per_hour"] is not None]
    fig, axc = plt.subplots(figsize=(8, 4))
    xs = range(len(compared))
    axc.bar([x - 0.2 for x in xs], [r["cost_usd_per_hour"] for r in compared], width=0.4, label="MILP")
    axc.bar([x + 0.2 for x in xs], [r["best_baseline_usd_per_hour"] for r in compared], width=0.4,
            label="best feasible baseline")
    axc.set(xticks=list(xs), ylabel="USD/hour", title="cost: MILP against the best baseline", yscale="log")
    axc.set_xticklabels([r["instance"].split("/")[-1][:14] for r in compared], rotation=60, fontsize=6)
    axc.legend()
    fig.tight_layout()
    files.append(_write_png(fig, out / "cost_vs_baselines.png"))
    plt.close(fig)
    return files


def _write_png(fig: Any, path: Path) -> Path:
    """Render a figure to PNG bytes and write them through the I/O layer (a new file only)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return write_new(path, buf.getvalue(), "plot")


def run(entries: list[str], out: Path, options: SolverOptions, baselines: bool = True,
        progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Measure every entry, then write the report; ``out`` must not hold files already (nothing is overwritten).
    Interrupted, it writes the report of the entries measured so far and raises
    :class:`~pdopt.interrupt.PartialResult` holding their rows."""
    try:
        new_folder(out)
    except InputError as exc:
        raise InputError(f"--out: {exc}") from None
    rows = []
    try:
        for i, entry in enumerate(entries, start=1):
            t = time.perf_counter()
            rows.append(measure(entry, options, baselines))
            if progress is not None:
                bar = "#" * (20 * i // len(entries))
                progress(f"[{bar:<20}] {i}/{len(entries)} {entry}: {rows[-1]['status']} in "
                         f"{time.perf_counter() - t:.2f} s")
    except KeyboardInterrupt:  # the instances measured so far are still reported
        write_report(rows, out)
        raise PartialResult(rows) from None
    write_report(rows, out)
    return rows

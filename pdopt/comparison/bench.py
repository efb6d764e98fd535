"""`pdopt bench`: solve a set of instances and write what it measured: a table (CSV, Markdown), plots (PNG, each
with its data as JSON; :mod:`pdopt.comparison.bench_plots`) of CPU time against size, of the gap, of the saving
against the baselines and, for generated instances, of CPU time by family, and the machine and package versions."""

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
from pdopt.comparison.bench_plots import write_plots
from pdopt.comparison.generate import FAMILIES, GeneratorParams, generate
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
           "best_baseline_usd_per_hour", "saving_pct", "known_answer", "family", "plan_cpu_s", "baselines_run",
           "baselines_feasible")
"""``read_s``: reading the instance and its capacities (what ``pdopt validate`` does); ``plan_wall_s``: the whole
planning under ``time_limit_s`` (capacities, building, starts and every solve), which the limit bounds;
``plan_cpu_s``: the CPU seconds of that planning, this process's and its solver child processes' (CBC runs as one),
which on a shared machine measure the work where wall time also measures the neighbours; ``family``: the generator's
family of a generated instance; ``baselines_run`` and ``baselines_feasible``: how many baselines were tried and how
many of them gave a plan that verifies (the others are infeasible, or found no plan). Columns are only ever added
at the end, so that readers of older reports keep working."""

GENERATED_CHANGES = ("models", "gpu_types", "pools", "domains")
"""The generator's parameters a set entry may change (``generate:fleet-L:0:models=8``): the sizes a scaling
family grows along."""


def load_set(name: str) -> list[str]:
    """The entries of a named set of the bundled library's sets.yaml."""
    return library.load_set(name)


def generated_params(entry: str) -> GeneratorParams:
    """The generator's parameters of a set entry ``generate:<family>:<seed>[:<name>=<integer>...]``: a family of
    :data:`~pdopt.comparison.generate.FAMILIES` at a seed, with some of :data:`GENERATED_CHANGES` changed, so that
    a set can grow one family along one axis without committing each instance. InputError naming what is wrong."""
    _, family, *rest = entry.split(":")
    if family not in FAMILIES or not rest or not rest[0].isdigit():
        raise InputError(f"{entry}: expected generate:<family>:<seed>[:<name>=<integer>...] with a family of "
                         f"{', '.join(FAMILIES)}")
    changes: dict[str, int] = {"seed": int(rest[0])}
    for item in rest[1:]:
        name, _, value = item.partition("=")
        if name not in GENERATED_CHANGES or not value.isdigit():
            raise InputError(f"{entry}: '{item}' is not <name>=<integer> with a name of {', '.join(GENERATED_CHANGES)}")
        changes[name] = int(value)
    return dataclasses.replace(FAMILIES[family], **changes)  # type: ignore[arg-type]


def _instance(entry: str) -> Instance:
    if entry.startswith("generate:"):
        try:
            return instance_from_dict(generate(generated_params(entry)))
        except ValueError as exc:
            raise InputError(f"{entry}: {exc}") from None
    return load_instance(library.path(entry))


def _cpu_s() -> float:
    """CPU seconds used so far by this process and by its finished child processes (CBC solves in one): the
    planning's own work, whatever else runs on the machine's cores."""
    used = time.process_time()
    if sys.platform != "win32":
        import resource  # POSIX only: the children's accounting

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used += children.ru_utime + children.ru_stime
    return used


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
    start, cpu = time.perf_counter(), _cpu_s()
    plan = solve(inst, options)
    plan_s, plan_cpu_s = time.perf_counter() - start, _cpu_s() - cpu
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
    family = (inst.generated_by or {}).get("family")
    row.update(family=str(family) if family is not None else None, plan_cpu_s=plan_cpu_s, baselines_run=None,
               baselines_feasible=None)
    if baselines and plan.has_plan:
        tried = all_baselines(inst)
        feasible = [(b.plan.objective_usd_per_hour or 0.0, b.name) for b in tried
                    if b.plan is not None and not verify(inst, b.plan.to_dict())]
        row.update(baselines_run=len(tried), baselines_feasible=len(feasible))
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
    """results.csv, results.md, machine.json and the figures with their data (solve_time, cost_vs_baselines and,
    for generated instances, solve_time_by_family: PNG and JSON each; :mod:`pdopt.comparison.bench_plots`)."""
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
    return files + write_plots(rows, out)


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

"""What-if commands: ranked alternatives to the cheapest plan (``plan --alternatives K``) and sweeps over a grid
of changes to an instance (``pdopt sweep``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pdopt.cli.common import EXIT_INFEASIBLE, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOLVER, _load_instance, solver_options
from pdopt.errors import InputError

if TYPE_CHECKING:
    from pdopt.instance import Instance
    from pdopt.optimize.options import SolverOptions



def plan_alternatives(instance: Instance, args: argparse.Namespace, opts: SolverOptions) -> int:
    """``pdopt plan --alternatives K``: the K cheapest configurations (:mod:`pdopt.optimize.alternatives`).

    Exit 0 when at least one plan exists and the search ran to its end (fewer than K is said on standard error),
    3 when no plan exists, 130 when interrupted (in any of its solves), 5 when a solve ended without proving its
    plan the cheapest (the alternatives found before it are printed)."""
    from pdopt.io import dump_json
    from pdopt.optimize.alternatives import alternatives, to_dict
    from pdopt.plan import SolveStatus
    from pdopt.report import format_alternatives

    if args.maximize_scale:
        raise InputError("--alternatives ranks plans of the stated demand; it does not combine with "
                         "--maximize-scale")
    if args.plot is not None:
        raise InputError("--plot draws a plan over a horizon; --alternatives ranks plans of one period")
    if args.explain_mode:
        raise InputError("--explain-mode compares the serving modes of one plan; with --alternatives each plan "
                         "says its modes in its JSON (models.<m>.mode)")
    alts = alternatives(instance, args.alternatives, opts, scale_demand=args.scale_demand)
    if args.format == "csv":
        from pdopt.tables import placement_rows, rows_csv

        print(rows_csv([{"rank": a.rank, "plan_cost_usd_per_hour": a.cost_usd_per_hour, **row}
                        for a in alts.alternatives for row in placement_rows(a.plan)]), end="")
    else:
        print(dump_json(to_dict(alts)) if args.format == "json" else format_alternatives(alts))
    first = alts.first
    if first.solver.interrupted:
        print("pdopt: interrupted before the cheapest plan was proven", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not alts.alternatives:
        if first.has_plan:  # a plan, but its cost not proven: no ranking to give
            print(f"pdopt: the cheapest plan was not proven ({first.solver.message}); no alternatives ranked",
                  file=sys.stderr)
            return EXIT_SOLVER
        without = f" without {', '.join(args.without)}" if args.without else ""
        if args.format != "table":
            print(f"pdopt: no feasible plan{without}: {first.reason}", file=sys.stderr)
        return EXIT_INFEASIBLE if first.status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION) else EXIT_SOLVER
    if alts.exhausted:
        print(f"pdopt: {len(alts.alternatives)} of the {alts.requested} alternatives asked for exist", file=sys.stderr)
    if alts.note:  # an early stop, or ties left unsettled: said whatever the format
        print(f"pdopt: {alts.note}", file=sys.stderr)
    if alts.stopped == "interrupted":
        return EXIT_INTERRUPTED
    if alts.stopped == "solver":
        return EXIT_SOLVER
    return EXIT_OK


def _price_axes(specs: list[str]) -> dict[str, tuple[float, ...]]:
    """``--price GPU_TYPE=0.8,1,1.2`` (repeatable) -> {GPU type: multipliers}."""
    from pdopt.comparison.sweep import parse_values

    out: dict[str, tuple[float, ...]] = {}
    for spec in specs:
        g, sep, values = spec.partition("=")
        if not sep or not g:
            raise InputError(f"--price: expected GPU_TYPE=MULTIPLIERS (e.g. h100_80gb=0.8,1,1.2), got {spec!r}")
        if g in out:
            raise InputError(f"--price: {g} is given twice")
        out[g] = parse_values(values, f"--price {g}")
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    """``pdopt sweep``: the cheapest plan at every point of a grid of what-ifs (:mod:`pdopt.comparison.sweep`),
    a table on standard output and, with ``--out``, the table, its JSON and the figures in a new folder."""
    from concurrent.futures import Executor, ProcessPoolExecutor

    from pdopt.comparison.sweep import SweepGrid, columns, parse_values, sweep
    from pdopt.io import dump_json
    from pdopt.io.files import new_folder, write_new
    from pdopt.progress import stage
    from pdopt.report import table
    from pdopt.tables import rows_csv

    if args.jobs < 1:
        raise InputError(f"--jobs: must be at least 1, got {args.jobs}")
    instance = _load_instance(args.file, args.allow_path)
    grid = SweepGrid(
        demand=parse_values(args.demand, "--demand") if args.demand else (),
        ttft_target_s=parse_values(args.ttft_target, "--ttft-target") if args.ttft_target else (),
        tpot_target_ms=parse_values(args.tpot_target, "--tpot-target") if args.tpot_target else (),
        available=tuple(tuple(a.split("+")) for a in args.available), price=_price_axes(args.price))
    if grid.size > args.max_points:  # counted from the axes, before any point is made
        raise InputError(f"the grid has {grid.size:,} points, above --max-points {args.max_points:,}")
    out = None
    if args.out is not None:
        from pdopt.comparison.sweep import check_grid

        check_grid(instance, grid)  # bad input is named before the folder is made
        out = new_folder(args.out)

    def progress(done: int, total: int) -> None:
        stage(f"sweep: {done} of {total} points solved")

    executor: Executor | None = ProcessPoolExecutor(max_workers=args.jobs) if args.jobs > 1 else None
    try:
        result = sweep(instance, grid, solver_options(args), executor=executor, progress=progress)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    cols = columns(result.rows)
    csv_text = rows_csv([{c: r[c] for c in cols} for r in result.rows])
    doc = {"instance": instance.name, "points": result.points, "columns": cols, "rows": result.rows,
           "cpu_s": result.cpu_s, "cpu_s_total": sum(result.cpu_s)}
    if args.format == "csv":
        print(csv_text, end="")
    elif args.format == "json":
        print(dump_json(doc))
    else:
        from pdopt.comparison.sweep_plots import varied as _varied

        shown = [c for c in cols if c != "pareto_ttft" or _varied(result.rows, "ttft_target_s")]
        print(table(shown, [[r[c] for c in shown] for r in result.rows]))
        print(f"{result.points} points; {sum(result.cpu_s):.2f} CPU s of solving")
    if out is not None:
        from pdopt.comparison.sweep_plots import cost_against, varied

        written = [write_new(out / "sweep.csv", csv_text, "sweep table"), write_new(out / "sweep.json",
                                                                                    dump_json(doc), "sweep table")]
        if varied(result.rows, "demand"):
            written.append(write_new(out / "cost_vs_demand.png",
                                     cost_against(result.rows, "demand", "demand multiplier"), "plot"))
        if varied(result.rows, "ttft_target_s"):
            written.append(write_new(out / "cost_vs_ttft.png", cost_against(
                result.rows, "ttft_target_s", "TTFT target (s)", pareto=True), "plot"))
        print(f"wrote {', '.join(p.name for p in written)} in {out}/", file=sys.stderr)
    return EXIT_OK

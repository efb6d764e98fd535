"""The commands: each reads its input through the I/O layer, runs its stages, and prints. Stages are imported
inside each command, so that a command loads only what it uses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdopt.cli.common import (
    EXIT_FAILED,
    EXIT_INFEASIBLE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOLVER,
    _load_instance,
    solver_options,
    unplanned_exit,
)
from pdopt.errors import InputError

if TYPE_CHECKING:
    from pdopt.instance import Instance
    from pdopt.optimize.options import SolverOptions

def _with_search(doc: dict[str, Any]) -> dict[str, Any]:
    """A plan's JSON with what the instance's shape search estimated (``shape_search``), when it had one."""
    from pdopt.cli.common import SEARCHES

    if SEARCHES:
        doc["shape_search"] = SEARCHES[-1].to_dict()
    return doc


def cmd_plan(args: argparse.Namespace) -> int:
    from pdopt.io import dump_json
    from pdopt.optimize.pipeline import solve
    from pdopt.plan import SolveStatus
    from pdopt.report import format_plan

    instance = _load_instance(args.file, args.allow_path, periods=True, planning=True)
    if args.without:
        instance = instance.without_gpu_types(args.without)
    opts = solver_options(args)
    if args.alternatives is not None:
        from pdopt.cli.whatif_commands import plan_alternatives

        return plan_alternatives(instance, args, opts)
    if instance.horizon is not None:
        return _plan_horizon(instance, args, opts)
    if args.plot is not None:
        raise InputError("--plot: draws a plan over a horizon; this instance has none (see `pdopt curves` and "
                         "`pdopt fidelity --plot`)")
    plan = solve(instance, opts, scale_demand=args.scale_demand, maximize_scale=args.maximize_scale,
                 explain_mode=args.explain_mode)
    if args.format == "csv":
        from pdopt.tables import placement_rows, rows_csv

        print(rows_csv(placement_rows(plan)), end="")
    else:
        print(dump_json(_with_search(plan.to_dict())) if args.format == "json" else format_plan(plan))
    if plan.solver.interrupted:
        what = "the best plan found so far is above" if plan.has_plan else "no plan was found before"
        print(f"pdopt: interrupted; {what}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if plan.has_plan:
        return EXIT_OK
    if args.format in ("json", "csv") or args.without:
        without = f" without {', '.join(args.without)}" if args.without else ""
        print(f"pdopt: no feasible plan{without}: {plan.reason}", file=sys.stderr)
    if plan.status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION):
        return EXIT_INFEASIBLE
    return EXIT_SOLVER


def _plan_horizon(instance: Any, args: argparse.Namespace, opts: Any) -> int:
    """``pdopt plan`` of an instance with a horizon: every period in one solve, the static plan beside it."""
    from pdopt.errors import InputError
    from pdopt.io import dump_json
    from pdopt.optimize.horizon import plan_horizon
    from pdopt.plan import SolveStatus
    from pdopt.report import format_horizon

    if args.maximize_scale or args.scale_demand != 1.0:
        raise InputError("--maximize-scale and --scale-demand plan one period; this instance has a horizon "
                         "(scale its by_period demands instead)")
    if args.plot is not None and Path(args.plot).exists():
        raise InputError(f"--plot: {args.plot} exists; pdopt does not overwrite files")
    plan = plan_horizon(instance, opts)
    if args.format == "csv":
        from pdopt.tables import placement_rows, rows_csv

        print(rows_csv([{"period": p.name, "hours": p.hours, **row} for p in plan.periods
                        for row in placement_rows(p.plan)]), end="")
    else:
        print(dump_json(plan.to_dict()) if args.format == "json" else format_horizon(plan))
    if args.plot is not None and plan.has_plan:
        from pdopt.io.files import write_new
        from pdopt.plot_horizon import plot_horizon

        write_new(args.plot, plot_horizon(instance, plan), "plot")
    if plan.has_plan:
        return EXIT_OK
    print(f"pdopt: no feasible plan: {plan.reason}", file=sys.stderr)
    return EXIT_INFEASIBLE if plan.status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION) else EXIT_SOLVER


def cmd_capacity(args: argparse.Namespace) -> int:
    from pdopt.io import dump_json
    from pdopt.perf.capacity import capacity_table
    from pdopt.report import format_capacities

    inst = _load_instance(args.file, args.allow_path)
    tab = capacity_table(inst)
    if args.format == "csv":
        from pdopt.tables import capacity_rows, rows_csv

        print(rows_csv(capacity_rows(tab)), end="")
        return EXIT_OK
    if args.format == "json":
        from pdopt.instance import AggregatedProfile
        from pdopt.perf.aggregated_fit import planned_iteration

        def inputs(model: str, role: str, gpu: str, gpus: int, variant: str) -> dict[str, Any]:
            w = inst.workloads[model]
            prof = inst.profile(model, role, gpu, gpus, variant)
            out = {"profile_source": prof.source, "input_tokens_mean": w.input_tokens_mean,
                   "output_tokens_mean": w.output_tokens_mean, "ttft": w.ttft.model_dump(),
                   "tpot": w.tpot.model_dump(), "ttft_overhead_s": w.ttft_overhead_s,
                   "queue_model": w.queue_model, "decode_model": w.decode_model}
            if isinstance(prof, AggregatedProfile):  # the engine and the iteration model it was sized with
                out.update(token_budget=prof.token_budget, max_batch=prof.max_batch,
                           iteration=planned_iteration(inst, prof).model_dump(),
                           calibrated=bool(prof.measured_runs))
            return out
        print(dump_json({
            "shapes": [{"model": s.model, "role": s.role, "gpu_type": s.gpu_type,
                        "gpus_per_instance": s.gpus_per_instance, "capacity_rps": s.capacity_rps,
                        "throughput_tok_per_s": s.throughput_tok_per_s, "binding": s.binding,
                        "formula": s.formula, "variant": s.variant, "detail": s.detail,
                        "pooled_gains": list(s.pooled_gains),
                        "inputs": inputs(s.model, s.role, s.gpu_type, s.gpus_per_instance, s.variant)}
                       for s in tab.shapes],
            "skipped_shapes": [vars(k) for k in tab.skipped],
        }))
    else:
        print(format_capacities(tab))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from pdopt.perf.capacity import capacity_table

    inst = _load_instance(args.file, args.allow_path)
    tab = capacity_table(inst)
    print(f"{args.file}: valid instance '{inst.name}': {len(inst.models)} model(s), {len(inst.gpu_types)} GPU "
          f"type(s), {len(inst.node_pools)} node pool(s), {len(inst.profiles)} profile(s); "
          f"{len(tab.shapes)} shape(s) usable at the SLOs, {len(tab.skipped)} skipped")
    for k in tab.skipped:
        print(f"  skipped {k.model} {k.role} {k.gpu_type} x{k.gpus_per_instance}: {k.reason}")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from pdopt.io import load_json
    from pdopt.verifier import PLANNED_STATUSES, format_violations, verify

    instance = _load_instance(args.file, args.allow_path, periods=True)  # the verifier learns the periods
    doc = load_json(args.plan, "plan")
    status = doc.get("status")
    if status not in PLANNED_STATUSES and isinstance(status, str):
        raise InputError(f"{args.plan}: status '{status}': the file holds no plan to verify (only plans with status "
                         "optimal or feasible have placements)")
    violations = verify(instance, doc)
    if violations:
        print(format_violations(violations))
        return EXIT_FAILED
    print(f"{args.plan}: the plan satisfies every constraint of '{instance.name}'")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from pdopt.comparison.bench import run as run_bench
    from pdopt.interrupt import PartialResult
    from pdopt.io.library import load_set
    from pdopt.progress import stage

    entries = load_set(args.set)
    try:  # progress on a terminal only (pdopt/progress.py): nothing extra when the output is piped
        rows = run_bench(entries, Path(args.out), solver_options(args),
                         baselines=not args.no_baselines, progress=stage)
    except PartialResult as partial:
        print(f"pdopt: interrupted; the report in {args.out}/ covers the {len(partial.done)} instance(s) measured "
              "before it (partial)", file=sys.stderr)
        return EXIT_INTERRUPTED
    written = ", ".join(sorted(f.name for f in Path(args.out).iterdir()))
    print(f"{len(rows)} instance(s); report in {args.out}/ ({written})")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from pdopt.comparison.baselines import compare
    from pdopt.interrupt import PartialResult
    from pdopt.io import dump_json
    from pdopt.report import table

    if args.simulate < 0:
        raise InputError(f"--simulate: must be 0 or more requests, got {args.simulate}")
    instance = _load_instance(args.file, args.allow_path)
    if args.fallbacks:
        return _fallbacks(instance, args)
    interrupted = False
    try:
        rows = compare(instance, simulate_requests=args.simulate, options=solver_options(args), seed=args.seed)
    except PartialResult as partial:
        rows, interrupted = partial.done, True
    if args.format == "json":
        print(dump_json({"rows": rows, "partial": interrupted}))
    elif args.format == "csv":
        from pdopt.tables import comparison_rows, rows_csv

        print(rows_csv(comparison_rows(rows)), end="")
    else:
        cols = ["name", "cost_usd_per_hour", "gpus", "nodes", "feasible", "saving_vs_milp_usd_per_hour",
                "saving_pct"]
        if args.simulate:
            cols += ["slo_met", "attainment"]
        print(table(cols, [[r.get(c) for c in cols] for r in rows]))
        for r in rows:
            if r.get("reason"):
                print(f"  {r['name']}: {r['reason']}")
        lines = [c["line"] for r in rows for c in r.get("mode_comparison", {}).values()]
        if lines:
            print("\nserving mode (the MILP's plan against aggregated_only and disaggregated_only)")
            print("\n".join(f"  {line}" for line in lines))
    if interrupted:
        print(f"pdopt: interrupted; {len(rows)} row(s) done are above (partial)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def fallback_rows(instance: Instance, options: SolverOptions) -> list[dict[str, Any]]:
    """The plan with every GPU type, then for each type the plan without it, ranked: plans by cost, then the types
    without which no plan exists (with the reason). ``extra_usd_per_hour`` is what losing the type costs."""
    from pdopt.optimize.pipeline import solve
    from pdopt.progress import stage

    stage("fallbacks: the plan with every GPU type")
    full = solve(instance, options)
    base = full.objective_usd_per_hour if full.has_plan else None
    rows: list[dict[str, Any]] = []
    for i, g in enumerate(instance.gpu_types, start=1):
        stage(f"fallbacks: without {g} ({i} of {len(instance.gpu_types)})")
        try:
            reduced = instance.without_gpu_types([g])
        except InputError as exc:  # a model left with no profile of some role
            rows.append({"without": g, "cost_usd_per_hour": None, "extra_usd_per_hour": None,
                         "gpu_types_used": "", "reason": str(exc).splitlines()[-1].strip()})
            continue
        plan = solve(reduced, options)
        cost = plan.objective_usd_per_hour if plan.has_plan else None
        rows.append({"without": g, "cost_usd_per_hour": cost,
                     "extra_usd_per_hour": None if cost is None or base is None else cost - base,
                     "gpu_types_used": ",".join(sorted({p.gpu_type for p in plan.placements})),
                     "reason": None if plan.has_plan else _short(plan.reason or "")})
    rows.sort(key=lambda r: (r["cost_usd_per_hour"] is None, r["cost_usd_per_hour"] or 0.0, r["without"]))
    return [{"without": "(nothing)", "cost_usd_per_hour": base, "extra_usd_per_hour": 0.0 if base is not None
             else None, "gpu_types_used": ",".join(sorted({p.gpu_type for p in full.placements})),
             "reason": None if full.has_plan else full.reason}, *rows]


def _short(reason: str) -> str:
    """An infeasibility reason on one line: what stays uncovered and what is short (its indented lines)."""
    lines = [ln.strip() for ln in reason.splitlines()]
    detail = [ln for ln in lines[1:] if ln and not ln.endswith(":")]
    return "; ".join(detail) if detail else lines[0] if lines else ""


def _fallbacks(instance: Instance, args: argparse.Namespace) -> int:
    from pdopt.io import dump_json
    from pdopt.report import table
    from pdopt.tables import rows_csv

    rows = fallback_rows(instance, solver_options(args))
    if args.format == "json":
        print(dump_json({"fallbacks": rows}))
    elif args.format == "csv":
        print(rows_csv(rows), end="")
    else:
        cols = ["without", "cost_usd_per_hour", "extra_usd_per_hour", "gpu_types_used", "reason"]
        print(table(cols, [[r[c] for c in cols] for r in rows]))
    return EXIT_OK


def _trace_rate(text: str) -> str | float:
    if text in ("workload", "native"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--trace-rate: '{text}' is not workload, native or a rate in requests/s") from None
    if not value > 0:
        raise InputError(f"--trace-rate: must be positive, got {text}")
    return value


def cmd_simulate(args: argparse.Namespace) -> int:
    from pdopt.io import dump_json, load_json
    from pdopt.io.traces import read_trace
    from pdopt.optimize.pipeline import solve
    from pdopt.plan import Plan
    from pdopt.report import format_simulation
    from pdopt.sim.options import SimOptions
    from pdopt.sim.run import simulate, tightness

    instance = _load_instance(args.file, args.allow_path, periods=True)
    if instance.horizon is not None:
        return _simulate_horizon(args, instance)
    if args.plan is not None:
        if args.scale_demand is not None:
            raise InputError("--scale-demand applies when planning first; a given --plan carries its own scale")
        plan = Plan.from_dict(load_json(args.plan, "plan"), args.plan)
    else:
        plan = solve(instance, scale_demand=args.scale_demand or 1.0)
        stop = unplanned_exit(plan, "simulate", "simulation")
        if stop is not None:
            return stop
    trace = read_trace(args.trace) if args.trace else None
    lengths = args.lengths or ("trace" if trace is not None else "workload")
    opts = SimOptions(requests=args.requests, seed=args.seed, prefill_dispatch=_policy(args.dispatch),
                      decode_dispatch=_policy(args.decode_dispatch), prefill_service=args.prefill_service,
                      prefill_scv=args.prefill_scv, lengths=lengths, trace_rate=_trace_rate(args.trace_rate),
                      arrivals=args.arrivals, length_tolerance=args.length_tolerance)
    result = simulate(instance, plan, opts, trace)
    for warning in result.warnings:
        print(f"pdopt: warning: {warning}", file=sys.stderr)
    tight = tightness(instance, plan, opts, trace) if args.tightness and not result.partial else None
    if args.format == "json":
        data = result.to_dict()
        if tight is not None:
            data["tightness"] = tight
        print(dump_json(data))
    elif args.format == "csv":
        from pdopt.tables import rows_csv, simulation_rows

        print(rows_csv(simulation_rows(result)), end="")
    else:
        print(format_simulation(result, tight))
    if result.partial:
        print(f"pdopt: interrupted; the statistics above cover the {result.requests_completed:,} requests that "
              "finished before it (partial)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _simulate_horizon(args: argparse.Namespace, instance: Instance) -> int:
    """``pdopt simulate`` on an instance with a horizon: every period against its fleet (pdopt.sim.horizon)."""
    from pdopt.io import dump_json, load_json
    from pdopt.io.traces import read_trace
    from pdopt.optimize.horizon import horizon_plan_from_dict, plan_horizon
    from pdopt.report import format_horizon_simulation
    from pdopt.sim.horizon import simulate_horizon
    from pdopt.sim.options import SimOptions

    for flag, given in (("--scale-demand", args.scale_demand is not None), ("--tightness", args.tightness)):
        if given:
            raise InputError(f"{flag}: not available for an instance with a horizon (it simulates each period)")
    if args.plan is not None:
        plan = horizon_plan_from_dict(load_json(args.plan, "plan"), args.plan)
        if plan.instance != instance.name:
            raise InputError(f"{args.plan}: a plan for instance '{plan.instance}', not '{instance.name}'")
    else:
        plan = plan_horizon(instance, static_peak=args.static)
        if not plan.has_plan:
            print(f"pdopt: no feasible plan to simulate: {plan.reason}", file=sys.stderr)
            return EXIT_INFEASIBLE
    trace = read_trace(args.trace) if args.trace else None
    lengths = args.lengths or ("trace" if trace is not None else "workload")
    opts = SimOptions(seed=args.seed, prefill_dispatch=_policy(args.dispatch),
                      decode_dispatch=_policy(args.decode_dispatch), prefill_service=args.prefill_service,
                      prefill_scv=args.prefill_scv, lengths=lengths, arrivals=args.arrivals,
                      length_tolerance=args.length_tolerance)
    result = simulate_horizon(instance, plan, opts, trace, args.trace_s_per_hour, args.requests_per_period,
                              static=args.static)
    print(dump_json(result.to_dict()) if args.format == "json" else format_horizon_simulation(result))
    if result.partial:
        print("pdopt: interrupted; the statistics above cover the requests that finished before it (partial)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def cmd_fidelity(args: argparse.Namespace) -> int:
    from pdopt.comparison.fidelity import evaluate, to_dict, with_models
    from pdopt.instance.unused import unused_fields
    from pdopt.io import dump_json, load_instance
    from pdopt.io.measurements import read_measurements
    from pdopt.report import fidelity_csv, format_fidelity, plot_fidelity

    if args.with_ is not None or args.estimated is not None:
        from pdopt.cli.estimate_commands import fidelity_of_estimates

        if args.measurements or (args.with_ is not None and args.estimated is not None):
            raise InputError("fidelity: give measurements, --estimate or --estimated, one of the three")
        return fidelity_of_estimates(args)
    if not args.measurements:
        raise InputError("fidelity: name measured runs (files), or compare estimates with --estimate/--estimated")
    if args.requests < 100:
        raise InputError(f"--requests: must be at least 100, got {args.requests}")
    if args.plot is not None and Path(args.plot).exists():
        raise InputError(f"--plot: {args.plot} exists; pdopt does not overwrite files")
    instance = with_models(load_instance(args.file, args.allow_path), args.queue_model, args.decode_model)
    for warning in unused_fields(instance):  # for the models the predictions use
        print(f"pdopt: warning: {warning}", file=sys.stderr)
    points = read_measurements(args.measurements, args.model, args.deployment)
    results = evaluate(instance, points, args.requests, args.seed, simulate_runs=not args.no_simulate)
    if args.plot is not None:
        from pdopt.io.files import write_new

        write_new(args.plot, plot_fidelity(results), "plot")
    if args.format == "json":
        print(dump_json(to_dict(results)))
    elif args.format == "csv":
        print(fidelity_csv(results), end="")
    else:
        print(format_fidelity(results))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """``pdopt report``: the HTML page of a plan (pdopt.report_html), planned first when no plan file is given;
    written as a new file, never over one."""
    from pdopt.io import load_json
    from pdopt.io.files import write_new
    from pdopt.plan import Plan
    from pdopt.report_curves import simulation_data
    from pdopt.report_html import render
    from pdopt.sim.run import check_plan_matches

    out = Path(args.out)  # refused before the work rather than after it (write_new checks again when writing)
    if out.exists():
        raise InputError(f"--out: {out} exists; pdopt does not overwrite files")
    if not out.parent.is_dir():
        raise InputError(f"--out: the folder {out.parent} does not exist")
    instance = _load_instance(args.instance, args.allow_path, periods=True)
    if instance.horizon is not None:
        raise InputError(f"{args.instance}: has a horizon; `pdopt plan --plot` draws a plan over periods")
    if args.plan is not None:
        plan = Plan.from_dict(load_json(args.plan, "plan"), args.plan)
        if not plan.has_plan:
            raise InputError(f"{args.plan}: status '{plan.status.value}': the file holds no plan to report")
        try:
            check_plan_matches(instance, plan)
        except InputError as exc:
            raise InputError(f"{args.plan}: {exc}") from None
    else:
        from pdopt.optimize.pipeline import solve

        plan = solve(instance, solver_options(args), explain_mode=False)
        stop = unplanned_exit(plan, "report", "report")
        if stop is not None:
            return stop
    sim = None if args.simulation is None else simulation_data(instance, load_json(args.simulation, "simulation"),
                                                               args.simulation)
    write_new(args.out, render(instance, plan, sim, baselines=not args.no_baselines), "report")
    print(f"wrote {args.out}")
    return EXIT_OK


def _policy(name: str) -> str:
    return "jsq" if name == "least_loaded" else name

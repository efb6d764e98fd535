"""The ``pdopt`` command line: plan, capacity/curves, validate, verify, simulate, compare, generate, profile, schema.

Exit codes: 0 success; 1 a plan failed verification or the solver failed; 2 invalid input (a message that names
the field, no traceback); 3 no feasible plan (with the reason in the instance's terms).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pdopt import __version__
from pdopt.baselines import compare
from pdopt.bench import load_set
from pdopt.bench import run as run_bench
from pdopt.calibrate import fit_gg1
from pdopt.capacity import capacity_table
from pdopt.generate import FAMILIES, generate
from pdopt.instance import Instance
from pdopt.io import InputError, dump_json, load_instance, load_json
from pdopt.optimize.pipeline import solve
from pdopt.optimize.solver import SOLVERS, SolverOptions, SolverUnavailableError
from pdopt.plan import Plan, SolveStatus
from pdopt.profiles import detect_format, import_csv, import_splitwise, import_vllm_bench
from pdopt.report import format_capacities, format_plan, format_simulation, table
from pdopt.sim.engine import DISPATCH_POLICIES
from pdopt.sim.run import LENGTH_MODES, SERVICE_DISTRIBUTIONS, SimOptions, simulate, tightness
from pdopt.sim.traces import read_trace
from pdopt.verify import format_violations, verify

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INFEASIBLE = 0, 1, 2, 3
DISPATCH_CHOICES = (*DISPATCH_POLICIES, "least_loaded")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _gap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a relative gap in [0, 1), got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pdopt", description="Cheapest P/D disaggregated LLM serving fleet under SLOs.")
    p.add_argument("--version", action="version", version=f"pdopt {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="plan the cheapest fleet for an instance file")
    plan.add_argument("file", help="instance file (YAML or JSON)")
    plan.add_argument("--format", choices=("table", "json"), default="table")
    plan.add_argument("--solver", choices=SOLVERS, default="cbc")
    plan.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS")
    plan.add_argument("--gap", type=_gap, default=0.0, metavar="REL", help="relative MIP gap to stop at (default 0)")
    plan.add_argument("--threads", type=int, default=1)
    plan.add_argument("--scale-demand", type=_positive_float, default=1.0, metavar="F",
                      help="multiply every demand by F (what if traffic grows 20%%? F = 1.2)")
    plan.add_argument("--maximize-scale", action="store_true",
                      help="fixed inventory: the largest uniform demand multiplier it serves, and its plan")

    cap = sub.add_parser("capacity", aliases=["curves"],
                         help="per shape: capacity at the SLOs, the binding limit, the model used, its inputs")
    cap.add_argument("file")
    cap.add_argument("--format", choices=("table", "json"), default="table")

    val = sub.add_parser("validate", help="check an instance file and say what is wrong, field by field")
    val.add_argument("file")

    ver = sub.add_parser("verify", help="check a plan JSON against an instance, independently of the solver")
    ver.add_argument("file", help="instance file")
    ver.add_argument("--plan", required=True, help="plan JSON written by `pdopt plan --format json`")

    sim = sub.add_parser("simulate", help="simulate a plan and check its SLOs (discrete-event, no GPU)")
    sim.add_argument("file", help="instance file")
    sim.add_argument("--plan", default=None, help="plan JSON from `pdopt plan --format json` (default: plan first)")
    sim.add_argument("--requests", type=int, default=20000, metavar="N")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--trace", default=None, metavar="FILE",
                     help="replay a trace: Azure CSV (TIMESTAMP,ContextTokens,GeneratedTokens) or Mooncake JSONL")
    sim.add_argument("--trace-rate", default="workload", metavar="workload|native|RPS",
                     help="rescale the trace to each model's planned rate (default), keep it, or set a rate")
    sim.add_argument("--lengths", choices=LENGTH_MODES, default=None,
                     help="request lengths: the workload's distribution or means (workload), the means (fixed), "
                          "exponential, or the trace's own (default: trace with --trace, else workload)")
    sim.add_argument("--dispatch", choices=DISPATCH_CHOICES, default="round_robin", help="prefill dispatch")
    sim.add_argument("--decode-dispatch", choices=DISPATCH_CHOICES, default="least_loaded")
    sim.add_argument("--prefill-service", choices=SERVICE_DISTRIBUTIONS, default="deterministic")
    sim.add_argument("--prefill-scv", type=float, default=1.0, metavar="SCV",
                     help="service-time SCV for gamma/lognormal prefill service (default 1)")
    sim.add_argument("--scale-demand", type=_positive_float, default=None, metavar="F",
                     help="when planning first: multiply every demand by F")
    sim.add_argument("--tightness", action="store_true",
                     help="also simulate with one instance fewer in each (model, role) that has more than one")
    sim.add_argument("--format", choices=("table", "json"), default="table")

    cmp_ = sub.add_parser("compare", help="the MILP plan against heuristic baselines (cost, feasibility, SLOs)")
    cmp_.add_argument("file")
    cmp_.add_argument("--simulate", type=int, default=0, metavar="N",
                      help="also simulate every plan with N requests and report SLO attainment")
    cmp_.add_argument("--seed", type=int, default=0)
    cmp_.add_argument("--format", choices=("table", "json"), default="table")

    bench = sub.add_parser("bench", help="solve a set of instances; write tables, plots and the machine description")
    bench.add_argument("--set", default="smoke", help="a set of instances/sets.yaml (smoke, ci, bench)")
    bench.add_argument("--out", default="bench-results", metavar="DIR", help="folder for the report (must be new)")
    bench.add_argument("--solver", choices=SOLVERS, default="cbc")
    bench.add_argument("--time-limit", type=_positive_float, default=60.0, metavar="SECONDS")
    bench.add_argument("--no-baselines", action="store_true", help="skip the heuristic baselines")

    gen = sub.add_parser("generate", help="write a synthetic instance of a scaling family (for benchmarks)")
    gen.add_argument("--family", choices=sorted(FAMILIES), default="fleet-S",
                     help="preset parameters; the flags below override them")
    gen.add_argument("--models", type=int)
    gen.add_argument("--gpu-types", type=int)
    gen.add_argument("--tp", default=None, metavar="1,2,4,8", help="tensor-parallel sizes")
    gen.add_argument("--pools", type=int)
    gen.add_argument("--nodes", default=None, metavar="MIN-MAX", help="nodes per pool, drawn uniformly")
    gen.add_argument("--domains", type=int)
    gen.add_argument("--demand-level", type=float, help="share of the inventory the cheapest plan should use")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--spine-gbps", type=float, help="add a network: each domain joined to a spine at this Gbit/s")
    gen.add_argument("--output", default=None, metavar="FILE", help="write here (never overwrites); else stdout")

    prof = sub.add_parser("profile", help="benchmark profiles: import measurements into the instance format")
    prof_sub = prof.add_subparsers(dest="profile_command", required=True)
    imp = prof_sub.add_parser("import", help="read a pdopt CSV, vLLM bench JSON files or Splitwise perf_model.csv")
    imp.add_argument("files", nargs="+", help="input file(s); several only for vLLM bench JSON runs of one sweep")
    imp.add_argument("--model", default=None, help="model id (vLLM: required; Splitwise: its model name)")
    imp.add_argument("--gpu-type", default=None, help="GPU type id (vLLM: required; Splitwise: the id to write)")
    imp.add_argument("--gpus-per-instance", type=int, default=None, help="vLLM: GPUs of the benchmarked instance")
    imp.add_argument("--role", choices=("prefill", "decode"), default=None, help="vLLM: which profile to build")
    imp.add_argument("--hardware", default=None, help="Splitwise: hardware name (a100-80gb, h100-80gb, ...)")
    imp.add_argument("--tensor-parallel", type=int, default=None, help="Splitwise: TP size")
    imp.add_argument("--output", default=None, metavar="FILE", help="write YAML here (never overwrites); else stdout")

    fit = prof_sub.add_parser("fit", help="fit a G/G/1 prefill model (service SCV, overhead) to a TTFT sweep")
    fit.add_argument("files", nargs="+", help="vLLM bench serve JSON runs of a --request-rate sweep, or one CSV "
                                             "with columns request_rate_rps,ttft_mean_s")
    fit.add_argument("--input-tokens", type=_positive_float, required=True, help="mean input length of the sweep")
    fit.add_argument("--max-throughput", type=_positive_float, default=None, metavar="TOK_S",
                     help="benchmarked max prefill throughput (fitted too when not given)")
    fit.add_argument("--arrival-scv", type=float, default=1.0)
    fit.add_argument("--ttft-target", type=_positive_float, default=None, metavar="SECONDS",
                     help="also report the fitted capacity at this mean TTFT")

    sub.add_parser("schema", help="print the JSON Schema of the instance format")
    return p


def _cmd_plan(args: argparse.Namespace) -> int:
    instance = load_instance(args.file)
    opts = SolverOptions(args.solver, args.time_limit, args.gap, args.threads)
    plan = solve(instance, opts, scale_demand=args.scale_demand, maximize_scale=args.maximize_scale)
    print(dump_json(plan.to_dict()) if args.format == "json" else format_plan(plan))
    if plan.has_plan:
        return EXIT_OK
    if args.format == "json":
        print(f"pdopt: no feasible plan: {plan.reason}", file=sys.stderr)
    if plan.status in (SolveStatus.INFEASIBLE, SolveStatus.NO_SOLUTION):
        return EXIT_INFEASIBLE
    return EXIT_FAILED


def _cmd_capacity(args: argparse.Namespace) -> int:
    inst = load_instance(args.file)
    tab = capacity_table(inst)
    if args.format == "json":
        def inputs(model: str, role: str, gpu: str, gpus: int, variant: str) -> dict[str, Any]:
            w = inst.workloads[model]
            prof = inst.profile(model, role, gpu, gpus, variant)
            return {"profile_source": prof.source, "input_tokens_mean": w.input_tokens_mean,
                    "output_tokens_mean": w.output_tokens_mean, "ttft": w.ttft.model_dump(),
                    "tpot": w.tpot.model_dump(), "ttft_overhead_s": w.ttft_overhead_s,
                    "queue_model": w.queue_model, "decode_model": w.decode_model}
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


def _cmd_validate(args: argparse.Namespace) -> int:
    inst = load_instance(args.file)
    tab = capacity_table(inst)
    print(f"{args.file}: valid instance '{inst.name}': {len(inst.models)} model(s), {len(inst.gpu_types)} GPU "
          f"type(s), {len(inst.node_pools)} node pool(s), {len(inst.profiles)} profile(s); "
          f"{len(tab.shapes)} shape(s) usable at the SLOs, {len(tab.skipped)} skipped")
    for k in tab.skipped:
        print(f"  skipped {k.model} {k.role} {k.gpu_type} x{k.gpus_per_instance}: {k.reason}")
    return EXIT_OK


def _cmd_verify(args: argparse.Namespace) -> int:
    instance = load_instance(args.file)
    violations = verify(instance, load_json(args.plan, "plan"))
    if violations:
        print(format_violations(violations))
        return EXIT_FAILED
    print(f"{args.plan}: the plan satisfies every constraint of '{instance.name}'")
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    entries = load_set(args.set)
    rows = run_bench(entries, Path(args.out), SolverOptions(args.solver, args.time_limit, threads=2),
                     baselines=not args.no_baselines, progress=lambda line: print(line, file=sys.stderr))
    print(f"{len(rows)} instance(s); report in {args.out}/ (results.csv, results.md, machine.json, "
          "solve_time.png, cost_vs_baselines.png)")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    if args.simulate < 0:
        raise InputError(f"--simulate: must be 0 or more requests, got {args.simulate}")
    rows = compare(load_instance(args.file), simulate_requests=args.simulate, seed=args.seed)
    if args.format == "json":
        print(dump_json({"rows": rows}))
        return EXIT_OK
    cols = ["name", "cost_usd_per_hour", "gpus", "nodes", "feasible", "saving_vs_milp_usd_per_hour", "saving_pct"]
    if args.simulate:
        cols += ["slo_met", "attainment"]
    print(table(cols, [[r.get(c) for c in cols] for r in rows]))
    for r in rows:
        if r.get("reason"):
            print(f"  {r['name']}: {r['reason']}")
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


def _cmd_simulate(args: argparse.Namespace) -> int:
    instance = load_instance(args.file)
    if args.plan is not None:
        if args.scale_demand is not None:
            raise InputError("--scale-demand applies when planning first; a given --plan carries its own scale")
        plan = Plan.from_dict(load_json(args.plan, "plan"), args.plan)
    else:
        plan = solve(instance, scale_demand=args.scale_demand or 1.0)
        if not plan.has_plan:
            print(f"pdopt: no feasible plan to simulate: {plan.reason}", file=sys.stderr)
            return EXIT_INFEASIBLE
    trace = read_trace(args.trace) if args.trace else None
    lengths = args.lengths or ("trace" if trace is not None else "workload")
    opts = SimOptions(requests=args.requests, seed=args.seed, prefill_dispatch=_policy(args.dispatch),
                      decode_dispatch=_policy(args.decode_dispatch), prefill_service=args.prefill_service,
                      prefill_scv=args.prefill_scv, lengths=lengths, trace_rate=_trace_rate(args.trace_rate))
    result = simulate(instance, plan, opts, trace)
    tight = tightness(instance, plan, opts, trace) if args.tightness else None
    if args.format == "json":
        data = result.to_dict()
        if tight is not None:
            data["tightness"] = tight
        print(dump_json(data))
    else:
        print(format_simulation(result, tight))
    return EXIT_OK


def _policy(name: str) -> str:
    return "jsq" if name == "least_loaded" else name


def _cmd_generate(args: argparse.Namespace) -> int:
    base = FAMILIES[args.family]
    changes: dict[str, Any] = {}
    for name in ("models", "gpu_types", "pools", "domains", "demand_level", "seed", "spine_gbps"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    try:
        if args.tp is not None:
            changes["tp_sizes"] = tuple(int(t) for t in args.tp.split(","))
        if args.nodes is not None:
            lo, _, hi = args.nodes.partition("-")
            changes["nodes_min"], changes["nodes_max"] = int(lo), int(hi or lo)
    except ValueError:
        raise InputError("--tp takes integers separated by commas (1,2,4,8); --nodes takes MIN-MAX") from None
    params = dataclasses.replace(base, **changes)
    try:
        doc = generate(params)
    except ValueError as exc:
        raise InputError(f"generate: {exc}") from None
    return _emit_yaml(doc, args.output, f"{params.family} with {params.models} models, {params.gpu_types} GPU "
                      f"types, {params.pools} pools, seed {params.seed}")


def _emit_yaml(doc: dict[str, Any], output: str | None, summary: str) -> int:
    """Print YAML, or write it to ``output``, never overwriting an existing file (the user's data is kept)."""
    text = yaml.safe_dump(doc, sort_keys=False)
    if output is None:
        print(text, end="")
        return EXIT_OK
    path = Path(output)
    if path.exists():
        raise InputError(f"--output: {path} exists; pdopt does not overwrite files (choose another name)")
    path.write_text(text)
    print(f"wrote {path}: {summary}")
    return EXIT_OK


def _need(args: argparse.Namespace, fmt: str, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise InputError(f"{args.files[0]}: a {fmt} import needs {', '.join(missing)}")


def _fit_points(files: list[str]) -> list[Any]:
    first = Path(files[0])
    if first.suffix == ".csv":
        import csv

        try:
            with first.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as exc:
            raise InputError(f"{first}: cannot read ({exc.strerror})") from None
        try:
            return [(float(r["request_rate_rps"]), float(r["ttft_mean_s"])) for r in rows]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{first}: needs numeric columns request_rate_rps,ttft_mean_s") from None
    if detect_format(files[0]) != "vllm_bench":
        raise InputError(f"{files[0]}: profile fit reads vLLM bench JSON runs or a CSV of request_rate_rps,ttft_mean_s")
    return list(import_vllm_bench(files, "model", "gpu", 1, "prefill").points)


def _cmd_profile_fit(args: argparse.Namespace) -> int:
    points = _fit_points(args.files)
    try:
        result = fit_gg1(points, args.input_tokens, args.max_throughput, args.arrival_scv)
    except ValueError as exc:
        raise InputError(f"profile fit: {exc}") from None
    out: dict[str, Any] = {"fit": result.to_dict(), "workload_fields": result.workload_fields()}
    if args.ttft_target is not None:
        out["capacity_rps_at_target"] = result.capacity_rps(args.ttft_target)
    print(yaml.safe_dump(out, sort_keys=False), end="")
    return EXIT_OK


def _cmd_profile(args: argparse.Namespace) -> int:
    if args.profile_command == "fit":
        return _cmd_profile_fit(args)
    fmt = detect_format(args.files[0])
    out: dict[str, Any]
    if fmt == "vllm_bench":
        _need(args, "vLLM bench", "model", "gpu_type", "gpus_per_instance", "role")
        res = import_vllm_bench(args.files, args.model, args.gpu_type, args.gpus_per_instance, args.role)
        out = {"profiles": [res.profile], "measured_points": res.points}
    elif len(args.files) > 1:
        raise InputError(f"{args.files[1]}: only vLLM bench runs may be given as several files")
    elif fmt == "splitwise":
        _need(args, "Splitwise", "model", "hardware", "tensor_parallel")
        out = {"profiles": import_splitwise(args.files[0], args.model, args.hardware, args.tensor_parallel,
                                            args.gpu_type)}
    else:
        out = {"profiles": import_csv(args.files[0], args.model, args.gpu_type)}
    return _emit_yaml(out, args.output, f"{len(out['profiles'])} profile(s) from {fmt}")


def _cmd_schema(_: argparse.Namespace) -> int:
    print(json.dumps(Instance.model_json_schema(), indent=2))
    return EXIT_OK


COMMANDS = {
    "plan": _cmd_plan, "capacity": _cmd_capacity, "curves": _cmd_capacity, "validate": _cmd_validate,
    "verify": _cmd_verify, "simulate": _cmd_simulate, "compare": _cmd_compare, "bench": _cmd_bench,
    "generate": _cmd_generate,
    "profile": _cmd_profile, "schema": _cmd_schema,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pdopt`` console script."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (InputError, SolverUnavailableError) as exc:
        print(f"pdopt: error: {exc}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())

"""The commands that read and write data rather than plan: benchmark profiles in (``profile import``, ``profile
fit``), generated instances (``generate``), deployment objects out (``export``), and the instance format's
schema (``schema``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from pdopt.cli.common import EXIT_FAILED, EXIT_OK, _emit_yaml, _load_instance
from pdopt.errors import InputError


def _need(args: argparse.Namespace, fmt: str, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise InputError(f"{args.files[0]}: a {fmt} import needs {', '.join(missing)}")


def _fit_points(files: list[str]) -> list[Any]:
    from pdopt.io.importers import detect_format, import_vllm_bench
    from pdopt.io.importers.sweep import read_ttft_sweep_csv

    if Path(files[0]).suffix == ".csv":
        return list(read_ttft_sweep_csv(files[0]))
    if detect_format(files[0]) != "vllm_bench":
        raise InputError(f"{files[0]}: profile fit reads vLLM bench JSON runs or a CSV of request_rate_rps,ttft_mean_s")
    return list(import_vllm_bench(files, "model", "gpu", 1, "prefill").points)


def cmd_profile_fit(args: argparse.Namespace) -> int:
    from pdopt.io.files import dump_yaml
    from pdopt.perf.calibrate import fit_gg1

    points = _fit_points(args.files)
    try:
        result = fit_gg1(points, args.input_tokens, args.max_throughput, args.arrival_scv)
    except ValueError as exc:
        raise InputError(f"profile fit: {exc}") from None
    out: dict[str, Any] = {"fit": result.to_dict(), "workload_fields": result.workload_fields()}
    if args.ttft_target is not None:
        out["capacity_rps_at_target"] = result.capacity_rps(args.ttft_target)
    print(dump_yaml(out), end="")
    return EXIT_OK


def cmd_profile(args: argparse.Namespace) -> int:
    if args.profile_command == "fit":
        return cmd_profile_fit(args)
    if args.profile_command in ("estimate", "calibrate"):
        from pdopt.cli.estimate_commands import cmd_profile_calibrate, cmd_profile_estimate

        return cmd_profile_estimate(args) if args.profile_command == "estimate" else cmd_profile_calibrate(args)
    from pdopt.io.importers import (
        detect_format,
        import_csv,
        import_dynamo_profile,
        import_splitwise,
        import_vllm_bench,
    )

    fmt = detect_format(args.files[0])
    details: list[dict[str, Any]] = []
    if (args.token_budget is None) != (args.max_batch is None):
        raise InputError("--token-budget and --max-batch: give both (an aggregated profile) or neither")
    engine = None if args.token_budget is None else (args.token_budget, args.max_batch)
    out: dict[str, Any]
    if fmt == "vllm_bench":
        _need(args, "vLLM bench", "model", "gpu_type", "gpus_per_instance", "role")
        res = import_vllm_bench(args.files, args.model, args.gpu_type, args.gpus_per_instance, args.role,
                                engine=engine, monotone=args.monotone, variant=args.variant,
                                tpot_from=args.tpot_from)
        out = {"profiles": [res.profile]}
        details = res.points
    elif fmt in ("aiperf", "evalscope"):
        from pdopt.io.importers.runs import as_vllm_run, read_tool_run

        _need(args, fmt, "model", "gpu_type", "gpus_per_instance", "role")
        res = import_vllm_bench(args.files, args.model, args.gpu_type, args.gpus_per_instance, args.role,
                                engine=engine, monotone=args.monotone, variant=args.variant,
                                runs=[as_vllm_run(read_tool_run(f, fmt)) for f in args.files])
        out = {"profiles": [res.profile]}
    elif fmt == "dynamo_profiler":
        _need(args, "Dynamo profiler", "model", "gpu_type", "gpus_per_instance")
        out = {"profiles": [import_dynamo_profile(f, args.model, args.gpu_type, args.gpus_per_instance,
                                                  variant=args.variant, output_tokens=args.output_tokens,
                                                  monotone=args.monotone) for f in args.files]}
    elif len(args.files) > 1:
        raise InputError(f"{args.files[1]}: only vLLM bench runs may be given as several files")
    elif fmt == "splitwise":
        _need(args, "Splitwise", "model", "hardware", "tensor_parallel")
        out = {"profiles": import_splitwise(args.files[0], args.model, args.hardware, args.tensor_parallel,
                                            args.gpu_type, aggregated=engine)}
    else:
        out = {"profiles": import_csv(args.files[0], args.model, args.gpu_type, monotone=args.monotone)}
    for prof in out["profiles"]:
        note = str(prof.get("source", ""))
        if " fit moved " in note:
            print(f"pdopt: {prof['model']} {prof['role']} on {prof['gpu_type']}: "
                  + note[note.index(" fit moved ") - len(args.monotone):].split("; runs:")[0], file=sys.stderr)
    return _emit_yaml(out, args.output, f"{len(out['profiles'])} profile(s) from {fmt}", details)


def cmd_export(args: argparse.Namespace) -> int:
    from pdopt.export import ExportSettings, export_plan
    from pdopt.io import load_json
    from pdopt.io.files import dump_yaml, read_text, write_new
    from pdopt.io.instances import parse_document
    from pdopt.plan import Plan

    instance = _load_instance(args.instance, args.allow_path)
    plan = Plan.from_dict(load_json(args.plan, "plan"), args.plan)
    settings = ExportSettings()
    if args.settings is not None:
        doc = parse_document(read_text(Path(args.settings), "settings file"), args.settings)
        settings = _validated_settings(doc, args.settings)
    from pdopt.verifier import format_violations, verify

    violations = verify(instance, plan.to_dict())
    if violations:
        print(format_violations(violations))
        print(f"pdopt: {args.plan} does not verify against {args.instance}; nothing exported", file=sys.stderr)
        return EXIT_FAILED
    result = export_plan(instance, plan, args.to, settings)
    if args.dry_run:
        print(result.summary())
        return EXIT_OK
    if args.out is None:
        print("---\n".join(f"# {result.file_name(kind, name)}\n" + dump_yaml(doc)
                           for kind, name, doc in result.documents), end="")
        return EXIT_OK
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out: {out} exists and is not an empty folder; pdopt does not overwrite files")
    out.mkdir(parents=True, exist_ok=True)
    for kind, name, doc in result.documents:
        write_new(out / result.file_name(kind, name), dump_yaml(doc), "export")
    print(f"wrote {len(result.documents)} document(s) to {out}/")
    return EXIT_OK


def _validated_settings(doc: object, source: str) -> Any:
    from pydantic import ValidationError

    from pdopt.errors import format_validation_error
    from pdopt.export import ExportSettings

    try:
        return ExportSettings.model_validate(doc)
    except ValidationError as err:
        lines = format_validation_error(err)
        raise InputError(f"{source}: {len(lines)} problem(s)\n" + "\n".join(f"  {ln}" for ln in lines)) from None


def cmd_schema(_: argparse.Namespace) -> int:
    from pdopt.instance import Instance

    print(json.dumps(Instance.model_json_schema(), indent=2))
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from pdopt.comparison.generate import FAMILIES, generate

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


def cmd_examples(args: argparse.Namespace) -> int:
    """``pdopt examples``: the bundled examples by name, the file each is and what it shows."""
    from pdopt.io.library import examples
    from pdopt.report import table

    print(table(["name", "file", "what it shows"], [[n, e["path"], e["about"]] for n, e in examples().items()]))
    print("\nuse one with --example NAME, e.g. `pdopt plan --example paper`")
    return EXIT_OK

"""The commands of estimated profiles: ``profile estimate`` (a roofline or AIConfigurator for shapes nobody has
measured), ``profile calibrate`` (estimates corrected by the measured shapes) and ``fidelity --estimate`` /
``--estimated`` (estimates against the instance's measurements, per shape)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from pdopt.cli.common import EXIT_OK, _emit_yaml, _load_instance
from pdopt.errors import InputError

if TYPE_CHECKING:
    from pdopt.estimate.base import EstimatedProfile, ShapeRequest
    from pdopt.estimate.compare import ShapeComparison
    from pdopt.instance import Instance, ShapeSearch


def _ints(text: str, flag: str, largest: int, least_count: int = 1) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{flag}: expected comma-separated whole numbers, got '{text}'") from None
    if len(values) < least_count or any(not 1 <= v <= largest for v in values) or list(values) != sorted(set(values)):
        raise InputError(f"{flag}: expected {least_count} or more increasing whole numbers from 1 to {largest}, "
                         f"got '{text}'")
    return values


def _floats(text: str, flag: str) -> tuple[float, ...]:
    """Increasing token lengths within the instance format's range of ``input_tokens``."""
    from pdopt.instance.base import RANGES

    lo, hi, _ = RANGES["input_tokens"]
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{flag}: expected comma-separated numbers, got '{text}'") from None
    if not values or any(not lo <= v <= hi for v in values) or list(values) != sorted(set(values)):
        raise InputError(f"{flag}: expected increasing lengths from {lo:g} to {hi:g} tokens, got '{text}'")
    return values


def _length(value: float | None, flag: str, field: str) -> float | None:
    """A length flag within the instance format's range of ``field`` (what the estimated profile will hold)."""
    from pdopt.instance.base import RANGES

    lo, hi, _ = RANGES[field]
    if value is not None and not lo <= value <= hi:
        raise InputError(f"{flag}: {value:g} is outside the range {lo:g} to {hi:g} tokens")
    return value


def _search(instance: Instance, args: argparse.Namespace) -> ShapeSearch:
    """The estimator settings: the instance's shape_search (efficiencies, AIConfigurator names), the flags over
    them."""
    from pdopt.instance import AicOptions, ShapeSearch

    base = instance.shape_search
    doc: dict[str, Any] = base.model_dump(mode="json") if base is not None else {"models": {}}
    doc["models"] = doc["models"] or {m: {} for m in instance.models}
    doc["estimator"] = args.with_
    aic = doc.get("aiconfigurator") or AicOptions().model_dump(mode="json")
    if args.aic_model:
        aic["models"] = {**aic.get("models", {}), **dict(_pairs(args.aic_model, "--aic-model"))}
    if args.system:
        aic["systems"] = {**aic.get("systems", {}), **dict(_pairs(args.system, "--system"))}
    if args.backend is not None:
        aic["backend"] = args.backend
    if args.backend_version is not None:
        aic["backend_version"] = args.backend_version
    doc["aiconfigurator"] = aic
    try:
        return ShapeSearch.model_validate(doc)
    except ValueError as exc:
        raise InputError(f"estimator settings: {exc}") from None


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"{flag}: expected ID=NAME, got '{item}'")
        out.append((key, value))
    return out


def _requests(instance: Instance, args: argparse.Namespace) -> list[ShapeRequest]:
    """The shapes the flags ask for (every model and GPU type with a node pool by default)."""
    from pdopt.estimate.base import ShapeRequest
    from pdopt.estimate.search import no_node_reason, node_fit, prefill_lengths

    models = [args.model] if args.model else sorted(instance.workloads)
    gpus = [args.gpu_type] if args.gpu_type else sorted({p.gpu_type for p in instance.node_pools.values()})
    for name, known, what in ((args.model, instance.models, "--model"), (args.gpu_type, instance.gpu_types,
                                                                          "--gpu-type")):
        if name is not None and name not in known:
            raise InputError(f"{what}: '{name}' is not in the instance (known: {', '.join(sorted(known))})")
    tps, eps = _ints(args.tp, "--tp", 1024), _ints(args.ep, "--ep", 1024)
    batches = _ints(args.batches, "--batches", 10_000_000, least_count=2)
    decode_input = _length(args.decode_input_tokens, "--decode-input-tokens", "input_tokens")
    output = _length(args.output_tokens, "--output-tokens", "output_tokens")
    out = []
    for mid in models:
        wl = instance.workloads[mid]
        inputs = _floats(args.input_tokens, "--input-tokens") if args.input_tokens else prefill_lengths(instance, mid)
        for gpu in gpus:
            for tp in tps:
                spans = node_fit(instance, gpu, tp)
                for ep in eps:
                    if tp % ep:
                        print(f"pdopt: {mid} {gpu} TP{tp} EP{ep}: not estimated: EP {ep} does not divide TP {tp}",
                              file=sys.stderr)
                        continue
                    if spans is None:
                        print(f"pdopt: {mid} {gpu} TP{tp}: not estimated: {no_node_reason(instance, gpu, tp)}",
                              file=sys.stderr)
                        continue
                    out.append(ShapeRequest(
                        model=mid, gpu_type=gpu, tp=tp, ep=ep, variant="default" if ep == 1 else f"ep{ep}",
                        roles=tuple(args.role) if args.role else ("prefill", "decode"), input_tokens=inputs,
                        decode_input_tokens=decode_input or wl.input_tokens_mean,
                        output_tokens=output or wl.output_tokens_mean, batches=batches,
                        spans_nodes=spans))
    return out


def _print_gaps(gaps: list[Any]) -> None:
    for gap in gaps:
        print(f"pdopt: {gap.message()}", file=sys.stderr)


def cmd_profile_estimate(args: argparse.Namespace) -> int:
    """``pdopt profile estimate``: estimated profiles, as YAML that pastes into the instance's ``profiles``."""
    from pdopt.estimate.search import estimate_shapes

    instance = _load_instance(args.instance, args.allow_path)
    search = _search(instance, args)
    result = estimate_shapes(instance, _requests(instance, args), search)
    _print_gaps(result.gaps)
    if not result.profiles:
        raise InputError("profile estimate: nothing could be estimated (see the lines above)")
    doc = {"profiles": [p.model_dump(mode="json", exclude_defaults=True) for p in result.profiles]}
    return _emit_yaml(doc, args.output, f"{len(result.profiles)} estimated profiles ({args.with_})")


def _read_estimated(path: str, instance: Instance) -> list[EstimatedProfile]:
    """The estimated prefill and decode profiles of a YAML file (``profiles:`` as ``profile estimate`` writes)."""
    from pydantic import ValidationError

    from pdopt.errors import format_validation_error
    from pdopt.instance import DecodeProfile, PrefillProfile
    from pdopt.io.files import parse_yaml, read_text

    doc = parse_yaml(read_text(path, "estimated profiles"), path)
    if not isinstance(doc, dict) or not isinstance(doc.get("profiles"), list):
        raise InputError(f"{path}: expected a mapping with a list 'profiles' (as `pdopt profile estimate` writes)")
    out = []
    for i, item in enumerate(doc["profiles"]):
        role = item.get("role") if isinstance(item, dict) else None
        if role not in ("prefill", "decode"):
            raise InputError(f"{path}: profiles[{i}].role: expected prefill or decode, got {role!r}")
        cls: type[PrefillProfile | DecodeProfile] = PrefillProfile if role == "prefill" else DecodeProfile
        try:
            prof = cls.model_validate(item)
        except ValidationError as err:
            lines = format_validation_error(err)
            raise InputError(f"{path}: profiles[{i}]: " + "; ".join(lines)) from None
        if prof.estimate is None:
            raise InputError(f"{path}: profiles[{i}].estimate: missing; these must be estimated profiles")
        if prof.model not in instance.models or prof.gpu_type not in instance.gpu_types:
            raise InputError(f"{path}: profiles[{i}]: model '{prof.model}' or GPU type '{prof.gpu_type}' is not "
                             "in the instance")
        out.append(prof)
    return out


def comparisons(instance: Instance, estimated: list[EstimatedProfile]) -> list[ShapeComparison]:
    """Each estimated profile against the measured profile of the same shape (variant aside when only one)."""
    from pdopt.estimate.compare import compare, mismatch
    from pdopt.instance import DecodeProfile, PrefillProfile

    measured = {p.key: p for p in instance.profiles
                if isinstance(p, PrefillProfile | DecodeProfile) and p.estimate is None}
    rows = []
    for est in estimated:
        meas = measured.get(est.key)
        if meas is None:
            continue
        if isinstance(meas, DecodeProfile) and isinstance(est, DecodeProfile):
            why = mismatch(meas, est, instance)
            if why is not None:
                print(f"pdopt: {est.model} decode {est.gpu_type} x{est.gpus_per_instance}: not compared: {why}",
                      file=sys.stderr)
                continue
        row = compare(meas, est, instance)
        if row is not None:
            rows.append(row)
    return rows


def fidelity_of_estimates(args: argparse.Namespace) -> int:
    """``pdopt fidelity FILE --estimate ESTIMATOR`` or ``--estimated FILE``: estimate against measurement."""
    from pdopt.estimate.compare import comparison_dict, format_comparisons
    from pdopt.estimate.search import measured_comparisons
    from pdopt.io import dump_json

    instance = _load_instance(args.file, args.allow_path)
    if args.estimated is None:  # every measured shape, estimated at its own points
        rows, gaps = measured_comparisons(instance, _search(instance, args))
        _print_gaps(gaps)
    else:
        rows = comparisons(instance, _read_estimated(args.estimated, instance))
    if not rows:
        raise InputError("fidelity: no estimated shape has a measured counterpart in the instance (same model, "
                         "role, GPU type, GPUs per instance and variant)")
    if args.format == "json":
        print(dump_json({"comparisons": comparison_dict(rows)}))
    elif args.format == "csv":
        print("model,role,gpu_type,gpus_per_instance,variant,estimator,x,measured,estimated,ratio")
        for r in rows:
            for p in r.pairs:
                print(f"{','.join(str(k) for k in r.key)},{r.estimator},{p.x:g},{p.measured:.6g},{p.estimated:.6g},"
                      f"{p.ratio:.6g}")
    else:
        print(format_comparisons(rows))
    return EXIT_OK


def cmd_profile_calibrate(args: argparse.Namespace) -> int:
    """``pdopt profile calibrate``: fit a factor per (GPU type, role) from the estimated shapes the instance also
    measures; write the other estimated profiles corrected."""
    from pdopt.estimate.calibrate import calibrate, fit_corrections, format_corrections

    instance = _load_instance(args.instance, args.allow_path)
    estimated = _read_estimated(args.estimated, instance)
    corrections = fit_corrections(comparisons(instance, estimated))
    print(format_corrections(corrections), file=sys.stderr)
    measured = {p.key for p in instance.profiles if p.estimate is None}
    rest = [p for p in estimated if p.key not in measured]
    if not corrections:
        raise InputError(f"profile calibrate: no profile of {args.estimated} has a measured counterpart in "
                         f"{args.instance} (same model, role, GPU type, GPUs per instance and variant)")
    if not rest:
        raise InputError(f"profile calibrate: every profile of {args.estimated} is measured; nothing to correct")
    fixed = calibrate(rest, corrections)
    doc = {"profiles": [p.model_dump(mode="json", exclude_defaults=True) for p in fixed]}
    return _emit_yaml(doc, args.output, f"{len(fixed)} calibrated profiles")

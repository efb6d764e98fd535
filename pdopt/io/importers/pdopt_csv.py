"""Importer of pdopt CSV: one row per measured point, any number of shapes per file.

See :mod:`pdopt.io.importers.common` for the rules every importer follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdopt.errors import InputError
from pdopt.instance import ROLES
from pdopt.io.importers.common import (
    CSV_COLUMNS,
    CSV_OPTIONAL_COLUMNS,
    THROUGHPUT_DIGITS,
    TPOT_DIGITS,
    _check_columns,
    _csv_rows,
    _identifier,
    _integer,
    _lines_word,
    _number,
    _profile_head,
    _read_text,
    _tidy,
    _validated,
)
from pdopt.io.importers.monotone import MONOTONE_FITS, monotone_fit, moved_note


@dataclass
class _CsvGroup:
    """Rows of one profile key, in file order."""

    lines: list[int] = field(default_factory=list)
    points: dict[float, list[tuple[int, float]]] = field(default_factory=dict)
    """x (input_tokens or batch) -> [(line, y)]: repeats of a point are averaged."""
    input_tokens: dict[float, list[int]] = field(default_factory=dict)
    output_tokens: dict[float, list[int]] = field(default_factory=dict)


def import_csv(path: str | Path, model: str | None = None, gpu_type: str | None = None,
               monotone: str = "refuse") -> list[dict[str, Any]]:
    """Profiles from a pdopt CSV: one row per measurement, grouped into one profile per shape.

    Header (any order; lines starting with ``#`` are comments)::

        model,gpu_type,gpus_per_instance,role,input_tokens,batch,max_throughput_tok_per_s,tpot_ms[,variant][,output_tokens]

    Every row needs ``model``, ``gpu_type``, ``gpus_per_instance`` and ``role`` (``prefill`` or ``decode``).
    A prefill row needs ``input_tokens`` and ``max_throughput_tok_per_s``; a decode row needs ``batch`` (a whole
    number) and ``tpot_ms``, and may give ``input_tokens`` / ``output_tokens`` (the lengths the curve was measured
    at; all rows of one curve must agree). Cells a role does not use are ignored and may be empty. ``variant``
    (default ``default``) separates engine settings of one shape.

    Rows with the same (model, role, gpu_type, gpus_per_instance, variant) form one profile, in order of first
    appearance; repeated points (same input_tokens, or same batch) are averaged, because repeats are how
    benchmarks are run and the planner wants one number per point. Rejected with an InputError naming the file
    and line: a missing column, a cell that is not a positive number, an unknown role, a decode curve whose
    (averaged) TPOT falls as the batch grows, a decode curve with fewer than 2 batch sizes.

    ``model`` / ``gpu_type`` keep only that model's / GPU type's rows (all rows are still checked).
    ``monotone`` (:mod:`pdopt.io.importers.monotone`): ``isotonic`` or ``envelope`` fit a falling decode curve
    instead of refusing it (weights: the rows averaged into each point); the points moved are in ``source``.
    """
    p = Path(path)
    header_line, header, rows = _csv_rows(p, _read_text(p))
    _check_columns(p, header_line, header, CSV_COLUMNS, "pdopt_csv")
    unknown = [c for c in header if c not in CSV_COLUMNS and c not in CSV_OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(f"{p} line {header_line}: unknown column(s) {', '.join(unknown)} (a pdopt CSV has "
                         f"{','.join(CSV_COLUMNS)} and optionally {','.join(CSV_OPTIONAL_COLUMNS)})")
    groups: dict[tuple[str, str, str, int, str], _CsvGroup] = {}
    for line, cells in rows:
        where = f"{p} line {line}"
        if len(cells) != len(header):
            raise InputError(f"{where}: {len(cells)} cells, but the header (line {header_line}) names {len(header)}")
        rec = dict(zip(header, cells, strict=True))
        m = _identifier(rec["model"], "model", where)
        g = _identifier(rec["gpu_type"], "gpu_type", where)
        role = rec["role"]
        if role not in ROLES:
            raise InputError(f"{where}: unknown role '{role}' (expected prefill or decode)")
        gpus = _integer(rec["gpus_per_instance"], "gpus_per_instance", where)
        variant = _identifier(rec.get("variant") or "default", "variant", where)
        need = f" (a {role} row needs it)"
        if role == "prefill":
            x = _number(rec["input_tokens"], "input_tokens", where, need)
            y = _number(rec["max_throughput_tok_per_s"], "max_throughput_tok_per_s", where, need)
        else:
            x = float(_integer(rec["batch"], "batch", where, need))
            y = _number(rec["tpot_ms"], "tpot_ms", where, need)
        if (model is not None and m != model) or (gpu_type is not None and g != gpu_type):
            continue
        grp = groups.setdefault((m, role, g, gpus, variant), _CsvGroup())
        grp.lines.append(line)
        grp.points.setdefault(x, []).append((line, y))
        if role == "decode":
            for col, seen in (("input_tokens", grp.input_tokens), ("output_tokens", grp.output_tokens)):
                if rec.get(col):
                    seen.setdefault(_number(rec[col], col, where), []).append(line)
    if not groups:
        wanted = " and ".join(f"{k} '{v}'" for k, v in (("model", model), ("gpu_type", gpu_type)) if v is not None)
        raise InputError(f"{p}: no measurement rows" + (f" for {wanted}" if wanted else ""))
    if monotone not in MONOTONE_FITS:
        raise InputError(f"monotone: '{monotone}' is not one of {', '.join(MONOTONE_FITS)}")
    return [_csv_profile(p, key, grp, monotone) for key, grp in groups.items()]


def _csv_profile(p: Path, key: tuple[str, str, str, int, str], grp: _CsvGroup, monotone: str) -> dict[str, Any]:
    model, role, gpu_type, gpus, variant = key
    shape = f"{role} profile ({model}, {gpu_type}, {gpus} GPUs" + (f", variant {variant}" if variant != "default"
                                                                   else "") + ")"
    prof = _profile_head(model, role, gpu_type, gpus, variant)
    xs = sorted(grp.points)
    means = [sum(y for _, y in grp.points[x]) / len(grp.points[x]) for x in xs]
    repeats = sum(len(v) for v in grp.points.values()) > len(xs)
    note = "; repeated points averaged" if repeats else ""
    if role == "prefill":
        prof["max_throughput_by_input"] = [
            {"input_tokens": _tidy(x), "max_throughput_tok_per_s": round(y, THROUGHPUT_DIGITS)}
            for x, y in zip(xs, means, strict=True)]
    else:
        if len(xs) < 2:
            raise InputError(f"{p} {_lines_word(grp.lines)}: the {shape} has {len(xs)} batch size(s) "
                             f"({', '.join(str(int(x)) for x in xs)}); a TPOT curve needs at least 2")
        tpots = [round(y, TPOT_DIGITS) for y in means]
        if monotone != "refuse":
            tpots, moved = monotone_fit(xs, tpots, monotone, [len(grp.points[x]) for x in xs], TPOT_DIGITS)
            note += moved_note(moved, monotone, "batch", "tpot_ms")
        for i in range(1, len(xs)):
            if tpots[i] < tpots[i - 1]:
                here = [ln for ln, _ in grp.points[xs[i]]]
                prev = [ln for ln, _ in grp.points[xs[i - 1]]]
                raise InputError(
                    f"{p} {_lines_word(here)}: the {shape} falls as the batch grows: batch {int(xs[i])} has "
                    f"tpot_ms {tpots[i]} (mean), below batch {int(xs[i - 1])}'s {tpots[i - 1]} "
                    f"({_lines_word(prev)}); TPOT must not fall as the batch grows (re-measure or delete the row)")
        prof["tpot_by_batch"] = [{"batch": int(x), "tpot_ms": t} for x, t in zip(xs, tpots, strict=True)]
        for col, seen in (("input_tokens", grp.input_tokens), ("output_tokens", grp.output_tokens)):
            if len(seen) > 1:
                detail = "; ".join(f"{_tidy(v)} on {_lines_word(lns)}" for v, lns in seen.items())
                raise InputError(f"{p}: the {shape} mixes {col} values ({detail}); a curve is measured at one "
                                 "length (give the other lengths another variant)")
            if seen:
                prof[col] = _tidy(next(iter(seen)))
    prof["source"] = f"{p} {_lines_word(grp.lines)} (pdopt CSV{note})"
    return _validated(prof, f"{p} {_lines_word(grp.lines)}")


# ----------------------------------------------------------------------------------------------- vLLM bench

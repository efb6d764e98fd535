"""Importer of Splitwise's published ``perf_model.csv``: prefill and decode times by prompt and batch.

See :mod:`pdopt.io.importers.common` for the rules every importer follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdopt.errors import InputError
from pdopt.io.importers.common import (
    SPLITWISE_COLUMNS,
    SPLITWISE_DECODE_OUTPUT,
    SPLITWISE_DECODE_PROMPT,
    SPLITWISE_PREFILL_BATCH,
    SPLITWISE_PREFILL_OUTPUT,
    THROUGHPUT_DIGITS,
    TPOT_DIGITS,
    _check_columns,
    _csv_rows,
    _identifier,
    _integer,
    _lines_word,
    _number,
    _read_text,
    _validated,
)


@dataclass(frozen=True)
class _SplitwiseRow:
    line: int
    prompt: int
    batch: int
    tokens: int
    prompt_time_ms: float
    token_time_ms: float


def import_splitwise(path: str | Path, model: str, hardware: str, tensor_parallel: int,
                     gpu_type_id: str | None = None, *, model_id: str | None = None,
                     aggregated: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The prefill and decode profiles of one (model, hardware, tensor_parallel) of Splitwise's perf_model.csv.

    Splitwise (ISCA'24, Mutinifni/splitwise-sim ``data/perf_model.csv``) measured whole-batch prefill time
    ``prompt_time`` (ms) and per-iteration decode time ``token_time`` (ms) against prompt_size, batch_size,
    token_size (output tokens) and tensor_parallel. The rules are those of the bundled example instance
    (instances/examples/llama70b-bloom176b-a100-h100.yaml), so that this import reproduces its numbers:

    * prefill: rows batch_size 1, token_size 128, one point per prompt_size, max_throughput_tok_per_s =
      prompt_size / (mean prompt_time / 1000), rounded to 0.1 tok/s;
    * decode: rows prompt_size 512, token_size 128, one point per batch_size, tpot_ms = mean token_time,
      rounded to 0.001 ms; going up in batch, a batch whose mean TPOT is below the previous kept batch's is
      dropped (the profile format needs TPOT non-decreasing; the planner interpolates across the gap), and the
      dropped rows are listed in ``source``;
    * rows repeated verbatim (the batch 1 / prompt 512 / output 128 configuration is listed in three sweeps of
      the file) count once.

    ``model`` and ``hardware`` are Splitwise's names (``llama2-70b``, ``a100-80gb``); the profiles' ids default
    to them with ``-`` made ``_`` (``model_id``, ``gpu_type_id`` override). gpus_per_instance = tensor_parallel.
    Returns ``[prefill_profile, decode_profile]``, and with ``aggregated = (token_budget, max_batch)`` also an
    aggregated profile with those engine settings, whose iteration model is composed from ALL the
    configuration's distinct rows (every prompt, batch and output size) by :func:`pdopt.perf.iteration.
    compose_iteration`: prefill and decode fitted separately, a mixed iteration paying the decode fixed cost
    once.
    """
    p = Path(path)
    header_line, header, rows = _csv_rows(p, _read_text(p))
    _check_columns(p, header_line, header, SPLITWISE_COLUMNS, "splitwise")
    mid = _identifier(model_id if model_id is not None else model.lower().replace("-", "_"), "model id", str(p))
    gid = _identifier(gpu_type_id if gpu_type_id is not None else hardware.lower().replace("-", "_"),
                      "gpu type id", str(p))
    col = {c: header.index(c) for c in SPLITWISE_COLUMNS}
    seen: set[tuple[str, ...]] = set()
    duplicates: list[_SplitwiseRow] = []
    kept: list[_SplitwiseRow] = []
    available: set[str] = set()
    for line, cells in rows:
        where = f"{p} line {line}"
        if len(cells) != len(header):
            raise InputError(f"{where}: {len(cells)} cells, but the header (line {header_line}) names {len(header)}")
        tp = _integer(cells[col["tensor_parallel"]], "tensor_parallel", where)
        available.add(f"{cells[col['model']]}/{cells[col['hardware']]}/TP{tp}")
        if cells[col["model"]] != model or cells[col["hardware"]] != hardware or tp != tensor_parallel:
            continue
        row = _SplitwiseRow(
            line, _integer(cells[col["prompt_size"]], "prompt_size", where),
            _integer(cells[col["batch_size"]], "batch_size", where),
            _integer(cells[col["token_size"]], "token_size", where),
            _number(cells[col["prompt_time"]], "prompt_time", where),
            _number(cells[col["token_time"]], "token_time", where))
        (duplicates if tuple(cells) in seen else kept).append(row)
        seen.add(tuple(cells))
    what = f"{model}, {hardware}, tensor_parallel {tensor_parallel}"
    if not kept:
        raise InputError(f"{p}: no rows for {what} (the file has {', '.join(sorted(available)) or 'no rows'})")
    head = {"model": mid, "gpu_type": gid, "gpus_per_instance": tensor_parallel}
    out = [_splitwise_prefill(p, what, head, kept, duplicates), _splitwise_decode(p, what, head, kept, duplicates)]
    if aggregated is not None:
        out.append(_splitwise_aggregated(p, what, head, kept, duplicates, *aggregated))
    return out


def _splitwise_aggregated(p: Path, what: str, head: dict[str, Any], rows: list[_SplitwiseRow],
                          duplicates: list[_SplitwiseRow], token_budget: int, max_batch: int) -> dict[str, Any]:
    from pdopt.perf.iteration import DecodeTime, PrefillTime, compose_iteration

    try:
        comp = compose_iteration([PrefillTime(r.batch, r.prompt, r.prompt_time_ms) for r in rows],
                                 [DecodeTime(r.batch, r.prompt, r.tokens, r.token_time_ms) for r in rows],
                                 f"Splitwise perf_model.csv ({what}): {len(rows)} distinct rows, {p} "
                                 f"{_lines_word(r.line for r in rows)}{_repeat_note(duplicates)}")
    except ValueError as exc:
        raise InputError(f"{p}: cannot compose an aggregated iteration model for {what}: {exc}") from None
    it = comp.iteration
    prof = {"model": head["model"], "role": "aggregated", "gpu_type": head["gpu_type"],
            "gpus_per_instance": head["gpus_per_instance"], "token_budget": token_budget, "max_batch": max_batch,
            "iteration": {"overhead_ms": round(it.overhead_ms, 4),
                          "per_prefill_token_ms": float(f"{it.per_prefill_token_ms:.6g}"),
                          "prefill_quadratic_ms": float(f"{it.prefill_quadratic_ms:.6g}"),
                          "per_context_token_ms": float(f"{it.per_context_token_ms:.6g}"),
                          "per_decode_seq_ms": float(f"{it.per_decode_seq_ms:.6g}"), "source": it.source},
            "source": f"iteration model composed from Splitwise's separate prefill and decode times "
                      f"(pdopt/perf/iteration.py); engine settings token_budget {token_budget}, max_batch "
                      f"{max_batch} as given to the import"}
    return _validated(prof, f"{p} ({what})")


def _repeat_note(duplicates: list[_SplitwiseRow]) -> str:
    """Provenance of the rows skipped as verbatim repeats of rows used."""
    if not duplicates:
        return ""
    return f"; {len(duplicates)} verbatim repeat rows counted once ({_lines_word(r.line for r in duplicates)})"


def _is_prefill_row(r: _SplitwiseRow) -> bool:
    return r.batch == SPLITWISE_PREFILL_BATCH and r.tokens == SPLITWISE_PREFILL_OUTPUT


def _is_decode_row(r: _SplitwiseRow) -> bool:
    return r.prompt == SPLITWISE_DECODE_PROMPT and r.tokens == SPLITWISE_DECODE_OUTPUT


def _splitwise_prefill(p: Path, what: str, head: dict[str, Any], rows: list[_SplitwiseRow],
                       duplicates: list[_SplitwiseRow]) -> dict[str, Any]:
    by_prompt: dict[int, list[_SplitwiseRow]] = {}
    for r in rows:
        if _is_prefill_row(r):
            by_prompt.setdefault(r.prompt, []).append(r)
    dup_note = _repeat_note([r for r in duplicates if _is_prefill_row(r)])
    if not by_prompt:
        raise InputError(f"{p}: no prefill rows for {what} (batch_size {SPLITWISE_PREFILL_BATCH}, token_size "
                         f"{SPLITWISE_PREFILL_OUTPUT})")
    curve = []
    for prompt in sorted(by_prompt):
        group = by_prompt[prompt]
        mean_ms = sum(r.prompt_time_ms for r in group) / len(group)
        curve.append({"input_tokens": prompt, "max_throughput_tok_per_s": round(prompt / (mean_ms / 1000.0),
                                                                                 THROUGHPUT_DIGITS)})
    used = [r.line for g in by_prompt.values() for r in g]
    prof = {"model": head["model"], "role": "prefill", "gpu_type": head["gpu_type"],
            "gpus_per_instance": head["gpus_per_instance"], "max_throughput_by_input": curve,
            "source": (f"Splitwise perf_model.csv ({what}): batch_size {SPLITWISE_PREFILL_BATCH}, token_size "
                       f"{SPLITWISE_PREFILL_OUTPUT}; prompt_size / mean prompt_time; {p} {_lines_word(used)}"
                       f"{dup_note}")}
    return _validated(prof, f"{p} {_lines_word(used)}")


def _splitwise_decode(p: Path, what: str, head: dict[str, Any], rows: list[_SplitwiseRow],
                      duplicates: list[_SplitwiseRow]) -> dict[str, Any]:
    by_batch: dict[int, list[_SplitwiseRow]] = {}
    for r in rows:
        if _is_decode_row(r):
            by_batch.setdefault(r.batch, []).append(r)
    dup_note = _repeat_note([r for r in duplicates if _is_decode_row(r)])
    curve: list[dict[str, Any]] = []
    used: list[int] = []
    dropped: list[str] = []
    for batch in sorted(by_batch):
        group = by_batch[batch]
        tpot = round(sum(r.token_time_ms for r in group) / len(group), TPOT_DIGITS)
        lines = [r.line for r in group]
        if curve and tpot < curve[-1]["tpot_ms"]:
            prev = curve[-1]
            dropped.append(f"batch {batch} row dropped (TPOT {tpot} ms below batch {prev['batch']}'s "
                           f"{prev['tpot_ms']} ms; {_lines_word(lines)})")
            continue
        curve.append({"batch": batch, "tpot_ms": tpot})
        used.extend(lines)
    if len(curve) < 2:
        raise InputError(f"{p}: {len(curve)} decode batch size(s) kept for {what} (prompt_size "
                         f"{SPLITWISE_DECODE_PROMPT}, token_size {SPLITWISE_DECODE_OUTPUT}); a TPOT curve needs 2")
    prof = {"model": head["model"], "role": "decode", "gpu_type": head["gpu_type"],
            "gpus_per_instance": head["gpus_per_instance"], "tpot_by_batch": curve,
            "input_tokens": SPLITWISE_DECODE_PROMPT, "output_tokens": SPLITWISE_DECODE_OUTPUT,
            "source": (f"Splitwise perf_model.csv ({what}): prompt_size {SPLITWISE_DECODE_PROMPT}, token_size "
                       f"{SPLITWISE_DECODE_OUTPUT}; mean token_time per batch_size; "
                       + "".join(d + "; " for d in dropped) + f"{p} {_lines_word(used)}{dup_note}")}
    return _validated(prof, f"{p} {_lines_word(used)}")


# ----------------------------------------------------------------------------------------------- detection

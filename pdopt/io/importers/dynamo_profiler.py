"""NVIDIA Dynamo's pre-deployment profiler (``profile_sla``): its interpolation data, ``raw_data.npz`` (or the same
arrays as JSON, ``{key: {dtype, shape, values}}``), into a prefill or a decode profile.

Arrays read (the example run kept in ../shared/data/benchmark-formats/dynamo-profiler/, ai-dynamo/dynamo
``components/src/dynamo/planner/tests/data/profiling_results/H200_TP1P_TP1D/`` at 2a6da14c, added in dea0b201):

- prefill (``selected_prefill_interpolation``): ``prefill_isl`` (tokens), ``prefill_ttft`` (ms: the time to first
  token of one request of that input length) and ``prefill_thpt_per_gpu`` (tokens/s per GPU). The profile's
  maximum throughput at input length L is X(L) = L / TTFT(L), one request at a time, the M/M/1 service the
  capacity model assumes; the import checks that ``prefill_thpt_per_gpu`` x GPUs per instance equals it (within
  1%), which catches a wrong ``gpus_per_instance``.
- decode (``selected_decode_interpolation``): ``x_kv_usage`` (share of the KV cache in use), ``y_context_length``
  (tokens per request in the KV cache), ``z_itl`` (ms, inter-token latency), ``z_thpt_per_gpu`` and
  ``max_kv_tokens``. Each point is a batch of B requests of y tokens each, so x = B y / max_kv_tokens and
  B = x max_kv_tokens / y (a whole number in the profiler's data; the import checks it within 1%). The points
  of one context length are a TPOT(batch) curve (TPOT = ITL, the first token excluded); the curves at several
  context lengths are the profile's ``tpot_by_input``, keyed by the input length y - output_tokens / 2 (the mean
  context of a request that has produced half its output; ``output_tokens`` is the sweep's output length, which
  the data does not record: 500 in the profiler that wrote the example, :data:`DECODE_OUTPUT_TOKENS`).

Files are untrusted: ``.npz`` is loaded with ``allow_pickle=False``, at most the benchmark size limit, each array
checked for its dtype, shape and finite values; a missing array is an InputError naming it.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from pdopt.errors import InputError
from pdopt.io.files import limit_bytes
from pdopt.io.importers.common import THROUGHPUT_DIGITS, TPOT_DIGITS, _profile_head, _tidy, _validated
from pdopt.io.importers.guard import read_json, untrusted
from pdopt.io.importers.monotone import MONOTONE_FITS, monotone_fit, moved_note

__all__ = ["DECODE_KEYS", "DECODE_OUTPUT_TOKENS", "PREFILL_KEYS", "import_dynamo_profile", "read_arrays"]

PREFILL_KEYS = ("prefill_isl", "prefill_ttft", "prefill_thpt_per_gpu")
DECODE_KEYS = ("x_kv_usage", "y_context_length", "z_itl", "z_thpt_per_gpu", "max_kv_tokens")
MAX_POINTS = 100_000
DECODE_OUTPUT_TOKENS = 500.0
"""The decode sweep's output length: ``osl = 500`` in ``profile_decode()``, benchmarks/profiler/utils/
profile_decode.py line 36 of ai-dynamo/dynamo at dea0b201 (the commit that added the example data), with
y_context_length = isl + osl / 2 (line 62). A later profiler may differ: ``output_tokens`` overrides it."""


@untrusted("Dynamo profiler data file")
def read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The named 1-D float arrays of a profiler ``raw_data.npz`` (``allow_pickle=False``) or its JSON form."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        if not p.is_file():
            raise InputError(f"{p}: no such file")
        if p.stat().st_size > limit_bytes("benchmark"):
            raise InputError(f"{p}: larger than the benchmark file limit")
        with zipfile.ZipFile(p) as archive:  # the arrays' size once expanded, before any is loaded
            expanded = sum(info.file_size for info in archive.infolist())
        if expanded > limit_bytes("benchmark"):
            raise InputError(f"{p}: its arrays expand to {expanded:,} bytes, above the benchmark file limit")
        try:
            with np.load(p, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{p}: not a readable .npz without pickled objects ({exc})") from None
    else:
        doc = read_json(p, "profiler data")
        if not isinstance(doc, dict):
            raise InputError(f"{p}: expected an object of arrays")
        raw = {}
        for k, v in doc.items():
            if not isinstance(v, dict) or not isinstance(v.get("values"), list):
                raise InputError(f"{p}: {k}: expected {{dtype, shape, values}}")
            try:
                raw[k] = np.asarray(v["values"], dtype=float)
            except (TypeError, ValueError):
                raise InputError(f"{p}: {k}.values: not a list of numbers") from None
    out = {}
    for k, a in raw.items():
        if a.dtype.kind not in "iuf" or a.ndim != 1 or not 1 <= a.size <= MAX_POINTS:
            raise InputError(f"{p}: {k}: expected a 1-D numeric array of 1 to {MAX_POINTS} values, got dtype "
                             f"{a.dtype}, shape {a.shape}")
        a = a.astype(float)
        if not np.isfinite(a).all():
            raise InputError(f"{p}: {k}: holds a value that is not a finite number")
        out[k] = a
    return out


def _need(arrays: dict[str, np.ndarray], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise InputError(f"{where}: missing array(s) {', '.join(missing)}")
    n = {k: arrays[k].size for k in keys if k != "max_kv_tokens"}
    if len(set(n.values())) != 1:
        raise InputError(f"{where}: arrays of different lengths ({n})")


@untrusted("Dynamo profiler data file")
def import_dynamo_profile(path: str | Path, model: str, gpu_type: str, gpus_per_instance: int, *,
                          variant: str = "default", output_tokens: float = DECODE_OUTPUT_TOKENS,
                          monotone: str = "refuse") -> dict[str, Any]:
    """A prefill or a decode profile (the role the file's arrays give) from profiler data; see the module."""
    p = Path(path)
    where = str(p)
    if monotone not in MONOTONE_FITS:
        raise InputError(f"{where}: monotone '{monotone}' is not one of {', '.join(MONOTONE_FITS)}")
    if isinstance(gpus_per_instance, bool) or not isinstance(gpus_per_instance, int) or gpus_per_instance < 1:
        raise InputError(f"{where}: gpus_per_instance must be a positive whole number, got {gpus_per_instance!r}")
    arrays = read_arrays(p)
    if "prefill_isl" in arrays:
        return _prefill(arrays, where, _profile_head(model, "prefill", gpu_type, gpus_per_instance, variant))
    if "z_itl" in arrays:
        if isinstance(output_tokens, bool) or not isinstance(output_tokens, int | float) \
                or not math.isfinite(output_tokens) or output_tokens <= 0:
            raise InputError(f"{where}: output_tokens must be the decode sweep's positive output length, got "
                             f"{output_tokens!r}")
        return _decode(arrays, where, _profile_head(model, "decode", gpu_type, gpus_per_instance, variant),
                       output_tokens, monotone)
    raise InputError(f"{where}: neither prefill ({', '.join(PREFILL_KEYS)}) nor decode ({', '.join(DECODE_KEYS)}) "
                     "arrays")


def _prefill(a: dict[str, np.ndarray], where: str, head: dict[str, Any]) -> dict[str, Any]:
    _need(a, PREFILL_KEYS, where)
    isl, ttft_ms, per_gpu = a["prefill_isl"], a["prefill_ttft"], a["prefill_thpt_per_gpu"]
    if (isl <= 0).any() or (ttft_ms <= 0).any():
        raise InputError(f"{where}: prefill_isl and prefill_ttft must be positive")
    if (np.diff(isl) <= 0).any():
        raise InputError(f"{where}: prefill_isl must be strictly increasing")
    x = isl / (ttft_ms / 1000.0)
    gpus = head["gpus_per_instance"]
    off = np.abs(per_gpu * gpus / x - 1.0)
    if (off > 0.01).any():
        i = int(np.argmax(off))
        raise InputError(f"{where}: at prefill_isl {isl[i]:g}, prefill_thpt_per_gpu {per_gpu[i]:g} x {gpus} GPU(s) "
                         f"is not isl / ttft = {x[i]:g} tok/s (is gpus_per_instance {gpus} the profiled TP?)")
    prof = dict(head)
    prof["max_throughput_by_input"] = [
        {"input_tokens": _tidy(float(n)), "max_throughput_tok_per_s": round(float(v), THROUGHPUT_DIGITS)}
        for n, v in zip(isl, x, strict=True)]
    prof["source"] = (f"Dynamo profiler prefill interpolation data {where}: max_throughput_tok_per_s = prefill_isl / "
                      f"prefill_ttft (one request at a time; = prefill_thpt_per_gpu x {gpus} GPU(s)), {isl.size} "
                      "input lengths")
    return _validated(prof, where)


def _decode(a: dict[str, np.ndarray], where: str, head: dict[str, Any], osl: float,
            monotone: str) -> dict[str, Any]:
    _need(a, DECODE_KEYS, where)
    max_kv = float(a["max_kv_tokens"][0])
    x, y, itl = a["x_kv_usage"], a["y_context_length"], a["z_itl"]
    if max_kv <= 0 or (y <= 0).any() or (itl <= 0).any() or (x < 0).any():
        raise InputError(f"{where}: max_kv_tokens, y_context_length and z_itl must be positive, x_kv_usage >= 0")
    curves = []
    notes = []
    for ctx in sorted(set(y.tolist())):
        k = y == ctx
        batch = x[k] * max_kv / ctx
        whole = np.round(batch)
        if (np.abs(batch - whole) > 0.01 * np.maximum(whole, 1.0)).any() or (whole < 1).any():
            raise InputError(f"{where}: at y_context_length {ctx:g}, x_kv_usage x max_kv_tokens / context is not a "
                             f"whole batch ({batch.round(3).tolist()})")
        order = np.argsort(whole, kind="stable")
        b, t = whole[order].astype(int), itl[k][order]
        if (np.diff(b) == 0).any():
            raise InputError(f"{where}: at y_context_length {ctx:g}, a batch is measured twice")
        tp = [round(float(v), TPOT_DIGITS) for v in t]
        input_tokens = ctx - osl / 2.0
        if input_tokens <= 0:
            raise InputError(f"{where}: context length {ctx:g} - output_tokens / 2 = {input_tokens:g} is not a "
                             "positive input length (is --output-tokens the sweep's output length?)")
        if monotone != "refuse":
            tp, moved = monotone_fit(b.tolist(), tp, monotone, digits=TPOT_DIGITS)
            if moved:
                notes.append(f"context {ctx:g}" + moved_note(moved, monotone, "batch", "tpot_ms"))
        for i in range(1, len(tp)):
            if tp[i] < tp[i - 1]:
                raise InputError(f"{where}: at y_context_length {ctx:g}, z_itl {tp[i]} ms at batch {b[i]} is below "
                                 f"{tp[i - 1]} ms at batch {b[i - 1]}; TPOT must not fall as the batch grows "
                                 "(--monotone isotonic|envelope fits the curve and names the points moved)")
        curves.append({"input_tokens": _tidy(round(input_tokens, 1)),
                       "tpot_by_batch": [{"batch": int(bb), "tpot_ms": tt} for bb, tt in zip(b, tp, strict=True)]})
    prof = dict(head)
    prof["tpot_by_input"] = curves
    prof["output_tokens"] = _tidy(osl)
    prof["source"] = (f"Dynamo profiler decode interpolation data {where}: per y_context_length one TPOT(batch) curve, "
                      f"batch = x_kv_usage x max_kv_tokens ({max_kv:g}) / context, tpot_ms = z_itl; input_tokens = "
                      f"context - output_tokens / 2 with output_tokens {osl:g} as given"
                      + "".join(f"; {n}" for n in notes))
    return _validated(prof, where)

"""Importing benchmark results as instance-file profiles.

Operators rarely type profile curves by hand: they have a spreadsheet of measurements, a directory of
``vllm bench serve --save-result`` files, or a published table such as Splitwise's ``perf_model.csv``. Each
importer here reads one such source and returns plain dicts in the instance-file profile format (the shape
``profiles:`` takes, ready to dump as YAML and paste), so that the numbers in an instance can always be
regenerated from the files they came from. Every profile carries a ``source`` string naming the file and the
rows (or runs) used and the rule applied, because a capacity plan is only as trustworthy as its provenance.

Numbers are rounded the way the bundled example instance rounds them (throughput to 0.1 tok/s, TPOT to
0.001 ms, token lengths to 0.1 tokens) so that imported profiles diff cleanly against hand-checked ones.
Every profile is validated against :class:`~pdopt.instance.PrefillProfile` / :class:`~pdopt.instance.DecodeProfile`
before it is returned; a user's mistake becomes an :class:`~pdopt.io.InputError` that names the file and line
(or run) at fault.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from pdopt.instance import IDENTIFIER_PATTERN, ROLES, DecodeProfile, PrefillProfile
from pdopt.io import InputError, format_validation_error

Format = Literal["pdopt_csv", "vllm_bench", "splitwise"]
"""What :func:`detect_format` recognises."""

CSV_COLUMNS: tuple[str, ...] = (
    "model", "gpu_type", "gpus_per_instance", "role", "input_tokens", "batch", "max_throughput_tok_per_s", "tpot_ms",
)
"""Columns every pdopt CSV header must name (cells a row's role does not use may be empty)."""
CSV_OPTIONAL_COLUMNS: tuple[str, ...] = ("variant", "output_tokens")
"""Columns a pdopt CSV may add: ``variant`` (default ``default``) and, for decode rows, ``output_tokens``."""
SPLITWISE_COLUMNS: tuple[str, ...] = (
    "model", "hardware", "prompt_size", "batch_size", "token_size", "prompt_time", "token_time", "tensor_parallel",
)
"""Columns of Splitwise's perf_model.csv that the importer reads (the power columns are ignored)."""
VLLM_KEYS: tuple[str, ...] = ("duration", "completed", "total_input_tokens", "total_output_tokens",
                              "request_throughput", "mean_ttft_ms", "mean_tpot_ms")
"""Top-level keys of a ``vllm bench serve --save-result`` file that :func:`detect_format` looks for."""

SPLITWISE_PREFILL_BATCH = 1
SPLITWISE_PREFILL_OUTPUT = 128
SPLITWISE_DECODE_PROMPT = 512
SPLITWISE_DECODE_OUTPUT = 128

THROUGHPUT_DIGITS = 1
TPOT_DIGITS = 3
TOKENS_DIGITS = 1
SAME_LENGTH_REL = 0.05
"""vLLM prefill runs whose mean input lengths are within 5% of each other are one point of the curve (random
datasets never hit the requested length exactly)."""

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_TTFT_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)_ttft_ms$")
_NOT_RECOGNISED = "not a pdopt CSV, vLLM bench JSON or Splitwise perf_model.csv"


# ----------------------------------------------------------------------------------------------- helpers


def _tidy(x: float) -> int | float:
    """An integral float as an int (``128`` rather than ``128.0`` in the pasted YAML), else the float."""
    return int(x) if float(x).is_integer() else x


def _line_ranges(lines: Iterable[int]) -> str:
    """``[2, 3, 4, 9]`` -> ``"2-4, 9"``: a compact, exact list of the rows used."""
    nums = sorted(set(lines))
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(parts)


def _lines_word(lines: Iterable[int]) -> str:
    nums = sorted(set(lines))
    return ("line " if len(nums) == 1 else "lines ") + _line_ranges(nums)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: {_NOT_RECOGNISED} (not UTF-8 text)") from None


def _csv_rows(path: Path, text: str) -> tuple[int, list[str], list[tuple[int, list[str]]]]:
    """(header line, header cells, [(line, cells)]); blank lines and lines starting with ``#`` are skipped."""
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not cells or not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header, header_line = [c.strip() for c in cells], reader.line_num
            else:
                rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise InputError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
    if header is None:
        raise InputError(f"{path}: the file is empty (no CSV header)")
    return header_line, header, rows


def _guess_from_header(header: Sequence[str]) -> Format | None:
    cols = set(header)
    if "role" in cols and ({"gpu_type", "gpus_per_instance"} & cols):
        return "pdopt_csv"
    if {"prompt_time", "token_time"} <= cols or {"hardware", "tensor_parallel"} <= cols:
        return "splitwise"
    return None


_IMPORTER = {"pdopt_csv": "import_csv", "vllm_bench": "import_vllm_bench", "splitwise": "import_splitwise"}


def _check_columns(path: Path, header_line: int, header: list[str], needed: Sequence[str], what: str) -> None:
    missing = [c for c in needed if c not in header]
    if missing:
        guess = _guess_from_header(header)
        hint = f"; the header looks like a {guess} file: use {_IMPORTER[guess]}" if guess and guess != what else ""
        raise InputError(f"{path} line {header_line}: missing column(s) {', '.join(missing)} "
                         f"(a {what} file needs {','.join(needed)}){hint}")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise InputError(f"{path} line {header_line}: column(s) {', '.join(dupes)} appear more than once")


def _number(cell: str, column: str, where: str, need: str = "") -> float:
    """A finite positive number from a CSV cell; InputError naming the line and column otherwise."""
    if cell == "":
        raise InputError(f"{where}: {column} is empty{need}")
    try:
        value = float(cell)
    except ValueError:
        raise InputError(f"{where}: {column} '{cell}' is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {column} '{cell}' is not a finite number")
    if value <= 0:
        raise InputError(f"{where}: {column} {cell} must be positive")
    return value


def _integer(cell: str, column: str, where: str, need: str = "") -> int:
    value = _number(cell, column, where, need)
    if not value.is_integer():
        raise InputError(f"{where}: {column} {cell} must be a whole number")
    return int(value)


def _identifier(value: str, what: str, where: str) -> str:
    if not _IDENTIFIER.match(value):
        raise InputError(f"{where}: {what} '{value}' is not a pdopt identifier (lower case letters, digits and "
                         "underscores, starting with a letter)")
    return value


def _validated(profile: dict[str, Any], where: str) -> dict[str, Any]:
    """Check the dict against the instance format, so that what is returned can be pasted as is."""
    cls = PrefillProfile if profile["role"] == "prefill" else DecodeProfile
    try:
        cls.model_validate(profile)
    except ValidationError as err:
        raise InputError(f"{where}: the imported profile is not valid: " + "; ".join(format_validation_error(err)))\
            from None
    return profile


def _profile_head(model: str, role: str, gpu_type: str, gpus: int, variant: str) -> dict[str, Any]:
    head: dict[str, Any] = {"model": model, "role": role, "gpu_type": gpu_type, "gpus_per_instance": gpus}
    if variant != "default":
        head["variant"] = variant
    return head


# ----------------------------------------------------------------------------------------------- pdopt CSV


@dataclass
class _CsvGroup:
    """Rows of one profile key, in file order."""

    lines: list[int] = field(default_factory=list)
    points: dict[float, list[tuple[int, float]]] = field(default_factory=dict)
    """x (input_tokens or batch) -> [(line, y)]: repeats of a point are averaged."""
    input_tokens: dict[float, list[int]] = field(default_factory=dict)
    output_tokens: dict[float, list[int]] = field(default_factory=dict)


def import_csv(path: str | Path, model: str | None = None, gpu_type: str | None = None) -> list[dict[str, Any]]:
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
    return [_csv_profile(p, key, grp) for key, grp in groups.items()]


def _csv_profile(p: Path, key: tuple[str, str, str, int, str], grp: _CsvGroup) -> dict[str, Any]:
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


class VllmImport(NamedTuple):
    """What :func:`import_vllm_bench` returns: the profile, and the measured points for TTFT calibration."""

    profile: dict[str, Any]
    points: list[dict[str, Any]]


@dataclass(frozen=True)
class _VllmRun:
    where: str
    doc: dict[str, Any]

    def number(self, key: str, *, positive: bool = True, why: str = "") -> float:
        value = self.doc.get(key)
        if value is None:
            raise InputError(f"{self.where}: field '{key}' is missing{why}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"{self.where}: field '{key}' must be a number, got {json.dumps(value)}")
        if value < 0 or (positive and value == 0):
            raise InputError(f"{self.where}: field '{key}' must be {'positive' if positive else 'non-negative'}, "
                             f"got {value}")
        return float(value)

    def optional(self, key: str) -> float | None:
        return self.number(key) if self.doc.get(key) is not None else None

    @property
    def completed(self) -> float:
        return self.number("completed", why=" (a run with no completed request measures nothing)")

    @property
    def mean_input(self) -> float:
        return self.number("total_input_tokens") / self.completed

    @property
    def mean_output(self) -> float:
        return self.number("total_output_tokens") / self.completed

    @property
    def configured_rate(self) -> float | None:
        """``request_rate`` as configured; None where it was ``inf`` (all requests sent at once) or absent."""
        value = self.doc.get("request_rate")
        if value is None or value == "inf" or (isinstance(value, float) and math.isinf(value)):
            return None
        return self.number("request_rate")

    @property
    def throughput_rps(self) -> float:
        got = self.optional("request_throughput")
        return got if got is not None else self.completed / self.number("duration")


def _vllm_runs(path: Path) -> list[_VllmRun]:
    """One run per file, or one per line for a file written with ``--append-result`` (JSON objects, one a line)."""
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return _vllm_json_lines(path, text, f"{exc.msg} at line {exc.lineno}")
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object (a vLLM bench result), got {type(doc).__name__}")
    return [_VllmRun(str(path), doc)]


def _vllm_json_lines(path: Path, text: str, whole_file_error: str) -> list[_VllmRun]:
    """The runs of an ``--append-result`` file; the whole-file JSON error if it is not one either."""
    runs: list[_VllmRun] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}: not valid JSON ({whole_file_error}); {_NOT_RECOGNISED}?") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path} line {n}: expected a JSON object (one vLLM bench result)")
        runs.append(_VllmRun(f"{path} line {n}", obj))
    if not runs:
        raise InputError(f"{path}: the file is empty")
    return runs


def _mean_e2e_s(run: _VllmRun) -> tuple[float, str]:
    """Mean end-to-end latency in seconds, and how it was obtained.

    ``mean_e2el_ms`` is only written when ``e2el`` is among ``--percentile-metrics`` (the default is
    ``ttft,tpot,itl``); otherwise it is rebuilt from the definition vLLM uses for TPOT, latency = TTFT +
    TPOT x (output tokens - 1), with the means (exact when every request has the same output length).
    """
    e2el = run.optional("mean_e2el_ms")
    if e2el is not None:
        return e2el / 1000.0, "mean_e2el_ms"
    ttft = run.number("mean_ttft_ms", why=" (needed with mean_tpot_ms when mean_e2el_ms is absent)")
    tpot = run.number("mean_tpot_ms")
    return (ttft + tpot * max(run.mean_output - 1.0, 0.0)) / 1000.0, "mean_ttft_ms + mean_tpot_ms x (output - 1)"


def _calibration_point(run: _VllmRun) -> dict[str, Any] | None:
    if run.doc.get("mean_ttft_ms") is None:
        return None
    rate = run.configured_rate
    point: dict[str, Any] = {
        "request_rate_rps": rate if rate is not None else run.throughput_rps,
        "rate_configured": rate is not None,
        "achieved_rps": run.throughput_rps,
        "max_concurrency": run.doc.get("max_concurrency"),
        "ttft_mean_s": run.number("mean_ttft_ms", positive=False) / 1000.0,
    }
    if run.doc.get("median_ttft_ms") is not None:
        point["ttft_p50_s"] = run.number("median_ttft_ms", positive=False) / 1000.0
    percentiles = [(m.group(1), key) for key in run.doc
                   if (m := _TTFT_PERCENTILE.match(key)) and run.doc[key] is not None]
    for pct, key in sorted(percentiles, key=lambda pk: float(pk[0])):
        point[f"ttft_p{pct}_s"] = run.number(key, positive=False) / 1000.0
    if run.doc.get("mean_tpot_ms") is not None:
        point["tpot_mean_ms"] = run.number("mean_tpot_ms", positive=False)
    point["input_tokens_mean"] = round(run.mean_input, TOKENS_DIGITS)
    point["output_tokens_mean"] = round(run.mean_output, TOKENS_DIGITS)
    point["source"] = run.where
    return point


def import_vllm_bench(paths: str | Path | Sequence[str | Path], model: str, gpu_type: str, gpus_per_instance: int,
                      role: str, *, variant: str = "default") -> VllmImport:
    """A profile (and TTFT calibration points) from a sweep of ``vllm bench serve --save-result`` files.

    Fields relied on, read from vLLM's own source: ``vllm/benchmarks/serve.py`` (the ``vllm bench serve``
    command, vllm-project/vllm main branch, stored copy at commit 009e6d4a1cd6) and the older
    ``benchmarks/benchmark_serving.py`` (commit 0049e29c41fd), which write the same keys: ``duration`` (s),
    ``completed``, ``total_input_tokens``, ``total_output_tokens``, ``request_throughput`` (completed /
    duration, req/s), ``request_rate`` (the configured ``--request-rate``, the string ``"inf"`` when unlimited),
    ``max_concurrency`` (``--max-concurrency``, null when unlimited), ``mean_ttft_ms`` / ``median_ttft_ms`` /
    ``p{N}_ttft_ms`` (N from ``--metric-percentiles``, default 99), ``mean_tpot_ms`` (per request,
    (latency - TTFT) / (output tokens - 1), averaged over requests with more than one output token) and, only
    when ``e2el`` is in ``--percentile-metrics``, ``mean_e2el_ms``. There is no ``input_throughput`` field;
    input throughput is computed as total_input_tokens / duration. A file written with ``--append-result``
    holds one JSON object per line; each is a run. The field names were checked by reading the result-dict
    construction (``benchmark()`` and ``main_async()``) in both files; the test files under ``tests/data/`` are
    synthetic numbers in that layout.

    ``role="decode"``: each run is one point, batch = ``max_concurrency``, or where concurrency was unlimited
    the mean number of requests in the system by Little's law, ``request_throughput`` x mean end-to-end latency
    (rounded to a whole batch, at least 1); tpot_ms = ``mean_tpot_ms``. Runs at the same batch are averaged;
    at least 2 batch sizes are needed and TPOT must not fall as the batch grows.

    ``role="prefill"``: max_throughput_tok_per_s = the largest observed ``total_input_tokens / duration``, at the
    mean input length (total_input_tokens / completed). Runs whose mean input lengths lie within 5% of each
    other are one point, so a sweep over request rate gives one point and a sweep over input lengths a curve.
    Benchmark a prefill instance with output length 1 and a rate high enough to saturate it: the largest
    observed throughput is a lower bound on the true maximum.

    Returns ``(profile, points)``: ``points`` holds, per run that reports TTFT, ``request_rate_rps`` (the
    configured rate, or the achieved ``request_throughput`` where it was ``inf``), ``rate_configured``,
    ``achieved_rps``, ``max_concurrency``, ``ttft_mean_s``, ``ttft_p50_s`` and ``ttft_p{N}_s`` where present,
    ``tpot_mean_ms``, ``input_tokens_mean``, ``output_tokens_mean`` and ``source`` (file, or file and line),
    sorted by request rate, for a later TTFT calibration step.
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(x) for x in paths]
    where = "import_vllm_bench"
    if not files:
        raise InputError(f"{where}: no result files given")
    if role not in ROLES:
        raise InputError(f"{where}: unknown role '{role}' (expected prefill or decode)")
    _identifier(model, "model", where)
    _identifier(gpu_type, "gpu_type", where)
    _identifier(variant, "variant", where)
    if isinstance(gpus_per_instance, bool) or not isinstance(gpus_per_instance, int) or gpus_per_instance < 1:
        raise InputError(f"{where}: gpus_per_instance must be a positive whole number, got {gpus_per_instance!r}")
    runs = [run for f in files for run in _vllm_runs(f)]
    points = [pt for run in runs if (pt := _calibration_point(run)) is not None]
    points.sort(key=lambda pt: (pt["request_rate_rps"], pt["source"]))
    head = _profile_head(model, role, gpu_type, gpus_per_instance, variant)
    profile = _vllm_decode(runs, head) if role == "decode" else _vllm_prefill(runs, head)
    return VllmImport(_validated(profile, f"{where} ({', '.join(str(f) for f in files)})"), points)


def _vllm_decode(runs: list[_VllmRun], head: dict[str, Any]) -> dict[str, Any]:
    by_batch: dict[int, list[tuple[_VllmRun, float, str]]] = {}
    for run in runs:
        tpot = run.number("mean_tpot_ms", why=" (a decode profile needs it; keep tpot in --percentile-metrics)")
        conc = run.doc.get("max_concurrency")
        if conc is not None:
            if isinstance(conc, bool) or not isinstance(conc, int) or conc < 1:
                raise InputError(f"{run.where}: field 'max_concurrency' must be a positive whole number or null, "
                                 f"got {json.dumps(conc)}")
            batch, how = conc, "max_concurrency"
        else:
            e2e_s, e2e_how = _mean_e2e_s(run)
            mean_in_system = run.throughput_rps * e2e_s
            batch = max(1, round(mean_in_system))
            how = (f"Little's law: {run.throughput_rps:.3f} req/s x {e2e_s:.3f} s ({e2e_how}) = "
                   f"{mean_in_system:.2f}")
        by_batch.setdefault(batch, []).append((run, tpot, how))
    batches = sorted(by_batch)
    if len(batches) < 2:
        raise InputError(f"{', '.join(r.where for r in runs)}: the run(s) give only batch {batches[0]}; a decode "
                         "profile needs a sweep over at least 2 concurrencies")
    tpots = [round(sum(t for _, t, _ in by_batch[b]) / len(by_batch[b]), TPOT_DIGITS) for b in batches]
    for i in range(1, len(batches)):
        if tpots[i] < tpots[i - 1]:
            here = ", ".join(r.where for r, _, _ in by_batch[batches[i]])
            prev = ", ".join(r.where for r, _, _ in by_batch[batches[i - 1]])
            raise InputError(f"{here}: mean_tpot_ms {tpots[i]} at batch {batches[i]} is below {tpots[i - 1]} at "
                             f"batch {batches[i - 1]} ({prev}); TPOT must not fall as the batch grows (re-measure, "
                             "or leave the run out)")
    completed = sum(r.completed for r in runs)
    profile = dict(head)
    profile["tpot_by_batch"] = [{"batch": b, "tpot_ms": t} for b, t in zip(batches, tpots, strict=True)]
    profile["input_tokens"] = _tidy(round(sum(r.number("total_input_tokens") for r in runs) / completed,
                                          TOKENS_DIGITS))
    profile["output_tokens"] = _tidy(round(sum(r.number("total_output_tokens") for r in runs) / completed,
                                           TOKENS_DIGITS))
    used = "; ".join(f"{r.where} (batch {b}: {how})" for b in batches for r, _, how in by_batch[b])
    profile["source"] = (f"vLLM bench serve --save-result sweep: tpot_ms = mean_tpot_ms, batch = max_concurrency "
                         f"(Little's law where unlimited), runs at one batch averaged; runs: {used}")
    return profile


def _vllm_prefill(runs: list[_VllmRun], head: dict[str, Any]) -> dict[str, Any]:
    measured = sorted(((r.mean_input, r.number("total_input_tokens") / r.number("duration"), r) for r in runs),
                      key=lambda m: m[0])
    clusters: list[list[tuple[float, float, _VllmRun]]] = []
    for m in measured:
        if clusters and m[0] <= clusters[-1][0][0] * (1.0 + SAME_LENGTH_REL):
            clusters[-1].append(m)
        else:
            clusters.append([m])
    curve: list[dict[str, Any]] = []
    notes: list[str] = []
    for cl in clusters:
        tokens = sum(r.number("total_input_tokens") for _, _, r in cl)
        length = round(tokens / sum(r.completed for _, _, r in cl), TOKENS_DIGITS)
        best = max(cl, key=lambda m: m[1])
        curve.append({"input_tokens": _tidy(length), "max_throughput_tok_per_s": round(best[1], THROUGHPUT_DIGITS)})
        others = [r.where for _, _, r in cl if r is not best[2]]
        notes.append(f"{_tidy(length)} tokens: {best[2].where} ({best[1]:.1f} tok/s)"
                     + (f", largest of {len(cl)} runs (also {', '.join(others)})" if others else ""))
    profile = dict(head)
    profile["max_throughput_by_input"] = curve
    profile["source"] = ("vLLM bench serve --save-result runs: max_throughput_tok_per_s = largest total_input_tokens "
                         "/ duration at each mean input length; " + "; ".join(notes))
    return profile


# ----------------------------------------------------------------------------------------------- Splitwise


@dataclass(frozen=True)
class _SplitwiseRow:
    line: int
    prompt: int
    batch: int
    tokens: int
    prompt_time_ms: float
    token_time_ms: float


def import_splitwise(path: str | Path, model: str, hardware: str, tensor_parallel: int,
                     gpu_type_id: str | None = None, *, model_id: str | None = None) -> list[dict[str, Any]]:
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
    Returns ``[prefill_profile, decode_profile]``.
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
    return [_splitwise_prefill(p, what, head, kept, duplicates), _splitwise_decode(p, what, head, kept, duplicates)]


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


def detect_format(path: str | Path) -> Format:
    """Which importer a file is for, from its content (never its name, which users choose freely).

    ``pdopt_csv``: a CSV whose header names ``role`` and ``gpu_type`` or ``gpus_per_instance``; ``splitwise``: a
    CSV whose header names ``prompt_time`` and ``token_time`` (or ``hardware`` and ``tensor_parallel``);
    ``vllm_bench``: a JSON object (or JSON lines, from ``--append-result``) with at least two of
    ``duration``, ``completed``, ``total_input_tokens``, ``total_output_tokens``, ``request_throughput``,
    ``mean_ttft_ms``, ``mean_tpot_ms``. The test is deliberately loose, so that a file with a column or field
    missing reaches its importer, whose error names what is missing. Anything else is an InputError.
    """
    p = Path(path)
    text = _read_text(p)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        first = stripped.splitlines()[0] if stripped else ""
        doc: Any = None
        for candidate in (text, first):
            try:
                doc = json.loads(candidate)
                break
            except json.JSONDecodeError:
                continue
        if isinstance(doc, dict) and sum(k in doc for k in VLLM_KEYS) >= 2:
            return "vllm_bench"
    elif stripped:
        try:
            _, header, _ = _csv_rows(p, text)
        except InputError:
            header = []
        guess = _guess_from_header(header)
        if guess is not None:
            return guess
    raise InputError(f"{p}: {_NOT_RECOGNISED} (a pdopt CSV's header names model,gpu_type,gpus_per_instance,role,...; "
                     "a Splitwise perf_model.csv's names prompt_time and token_time; a vLLM bench result is a JSON "
                     "object with duration, completed, total_input_tokens, ...)")

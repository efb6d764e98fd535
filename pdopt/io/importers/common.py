"""Importing benchmark results as instance-file profiles: shared rules, helpers and format detection.

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
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from pdopt.errors import InputError, format_validation_error
from pdopt.instance import IDENTIFIER_PATTERN, AggregatedProfile, DecodeProfile, PrefillProfile
from pdopt.io.files import read_text

Format = Literal["pdopt_csv", "vllm_bench", "splitwise", "dynamo_profiler", "aiperf", "evalscope"]
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
    """A benchmark file's text, bounded (pdopt.io.files.read_text); a byte-order mark is dropped."""
    try:
        return read_text(path, "file", encoding="utf-8-sig", kind="benchmark")
    except InputError as exc:
        if "not UTF-8" in str(exc) or "not a text file" in str(exc):
            raise InputError(f"{path}: {_NOT_RECOGNISED} (not UTF-8 text)") from None
        raise


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


_IMPORTER = {"pdopt_csv": "import_csv", "vllm_bench": "import_vllm_bench", "splitwise": "import_splitwise",
             "dynamo_profiler": "import_dynamo_profile", "aiperf": "import_vllm_bench",
             "evalscope": "import_vllm_bench"}


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
    classes: dict[str, type[PrefillProfile | DecodeProfile | AggregatedProfile]] = {
        "prefill": PrefillProfile, "decode": DecodeProfile, "aggregated": AggregatedProfile}
    cls = classes.get(profile["role"], DecodeProfile)
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


# ----------------------------------------------------------------------------------------------- detection


def detect_format(path: str | Path) -> Format:
    """Which importer a file is for, from its content (never its name, which users choose freely).

    ``pdopt_csv``: a CSV whose header names ``role`` and ``gpu_type`` or ``gpus_per_instance``; ``splitwise``: a
    CSV whose header names ``prompt_time`` and ``token_time`` (or ``hardware`` and ``tensor_parallel``);
    ``vllm_bench``: a JSON object (or JSON lines, from ``--append-result``) with at least two of
    ``duration``, ``completed``, ``total_input_tokens``, ``total_output_tokens``, ``request_throughput``,
    ``mean_ttft_ms``, ``mean_tpot_ms``; ``dynamo_profiler``: a NumPy ``.npz`` archive, or a JSON object with
    ``prefill_isl`` or ``x_kv_usage`` (Dynamo's profiler data, :mod:`pdopt.io.importers.dynamo_profiler`).
    The test is deliberately loose, so that a file with a column or field
    missing reaches its importer, whose error names what is missing. Anything else is an InputError.
    """
    p = Path(path)
    if p.is_file():
        with p.open("rb") as fh:
            if fh.read(4) == b"PK\x03\x04" and p.suffix.lower() == ".npz":
                return "dynamo_profiler"  # a NumPy archive; read_arrays checks what it holds
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
        if isinstance(doc, dict) and ("prefill_isl" in doc or "x_kv_usage" in doc):
            return "dynamo_profiler"
        from pdopt.io.importers.aiperf import is_aiperf
        from pdopt.io.importers.evalscope import is_evalscope

        if is_evalscope(doc):
            return "evalscope"
        if is_aiperf(p, text):
            return "aiperf"
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

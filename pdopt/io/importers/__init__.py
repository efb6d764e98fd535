"""Benchmark importers, one module per format, each returning instance-file profiles with provenance.

:func:`detect_format` tells a file's format; :func:`import_csv` (pdopt CSV), :func:`import_vllm_bench` (vLLM
``bench serve`` JSON) and :func:`import_splitwise` (Splitwise ``perf_model.csv``) read it. Benchmark files are
untrusted input: whatever the csv and json modules raise on a hostile file (a field over their size limit, a
number too large for a float, nesting too deep) becomes an :class:`~pdopt.errors.InputError` here.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pdopt.errors import InputError
from pdopt.io.importers import dynamo_profiler, pdopt_csv, splitwise, vllm
from pdopt.io.importers.common import CSV_COLUMNS, CSV_OPTIONAL_COLUMNS, Format, detect_format
from pdopt.io.importers.vllm import VllmImport

F = TypeVar("F", bound=Callable[..., Any])


def _guarded(reader: F) -> F:
    """The reader, with hostile-input failures of the standard library turned into InputError."""
    @functools.wraps(reader)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return reader(*args, **kwargs)
        except InputError:
            raise
        except (csv.Error, RecursionError, OverflowError, ValueError, TypeError) as exc:
            raise InputError(f"{args[0] if args else 'input'}: not a readable benchmark file "
                             f"({type(exc).__name__}: {exc})") from None
    return guarded  # type: ignore[return-value]


import_csv = _guarded(pdopt_csv.import_csv)
import_splitwise = _guarded(splitwise.import_splitwise)
import_vllm_bench = _guarded(vllm.import_vllm_bench)
import_dynamo_profile = _guarded(dynamo_profiler.import_dynamo_profile)
detect_format = _guarded(detect_format)

__all__ = ["CSV_COLUMNS", "CSV_OPTIONAL_COLUMNS", "Format", "VllmImport", "detect_format", "import_csv",
           "import_dynamo_profile", "import_splitwise", "import_vllm_bench"]

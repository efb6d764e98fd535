"""Benchmark importers, one module per format, each returning instance-file profiles with provenance.

:func:`detect_format` tells a file's format; :func:`import_csv` (pdopt CSV), :func:`import_vllm_bench` (vLLM
``bench serve`` JSON) and :func:`import_splitwise` (Splitwise ``perf_model.csv``) read it.
"""

from pdopt.io.importers.common import CSV_COLUMNS, CSV_OPTIONAL_COLUMNS, Format, detect_format
from pdopt.io.importers.pdopt_csv import import_csv
from pdopt.io.importers.splitwise import import_splitwise
from pdopt.io.importers.vllm import VllmImport, import_vllm_bench

__all__ = ["CSV_COLUMNS", "CSV_OPTIONAL_COLUMNS", "Format", "VllmImport", "detect_format", "import_csv",
           "import_splitwise", "import_vllm_bench"]

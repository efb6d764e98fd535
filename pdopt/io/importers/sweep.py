"""A measured TTFT sweep as a CSV (``request_rate_rps,ttft_mean_s``), for ``pdopt profile fit``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pdopt.errors import InputError
from pdopt.io.files import read_text


def read_ttft_sweep_csv(path: str | Path) -> list[tuple[float, float]]:
    """(request rate req/s, mean TTFT s) per row; InputError naming the file when a column is missing or not a
    number."""
    p = Path(path)
    try:
        rows = list(csv.DictReader(io.StringIO(read_text(p, "TTFT sweep", kind="csv"), newline="")))
        return [(float(r["request_rate_rps"]), float(r["ttft_mean_s"])) for r in rows]
    except (KeyError, TypeError, ValueError, csv.Error):
        raise InputError(f"{p}: needs numeric columns request_rate_rps,ttft_mean_s") from None

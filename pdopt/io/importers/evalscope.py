"""EvalScope perf runs (``evalscope perf``): ``benchmark_summary.json`` and, when beside it,
``benchmark_percentile.json``, into one run; with ``--enable-pd-metrics`` also the measured P->D handoff.

EvalScope renamed its keys twice (modelscope/evalscope): generation A (<= 1.6.1, values in seconds:
``Average time to first token (s)``, ``Average time per output token (s)``, ``Request throughput (req/s)``,
``Number of concurrency``, ``Request rate (req/s)``, ``Average input tokens per request``), B (1.7-1.9:
``TTFT (ms)``, ``TPOT (ms)``) and C (>= 1.10: ``Avg TTFT (ms)``, ``Avg TPOT (ms)``, ``Req Throughput (req/s)``,
``Concurrency``, ``Request Rate (req/s)``, ``Avg Input Tokens``, ``Avg Output Tokens``, and with
``--enable-pd-metrics`` (1.14.1) ``Avg PD Handoff Latency (ms)``: the gap between a request's first and second
streamed chunk, a proxy for the prefill -> decode KV handoff that also holds one decode step, and
``Avg PD Handoff Overhead (ms)``, that gap less the median of the later gaps). TPOT excludes the first token in
every generation (per request (latency - TTFT) / (output - 1)); generation A averages a 0 in for a request of one
output token (v1.6.1 ``benchmark_util.py`` 266), C leaves such requests out. Percentile rows (``Percentiles``
labelled ``50%``, ``90%``, ...) give ``TTFT (s|ms)`` and ``TPOT (s|ms)``. ``Request Rate`` -1 means no rate
limit (closed loop at ``Concurrency``). Sources: evalscope 1.14.1 ``perf/utils/perf_constants.py`` 27-61, 89-103,
``benchmark_util.py`` 102-126, 347-430, 522-589, ``db_util.py`` 148-309; v1.6.1 (662338dc)
``benchmark_util.py`` 101-135, 385-408.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdopt.errors import InputError
from pdopt.io.importers.guard import finite_number, read_json, untrusted

__all__ = ["EvalscopeRun", "is_evalscope", "read_evalscope"]

# (generation, key, scale to the unit pdopt uses: s for TTFT, ms for TPOT)
_TTFT = (("C", "Avg TTFT (ms)", 1e-3), ("B", "TTFT (ms)", 1e-3), ("A", "Average time to first token (s)", 1.0))
_TPOT = {"C": ("Avg TPOT (ms)", 1.0), "B": ("TPOT (ms)", 1.0), "A": ("Average time per output token (s)", 1e3)}
_KEYS = {"A": {"rate": "Request throughput (req/s)", "conc": "Number of concurrency",
               "configured": "Request rate (req/s)", "input": "Average input tokens per request",
               "output": "Average output tokens per request", "ok": "Succeed requests", "failed": "Failed requests"},
         "B": {"rate": "Req Throughput (req/s)", "conc": "Concurrency", "configured": "Request Rate (req/s)",
               "input": "Avg Input Tokens", "output": "Avg Output Tokens", "ok": "Success Requests",
               "failed": "Failed Requests"}}
_KEYS["C"] = _KEYS["B"]
_PCT = {"50%": "p50", "90%": "p90", "95%": "p95", "99%": "p99"}


@dataclass(frozen=True)
class EvalscopeRun:
    """One EvalScope perf run."""

    source: str
    generation: str
    rate_rps: float
    """Successful requests per second (``Req Throughput``)."""
    ttft_s: dict[str, float]
    tpot_ms: dict[str, float]
    input_tokens_mean: float | None
    output_tokens_mean: float | None
    completed: int
    failed: int
    concurrency: int | None
    request_rate: float | None
    """The configured ``--rate``; None for -1 (no limit)."""
    pd_handoff_ms: float | None = None
    pd_handoff_overhead_ms: float | None = None


def is_evalscope(doc: Any) -> bool:
    """A summary of any generation (one of its TTFT keys and its duration key)."""
    return isinstance(doc, dict) and any(k in doc for _, k, _ in _TTFT) and (
        "Test Duration (s)" in doc or "Time taken for tests (s)" in doc)


def _num(doc: dict[str, Any], key: str, where: str, optional: bool = False) -> float | None:
    value = doc.get(key)
    if value is None and optional:
        return None
    return finite_number(value, f"{where}: '{key}'")


def _percentiles(path: Path, generation: str) -> tuple[dict[str, float], dict[str, float]]:
    """TTFT (s) and TPOT (ms) percentiles from ``benchmark_percentile.json`` beside the summary, if present."""
    rows_path = path.with_name("benchmark_percentile.json")
    if not rows_path.is_file():
        return {}, {}
    rows = read_json(rows_path, "EvalScope percentiles")
    if not isinstance(rows, list):
        raise InputError(f"{rows_path}: expected a list of percentile rows")
    ttft_key, ttft_scale = ("TTFT (s)", 1.0) if generation == "A" else ("TTFT (ms)", 1e-3)
    tpot_key, tpot_scale = ("TPOT (s)", 1e3) if generation == "A" else ("TPOT (ms)", 1.0)
    ttft: dict[str, float] = {}
    tpot: dict[str, float] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("Percentiles"), str) or row["Percentiles"] not in _PCT:
            continue
        stat = _PCT[row["Percentiles"]]
        for key, scale, store in ((ttft_key, ttft_scale, ttft), (tpot_key, tpot_scale, tpot)):
            v = _num(row, key, f"{rows_path} row {i}", optional=True)
            if v is not None:
                store[stat] = v * scale
    return ttft, tpot


@untrusted("EvalScope summary")
def read_evalscope(path: str | Path) -> EvalscopeRun:
    """One EvalScope run from its ``benchmark_summary.json`` (and the percentile file beside it)."""
    p = Path(path)
    where = str(p)
    doc = read_json(p, "EvalScope summary")
    if not is_evalscope(doc):
        raise InputError(f"{p}: not an EvalScope benchmark_summary.json (no TTFT key of any generation)")
    generation, ttft_key, ttft_scale = next(g for g in _TTFT if g[1] in doc)
    tpot_key, tpot_scale = _TPOT[generation]
    keys = _KEYS[generation]
    ttft_p, tpot_p = _percentiles(p, generation)
    ttft = {"mean": float(_num(doc, ttft_key, where) or 0.0) * ttft_scale, **ttft_p}
    tpot_mean = _num(doc, tpot_key, where, optional=True)
    # 0 when no request had two output tokens (a prefill run): no TPOT measured
    tpot = {"mean": tpot_mean * tpot_scale, **tpot_p} if tpot_mean else {}
    configured = _num(doc, keys["configured"], where, optional=True)
    conc = _num(doc, keys["conc"], where, optional=True)
    return EvalscopeRun(
        where, generation, float(_num(doc, keys["rate"], where) or 0.0), ttft, tpot,
        _num(doc, keys["input"], where, optional=True), _num(doc, keys["output"], where, optional=True),
        int(_num(doc, keys["ok"], where, optional=True) or 0),
        int(_num(doc, keys["failed"], where, optional=True) or 0),
        int(conc) if conc is not None else None, configured if configured is not None and configured > 0 else None,
        _num(doc, "Avg PD Handoff Latency (ms)", where, optional=True),
        _num(doc, "Avg PD Handoff Overhead (ms)", where, optional=True))

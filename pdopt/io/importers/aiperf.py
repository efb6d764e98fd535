"""NVIDIA AIPerf runs (``aiperf profile``): the summary ``profile_export_aiperf.json`` and the per-request
``profile_export.jsonl``, read into one run: its rate, TTFT and TPOT statistics and mean lengths.

Layout relied on (ai-dynamo/aiperf 0.1.x, the example run ``examples/artifacts/run1/`` at commit 7c31f579, kept
byte for byte in ../shared/data/benchmark-formats/aiperf/):

- summary: ``records.<tag>`` with ``unit`` and ``avg``, ``p50``, ``p90``, ``p95``, ``p99`` (and min, max, p1..p75,
  std, count): ``ttft`` (ms), ``inter_token_latency`` (ms; per request (request_latency - ttft) / (output tokens -
  1), the first token excluded, as vLLM's TPOT), ``request_throughput`` (requests/sec: completed requests over the
  benchmark's duration), ``input_sequence_length`` and ``output_sequence_length`` (tokens, ``avg``), ``request_count``;
  ``input_config.loadgen`` holds ``concurrency`` or ``request_rate``; ``error_summary`` the failed requests.
- per request, one JSON object a line: ``metrics.<tag>: {value, unit}`` with the same tags (``ttft``,
  ``inter_token_latency``, ``input_sequence_length``, ``output_sequence_length``, ``request_latency``,
  ``min_request_timestamp`` (ns), ``max_response_timestamp`` (ns)); a record with ``error`` (e.g. code 499, a
  cancelled request) has no latency metrics and is counted as failed, never averaged.

Only these fields are read; a missing one is an InputError naming it. Units are checked (ms, tokens,
requests/sec, ns), not assumed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pdopt.errors import InputError
from pdopt.io.files import read_text
from pdopt.io.importers.guard import finite_number, untrusted

__all__ = ["AiperfRun", "is_aiperf", "read_aiperf"]

STATS = ("mean", "p50", "p90", "p95", "p99")
_SUMMARY_KEYS = {"mean": "avg", "p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99"}


@dataclass(frozen=True)
class AiperfRun:
    """One AIPerf run."""

    source: str
    rate_rps: float
    """Completed requests per second over the run (``request_throughput``)."""
    ttft_s: dict[str, float]
    tpot_ms: dict[str, float]
    """From ``inter_token_latency``: per request (latency - TTFT) / (output tokens - 1)."""
    input_tokens_mean: float
    output_tokens_mean: float
    completed: int
    failed: int = 0
    concurrency: int | None = None
    request_rate: float | None = None
    """The configured rate (``input_config.loadgen.request_rate``), when the run was rate-driven."""
    notes: list[str] = field(default_factory=list)


def is_aiperf(path: Path, text: str) -> bool:
    """An AIPerf summary (``records`` and ``input_config``), a flat summary of AIPerf >= 0.2 or genai-perf
    (``time_to_first_token`` and ``request_throughput`` objects at the top level), or a per-request JSONL
    (``metrics`` and ``metadata`` on its first line)."""
    head = text.lstrip()[:4096]
    flat = '"time_to_first_token"' in text and '"request_throughput"' in text and '"unit"' in text
    return ('"records"' in head and '"input_config"' in text) or flat or (
        '"metrics"' in head and '"metadata"' in head and path.suffix.lower() == ".jsonl")


_ALIASES = {"ttft": "time_to_first_token"}
"""AIPerf 0.1.x tags and their later names (renamed with the flat layout, ai-dynamo/aiperf 43b78902)."""


def _metric(records: dict[str, Any], tag: str, unit: str | tuple[str, ...], where: str,
            prefix: str = "records.") -> dict[str, Any]:
    m = records.get(tag)
    named = tag
    if m is None and tag in _ALIASES:
        named = f"{tag} (or {_ALIASES[tag]})"
        tag = _ALIASES[tag]
        m = records.get(tag)
    if not isinstance(m, dict):
        raise InputError(f"{where}: {prefix}{named} is missing (written for a streaming run)")
    units = (unit,) if isinstance(unit, str) else unit
    if m.get("unit") not in units:
        raise InputError(f"{where}: {prefix}{tag}.unit is {m.get('unit')!r}, expected {' or '.join(map(repr, units))}")
    return m


def _stats(m: dict[str, Any], scale: float, where: str) -> dict[str, float]:
    out = {}
    for stat, key in _SUMMARY_KEYS.items():
        if m.get(key) is not None:
            out[stat] = finite_number(m[key], f"{where}.{key}") * scale
    return out


def _summary(path: Path, doc: dict[str, Any]) -> AiperfRun:
    where = str(path)
    records = doc.get("records")
    prefix = "records."
    if records is None and isinstance(doc.get("time_to_first_token"), dict):
        records, prefix = doc, ""  # AIPerf >= 0.2 and genai-perf: the metrics at the top level
    if not isinstance(records, dict):
        raise InputError(f"{where}: no 'records' mapping and no top-level metrics (not an AIPerf summary)")

    def metric(tag: str, unit: str | tuple[str, ...]) -> dict[str, Any]:
        return _metric(records, tag, unit, where, prefix)

    ttft = _stats(metric("ttft", "ms"), 1e-3, f"{where}: {prefix}time_to_first_token")
    itl = {} if "inter_token_latency" not in records else _stats(  # none for runs of one output token
        metric("inter_token_latency", "ms"), 1.0, f"{where}: {prefix}inter_token_latency")
    rate = finite_number(metric("request_throughput", "requests/sec").get("avg"),
                         f"{where}: {prefix}request_throughput.avg")
    isl = finite_number(metric("input_sequence_length", "tokens").get("avg"),
                        f"{where}: {prefix}input_sequence_length.avg")
    osl = finite_number(metric("output_sequence_length", "tokens").get("avg"),
                        f"{where}: {prefix}output_sequence_length.avg")
    count = 0
    if "request_count" in records:  # legacy genai-perf has none
        count = int(finite_number(metric("request_count", ("requests", "count")).get("avg"),
                                  f"{where}: {prefix}request_count.avg"))
    errors = doc.get("error_summary") or []
    failed = sum(int(e.get("count", 0)) for e in errors if isinstance(e, dict))
    config = doc.get("input_config") or {}
    loadgen = config.get("loadgen") or (config.get("perf_analyzer") or {}).get("stimulus") or {}
    conc = loadgen.get("concurrency")
    req_rate = loadgen.get("request_rate")
    return AiperfRun(where, rate, ttft, itl, isl, osl, count, failed,
                     int(conc) if isinstance(conc, int) and not isinstance(conc, bool) else None,
                     finite_number(req_rate, f"{where}: input_config.loadgen.request_rate") if req_rate is not None
                     else None)


def _value(metrics: dict[str, Any], tag: str, unit: str, where: str) -> float:
    m = metrics.get(tag)
    if not isinstance(m, dict) or m.get("unit") != unit:
        raise InputError(f"{where}: metrics.{tag} is missing or not in {unit}")
    return finite_number(m.get("value"), f"{where}: metrics.{tag}.value")


def _records(path: Path, text: str) -> AiperfRun:
    ttft, itl, isl, osl, starts, ends = [], [], [], [], [], []
    failed = 0
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {i}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("metrics"), dict):
            raise InputError(f"{where}: not an AIPerf record (no 'metrics')")
        if rec.get("error"):
            failed += 1
            continue
        m = rec["metrics"]
        ttft.append(_value(m, "ttft" if "ttft" in m else "time_to_first_token", "ms", where) / 1000.0)
        if "inter_token_latency" in m:  # absent for a request of one output token
            itl.append(_value(m, "inter_token_latency", "ms", where))
        isl.append(_value(m, "input_sequence_length", "tokens", where))
        osl.append(_value(m, "output_sequence_length", "tokens", where))
        starts.append(_value(m, "min_request_timestamp", "ns", where))
        ends.append(_value(m, "max_response_timestamp", "ns", where))
    if len(ttft) < 2:
        raise InputError(f"{path}: {len(ttft)} completed request(s); a run needs at least 2")
    span_s = (max(ends) - min(starts)) / 1e9
    if span_s <= 0:
        raise InputError(f"{path}: the requests span no time")

    def stats(values: list[float]) -> dict[str, float]:
        v = np.asarray(values)
        return {"mean": float(v.mean()), **{f"p{q}": float(np.percentile(v, q)) for q in (50, 90, 95, 99)}}

    return AiperfRun(str(path), len(ttft) / span_s, stats(ttft), stats(itl) if itl else {}, float(np.mean(isl)),
                     float(np.mean(osl)), len(ttft), failed,
                     notes=[f"rate = {len(ttft)} completed requests over {span_s:.6g} s (first request sent to last "
                            "response)"])


@untrusted("AIPerf or genai-perf export")
def read_aiperf(path: str | Path) -> AiperfRun:
    """One AIPerf run from its summary JSON or its per-request JSONL (see the module docstring)."""
    p = Path(path)
    text = read_text(p, "AIPerf export", kind="benchmark")
    if p.suffix.lower() == ".jsonl":
        return _records(p, text)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{p}: an AIPerf summary is a JSON object")
    return _summary(p, doc)

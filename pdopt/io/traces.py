"""Request traces: the Azure LLM inference CSV and Mooncake-style JSONL, read into arrival times and lengths.

Azure (``TIMESTAMP, ContextTokens, GeneratedTokens``): wall-clock timestamps with up to 7 fractional digits.
Mooncake (one JSON object per line: ``timestamp`` in ms, ``input_length``, ``output_length``).
Times are returned in seconds from the first request, sorted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pdopt.errors import InputError
from pdopt.io.files import read_text

FloatArray = npt.NDArray[np.float64]

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")


@dataclass(frozen=True)
class Trace:
    """Arrival times (s from the first request) and per-request input and output lengths."""

    arrival_s: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    source: str

    @property
    def rate_rps(self) -> float:
        """Mean arrival rate: (n - 1) / span, the maximum-likelihood rate of the observed gaps."""
        span = float(self.arrival_s[-1] - self.arrival_s[0])
        return (len(self.arrival_s) - 1) / span if span > 0 else float("inf")

    def rescaled(self, rate_rps: float) -> Trace:
        """The same trace with time stretched so that its mean rate is ``rate_rps`` (lengths unchanged)."""
        factor = self.rate_rps / rate_rps
        return Trace(self.arrival_s * factor, self.input_tokens, self.output_tokens, self.source)


def _parse_azure_time(text: str) -> float:
    date, _, frac = text.strip().partition(".")
    base = datetime.strptime(date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def _finish(times: list[float], ins: list[float], outs: list[float], source: str) -> Trace:
    if len(times) < 2:
        raise InputError(f"{source}: a trace needs at least 2 requests, found {len(times)}")
    order = np.argsort(np.asarray(times), kind="stable")
    t = np.asarray(times, dtype=float)[order]
    if not np.isfinite(t).all():
        raise InputError(f"{source}: a timestamp is not a finite number")
    if t[-1] <= t[0]:
        raise InputError(f"{source}: every request arrives at the same time; a trace needs a time span")
    return Trace(t - t[0], np.asarray(ins, dtype=float)[order], np.asarray(outs, dtype=float)[order], source)


MAX_TOKENS = 1e8
"""Longest input or output a trace may give (the instance format's bound on token counts)."""


def _check_lengths(inp: float, out: float, where: str) -> None:
    if not (1 <= inp <= MAX_TOKENS and 1 <= out <= MAX_TOKENS):
        raise InputError(f"{where}: input and output lengths must be 1 to {MAX_TOKENS:g} tokens (got {inp:g}, "
                         f"{out:g})")


def read_azure_csv(path: Path) -> Trace:
    """Read an Azure LLM inference trace CSV."""
    reader = csv.DictReader(io.StringIO(read_text(path, "trace", kind="trace"), newline=""))
    missing = [c for c in AZURE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (an Azure trace has "
                         f"{', '.join(AZURE_COLUMNS)})")
    times, ins, outs = [], [], []
    for n, row in enumerate(reader, start=2):
        try:
            t, i, o = _parse_azure_time(row["TIMESTAMP"]), float(row["ContextTokens"]), \
                float(row["GeneratedTokens"])
        except (ValueError, TypeError):
            raise InputError(f"{path} line {n}: cannot read TIMESTAMP, ContextTokens, GeneratedTokens") \
                from None
        _check_lengths(i, o, f"{path} line {n}")
        times.append(t)
        ins.append(i)
        outs.append(o)
    return _finish(times, ins, outs, str(path))


def read_mooncake_jsonl(path: Path) -> Trace:
    """Read a Mooncake-style JSONL trace (``timestamp`` in ms)."""
    times, ins, outs = [], [], []
    lines = read_text(path, "trace", kind="trace").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path} line {n}: not a JSON object") from None
        if not isinstance(rec, dict) or any(k not in rec for k in MOONCAKE_KEYS):
            raise InputError(f"{path} line {n}: needs the keys {', '.join(MOONCAKE_KEYS)}")
        try:
            t, i, o = float(rec["timestamp"]) / 1000.0, float(rec["input_length"]), float(rec["output_length"])
        except (TypeError, ValueError):
            raise InputError(f"{path} line {n}: timestamp, input_length and output_length must be numbers") from None
        _check_lengths(i, o, f"{path} line {n}")
        times.append(t)
        ins.append(i)
        outs.append(o)
    return _finish(times, ins, outs, str(path))


def _bounded(reader: Callable[[Path], Trace], path: Path) -> Trace:
    """Run a trace reader; what the csv and json modules raise on hostile input becomes an InputError."""
    try:
        return reader(path)
    except (csv.Error, RecursionError, OverflowError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable trace ({type(exc).__name__}: {exc})") from None


def read_trace(path: str | Path) -> Trace:
    """Read a trace by its extension: ``.csv`` (Azure) or ``.jsonl`` (Mooncake)."""
    p = Path(path)
    if p.suffix == ".csv":
        return _bounded(read_azure_csv, p)
    if p.suffix in (".jsonl", ".json"):
        return _bounded(read_mooncake_jsonl, p)
    raise InputError(f"{p}: unknown trace format (expected .csv for the Azure format or .jsonl for Mooncake)")


def arrival_scv(trace: Trace) -> float:
    """Squared coefficient of variation of the inter-arrival times (1 for a Poisson stream)."""
    gaps = np.diff(trace.arrival_s)
    mean = float(gaps.mean())
    return float(gaps.var() / (mean * mean)) if mean > 0 else float("nan")


def window_counts(trace: Trace, window_s: float) -> FloatArray:
    """Requests per window: the trace's span from its first request cut into whole windows of ``window_s``
    seconds (a last partial window dropped, so every count covers the same time)."""
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    start = float(trace.arrival_s[0])
    n = int((float(trace.arrival_s[-1]) - start) // window_s)
    if n < 1:
        return np.zeros(0)
    counts, _ = np.histogram(trace.arrival_s, bins=n, range=(start, start + n * window_s))
    return counts.astype(float)


def dispersion_index(trace: Trace, window_s: float) -> float:
    """Index of dispersion of counts, I(w) = Var(N_w) / E(N_w) over the trace's windows of ``window_s`` seconds
    (sample variance): 1 for a Poisson stream at every w; a rate that changes over time makes I(w) grow with w,
    which an inter-arrival SCV cannot show (a stream can have SCV 1 and I(60 s) of 16). NaN with fewer than two
    windows or no request."""
    counts = window_counts(trace, window_s)
    if len(counts) < 2 or counts.mean() == 0:
        return float("nan")
    return float(counts.var(ddof=1) / counts.mean())


def within_window_scv(trace: Trace, window_s: float, origin_s: float | None = None) -> float:
    """Inter-arrival SCV once the rate's change between windows is taken out: each gap divided by the mean gap
    of the window it starts in, the SCV of all of them. Near 1 when the stream is Poisson at a rate that holds
    within a window; what is left above 1 is burstiness at shorter time scales than the window. Windows start at
    ``origin_s`` (default: the first request)."""
    start = float(trace.arrival_s[0]) if origin_s is None else origin_s
    gaps = np.diff(trace.arrival_s)
    which = ((trace.arrival_s[:-1] - start) // window_s).astype(int)
    parts = []
    for k in np.unique(which):
        g = gaps[which == k]
        if len(g) > 1 and g.mean() > 0:
            parts.append(g / g.mean())
    if not parts:
        return float("nan")
    scaled = np.concatenate(parts)
    return float(scaled.var() / scaled.mean() ** 2)

"""Demand derived from a trace, period by period: ``workloads.<m>.demand_trace`` in an instance file.

Traffic varies at every time scale and a plan must count each scale once (docs/horizon.md, "Bursts"). A period's
fleet is fixed while the period lasts, so the rate it must carry is a high percentile of the rates the period
goes through, measured over windows short enough that the rate holds within each (``window_s``); what varies
faster than a window is the arrival variability within windows, which enters the queue model as ``arrival_scv``
(the SCV of the gaps, each divided by its window's mean gap: :func:`pdopt.io.traces.within_window_scv`). The
whole-trace inter-arrival SCV mixes both scales, so it is never used beside a percentile rate.

::

    workloads:
      llm:
        demand_trace:
          trace: ../traces/azure-conv-2023.csv   # relative to the instance file
          window_s: 10          # the rate is taken as constant within a window
          percentile: 95        # a period's rate: this percentile of its windows' rates
          trace_s_per_hour: 150 # trace seconds that make one hour of the horizon (default 3600: real time)
          start_s: 0            # where in the trace the horizon begins
          lengths: true         # each period's input and output lengths from its seconds of the trace

Each period of the horizon, in order, covers ``hours x trace_s_per_hour`` seconds of the trace from ``start_s``;
loading writes ``by_period.<p>.demand`` (``requests_per_s``, with a ``source`` saying how it was obtained),
unless the period states one ``by_period.<p>.arrival_scv``, and with ``lengths`` (the default) the period's
``input_tokens_mean``, ``output_tokens_mean`` and ``input_length_distribution`` (64 equal-count bins) from its
requests (without a horizon, the workload's own lengths); the workload's own ``demand`` (unless stated) is the
peak period's and its ``arrival_scv`` the whole span's within-window SCV. Without a horizon the whole span from
``start_s`` (to the trace's end) is one period. ``demand_trace`` is then removed: a dump of the instance holds the
numbers and their provenance, and loads without the trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pdopt.errors import InputError
from pdopt.io.traces import Trace, read_trace, within_window_scv

__all__ = ["TraceRate", "resolve_demand_traces", "trace_rate"]

KEYS = {"trace", "window_s", "percentile", "trace_s_per_hour", "start_s", "lengths"}
TRACE_BINS = 64
"""Bins of an input-length distribution taken from a trace."""


def length_bins(values: Sequence[float], source: str) -> dict[str, Any]:
    """An ``input_length_distribution`` document from input lengths: sorted, cut into ``TRACE_BINS`` bins of
    (nearly) equal count, each bin one length (its mean) weighted by its count: the exact mean is kept."""
    lengths = sorted(values)
    bins = [b for b in (lengths[i * len(lengths) // TRACE_BINS:(i + 1) * len(lengths) // TRACE_BINS]
                        for i in range(TRACE_BINS)) if b]
    merged: dict[float, int] = {}
    for b in bins:
        centre = round(sum(b) / len(b), 6)
        merged[centre] = merged.get(centre, 0) + len(b)
    return {"lengths": sorted(merged), "weights": [merged[c] for c in sorted(merged)],
            "source": f"{source}: {len(lengths)} requests' input lengths in {len(bins)} equal-count bins"}


@dataclass(frozen=True)
class TraceRate:
    """What a segment of a trace says about its traffic."""

    rate_rps: float
    """The ``percentile`` of the segment's window rates (requests in a window / window_s)."""
    arrival_scv: float
    """Inter-arrival SCV within windows (NaN when no window holds two gaps)."""
    windows: int
    requests: int
    mean_rps: float


def _segment(trace: Trace, start_s: float, end_s: float) -> Trace:
    keep = (trace.arrival_s >= start_s) & (trace.arrival_s < end_s)
    return Trace(trace.arrival_s[keep], trace.input_tokens[keep], trace.output_tokens[keep], trace.source)


def trace_rate(trace: Trace, start_s: float, end_s: float, window_s: float, percentile: float) -> TraceRate:
    """The rate a fleet must carry over trace seconds [start_s, end_s): cut into whole windows of ``window_s``
    (a last partial window dropped), the ``percentile`` (linear interpolation) of the windows' rates; and the
    inter-arrival SCV within those windows."""
    n = int((end_s - start_s) // window_s)
    if n < 1:
        raise ValueError(f"[{start_s:g}, {end_s:g}) s holds no whole window of {window_s:g} s")
    seg = _segment(trace, start_s, start_s + n * window_s)
    counts, _ = np.histogram(seg.arrival_s, bins=n, range=(start_s, start_s + n * window_s))
    rate = float(np.percentile(counts / window_s, percentile))
    scv = float("nan")
    if len(seg.arrival_s) > 2:
        scv = within_window_scv(seg, window_s, origin_s=start_s)
    return TraceRate(rate, scv, n, len(seg.arrival_s), len(seg.arrival_s) / (n * window_s))


def _finite(value: object) -> float | None:
    """A finite number as a float (None for anything else: text, booleans, NaN, infinities, huge integers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def _number(spec: dict[str, Any], key: str, where: str, default: float | None, low: float, high: float,
            positive: bool) -> float:
    value = spec.get(key, default)
    if value is None:
        raise InputError(f"{where}.{key}: required")
    if _finite(value) is None:
        raise InputError(f"{where}.{key}: expected a number, got {value!r}")
    if value < low or value > high or (positive and value <= 0):
        raise InputError(f"{where}.{key}: {value!r} is outside {'(' if positive else '['}{low:g}, {high:g}]")
    return float(value)


def _periods(doc: dict[str, Any]) -> list[tuple[str, float]] | None:
    """The horizon's (name, hours) in order, as far as they can be read (the schema names what is wrong)."""
    horizon = doc.get("horizon")
    if not isinstance(horizon, dict) or not isinstance(horizon.get("periods"), list):
        return None
    out = []
    for p in horizon["periods"]:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            return None
        hours = _finite(p.get("hours"))
        if hours is None or hours <= 0:
            return None
        out.append((p["name"], hours))
    return out


def _source(ref: str, a: float, b: float, rate: TraceRate, window_s: float, pct: float) -> str:
    return (f"{ref} seconds [{a:g}, {b:g}): p{pct:g} of {rate.windows} windows of {window_s:g} s "
            f"({rate.requests} requests, mean {rate.mean_rps:.4g} req/s)")


def _resolve_workload(w: dict[str, Any], at: str, periods: list[tuple[str, float]] | None,
                      load: Callable[[str, str], Trace]) -> None:
    spec = w.pop("demand_trace")
    where = f"{at}.demand_trace"
    if not isinstance(spec, dict):
        raise InputError(f"{where}: expected a mapping with trace, window_s, percentile, got {spec!r}")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise InputError(f"{where}.{unknown[0]}: unknown key (expected {', '.join(sorted(KEYS))})")
    if not isinstance(spec.get("trace"), str):
        raise InputError(f"{where}.trace: give the trace's path, relative to the instance file")
    window = _number(spec, "window_s", where, None, 0.0, 86400.0, True)
    pct = _number(spec, "percentile", where, None, 0.0, 100.0, False)
    per_hour = _number(spec, "trace_s_per_hour", where, 3600.0, 0.0, 3600.0 * 24 * 366, True)
    start = _number(spec, "start_s", where, 0.0, 0.0, 1e9, False)
    lengths = spec.get("lengths", True)
    if not isinstance(lengths, bool):
        raise InputError(f"{where}.lengths: expected true or false, got {lengths!r}")
    trace = load(spec["trace"], f"{where}.trace")
    span_end = float(trace.arrival_s[-1]) + 1e-9
    segments = ([("", start, span_end)] if periods is None else [])
    offset = start
    for name, hours in periods or ():
        segments.append((name, offset, offset + hours * per_hour))
        offset += hours * per_hour
    if segments[-1][2] > span_end + window:
        raise InputError(f"{where}: the horizon needs trace seconds [{start:g}, {segments[-1][2]:g}), the trace "
                         f"spans [0, {span_end:g}) (lower trace_s_per_hour or start_s)")
    rates: dict[str, TraceRate] = {}
    for name, a, b in segments:
        try:
            rate = trace_rate(trace, a, min(b, span_end), window, pct)
        except ValueError as exc:
            raise InputError(f"{where}: period {name or '(whole trace)'}: {exc}") from None
        if rate.rate_rps <= 0:
            raise InputError(f"{where}: period {name or '(whole trace)'}: the p{pct:g} rate of trace seconds "
                             f"[{a:g}, {b:g}) is 0 (too few requests; raise percentile or window_s)")
        rates[name] = rate
        if periods is None:  # the whole trace: the workload's own fields
            target = w
            if "demand" in w:
                raise InputError(f"{at}.demand: stated as well as demand_trace; give one of the two")
        else:
            periods_doc = w.setdefault("by_period", {})
            if not isinstance(periods_doc, dict):
                raise InputError(f"{at}.by_period: expected a mapping of period names, got {periods_doc!r}")
            target = periods_doc.setdefault(name, {})
            if not isinstance(target, dict) or "demand" in target:
                raise InputError(f"{at}.by_period.{name}.demand: stated as well as demand_trace; give one of the two")
        target["demand"] = {"requests_per_s": rate.rate_rps, "source": _source(spec["trace"], a, b, rate, window,
                                                                                pct)}
        if not math.isnan(rate.arrival_scv):
            target.setdefault("arrival_scv", rate.arrival_scv)
        if lengths:
            seg = _segment(trace, a, b)
            where_lengths = at if periods is None else f"{at}.by_period.{name}"
            stated = sorted(set(target) & {"input_tokens_mean", "output_tokens_mean", "input_length_distribution"})
            if stated and periods is not None:
                raise InputError(f"{where_lengths}.{stated[0]}: stated as well as demand_trace.lengths; set "
                                 "lengths: false to keep the period's own")
            target["input_tokens_mean"] = float(seg.input_tokens.mean())
            target["output_tokens_mean"] = float(seg.output_tokens.mean())
            target["input_length_distribution"] = length_bins(
                [float(x) for x in seg.input_tokens], f"{spec['trace']} seconds [{a:g}, {b:g})")
    if periods is None:
        return
    peak_name = max(rates, key=lambda k: rates[k].rate_rps)
    if "demand" not in w:
        w["demand"] = {"requests_per_s": rates[peak_name].rate_rps,
                       "source": f"the peak period's ({peak_name or 'whole trace'}) rate from demand_trace"}
    if "arrival_scv" not in w:
        whole = trace_rate(trace, segments[0][1], min(segments[-1][2], span_end), window, pct)
        if not math.isnan(whole.arrival_scv):
            w["arrival_scv"] = whole.arrival_scv


def resolve_demand_traces(doc: dict[str, Any], base: Path, allowed: Sequence[Path],
                          confined: Callable[[Path, str, str, Sequence[Path]], Path]) -> None:
    """Resolve every workload's ``demand_trace`` in place (the module docstring gives the rule); each trace file
    is read once, through ``confined`` (the instance's path rules)."""
    workloads = doc.get("workloads")
    if not isinstance(workloads, dict):
        return
    cache: dict[Path, Trace] = {}

    def load(ref: str, where: str) -> Trace:
        path = confined(base, ref, where, allowed)
        if path not in cache:
            try:
                cache[path] = read_trace(path)
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
        return cache[path]

    periods = _periods(doc)
    for mid, w in workloads.items():
        if isinstance(w, dict) and "demand_trace" in w:
            _resolve_workload(w, f"workloads.{mid}", periods, load)

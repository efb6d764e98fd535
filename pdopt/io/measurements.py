"""Measured serving runs for ``pdopt fidelity``: what a deployment did at a rate, or the largest rate at which it
met both SLOs.

Formats (each file untrusted: a bad field is an InputError naming the file, the row or run, the field and value):

- vLLM ``bench serve --save-result`` JSON (one run per file, or one per line with ``--append-result``): the
  rate (``request_rate``, or ``request_throughput`` where it was ``inf``), ``mean_ttft_ms``/``median_ttft_ms``/
  ``p{N}_ttft_ms``, ``mean_tpot_ms``/``median_tpot_ms``/``p{N}_tpot_ms``, and the run's mean lengths
  (``total_input_tokens``/``total_output_tokens`` over ``completed``); field names as in
  :func:`pdopt.io.importers.import_vllm_bench`. The deployment it measured is given on the command line.
- NVIDIA AIPerf ``profile_export_aiperf.json`` (summary) or ``profile_export.jsonl`` (per request):
  :mod:`pdopt.io.importers.aiperf`; TPOT from its ``inter_token_latency`` (the first token excluded).
- EvalScope ``benchmark_summary.json`` (any of its three key generations; the percentile file beside it read
  too; ``Avg PD Handoff Latency (ms)`` kept): :mod:`pdopt.io.importers.evalscope`. genai-perf's
  ``profile_export_genai_perf.json`` and AIPerf's flat summaries read as AIPerf's. SGLang ``bench_serving``
  JSONL reads as vLLM's (the same keys); both with ``--save-detailed``/``--output-details`` per-request lists,
  which fill statistics the summary leaves out, and vLLM's ``burstiness`` as the arrival SCV 1 / burstiness.
- llm-d-benchmark Benchmark Report (v0.1, v0.2, v0.2.1, YAML or JSON): :mod:`pdopt.io.importers.llmd_report`;
  the deployment is the report's stack unless ``--deployment`` is given (accelerators named as the report does,
  lower-cased: give ``--deployment`` with the instance's GPU type ids).
- CSV with a header: ``model``, ``deployment`` (both optional when given on the command line), then either
  ``request_rate_rps`` and any of ``ttft_{mean,p50,p90,p95,p99}_s`` and ``tpot_{mean,p50,p90,p95,p99}_ms``
  (a run), or ``slo_rate_rps`` or ``slo_tokens_per_min`` (input plus output tokens, the paper's unit): the
  largest rate at which the deployment met both SLOs. Optional: ``input_tokens_mean``, ``output_tokens_mean``
  (default the workload's), ``source``.

A deployment is written ``ROLE=GPUxN[:COUNT][/VARIANT]`` joined by ``+``, e.g. ``prefill=h200x8:3+decode=h200x8:4``
or ``aggregated=a100x4:2`` (COUNT defaults to 1). One role alone (``prefill=h200x8:1``: a TTFT sweep of prefill
instances; ``decode=h200x8:1``: TPOT under load of decode instances) is one shape measured by itself: only the
capacity model predicts it (the simulator runs whole deployments).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pdopt.errors import InputError
from pdopt.instance import SHAPE_ROLES
from pdopt.io.files import read_text

STATS = ("mean", "p50", "p90", "p95", "p99")
MAX_COUNT = 4096
"""Largest GPUs per instance and instance count a deployment may name (a simulation holds every instance)."""
_PART = re.compile(r"^(prefill|decode|aggregated)=([A-Za-z0-9_.-]+?)x([0-9]+)(?::([0-9]+))?(?:/([A-Za-z0-9_.-]+))?$")


@dataclass(frozen=True)
class DeployedShape:
    """``count`` instances of one shape."""

    role: str
    gpu_type: str
    gpus_per_instance: int
    count: int
    variant: str = "default"


@dataclass(frozen=True)
class Deployment:
    """What was measured: instances per shape, and the text it was read from."""

    shapes: tuple[DeployedShape, ...]
    text: str

    @property
    def whole(self) -> bool:
        """A whole deployment (prefill and decode, or aggregated instances), which the simulator can run; one
        role alone is predicted by the capacity model only."""
        return {s.role for s in self.shapes} not in ({"prefill"}, {"decode"})


@dataclass(frozen=True)
class MeasuredPoint:
    """One measurement: a run at ``rate_rps`` with its statistics, or an SLO throughput (``slo_rate_rps``, or
    ``slo_tokens_per_min`` to convert with the lengths)."""

    model: str
    deployment: Deployment
    source: str
    """Provenance: the CSV's ``source`` column, else the location."""
    rate_rps: float | None = None
    ttft_s: dict[str, float] = field(default_factory=dict)
    tpot_ms: dict[str, float] = field(default_factory=dict)
    slo_rate_rps: float | None = None
    slo_tokens_per_min: float | None = None
    input_tokens_mean: float | None = None
    output_tokens_mean: float | None = None
    location: str = ""
    """Where the point was read (file and row or line), for messages."""
    arrival_scv: float | None = None
    """The inter-arrival SCV the run's client drew (vLLM: 1 / ``burstiness``); the predictions use it under the
    G/G/1 and G/G/c queue models. None: the workload's."""
    pd_handoff_ms: float | None = None
    """A measured prefill -> decode handoff (EvalScope ``--enable-pd-metrics``), kept with the point."""

    @property
    def where(self) -> str:
        """The point's place for a message: where it was read, else its provenance."""
        return self.location or self.source


def parse_deployment(text: str, where: str = "--deployment") -> Deployment:
    """Read ``prefill=h200x8:3+decode=h200x8:4``; InputError naming the part at fault."""
    counts: dict[tuple[str, str, int, str], int] = {}
    for part in text.strip().split("+"):
        match = _PART.match(part.strip())
        if match is None:
            raise InputError(f"{where}: '{part}' is not ROLE=GPUxN[:COUNT][/VARIANT] (ROLE one of "
                             f"{', '.join(SHAPE_ROLES)}), e.g. prefill=h200x8:3+decode=h200x8:4")
        role, gpu, gpus, count, variant = match.groups()
        key = (role, gpu, int(gpus), variant or "default")
        counts[key] = counts.get(key, 0) + int(count or 1)  # a shape named twice is one shape with both counts
    if not all(1 <= k[2] <= MAX_COUNT for k in counts) or not 1 <= sum(counts.values()) <= MAX_COUNT:
        raise InputError(f"{where}: '{text}': GPUs per instance and the total count must be from 1 to {MAX_COUNT}")
    shapes = [DeployedShape(role, gpu, gpus, count, variant) for (role, gpu, gpus, variant), count in counts.items()]
    roles = {s.role for s in shapes}
    if "aggregated" in roles and roles != {"aggregated"}:
        raise InputError(f"{where}: '{text}' mixes aggregated with prefill or decode instances; give one kind "
                         "(a P/D deployment, one role of it, or aggregated instances)")
    return Deployment(tuple(shapes), text.strip())


LIMITS: dict[str, tuple[float, float]] = {
    "request_rate_rps": (1e-9, 1e7), "slo_rate_rps": (1e-9, 1e7), "slo_tokens_per_min": (1e-6, 1e13),
    "input_tokens_mean": (1.0, 1e7), "output_tokens_mean": (1.0, 1e7),
    **{f"ttft_{s}_s": (1e-9, 1e7) for s in STATS}, **{f"tpot_{s}_ms": (1e-9, 1e7) for s in STATS},
}
"""Accepted range of each measured quantity (rates as the instance format's ``requests_per_s``)."""


def check_value(x: float, where: str, name: str) -> float:
    """``x`` if it lies in :data:`LIMITS` for ``name``, else InputError naming the field and the value."""
    lo, hi = LIMITS[name]
    if not (math.isfinite(x) and lo <= x <= hi):
        raise InputError(f"{where}: {name} must be from {lo:g} to {hi:g}, got {x:g}")
    return x


def _number(value: str, where: str, name: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise InputError(f"{where}: {name} '{value}' is not a number") from None
    return check_value(x, where, name)


def _csv_points(path: Path, model: str | None, deployment: Deployment | None) -> list[MeasuredPoint]:
    text = read_text(path, "measurements file", kind="csv").removeprefix("\ufeff")  # a spreadsheet's BOM
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InputError(f"{path}: the measurements CSV has no header")
    repeated = sorted({c for c in reader.fieldnames if reader.fieldnames.count(c) > 1})
    if repeated:
        raise InputError(f"{path}: column(s) {', '.join(repeated)} given twice in the header")
    known = {"model", "deployment", "request_rate_rps", "slo_rate_rps", "slo_tokens_per_min", "input_tokens_mean",
             "output_tokens_mean", "source", *(f"ttft_{s}_s" for s in STATS), *(f"tpot_{s}_ms" for s in STATS)}
    unknown = [c for c in reader.fieldnames if c not in known]
    if unknown:
        raise InputError(f"{path}: unknown column(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    out = []
    for i, row in enumerate(reader, start=2):
        where = f"{path}:{i}"
        if None in row:
            raise InputError(f"{where}: more cells than the header has columns")
        m = (row.get("model") or "").strip() or model
        if not m:
            raise InputError(f"{where}: no model (a 'model' column or --model)")
        dep_text = (row.get("deployment") or "").strip()
        dep = parse_deployment(dep_text, f"{where}: deployment") if dep_text else deployment
        if dep is None:
            raise InputError(f"{where}: no deployment (a 'deployment' column or --deployment)")

        def num(name: str, row: dict[str, str] = row, where: str = where) -> float | None:
            value = (row.get(name) or "").strip()
            return _number(value, where, name) if value else None

        kinds = [k for k in ("request_rate_rps", "slo_rate_rps", "slo_tokens_per_min") if num(k) is not None]
        if len(kinds) != 1:
            raise InputError(f"{where}: give exactly one of request_rate_rps (a run), slo_rate_rps or "
                             f"slo_tokens_per_min (an SLO throughput); got {', '.join(kinds) or 'none'}")
        ttft = {s: v for s in STATS if (v := num(f"ttft_{s}_s")) is not None}
        tpot = {s: v for s in STATS if (v := num(f"tpot_{s}_ms")) is not None}
        if kinds[0] == "request_rate_rps" and not (ttft or tpot):
            raise InputError(f"{where}: a run needs at least one ttft_*_s or tpot_*_ms column")
        if kinds[0] != "request_rate_rps" and (ttft or tpot):
            raise InputError(f"{where}: an SLO throughput row ({kinds[0]}) takes no ttft_*/tpot_* values; give "
                             "those on a run's row (request_rate_rps)")
        out.append(MeasuredPoint(m, dep, (row.get("source") or where).strip(), num("request_rate_rps"), ttft, tpot,
                                 num("slo_rate_rps"), num("slo_tokens_per_min"), num("input_tokens_mean"),
                                 num("output_tokens_mean"), where))
    if not out:
        raise InputError(f"{path}: the measurements CSV has no rows")
    return out


def _vllm_points(path: Path, model: str | None, deployment: Deployment | None) -> list[MeasuredPoint]:
    from pdopt.io.importers.vllm import _vllm_runs

    if model is None or deployment is None:
        raise InputError(f"{path}: a vLLM bench result does not say what it measured: give --model and --deployment")
    out = []
    for run in _vllm_runs(path):
        ttft: dict[str, float] = {}
        tpot: dict[str, float] = {}
        for metric, store, scale in (("ttft", ttft, 1000.0), ("tpot", tpot, 1.0)):
            for stat, key in (("mean", f"mean_{metric}_ms"), ("p50", f"median_{metric}_ms"),
                              *((s, f"{s}_{metric}_ms") for s in ("p90", "p95", "p99"))):
                value = run.optional(key)
                if value is not None:
                    store[stat] = check_value(value / scale, run.where, f"{metric}_{stat}_{'s' if scale > 1 else 'ms'}")
        detail = run.detailed()
        if detail is not None:  # the per-request lists fill what the summary leaves out
            ttft = {**{k: check_value(v, run.where, f"ttft_{k}_s") for k, v in detail[0].items()}, **ttft}
            tpot = {**{k: check_value(v, run.where, f"tpot_{k}_ms") for k, v in detail[1].items()}, **tpot}
        if not ttft and not tpot:
            raise InputError(f"{run.where}: the run reports neither mean_ttft_ms nor mean_tpot_ms")
        rate = run.configured_rate
        rate = check_value(rate if rate is not None else run.throughput_rps, run.where, "request_rate_rps")
        out.append(MeasuredPoint(model, deployment, run.where, rate, ttft, tpot,
                                 input_tokens_mean=check_value(run.mean_input, run.where, "input_tokens_mean"),
                                 output_tokens_mean=check_value(run.mean_output, run.where, "output_tokens_mean"),
                                 location=run.where, arrival_scv=run.arrival_scv))
    return out


def _run_point(model: str, deployment: Deployment, source: str, rate: float, ttft_s: dict[str, float],
               tpot_ms: dict[str, float], input_mean: float | None, output_mean: float | None,
               **extra: float | None) -> MeasuredPoint:
    """One measured run as a reader gave it (TTFT statistics in seconds, TPOT in milliseconds, mean lengths where
    the run reports them), every number held to :data:`LIMITS` as a CSV cell would be."""
    ttft = {s: check_value(v, source, f"ttft_{s}_s") for s, v in ttft_s.items()}
    tpot = {s: check_value(v, source, f"tpot_{s}_ms") for s, v in tpot_ms.items()}
    lengths = {k: check_value(v, source, k) for k, v in (("input_tokens_mean", input_mean),
                                                         ("output_tokens_mean", output_mean)) if v is not None}
    return MeasuredPoint(model, deployment, source, check_value(rate, source, "request_rate_rps"), ttft, tpot,
                         location=source, **lengths, **extra)


def _aiperf_points(path: Path, model: str | None, deployment: Deployment | None) -> list[MeasuredPoint]:
    from pdopt.io.importers.aiperf import read_aiperf

    if model is None or deployment is None:
        raise InputError(f"{path}: an AIPerf export does not say what it measured: give --model and --deployment")
    run = read_aiperf(path)
    rate = run.request_rate if run.request_rate is not None else run.rate_rps
    return [_run_point(model, deployment, run.source, rate, run.ttft_s, run.tpot_ms, run.input_tokens_mean,
                       run.output_tokens_mean)]


def _llmd_points(path: Path, model: str | None, deployment: Deployment | None) -> list[MeasuredPoint]:
    from pdopt.io.importers.llmd_report import read_llmd_report

    run = read_llmd_report(path)
    if model is None:
        raise InputError(f"{path}: give --model, the instance's id of the model the report measured "
                         f"({run.model or 'unnamed'})")
    dep = deployment or parse_deployment(run.deployment(), f"{path}: scenario")
    return [_run_point(model, dep, run.source, run.rate_rps, run.ttft_s, run.tpot_ms, run.input_tokens_mean,
                       run.output_tokens_mean)]


def _evalscope_points(path: Path, model: str | None, deployment: Deployment | None) -> list[MeasuredPoint]:
    from pdopt.io.importers.evalscope import read_evalscope

    if model is None or deployment is None:
        raise InputError(f"{path}: an EvalScope run does not say what it measured: give --model and --deployment")
    run = read_evalscope(path)
    rate = run.request_rate if run.request_rate is not None else run.rate_rps
    return [_run_point(model, deployment, run.source, rate, run.ttft_s, run.tpot_ms, run.input_tokens_mean,
                       run.output_tokens_mean, pd_handoff_ms=run.pd_handoff_ms)]


def _kind(path: Path) -> str:
    """Which reader a measurements file is for, from one read of it: ``csv`` by suffix; ``llm-d`` for an llm-d
    Benchmark Report (.yaml, .yml or .json); ``evalscope`` for an EvalScope summary (.json); ``aiperf`` for an
    AIPerf or genai-perf export; else ``vllm`` (vLLM or SGLang bench JSON), whose reader says what is wrong."""
    import json

    from pdopt.io.importers.aiperf import is_aiperf
    from pdopt.io.importers.evalscope import is_evalscope
    from pdopt.io.importers.llmd_report import is_llmd_report
    from pdopt.io.instances import parse_document

    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    text = read_text(path, "measurements file", kind="benchmark")
    if suffix in (".yaml", ".yml", ".json"):
        try:
            if is_llmd_report(parse_document(text, str(path))):
                return "llm-d"
        except InputError:
            pass
    if suffix == ".json":
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            doc = None
        if is_evalscope(doc):
            return "evalscope"
    return "aiperf" if is_aiperf(path, text) else "vllm"


_READERS = {"csv": _csv_points, "llm-d": _llmd_points, "evalscope": _evalscope_points, "aiperf": _aiperf_points,
            "vllm": _vllm_points}
"""The points reader for each kind :func:`_kind` tells apart."""


def read_measurements(paths: Sequence[str | Path], model: str | None = None,
                      deployment: str | None = None) -> list[MeasuredPoint]:
    """Every measured point in ``paths``: CSV by suffix ``.csv``; an llm-d Benchmark Report (with its stack as the
    deployment unless one is given); an EvalScope summary; an AIPerf or genai-perf summary or AIPerf per-request
    JSONL (the rate its configured ``request_rate`` or else its completed requests per second); else vLLM or SGLang
    bench JSON (the module docstring gives each format)."""
    dep = parse_deployment(deployment) if deployment else None
    points: list[MeasuredPoint] = []
    for raw in paths:
        p = Path(raw)
        points += _READERS[_kind(p)](p, model, dep)
    if not points:
        raise InputError("fidelity: no measured points given")
    return points

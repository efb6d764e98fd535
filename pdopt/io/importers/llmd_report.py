"""llm-d-benchmark "Benchmark Report" (schema v0.1, v0.2, v0.2.1; llm-d/llm-d-benchmark @ 8bc9f1dd,
``llmdbenchmark/analysis/benchmark_report/schema_v0_*.py``) into one measured run: what it served (roles,
replicas, GPUs per replica, accelerator) and what it measured (rate, TTFT and TPOT statistics, lengths).

v0.2 / v0.2.1: ``scenario.stack[]`` entries with ``standardized.kind: inference_engine`` give ``role``
(``replica`` = aggregated, ``prefill``, ``decode``), ``replicas`` and ``accelerator.{model, count}`` (count: GPUs
per replica, as every producer writes it); ``scenario.load.standardized.rate_qps`` the configured rate;
``results.request_performance.aggregate``: ``latency.time_to_first_token`` and ``latency.time_per_output_token``
(Statistics with ``units`` ms or s, ms/token or s/token; ``inter_token_latency`` when TPOT is absent),
``throughput.request_rate`` (queries/s, the achieved rate), ``requests.input_length`` / ``output_length`` (count).
v0.1: the parallel per-pod lists ``scenario.host.type[]`` and ``scenario.host.accelerator[]``, and ``metrics``
(``latency.*``, ``throughput.requests_per_sec``, ``requests.input_length``).

Statistics keys read: ``mean``, ``p50``, ``p90``, ``p95``, ``p99``. Units are read, never assumed. ``rate_rps`` is
the achieved ``throughput.request_rate`` (``rate_qps``, the configured one, is not read: a run may fall short of
it). The example
reports kept in ../shared/data/benchmark-formats/llm-d-benchmark-report/ are the project's illustrative ones
(made-up values), so tests check the reading, not the numbers' meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdopt.errors import InputError
from pdopt.io.files import read_text
from pdopt.io.importers.guard import finite_number, untrusted
from pdopt.io.instances import parse_document

__all__ = ["LlmdRun", "is_llmd_report", "read_llmd_report"]

STATS = ("mean", "p50", "p90", "p95", "p99")
_TIME = {"ms": 1e-3, "s": 1.0}
_PER_TOKEN_MS = {"ms/token": 1.0, "s/token": 1e3}
_ROLE = {"replica": "aggregated", "prefill": "prefill", "decode": "decode"}


@dataclass(frozen=True)
class LlmdRun:
    """One report: the stack measured and its statistics."""

    source: str
    version: str
    model: str | None
    stack: tuple[tuple[str, str, int, int], ...]
    """(role, accelerator model, GPUs per replica, replicas) per serving engine."""
    rate_rps: float
    ttft_s: dict[str, float]
    tpot_ms: dict[str, float]
    input_tokens_mean: float | None
    output_tokens_mean: float | None

    def deployment(self, gpu_type: str | None = None) -> str:
        """The stack as a ``--deployment`` string (``prefill=GPUxN:COUNT+decode=...``), each accelerator named
        ``gpu_type`` when given, else its model lower-cased with ``_`` for other characters."""
        def name(acc: str) -> str:
            return gpu_type or "".join(c if c.isalnum() else "_" for c in acc.lower()).strip("_")

        return "+".join(f"{role}={name(acc)}x{gpus}:{n}" for role, acc, gpus, n in self.stack)


def is_llmd_report(doc: Any) -> bool:
    """A mapping with ``version`` 0.1, 0.2 or 0.2.1 and ``scenario``."""
    return isinstance(doc, dict) and str(doc.get("version")) in ("0.1", "0.2", "0.2.1") and "scenario" in doc


def _get(doc: Any, path: str, where: str) -> Any:
    node = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise InputError(f"{where}: {path} is missing")
        node = node[key]
    return node


def _whole(value: Any, where: str) -> int:
    """A positive whole number (GPUs, replicas): 2.5 GPUs is refused, not rounded."""
    x = finite_number(value, where)
    if x < 1 or not x.is_integer():
        raise InputError(f"{where}: expected a whole number of at least 1, got {value!r}")
    return int(x)


def _stats(stat: Any, scales: dict[str, float], where: str) -> dict[str, float]:
    if not isinstance(stat, dict):
        raise InputError(f"{where}: expected Statistics (units, mean, ...), got {stat!r}")
    units = stat.get("units")
    if not isinstance(units, str) or units not in scales:
        raise InputError(f"{where}.units: {units!r} is not one of {', '.join(scales)}")
    return {s: finite_number(stat[s], f"{where}.{s}") * scales[units] for s in STATS if stat.get(s) is not None}


def _stack_v02(doc: dict[str, Any], where: str) -> tuple[tuple[str, str, int, int], ...]:
    stack = _get(doc, "scenario.stack", where)
    out = []
    for i, comp in enumerate(stack if isinstance(stack, list) else []):
        std = comp.get("standardized") if isinstance(comp, dict) else None
        if not isinstance(std, dict) or std.get("kind") != "inference_engine":
            continue
        at = f"{where}: scenario.stack[{i}].standardized"
        raw_role = std.get("role")
        role = _ROLE.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise InputError(f"{at}.role: {std.get('role')!r} is not replica, prefill or decode")
        acc = std.get("accelerator") or {}
        if not isinstance(acc, dict):
            raise InputError(f"{at}.accelerator: expected a mapping (model, count), got {acc!r}")
        out.append((role, str(acc.get("model", "gpu")), _whole(acc.get("count"), f"{at}.accelerator.count"),
                    _whole(std.get("replicas"), f"{at}.replicas")))
    return tuple(out)


def _stack_v01(doc: dict[str, Any], where: str) -> tuple[tuple[str, str, int, int], ...]:
    types, accs = _get(doc, "scenario.host.type", where), _get(doc, "scenario.host.accelerator", where)
    if not isinstance(types, list) or not isinstance(accs, list) or len(types) != len(accs):
        raise InputError(f"{where}: scenario.host.type and scenario.host.accelerator must be lists of one length")
    groups: dict[tuple[str, str, int], int] = {}
    for i, (t, acc) in enumerate(zip(types, accs, strict=True)):
        role = _ROLE.get(t) if isinstance(t, str) else None
        if role is None or not isinstance(acc, dict):
            raise InputError(f"{where}: scenario.host.type[{i}]: {t!r} is not replica, prefill or decode")
        key = (role, str(acc.get("model", "gpu")), _whole(acc.get("count"), f"{where}: accelerator[{i}].count"))
        groups[key] = groups.get(key, 0) + 1
    return tuple((r, a, g, n) for (r, a, g), n in groups.items())


@untrusted("llm-d Benchmark Report")
def read_llmd_report(path: str | Path) -> LlmdRun:
    """One Benchmark Report (YAML or JSON); see the module docstring."""
    p = Path(path)
    where = str(p)
    doc = parse_document(read_text(p, "benchmark report", kind="benchmark"), where)
    if not is_llmd_report(doc):
        raise InputError(f"{where}: not an llm-d Benchmark Report (version 0.1, 0.2 or 0.2.1 with a scenario)")
    version = str(doc["version"])
    if version == "0.1":
        stack = _stack_v01(doc, where)
        m = _get(doc, "metrics", where)
        latency, base = _get(m, "latency", where), "metrics"
        rate = finite_number(_get(m, "throughput.requests_per_sec", where),
                             f"{where}: metrics.throughput.requests_per_sec")
        lengths = m.get("requests") or {}
        model = (doc.get("scenario", {}).get("model") or {}).get("name")
    else:
        stack = _stack_v02(doc, where)
        agg = _get(doc, "results.request_performance.aggregate", where)
        latency, base = _get(agg, "latency", where), "results.request_performance.aggregate"
        rate = _stats(_get(agg, "throughput.request_rate", where), {"queries/s": 1.0},
                      f"{where}: {base}.throughput.request_rate")["mean"]
        lengths = agg.get("requests") or {}
        engines = [c.get("standardized", {}) for c in doc["scenario"].get("stack", []) if isinstance(c, dict)]
        model = next(((e.get("model") or {}).get("name") for e in engines if e.get("kind") == "inference_engine"), None)
    if not stack:
        raise InputError(f"{where}: the scenario names no serving engine (role replica, prefill or decode)")
    ttft = _stats(latency.get("time_to_first_token"), _TIME, f"{where}: {base}.latency.time_to_first_token")
    tpot_key = "time_per_output_token" if latency.get("time_per_output_token") else "inter_token_latency"
    tpot = _stats(latency.get(tpot_key), _PER_TOKEN_MS, f"{where}: {base}.latency.{tpot_key}")

    def mean(key: str) -> float | None:
        stat = lengths.get(key)
        return finite_number(stat.get("mean"), f"{where}: {key}.mean") if isinstance(stat, dict) else None

    return LlmdRun(where, version, model, stack, rate, ttft, tpot, mean("input_length"), mean("output_length"))

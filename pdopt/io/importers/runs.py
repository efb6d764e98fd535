"""Runs of other benchmark tools (AIPerf, genai-perf, EvalScope) as the summary a vLLM run gives, so that one set
of rules turns a sweep of runs of any tool into a profile (:func:`pdopt.io.importers.import_runs`): a decode
curve from runs at several concurrencies (batch = the client's concurrency, TPOT = the run's mean TPOT, first
token excluded in every tool), a prefill point from the input tokens per second of the runs.

The summary given to the vLLM rules: ``completed``, ``duration`` = completed / request rate, ``total_input_tokens``
and ``total_output_tokens`` = completed x the mean lengths, ``request_throughput``, ``max_concurrency`` (the
client's, when the run states one), ``request_rate`` (the configured one, else ``inf``), ``mean_ttft_ms``,
``mean_tpot_ms``; each statistic as the tool reported it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdopt.errors import InputError
from pdopt.io.importers.aiperf import AiperfRun, read_aiperf
from pdopt.io.importers.evalscope import EvalscopeRun, read_evalscope
from pdopt.io.importers.vllm import _VllmRun

__all__ = ["as_vllm_run", "read_tool_run"]


def read_tool_run(path: str | Path, fmt: str) -> AiperfRun | EvalscopeRun:
    """One run of an ``aiperf`` (AIPerf, genai-perf) or ``evalscope`` file."""
    return read_evalscope(path) if fmt == "evalscope" else read_aiperf(path)


def as_vllm_run(run: AiperfRun | EvalscopeRun) -> _VllmRun:
    """The run as a vLLM summary (the module docstring)."""
    tool = "EvalScope perf" if isinstance(run, EvalscopeRun) else (
        "genai-perf" if Path(run.source).name.endswith("_genai_perf.json") else "AIPerf")
    completed = run.completed or 1
    if run.input_tokens_mean is None or run.output_tokens_mean is None:
        raise InputError(f"{run.source}: the run gives no mean input and output lengths")
    if not run.rate_rps > 0:
        raise InputError(f"{run.source}: the run's request rate is {run.rate_rps!r}; a run measures a positive one")
    if "mean" not in run.ttft_s:
        raise InputError(f"{run.source}: the run gives no mean TTFT")
    doc: dict[str, Any] = {
        "_pdopt_tool": tool, "completed": completed, "duration": completed / run.rate_rps,
        "total_input_tokens": completed * run.input_tokens_mean,
        "total_output_tokens": completed * run.output_tokens_mean, "request_throughput": run.rate_rps,
        "max_concurrency": run.concurrency, "request_rate": run.request_rate if run.request_rate else "inf",
        "mean_ttft_ms": run.ttft_s["mean"] * 1000.0}
    if "mean" in run.tpot_ms:  # none for runs of one output token (prefill)
        doc["mean_tpot_ms"] = run.tpot_ms["mean"]
    return _VllmRun(run.source, doc)

"""Importer of vLLM ``bench serve --save-result`` JSON: one file per run of a sweep.

See :mod:`pdopt.io.importers.common` for the rules every importer follows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pdopt.errors import InputError
from pdopt.instance import SHAPE_ROLES
from pdopt.io.importers.common import (
    _NOT_RECOGNISED,
    _TTFT_PERCENTILE,
    SAME_LENGTH_REL,
    THROUGHPUT_DIGITS,
    TOKENS_DIGITS,
    TPOT_DIGITS,
    _identifier,
    _profile_head,
    _read_text,
    _tidy,
    _validated,
)
from pdopt.io.importers.monotone import MONOTONE_FITS, monotone_fit, moved_note


class VllmImport(NamedTuple):
    """What :func:`import_vllm_bench` returns: the profile, and the measured points for TTFT calibration."""

    profile: dict[str, Any]
    points: list[dict[str, Any]]


@dataclass(frozen=True)
class _VllmRun:
    where: str
    doc: dict[str, Any]

    def number(self, key: str, *, positive: bool = True, why: str = "") -> float:
        value = self.doc.get(key)
        if value is None:
            raise InputError(f"{self.where}: field '{key}' is missing{why}")
        try:
            finite = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            shown = json.dumps(value) if not isinstance(value, int) or value.bit_length() < 256 else "a huge integer"
            raise InputError(f"{self.where}: field '{key}' must be a finite number, got {shown}")
        if value < 0 or (positive and value == 0):
            raise InputError(f"{self.where}: field '{key}' must be {'positive' if positive else 'non-negative'}, "
                             f"got {value}")
        return float(value)

    def optional(self, key: str) -> float | None:
        return self.number(key) if self.doc.get(key) is not None else None

    @property
    def completed(self) -> float:
        return self.number("completed", why=" (a run with no completed request measures nothing)")

    @property
    def mean_input(self) -> float:
        return self.number("total_input_tokens") / self.completed

    @property
    def mean_output(self) -> float:
        return self.number("total_output_tokens") / self.completed

    @property
    def configured_rate(self) -> float | None:
        """``request_rate`` as configured; None where it was ``inf`` (all requests sent at once) or absent."""
        value = self.doc.get("request_rate")
        if value is None or value == "inf" or (isinstance(value, float) and math.isinf(value)):
            return None
        return self.number("request_rate")

    @property
    def throughput_rps(self) -> float:
        got = self.optional("request_throughput")
        return got if got is not None else self.completed / self.number("duration")

    @property
    def tool(self) -> str:
        """``SGLang bench_serving`` (its result names ``dataset_name`` and ``random_input_len``) or ``vLLM bench
        serve``: the two write the same summary keys (sgl-project/sglang ``benchmark/serving.py`` 1857-1905); or
        the tool a run of another format was read from (:func:`pdopt.io.importers.runs.as_vllm_run`)."""
        if "_pdopt_tool" in self.doc:
            return str(self.doc["_pdopt_tool"])
        return "SGLang bench_serving" if "dataset_name" in self.doc and "random_input_len" in self.doc \
            else "vLLM bench serve"

    @property
    def arrival_scv(self) -> float | None:
        """The inter-arrival SCV the client drew: vLLM's ``burstiness`` is the shape k of its gamma gaps
        (``vllm/benchmarks/serve.py`` ``get_request``, 431-545), so SCV = 1 / k (k = 1: Poisson); SGLang draws
        Poisson gaps (SCV 1). None at an unlimited rate (every request sent at once)."""
        if self.configured_rate is None:
            return None
        b = self.doc.get("burstiness")
        if b is None:
            return 1.0 if self.tool.startswith("SGLang") else None
        if b == "inf" or (isinstance(b, float) and math.isinf(b) and b > 0):
            return 0.0  # --burstiness inf: constant gaps
        scv = 1.0 / self.number("burstiness")
        if scv > MAX_ARRIVAL_SCV:
            raise InputError(f"{self.where}: field 'burstiness' {b!r} is an arrival SCV of {scv:g}, above "
                             f"{MAX_ARRIVAL_SCV:g} (the instance format's largest arrival_scv)")
        return scv

    def detailed(self) -> tuple[dict[str, float], dict[str, float], int, int] | None:
        """See :meth:`_detailed`; a malformed list is an InputError naming the run."""
        try:
            return self._detailed()
        except InputError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"{self.where}: the per-request lists hold a value that is not a number "
                             f"({type(exc).__name__}: {exc})") from None

    def _detailed(self) -> tuple[dict[str, float], dict[str, float], int, int] | None:
        """From the per-request lists (``--save-detailed`` / ``--output-details``), over the successful requests
        (``errors`` empty): TTFT statistics (s), TPOT statistics (ms; per request (latency - TTFT) / (output - 1)
        for outputs above 1 token, latency from ``latencies``, or TTFT + the sum of ``itls`` where there is none,
        as SGLang writes), and the numbers of successful and failed requests. None without the lists."""
        ttfts, outs, errors = self.doc.get("ttfts"), self.doc.get("output_lens"), self.doc.get("errors")
        if not (isinstance(ttfts, list) and isinstance(outs, list) and isinstance(errors, list)):
            return None
        lat = self.doc.get("latencies")
        itls = self.doc.get("itls")
        n = len(ttfts)
        if len(outs) != n or len(errors) != n or (isinstance(lat, list) and len(lat) != n):
            raise InputError(f"{self.where}: the per-request lists (ttfts, output_lens, errors, latencies) differ in "
                             "length")
        ok = [i for i in range(n) if errors[i] in ("", None)]
        t, tp = [], []
        for i in ok:
            ttft = float(ttfts[i])
            t.append(ttft)
            if isinstance(lat, list):
                latency = float(lat[i])
            elif isinstance(itls, list) and isinstance(itls[i], list):
                latency = ttft + float(sum(itls[i]))
            else:
                continue
            if outs[i] > 1:
                tp.append((latency - ttft) / (outs[i] - 1) * 1000.0)
        if not t:
            return None

        def stats(v: list[float]) -> dict[str, float]:
            import numpy as np

            a = np.asarray(v, dtype=float)
            if not np.isfinite(a).all():
                raise InputError(f"{self.where}: a per-request value is not a finite number")
            return {"mean": float(a.mean()), **{f"p{q}": float(np.percentile(a, q)) for q in (50, 90, 95, 99)}}

        return stats(t), (stats(tp) if tp else {}), len(ok), n - len(ok)


def _vllm_runs(path: Path) -> list[_VllmRun]:
    """One run per file, or one per line for a file written with ``--append-result`` (JSON objects, one a line)."""
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return _vllm_json_lines(path, text, f"{exc.msg} at line {exc.lineno}")
    except RecursionError:
        raise InputError(f"{path}: the JSON is nested too deeply to read") from None
    except ValueError as exc:  # an integer beyond Python's conversion limit
        raise InputError(f"{path}: cannot read the JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object (a vLLM bench result), got {type(doc).__name__}")
    return [_VllmRun(str(path), doc)]


def _vllm_json_lines(path: Path, text: str, whole_file_error: str) -> list[_VllmRun]:
    """The runs of an ``--append-result`` file; the whole-file JSON error if it is not one either."""
    runs: list[_VllmRun] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}: not valid JSON ({whole_file_error}); {_NOT_RECOGNISED}?") from None
        except (RecursionError, ValueError):
            raise InputError(f"{path} line {n}: the JSON is nested too deeply or holds a number too large to "
                             "read") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path} line {n}: expected a JSON object (one vLLM bench result)")
        runs.append(_VllmRun(f"{path} line {n}", obj))
    if not runs:
        raise InputError(f"{path}: the file is empty")
    return runs


def _mean_e2e_s(run: _VllmRun) -> tuple[float, str]:
    """Mean end-to-end latency in seconds, and how it was obtained.

    ``mean_e2el_ms`` is only written when ``e2el`` is among ``--percentile-metrics`` (the default is
    ``ttft,tpot,itl``); otherwise it is rebuilt from the definition vLLM uses for TPOT, latency = TTFT +
    TPOT x (output tokens - 1), with the means (exact when every request has the same output length).
    """
    e2el = run.optional("mean_e2el_ms")
    if e2el is not None:
        return e2el / 1000.0, "mean_e2el_ms"
    ttft = run.number("mean_ttft_ms", why=" (needed with mean_tpot_ms when mean_e2el_ms is absent)")
    tpot = run.number("mean_tpot_ms")
    return (ttft + tpot * max(run.mean_output - 1.0, 0.0)) / 1000.0, "mean_ttft_ms + mean_tpot_ms x (output - 1)"


MAX_ARRIVAL_SCV = 1e4
"""The largest arrival SCV the instance format takes (``arrival_scv``)."""

TPOT_SOURCES = ("tpot", "itl", "e2el")
"""Which of a vLLM run's fields gives TPOT per output token after the first (pdopt's TPOT: the decode
iteration time a request sees): ``tpot`` (default) ``mean_tpot_ms``, vLLM's per-request (latency - TTFT) /
(output tokens - 1), the first token excluded; ``itl`` ``mean_itl_ms``, the mean gap between consecutive tokens
over every token of every request (token-weighted: long outputs weigh more); ``e2el`` (``mean_e2el_ms`` -
``mean_ttft_ms``) / (mean output tokens - 1), from end-to-end latency, for a tool whose TPOT counts the first
token (latency / output tokens) and whose runs record the latency."""


def run_tpot_ms(run: _VllmRun, source: str) -> tuple[float, str]:
    """A run's TPOT (first token excluded) as ``source`` (:data:`TPOT_SOURCES`) reads it, and the rule used."""
    if source == "itl":
        return run.number("mean_itl_ms", why=" (--tpot-from itl; keep itl in --percentile-metrics)"), "mean_itl_ms"
    if source == "e2el":
        e2el = run.number("mean_e2el_ms", why=" (--tpot-from e2el; add e2el to --percentile-metrics)")
        ttft = run.number("mean_ttft_ms", positive=False)
        steps = run.mean_output - 1.0
        if steps <= 0:
            raise InputError(f"{run.where}: mean output {run.mean_output:g} tokens: no token after the first")
        return (e2el - ttft) / steps, "(mean_e2el_ms - mean_ttft_ms) / (mean output - 1)"
    return run.number("mean_tpot_ms", why=" (a decode profile needs it; keep tpot in --percentile-metrics)"), \
        "mean_tpot_ms"


def _calibration_point(run: _VllmRun) -> dict[str, Any] | None:
    if run.doc.get("mean_ttft_ms") is None:
        return None
    rate = run.configured_rate
    point: dict[str, Any] = {
        "request_rate_rps": rate if rate is not None else run.throughput_rps,
        "rate_configured": rate is not None,
        "achieved_rps": run.throughput_rps,
        "max_concurrency": run.doc.get("max_concurrency"),
        "ttft_mean_s": run.number("mean_ttft_ms", positive=False) / 1000.0,
    }
    if run.doc.get("median_ttft_ms") is not None:
        point["ttft_p50_s"] = run.number("median_ttft_ms", positive=False) / 1000.0
    percentiles = [(m.group(1), key) for key in run.doc
                   if (m := _TTFT_PERCENTILE.match(key)) and run.doc[key] is not None]
    for pct, key in sorted(percentiles, key=lambda pk: float(pk[0])):
        point[f"ttft_p{pct}_s"] = run.number(key, positive=False) / 1000.0
    if run.doc.get("mean_tpot_ms") is not None:
        point["tpot_mean_ms"] = run.number("mean_tpot_ms", positive=False)
    point["input_tokens_mean"] = round(run.mean_input, TOKENS_DIGITS)
    point["output_tokens_mean"] = round(run.mean_output, TOKENS_DIGITS)
    point["source"] = run.where
    return point


def import_vllm_bench(paths: str | Path | Sequence[str | Path], model: str, gpu_type: str, gpus_per_instance: int,
                      role: str, *, variant: str = "default",
                      engine: tuple[int, int] | None = None, monotone: str = "refuse",
                      tpot_from: str = "tpot", runs: Sequence[_VllmRun] | None = None) -> VllmImport:
    """A profile (and TTFT calibration points) from a sweep of ``vllm bench serve --save-result`` files.

    Fields relied on, read from vLLM's own source: ``vllm/benchmarks/serve.py`` (the ``vllm bench serve``
    command, vllm-project/vllm main branch, stored copy at commit 009e6d4a1cd6) and the older
    ``benchmarks/benchmark_serving.py`` (commit 0049e29c41fd), which write the same keys: ``duration`` (s),
    ``completed``, ``total_input_tokens``, ``total_output_tokens``, ``request_throughput`` (completed /
    duration, req/s), ``request_rate`` (the configured ``--request-rate``, the string ``"inf"`` when unlimited),
    ``max_concurrency`` (``--max-concurrency``, null when unlimited), ``mean_ttft_ms`` / ``median_ttft_ms`` /
    ``p{N}_ttft_ms`` (N from ``--metric-percentiles``, default 99), ``mean_tpot_ms`` (per request,
    (latency - TTFT) / (output tokens - 1), averaged over requests with more than one output token) and, only
    when ``e2el`` is in ``--percentile-metrics``, ``mean_e2el_ms``. There is no ``input_throughput`` field;
    input throughput is computed as total_input_tokens / duration. A file written with ``--append-result``
    holds one JSON object per line; each is a run. The field names were checked by reading the result-dict
    construction (``benchmark()`` and ``main_async()``) in both files; the test files under ``tests/data/`` are
    synthetic numbers in that layout. ``runs`` gives runs already read (another tool's, through
    :func:`pdopt.io.importers.runs.as_vllm_run`) instead of reading ``paths``.

    ``role="decode"``: each run is one point (TPOT from the field ``tpot_from`` names, :data:`TPOT_SOURCES`),
    batch = ``max_concurrency``, or where concurrency was unlimited
    the mean number of requests in the system by Little's law, ``request_throughput`` x mean end-to-end latency
    (rounded to a whole batch, at least 1); tpot_ms = ``mean_tpot_ms``. Runs at the same batch are averaged;
    at least 2 batch sizes are needed and TPOT must not fall as the batch grows, unless ``monotone`` is
    ``isotonic`` or ``envelope`` (:mod:`pdopt.io.importers.monotone`): the curve is then fitted (weights: the runs
    averaged into each point) and the points moved are named in ``source``.

    ``role="prefill"``: max_throughput_tok_per_s = the largest observed ``total_input_tokens / duration``, at the
    mean input length (total_input_tokens / completed); for a sweep at one input length, ``measured_ttft`` holds
    each run's offered rate and mean TTFT (the G/G/1 calibration's input). Runs whose mean input lengths lie
    within 5% of each other are one point, so a sweep over request rate gives one point and a sweep over input
    lengths a curve.
    Benchmark a prefill instance with output length 1 and a rate high enough to saturate it: the largest
    observed throughput is a lower bound on the true maximum.

    Returns ``(profile, points)``: ``points`` holds, per run that reports TTFT, ``request_rate_rps`` (the
    configured rate, or the achieved ``request_throughput`` where it was ``inf``), ``rate_configured``,
    ``achieved_rps``, ``max_concurrency``, ``ttft_mean_s``, ``ttft_p50_s`` and ``ttft_p{N}_s`` where present,
    ``tpot_mean_ms``, ``input_tokens_mean``, ``output_tokens_mean`` and ``source`` (file, or file and line),
    sorted by request rate, for a later TTFT calibration step.
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(x) for x in paths]
    where = "import_vllm_bench"
    if not files:
        raise InputError(f"{where}: no result files given")
    if role not in SHAPE_ROLES:
        raise InputError(f"{where}: unknown role '{role}' (expected prefill, decode or aggregated)")
    if monotone not in MONOTONE_FITS:
        raise InputError(f"{where}: monotone '{monotone}' is not one of {', '.join(MONOTONE_FITS)}")
    if tpot_from not in TPOT_SOURCES:
        raise InputError(f"{where}: tpot_from '{tpot_from}' is not one of {', '.join(TPOT_SOURCES)}")
    if role == "aggregated" and engine is None:
        raise InputError(f"{where}: an aggregated profile needs the engine's token budget and batch cap "
                         "(--token-budget, --max-batch: vLLM's max_num_batched_tokens and max_num_seqs)")
    _identifier(model, "model", where)
    _identifier(gpu_type, "gpu_type", where)
    _identifier(variant, "variant", where)
    if isinstance(gpus_per_instance, bool) or not isinstance(gpus_per_instance, int) or gpus_per_instance < 1:
        raise InputError(f"{where}: gpus_per_instance must be a positive whole number, got {gpus_per_instance!r}")
    # runs of another tool come already read, as vLLM summaries (pdopt.io.importers.runs)
    runs = list(runs) if runs is not None else [run for f in files for run in _vllm_runs(f)]
    points = [pt for run in runs if (pt := _calibration_point(run)) is not None]
    points.sort(key=lambda pt: (pt["request_rate_rps"], pt["source"]))
    head = _profile_head(model, role, gpu_type, gpus_per_instance, variant)
    if role == "aggregated":
        assert engine is not None
        profile = _vllm_aggregated(points, head, *engine)
    elif role == "decode":
        profile = _vllm_decode(runs, head, monotone, tpot_from)
    else:
        profile = _vllm_prefill(runs, head)
        sweep = _ttft_sweep(points, profile)
        if sweep:
            profile["measured_ttft"] = sweep
    return VllmImport(_validated(profile, f"{where} ({', '.join(str(f) for f in files)})"), points)


def _ttft_sweep(points: list[dict[str, Any]], profile: dict[str, Any]) -> list[dict[str, float]]:
    """The prefill profile's ``measured_ttft`` (request_rate_rps, ttft_mean_s per run, in rate order): the runs'
    mean TTFT at their offered rate, for the G/G/1 calibration (``queue_model: gg1``). Only for a sweep at one
    input length (a profile of one throughput point); runs at one rate are averaged; a run at an unlimited rate
    (``--request-rate inf``) is left out: it measures the saturated throughput, not a queue at an offered
    rate."""
    if len(profile["max_throughput_by_input"]) != 1:
        return []
    by_rate: dict[float, list[float]] = {}
    for pt in points:
        if pt["ttft_mean_s"] > 0 and pt["request_rate_rps"] > 0 and pt["rate_configured"]:
            by_rate.setdefault(round(pt["request_rate_rps"], 6), []).append(pt["ttft_mean_s"])
    return [{"request_rate_rps": r, "ttft_mean_s": round(sum(v) / len(v), 6)} for r, v in sorted(by_rate.items())]


def _vllm_aggregated(points: list[dict[str, Any]], head: dict[str, Any], token_budget: int,
                     max_batch: int) -> dict[str, Any]:
    """An aggregated profile whose ``measured_runs`` are the runs' rate, mean TTFT and mean TPOT: the planner
    calibrates the iteration model to them (docs/calibration.md). The stated iteration model is only where the
    fit holds what the means cannot identify: the quadratic prefill and per-context-token coefficients (0 here;
    state them when known); the fixed cost, per-prefill-token and per-decode-request coefficients are fitted."""
    runs = [pt for pt in points if pt.get("tpot_mean_ms") and pt["ttft_mean_s"] > 0]
    if len(runs) < 3:
        raise InputError(f"{len(runs)} run(s) report a positive mean TTFT and TPOT; calibrating an aggregated "
                         "profile needs runs at 3 or more request rates (a --request-rate sweep)")
    profile = dict(head)
    profile.update(token_budget=token_budget, max_batch=max_batch, iteration={
        "overhead_ms": round(min(pt["tpot_mean_ms"] for pt in runs), TPOT_DIGITS), "per_prefill_token_ms": 0.0,
        "prefill_quadratic_ms": 0.0, "per_context_token_ms": 0.0, "per_decode_seq_ms": 0.0,
        "source": "placeholder: fitted to measured_runs (overhead, per prefill token, per decode request); the "
                  "quadratic and per-context-token coefficients are held at 0 unless stated"})
    profile["measured_runs"] = [{"request_rate_rps": pt["request_rate_rps"], "ttft_mean_s": pt["ttft_mean_s"],
                                 "tpot_mean_ms": pt["tpot_mean_ms"]} for pt in runs]
    profile["source"] = ("vLLM bench serve --save-result runs at several request rates (" + ", ".join(
        pt["source"] for pt in runs) + f"); engine settings token_budget {token_budget}, max_batch {max_batch} as "
        "given to the import")
    return profile


def _tools(runs: list[_VllmRun]) -> str:
    """The tools that wrote the runs (``vLLM bench serve --save-result`` for vLLM's own)."""
    names = sorted({r.tool for r in runs})
    return " and ".join("vLLM bench serve --save-result" if n == "vLLM bench serve" else n for n in names)


def _vllm_decode(runs: list[_VllmRun], head: dict[str, Any], monotone: str = "refuse",
                 tpot_from: str = "tpot") -> dict[str, Any]:
    by_batch: dict[int, list[tuple[_VllmRun, float, str]]] = {}
    for run in runs:
        tpot, tpot_rule = run_tpot_ms(run, tpot_from)
        conc = run.doc.get("max_concurrency")
        if conc is not None:
            if isinstance(conc, bool) or not isinstance(conc, int) or conc < 1:
                raise InputError(f"{run.where}: field 'max_concurrency' must be a positive whole number or null, "
                                 f"got {json.dumps(conc)}")
            batch, how = conc, "max_concurrency"
        else:
            e2e_s, e2e_how = _mean_e2e_s(run)
            mean_in_system = run.throughput_rps * e2e_s
            batch = max(1, round(mean_in_system))
            how = (f"Little's law: {run.throughput_rps:.3f} req/s x {e2e_s:.3f} s ({e2e_how}) = "
                   f"{mean_in_system:.2f}")
        by_batch.setdefault(batch, []).append((run, tpot, how))
    batches = sorted(by_batch)
    if len(batches) < 2:
        raise InputError(f"{', '.join(r.where for r in runs)}: the run(s) give only batch {batches[0]}; a decode "
                         "profile needs a sweep over at least 2 concurrencies")
    tpots = [round(sum(t for _, t, _ in by_batch[b]) / len(by_batch[b]), TPOT_DIGITS) for b in batches]
    fitted = ""
    if monotone != "refuse":
        tpots, moved = monotone_fit(batches, tpots, monotone, [len(by_batch[b]) for b in batches], TPOT_DIGITS)
        fitted = moved_note(moved, monotone, "batch", "tpot_ms")
    for i in range(1, len(batches)):
        if tpots[i] < tpots[i - 1]:
            here = ", ".join(r.where for r, _, _ in by_batch[batches[i]])
            prev = ", ".join(r.where for r, _, _ in by_batch[batches[i - 1]])
            raise InputError(f"{here}: mean_tpot_ms {tpots[i]} at batch {batches[i]} is below {tpots[i - 1]} at "
                             f"batch {batches[i - 1]} ({prev}); TPOT must not fall as the batch grows (re-measure, "
                             "or leave the run out)")
    completed = sum(r.completed for r in runs)
    profile = dict(head)
    profile["tpot_by_batch"] = [{"batch": b, "tpot_ms": t} for b, t in zip(batches, tpots, strict=True)]
    profile["input_tokens"] = _tidy(round(sum(r.number("total_input_tokens") for r in runs) / completed,
                                          TOKENS_DIGITS))
    profile["output_tokens"] = _tidy(round(sum(r.number("total_output_tokens") for r in runs) / completed,
                                           TOKENS_DIGITS))
    used = "; ".join(f"{r.where} (batch {b}: {how})" for b in batches for r, _, how in by_batch[b])
    profile["source"] = (f"{_tools(runs)} sweep: tpot_ms = {tpot_rule}, batch = max_concurrency "
                         f"(Little's law where unlimited), runs at one batch averaged{fitted}; runs: {used}")
    return profile


def _vllm_prefill(runs: list[_VllmRun], head: dict[str, Any]) -> dict[str, Any]:
    measured = sorted(((r.mean_input, r.number("total_input_tokens") / r.number("duration"), r) for r in runs),
                      key=lambda m: m[0])
    clusters: list[list[tuple[float, float, _VllmRun]]] = []
    for m in measured:
        if clusters and m[0] <= clusters[-1][0][0] * (1.0 + SAME_LENGTH_REL):
            clusters[-1].append(m)
        else:
            clusters.append([m])
    curve: list[dict[str, Any]] = []
    notes: list[str] = []
    for cl in clusters:
        tokens = sum(r.number("total_input_tokens") for _, _, r in cl)
        length = round(tokens / sum(r.completed for _, _, r in cl), TOKENS_DIGITS)
        best = max(cl, key=lambda m: m[1])
        curve.append({"input_tokens": _tidy(length), "max_throughput_tok_per_s": round(best[1], THROUGHPUT_DIGITS)})
        others = [r.where for _, _, r in cl if r is not best[2]]
        notes.append(f"{_tidy(length)} tokens: {best[2].where} ({best[1]:.1f} tok/s)"
                     + (f", largest of {len(cl)} runs (also {', '.join(others)})" if others else ""))
    profile = dict(head)
    profile["max_throughput_by_input"] = curve
    profile["source"] = (f"{_tools(runs)} runs: max_throughput_tok_per_s = largest total_input_tokens "
                         "/ duration at each mean input length; " + "; ".join(notes))
    return profile


# ----------------------------------------------------------------------------------------------- Splitwise

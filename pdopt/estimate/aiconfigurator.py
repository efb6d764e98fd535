"""Prefill and decode profiles estimated by NVIDIA AIConfigurator (AIC) from its per-operation model.

AIC (the optional extra ``pdopt[aiconfigurator]``, pinned to ``aiconfigurator==0.12.0``) times a model's forward
pass operation by operation from kernel tables collected per GPU system, engine and engine version. This adapter
asks it, through its Python API, for the two fixed-batch phases pdopt's profiles hold, and for nothing else:

- prefill: ``aiconfigurator.cli.api.cli_estimate(model, system, mode="static_ctx", batch_size=1, isl=L, osl=1,
  tp_size=tp, moe_tp_size=tp/ep, moe_ep_size=ep, backend_name=..., backend_version=...)``: the context phase of
  one request of L tokens; its ``ttft`` (ms) is that phase's time, and the maximum throughput at L is L / ttft;
- decode: ``cli_estimate(..., mode="static_gen", batch_size=B, isl=input, osl=output)``: the generation phase of B
  requests from context ``input`` to ``input + output`` (AIC times every 32nd step, ``stride=32``, and
  interpolates); its ``tpot`` (ms) is the generation time / (output - 1): TPOT(B).

Both static modes run ``InferenceSession.run_static`` (aiconfigurator/sdk/inference_session.py) with
``latency_correction_scale=1.0``, its default: the plain sum of the operations' times (``BaseBackend.run_static``
in aiconfigurator_core/sdk/backends/base_backend.py multiplies every operation by that scale). AIC's serving
corrections sit above it, in its disaggregated estimate and search, and none of them is applied here, so that
pdopt's own queue models (TTFT under load, decode under load, the prefill:decode balance) are applied once:

- latency correction scales, prefill 1.1 and decode 1.08: ``DEFAULT_PREFILL_LATENCY_CORRECTION_SCALE`` and
  ``DEFAULT_DECODE_LATENCY_CORRECTION_SCALE`` (aiconfigurator/cli/api.py, lines 51-52, used by
  ``_run_disagg_estimate`` through ``DisaggInferenceSession.set_latency_correction_scales``), and the ``Task``
  fields ``prefill_latency_correction = 1.1``, ``decode_latency_correction = 1.08`` (aiconfigurator/sdk/task_v2.py,
  lines 643-644, passed to ``predict_disagg_worker(latency_correction=...)`` by the sweep);
- a TTFT correction for queueing, 1.8: ``_AUTOSCALE_TTFT_CORRECTION_FACTOR`` (aiconfigurator/sdk/picking.py line 39,
  sdk/sweep.py line 75), applied in ``DisaggInferenceSession._get_disagg_summary_df`` (sdk/inference_session.py
  line 280), in the sweep's SLA filter and in ``pick_autoscale``; ``Task.autoscale_ttft_correction_factor = 1.8``;
- rate-matching degradations of the prefill and decode throughputs, 0.9 and 0.92:
  ``_RATE_MATCHING_PREFILL_DEGRADATION_FACTOR``, ``_RATE_MATCHING_DECODE_DEGRADATION_FACTOR`` (sdk/picking.py lines
  33, 35, used by ``_build_disagg_summary_dict``), ``_RATE_MATCH_PREFILL_DEGRADATION`` / ``_DECODE_`` (sdk/sweep.py
  lines 68-69, ``_rate_match_dict``), ``Task.rate_match_prefill_degradation = 0.9`` / ``_decode_ = 0.92``;
- in AFD mode only (not used): ``_AFD_PREFILL_DEGRADATION = 0.9``, ``_AFD_DECODE_DEGRADATION = 0.95``,
  ``_AFD_TTFT_CORRECTION_FACTOR = 1.8`` (sdk/pareto_analysis.py lines 36-42);
- in the aggregated (in-flight batching) model only (not used): the vLLM backend's TTFT queueing factor
  ``1 + log2(b)/8`` capped at 2, its prefill dispatch overhead of 0.8 ms per layer and its Little's-law throughput
  cap (``VLLMBackend._ttft_queuing_factor``, ``_prefill_dispatch_overhead_ms``, ``_throughput_cap``,
  aiconfigurator_core/sdk/backends/vllm_backend.py lines 112-138), called from ``BaseBackend.run_agg`` only.

So a cli_estimate in ``mode="disagg"`` reports a TTFT 1.1 x 1.8 = 1.98 times and a TPOT 1.08 times the values used
here (the test checks it). Kept, because they are part of the per-operation model rather than serving corrections:
``mem_bw_empirical_scaling_factor: 0.8`` and ``mem_empirical_constant_latency: 3 us`` in
aiconfigurator_core/systems/<system>.yaml (the time of operations without kernel data, sourced ``empirical``), and
the memory model that drops batches: weights, activations and KV against the GPU's memory, and vLLM's KV budget
(``gpu_memory_utilization`` 0.9 for vLLM 0.14 and 0.19, 0.92 from 0.22, with a 0.02 tolerance, vllm_backend.py
lines 25-34).

What AIC cannot estimate is a :class:`~pdopt.estimate.base.Gap` naming what is missing and what AIC has: AIC not
installed, a GPU type without an AIC system, a system, engine or version without data, a model AIC does not
bundle (AIC would fetch other names from Hugging Face: ``AicSettings.allow_download``; a local folder is not read),
a layout AIC refuses, or no length or batch that fits in memory. Decode batches that do not fit are left out (named
in the profile's ``source``); a TPOT curve that falls somewhere is raised to its running maximum, the points moved
named in ``source``. Model names are AIC 0.12.0's: Hugging Face ids such as ``meta-llama/Meta-Llama-3.1-70B``
(``aiconfigurator.sdk.common.DefaultHFModels`` lists the bundled ones). AISimulate 0.13.0, AIC's successor, moved the
same ``cli_estimate`` to ``aisimulate.legacy_cli.api`` (its wheel has no ``aiconfigurator`` module): it is used when
``aiconfigurator`` is absent. docs/aiconfigurator.md has the details.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pdopt.estimate.base import EstimatedProfile, EstimateResult, Gap, ShapeRequest
from pdopt.instance.profiles import DecodePoint, DecodeProfile, Estimate, PrefillPoint, PrefillProfile
from pdopt.io.importers.monotone import envelope

ESTIMATOR = "aiconfigurator"
PINNED = "0.12.0"
"""The AIC version the extra installs and the module docstring describes."""
BACKENDS = ("vllm", "sglang", "trtllm")
VERSION_ALIASES = ("current", "previous", "next")
"""Version slots AIC accepts in place of a version number (systems/query_versions.yaml)."""
STRIDE = 32
"""AIC's decode sampling stride (its default): every 32nd generation step is timed, the others interpolated."""

AIC_SERVING_CORRECTIONS: dict[str, float] = {
    "prefill_latency_correction": 1.1,
    "decode_latency_correction": 1.08,
    "ttft_correction_factor": 1.8,
    "rate_match_prefill_degradation": 0.9,
    "rate_match_decode_degradation": 0.92,
}
"""The factors AIC 0.12.0 applies above its per-operation estimate when it sizes disaggregated serving (module
docstring), none of which is applied here."""

_LOGGERS = ("aiconfigurator", "aiconfigurator_core", "aisimulate", "aisimulate_core")


@dataclass(frozen=True)
class AicSettings:
    """What AIC is asked about: its model name, its system for each pdopt GPU type, and the engine."""

    model_name: str
    """AIC's model: a Hugging Face id it bundles (``meta-llama/Meta-Llama-3.1-70B``) or a folder with a config.json."""
    systems: dict[str, str] = field(default_factory=dict)
    """pdopt GPU type id -> AIC system (``h100_sxm``, ``a100_sxm``, ``h200_sxm``, ...)."""
    backend: str = "vllm"
    """AIC's engine: vllm, sglang or trtllm."""
    backend_version: str | None = None
    """The engine version whose kernel data is used; None: AIC's default (its ``current`` slot) for the system."""
    allow_download: bool = False
    """Let AIC fetch the config.json of a model it does not bundle from Hugging Face (off: planning stays offline)."""


@dataclass(frozen=True)
class AicApi:
    """The AIC entry points in use, from whichever distribution is installed."""

    distribution: str
    version: str
    cli_estimate: Any
    perf_database: Any
    check_is_moe: Any
    bundled_models: frozenset[str]


def load_api() -> AicApi | str:
    """Import AIC here rather than at the top: it is an optional extra and takes a second to import. Returns the
    reason when neither AIConfigurator nor AISimulate (its successor, same function under new module names) is
    installed."""
    try:
        from aiconfigurator.cli import api as cli_api
        from aiconfigurator.sdk import common, models, perf_database
        distribution = "aiconfigurator"
    except ImportError as missing:
        try:
            from aisimulate.legacy_cli import api as cli_api
            from aisimulate.sdk import common, models, perf_database
            distribution = "aisimulate"
        except ImportError:
            return (f"AIConfigurator is not installed ({missing}): install pdopt's extra, "
                    f"pip install 'pdopt[aiconfigurator]' (aiconfigurator=={PINNED})")
    try:
        installed = version(distribution)
    except PackageNotFoundError:  # pragma: no cover - imported from a source tree
        installed = "unknown"
    return AicApi(distribution, installed, cli_api.cli_estimate, perf_database, models.check_is_moe,
                  frozenset(getattr(common, "DefaultHFModels", ())))


@contextlib.contextmanager
def _quiet_aic_logs() -> Iterator[None]:
    """AIC warns, for every database it loads, about tables the model may not even use (low-fidelity MLA rows, an
    attention lane it has no default for); what matters for an estimate is kept in the profile (the share of the
    time timed from kernel tables), so its warnings are held back while it runs."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def estimate_with_aiconfigurator(shapes: Sequence[ShapeRequest], settings: AicSettings) -> EstimateResult:
    """Estimate each shape's roles with AIC: a profile per (shape, role), or a gap saying what AIC lacks. AIC is
    imported on the first call; without it every shape and role is a gap saying how to install it."""
    result = EstimateResult()
    api = load_api()
    if isinstance(api, str):
        result.gaps.extend(Gap(shape, role, api) for shape in shapes for role in shape.roles)
        return result
    session = AicSession(api, settings)
    with _quiet_aic_logs():
        for shape in shapes:
            for role in shape.roles:
                out = session.estimate(shape, role)
                if isinstance(out, str):
                    result.gaps.append(Gap(shape, role, out))
                else:
                    result.profiles.append(out)
    return result


def upper_envelope(points: Sequence[tuple[int, float]]) -> tuple[list[DecodePoint], list[str]]:
    """TPOT raised to its running maximum over the batches (the format needs TPOT non-decreasing in batch, and an
    estimate that falls at a larger batch is interpolation noise, not a faster engine), and the points moved."""
    raised = envelope([tpot for _, tpot in points])  # the importers' --monotone envelope
    moved = [f"batch {batch} {tpot:.3f} -> {top:.3f} ms"
             for (batch, tpot), top in zip(points, raised, strict=True) if top > tpot]
    return [DecodePoint(batch=batch, tpot_ms=top) for (batch, _), top in zip(points, raised, strict=True)], moved


def _error(exc: Exception) -> str:
    """An AIC exception as one line: its type and its message, whitespace folded, long messages cut."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text[:400]}{'...' if len(text) > 400 else ''}"


def _memory_problem(res: Any) -> str | None:
    """Why AIC's memory model rejects an estimated point (weights, activations and KV beyond the GPU's memory, or
    the KV cache beyond the engine's budget), None when it fits."""
    summary = res.summary
    memory = summary.get_memory() or {}
    if summary.check_oom():
        return (f"needs {memory.get('total', float('nan')):.1f} GiB per GPU "
                f"({memory.get('weights', float('nan')):.1f} GiB of weights), more than the GPU has")
    if summary.check_kv_cache_oom():
        return f"its KV cache ({memory.get('kvcache', float('nan')):.1f} GiB per GPU) exceeds the engine's KV budget"
    return None


def _silicon_share(latency: dict[str, float], sources: dict[str, str]) -> float:
    """Share of the estimated time that AIC took from measured kernel tables (source ``silicon``) rather than from
    formulas; 0 when AIC reports no breakdown."""
    total = sum(latency.values())
    if total <= 0:
        return 0.0
    return sum(t for op, t in latency.items() if sources.get(op) == "silicon") / total


class AicSession:
    """One estimation run: what AIC has (systems, engines, versions) read once, and the shapes asked one by one."""

    def __init__(self, api: AicApi, settings: AicSettings) -> None:
        """Keep the API and settings; AIC's database listing is read on first use (a quarter of a second)."""
        self.api = api
        self.settings = settings
        self._databases: dict[str, dict[str, list[str]]] | None = None
        self._default_versions: dict[str, str | None] = {}

    @property
    def label(self) -> str:
        """``AIC 0.12.0`` (or ``AISimulate 0.13.0``), as messages name the estimator."""
        return f"{'AIC' if self.api.distribution == 'aiconfigurator' else 'AISimulate'} {self.api.version}"

    def databases(self) -> dict[str, dict[str, list[str]]]:
        """AIC's systems, and for each the engines and versions it has kernel data for."""
        if self._databases is None:
            raw = self.api.perf_database.get_supported_databases()
            self._databases = {s: {b: sorted(v) for b, v in engines.items() if v} for s, engines in raw.items()}
        return self._databases

    def system_for(self, gpu_type: str) -> tuple[str, str] | str:
        """(AIC system, engine version) for a pdopt GPU type, or what is missing and what AIC has instead."""
        backend, wanted = self.settings.backend, self.settings.backend_version
        if backend not in BACKENDS:
            return f"engine '{backend}' is not one AIC models ({', '.join(BACKENDS)})"
        databases = self.databases()
        system = self.settings.systems.get(gpu_type)
        with_backend = sorted(s for s, engines in databases.items() if backend in engines)
        if system is None:
            return (f"no AIC system given for GPU type '{gpu_type}' (AicSettings.systems maps pdopt GPU types to "
                    f"AIC systems; {self.label} has {backend} data for: {', '.join(with_backend)})")
        if system not in databases:
            others = sorted(set(databases) - set(with_backend))
            also = f"; with other engines' data only: {', '.join(others)}" if others else ""
            return (f"{self.label} has no data for a system '{system}' (systems with {backend} data: "
                    f"{', '.join(with_backend)}{also})")
        versions = databases[system].get(backend)
        if not versions:
            return (f"{self.label} has no {backend} data for system '{system}' (engines it has there: "
                    f"{', '.join(sorted(databases[system])) or 'none'})")
        if wanted is not None:
            if wanted in versions or wanted in VERSION_ALIASES:
                return system, wanted
            return (f"{self.label} has no {backend} {wanted} data for system '{system}' (versions: "
                    f"{', '.join(versions)}, or a slot: {', '.join(VERSION_ALIASES)})")
        if system not in self._default_versions:
            self._default_versions[system] = self.api.perf_database.get_latest_database_version(
                system=system, backend=backend)
        default = self._default_versions[system]
        if default is None:
            return f"{self.label} has no default {backend} version for '{system}' (versions: {', '.join(versions)})"
        return system, default

    def model_problem(self) -> str | None:
        """Why AIC cannot load the model's configuration without fetching it, None when it can."""
        name, bundled = self.settings.model_name, self.api.bundled_models
        if name in bundled or self.settings.allow_download:
            return None
        close = difflib.get_close_matches(name, sorted(bundled), n=4, cutoff=0.3)
        hint = f" (closest: {', '.join(close)})" if close else ""
        return (f"model '{name}' is not one of the {len(bundled)} model configurations bundled with {self.label}"
                f"{hint} (a local folder is not read: an instance names only files beside it); "
                "AicSettings.allow_download lets AIC fetch its config.json from Hugging Face")

    def parallel(self, shape: ShapeRequest) -> dict[str, int] | str:
        """AIC's parallel sizes for the shape: attention and dense layers TP over all ``tp`` GPUs, experts sharded
        EP ``ep`` ways and TP ``tp/ep`` ways (AIC ignores the MoE sizes of a dense model)."""
        if shape.ep < 1 or shape.tp % shape.ep:
            return f"EP {shape.ep} does not divide TP {shape.tp}"
        if shape.ep > 1 and not self.api.check_is_moe(self.settings.model_name):
            return f"EP {shape.ep} asked for '{self.settings.model_name}', which AIC models as a dense model"
        return {"tp_size": shape.tp, "moe_tp_size": shape.tp // shape.ep, "moe_ep_size": shape.ep}

    def estimate(self, shape: ShapeRequest, role: str) -> EstimatedProfile | str:
        """One role of one shape: its profile, or why AIC cannot give it (never an exception from AIC)."""
        if role not in ("prefill", "decode"):
            return f"role '{role}': AIC's disaggregated phases are prefill and decode"
        try:
            where = self.system_for(shape.gpu_type)
            if isinstance(where, str):
                return where
            problem = self.model_problem()
            if problem is not None:
                return problem
            parallel = self.parallel(shape)
            if isinstance(parallel, str):
                return parallel
            if role == "prefill":
                return self.prefill(shape, *where, parallel)
            return self.decode(shape, *where, parallel)
        except Exception as exc:  # AIC raises assertions, value and data errors for what it cannot model
            return f"{self.label} could not estimate it: {_error(exc)}"

    def _call(self, system: str, backend_version: str, parallel: dict[str, int], **kwargs: Any) -> Any:
        """One static estimate (``cli_estimate`` in a static mode: no latency correction, TTFT factor or rate
        matching; module docstring)."""
        return self.api.cli_estimate(self.settings.model_name, system, backend_name=self.settings.backend,
                                     backend_version=backend_version, **parallel, **kwargs)

    def _estimate(self, inputs: dict[str, str | float | int | bool]) -> Estimate:
        """The provenance of an estimated profile: ``aiconfigurator`` (or ``aisimulate``), its version, the inputs."""
        name = ESTIMATOR if self.api.distribution == "aiconfigurator" else self.api.distribution
        return Estimate(estimator=name, version=self.api.version, inputs=inputs)

    def _inputs(self, shape: ShapeRequest, system: str, res: Any, mode: str) -> dict[str, str | float | int | bool]:
        """The Estimate's inputs: what AIC was asked and the quantisation and engine version it resolved."""
        raw = res.raw
        return {"model_name": self.settings.model_name, "system": system, "backend": self.settings.backend,
                "backend_version": str(raw.get("version", res.backend_version)), "tp": shape.tp, "ep": shape.ep,
                "mode": mode, "database_mode": "SILICON", "latency_correction_scale": 1.0,
                "gemm_quant": str(raw.get("gemm")), "kvcache_quant": str(raw.get("kvcache"))}

    def prefill(self, shape: ShapeRequest, system: str, backend_version: str,
                parallel: dict[str, int]) -> PrefillProfile | str:
        """Maximum prefill throughput at each input length: one request of L tokens at batch 1, L / its time."""
        points: list[PrefillPoint] = []
        dropped: list[str] = []
        shares: list[float] = []
        last: Any = None
        for length in shape.input_tokens:
            isl = max(1, round(length))
            res = self._call(system, backend_version, parallel, mode="static_ctx", isl=isl, osl=1, batch_size=1)
            why = _memory_problem(res)
            if why is not None:
                dropped.append(f"input {isl} ({why})")
                continue
            if not res.ttft > 0:
                return f"{self.label} gave a prefill time of {res.ttft} ms at input {isl}"
            points.append(PrefillPoint(input_tokens=length, max_throughput_tok_per_s=round(isl / res.ttft * 1000, 1)))
            shares.append(_silicon_share(res.summary.get_context_latency_dict(),
                                         res.summary.get_context_source_dict()))
            last = res
        if last is None:
            return f"no input length fits {self.label}'s memory model: {'; '.join(dropped)}"
        inputs = self._inputs(shape, system, last, "static_ctx") | {
            "batch": 1, "input_tokens": ", ".join(f"{round(x)}" for x in shape.input_tokens),
            "silicon_share_min": round(min(shares), 3)}
        source = (f"{self.label} cli_estimate(mode='static_ctx', batch_size=1), {self.settings.model_name} on "
                  f"{system}, {self.settings.backend} {inputs['backend_version']}, TP{shape.tp} EP{shape.ep}: "
                  "throughput = input tokens / context-phase time; no latency correction, TTFT factor or rate "
                  "matching applied")
        if dropped:
            source += f"; left out (out of memory): {'; '.join(dropped)}"
        return PrefillProfile(role="prefill", model=shape.model, gpu_type=shape.gpu_type,
                              gpus_per_instance=shape.tp, variant=shape.variant, spans_nodes=shape.spans_nodes,
                              max_throughput_by_input=points, source=source,
                              estimate=self._estimate(inputs))

    def decode(self, shape: ShapeRequest, system: str, backend_version: str,
               parallel: dict[str, int]) -> DecodeProfile | str:
        """TPOT at each batch from AIC's generation phase, batches that do not fit left out, the curve made
        non-decreasing; fewer than two batches left is a gap."""
        isl, osl = max(1, round(shape.decode_input_tokens)), round(shape.output_tokens)
        if osl < 2:
            return f"AIC's TPOT needs 2 or more output tokens (generation time / (output - 1)), got {osl}"
        kept: list[tuple[int, float]] = []
        dropped: list[int] = []
        reason = ""
        shares: list[float] = []
        last: Any = None
        for batch in shape.batches:
            res = self._call(system, backend_version, parallel, mode="static_gen", isl=isl, osl=osl,
                             batch_size=batch, stride=STRIDE)
            why = _memory_problem(res)
            if why is not None:
                dropped.append(batch)
                reason = reason or f"batch {batch} {why}"
                continue
            if not res.tpot > 0:
                return f"{self.label} gave a TPOT of {res.tpot} ms at batch {batch}"
            kept.append((batch, round(res.tpot, 4)))
            shares.append(_silicon_share(res.summary.get_generation_latency_dict(),
                                         res.summary.get_generation_source_dict()))
            last = res
        if len(kept) < 2:
            fits = ", ".join(str(b) for b, _ in kept) or "none"
            return (f"a decode curve needs 2 batches that fit {self.label}'s memory model, got {fits} of "
                    f"{', '.join(str(b) for b in shape.batches)} ({reason})")
        points, moved = upper_envelope(kept)
        inputs = self._inputs(shape, system, last, "static_gen") | {
            "input_tokens": isl, "output_tokens": osl, "stride": STRIDE,
            "silicon_share_min": round(min(shares), 3)}
        source = (f"{self.label} cli_estimate(mode='static_gen', stride={STRIDE}), {self.settings.model_name} on "
                  f"{system}, {self.settings.backend} {inputs['backend_version']}, TP{shape.tp} EP{shape.ep}, input "
                  f"{isl}, output {osl}: TPOT = generation time / (output - 1) per batch; no latency correction or "
                  "rate matching applied")
        if dropped:
            source += f"; batches {', '.join(map(str, dropped))} left out (out of memory: {reason})"
        if moved:
            source += f"; upper envelope (TPOT must not fall as the batch grows): {'; '.join(moved)}"
        return DecodeProfile(role="decode", model=shape.model, gpu_type=shape.gpu_type, gpus_per_instance=shape.tp,
                             variant=shape.variant, spans_nodes=shape.spans_nodes, tpot_by_batch=points,
                             input_tokens=isl, output_tokens=osl, source=source,
                             estimate=self._estimate(inputs))

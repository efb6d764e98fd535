"""The capacity table: every benchmarked shape's capacity at the SLOs (prefill: :mod:`.prefill`, decode:
:mod:`.decode`), or why it has none (weights that do not fit, a target it cannot reach).

The per-shape models are those of Li et al. 2026 with pdopt's extensions; see the two modules' docstrings for
the maths and docs/capacity.md for the assumptions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pdopt.instance import AggregatedProfile, Instance, PrefillProfile
from pdopt.perf.aggregated import aggregated_overhead_s, kv_token_capacity
from pdopt.perf.aggregated_fit import calibrated_iteration
from pdopt.perf.aggregated_search import aggregated_capacity
from pdopt.perf.decode import (
    corrected_points,
    decode_capacity,
    decode_correction,
    decode_rate_under_load,
    kv_batch_bound,
    max_batch_within_tpot,
    tpot_at_batch,
)
from pdopt.perf.prefill import (
    calibrated_fields,
    interpolate_prefill_throughput,
    mm1_max_arrival_rate,
    prefill_capacity,
    prefill_service,
    service_scv,
    shape_workload,
    sojourn_factor,
    transfer_overhead_s,
)
from pdopt.perf.queueing import QUANTILES
from pdopt.perf.shapes import ShapeCapacity, SkippedShape
from pdopt.perf.shapes import skip as _skip

__all__ = ["QUANTILES", "CapacityTable", "ShapeCapacity", "SkippedShape", "calibrated_fields", "capacity_table",
           "corrected_points", "decode_capacity", "decode_correction", "decode_rate_under_load",
           "interpolate_prefill_throughput", "kv_batch_bound", "max_batch_within_tpot", "mm1_max_arrival_rate",
           "prefill_capacity", "prefill_service", "service_scv", "shape_workload", "sojourn_factor", "tpot_at_batch",
           "transfer_overhead_s", "weights_fit"]


def weights_fit(instance: Instance, model: str, gpu_type: str, gpus: int) -> str | None:
    """None when the model's weights fit in the instance's GPU memory, else the reason they do not."""
    need = instance.models[model].weights_gb_value
    have = instance.gpu_types[gpu_type].memory_gb * gpus
    if need >= have:
        return f"weights {need:g} GB do not fit in {gpus} x {instance.gpu_types[gpu_type].memory_gb:g} GB"
    return None


@dataclass(frozen=True)
class CapacityTable:
    """Every usable shape per (model, role) with its capacity, and every skipped shape with its reason."""

    shapes: tuple[ShapeCapacity, ...]
    skipped: tuple[SkippedShape, ...]

    def for_role(self, model: str, role: str) -> list[ShapeCapacity]:
        """Usable shapes of one model and role."""
        return [s for s in self.shapes if s.model == model and s.role == role]


def capacity_table(instance: Instance) -> CapacityTable:
    """Capacities of every benchmarked shape of every model that has a workload. An aggregated profile with
    ``measured_runs`` is sized with its iteration model calibrated to them (:mod:`pdopt.perf.aggregated_fit`), and
    skipped, with the reason, when they cannot be fitted; likewise a decode profile with ``measured_tpot`` (its
    curve corrected under load, :func:`pdopt.perf.decode.decode_correction`)."""
    usable: list[ShapeCapacity] = []
    skipped: list[SkippedShape] = []
    for prof in instance.profiles:
        if prof.model not in instance.workloads:
            continue
        mode = "aggregated" if prof.role == "aggregated" else "disaggregated"
        if mode not in instance.serving_modes(prof.model):
            skipped.append(_skip(prof, f"workloads.{prof.model}.modes does not allow {mode} serving"))
            continue
        workload = instance.workloads[prof.model]
        misfit = weights_fit(instance, prof.model, prof.gpu_type, prof.gpus_per_instance)
        result: ShapeCapacity | SkippedShape
        if misfit is not None:
            result = _skip(prof, misfit)
        elif isinstance(prof, AggregatedProfile):
            kv_tokens = kv_token_capacity(instance, prof)
            overhead = aggregated_overhead_s(instance, workload)
            fit = calibrated_iteration(prof, workload, overhead, kv_tokens)
            if isinstance(fit, str):
                skipped.append(_skip(prof, fit))
                continue
            result = aggregated_capacity(prof, workload, kv_tokens, overhead,
                                         iteration=None if fit is None else fit.iteration)
            if fit is not None and isinstance(result, ShapeCapacity):
                result.detail["calibrated_runs"] = float(fit.n_runs)
                result.detail["calibration_max_rel_error"] = fit.max_rel_error
        elif isinstance(prof, PrefillProfile):
            transfer = transfer_overhead_s(instance, prof.model, prof.gpu_type, prof.gpus_per_instance)
            shaped = shape_workload(instance, prof)
            if isinstance(shaped, str):
                skipped.append(_skip(prof, shaped))
                continue
            workload = shaped
            result = prefill_capacity(prof, workload, instance.options.pooled_gain_epsilon,
                                      instance.options.pooled_max_steps)
            if transfer is not None and isinstance(result, ShapeCapacity):
                result.detail["transfer_s"] = transfer
        else:
            correction = decode_correction(instance, prof)
            if isinstance(correction, str):
                skipped.append(_skip(prof, correction))
                continue
            result = decode_capacity(prof, workload, instance.options.decode_batch_rule,
                                     kv_batch_bound(instance, prof.model, prof.gpu_type, prof.gpus_per_instance),
                                     correction)
        if isinstance(result, ShapeCapacity):
            if prof.estimate is not None:  # the capacity rests on estimated numbers: say so wherever it is used
                result = dataclasses.replace(result, estimated=prof.estimate.label())
            usable.append(result)
        else:
            skipped.append(result)
    return CapacityTable(tuple(usable), tuple(skipped))

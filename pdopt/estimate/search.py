"""Shape search: estimate the layouts an instance's ``shape_search`` names, so that the planner chooses among them.

For each model of the search, every (GPU type, TP, EP) whose instance fits the GPU type's nodes (inside one node,
or whole nodes when TP is a multiple of the node size) and that the instance does not already measure becomes a
:class:`~pdopt.estimate.base.ShapeRequest`: prefill at input lengths covering every length the workload states
(:func:`prefill_lengths`), decode at the workload's input and output lengths and each period's
(:func:`decode_lengths`) over ``shape_search.batches``. The estimator answers profiles and gaps; with
``calibrate`` the measured shapes are estimated too and correct the new ones (:mod:`pdopt.estimate.calibrate`).
The estimated profiles are added to the instance, and the MILP chooses GPU type, TP and EP with everything else:
one model, the same exact optimum over a larger set of shapes.

``time_budget_s`` bounds estimating and planning together when planning (``use_budget``): shapes not reached in
time are gaps (reported), and the caller gives the solver what is left (:meth:`SearchReport.remaining_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pdopt.errors import InputError
from pdopt.estimate.base import EstimatedProfile, EstimateResult, Gap, ShapeRequest
from pdopt.estimate.calibrate import Correction, calibrate, fit_corrections, format_corrections
from pdopt.estimate.compare import ShapeComparison, compare, shape_of
from pdopt.instance import DecodeProfile, Instance, PrefillProfile, ShapeSearch, fits_nodes


@dataclass
class SearchReport:
    """What a shape search did: the shapes estimated, the gaps, the corrections, and the seconds it took."""

    estimator: str
    profiles: list[EstimatedProfile] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    corrections: dict[tuple[str, str], Correction] = field(default_factory=dict)
    seconds: float = 0.0
    time_budget_s: float | None = None

    def lines(self) -> list[str]:
        """What the CLI prints on stderr: a summary, each gap, and the calibration."""
        shapes = {(p.model, p.gpu_type, p.gpus_per_instance, p.variant) for p in self.profiles}
        out = [f"shape search ({self.estimator}): {len(self.profiles)} profiles of {len(shapes)} shapes estimated "
               f"in {self.seconds:.2f} s" + (f" of a {self.time_budget_s:g} s budget"
                                             if self.time_budget_s is not None else "")]
        out += [f"  {g.message()}" for g in self.gaps]
        if self.corrections:
            out += ["  " + line for line in format_corrections(self.corrections).splitlines()]
        return out

    def to_dict(self) -> dict[str, object]:
        """The search in a plan's JSON (``shape_search``): what was estimated, what was not and why, the
        corrections and the seconds."""
        return {
            "estimator": self.estimator, "seconds": self.seconds, "time_budget_s": self.time_budget_s,
            "estimated": [{"model": p.model, "role": p.role, "gpu_type": p.gpu_type,
                           "gpus_per_instance": p.gpus_per_instance, "variant": p.variant,
                           "estimate": p.estimate.label() if p.estimate is not None else None}
                          for p in self.profiles],
            "gaps": [{"model": g.shape.model, "role": g.role, "gpu_type": g.shape.gpu_type,
                      "gpus_per_instance": g.shape.gpus_per_instance, "variant": g.shape.variant, "reason": g.reason}
                     for g in self.gaps],
            "corrections": [{"gpu_type": c.gpu_type, "role": c.role, "factor": c.factor, "pairs": c.pairs,
                             "rms_residual_percent": c.rms_residual_percent} for c in self.corrections.values()],
        }

    def remaining_s(self) -> float | None:
        """Seconds of the budget left for the solver (None: no budget)."""
        if self.time_budget_s is None:
            return None
        return max(0.0, self.time_budget_s - self.seconds)


def estimate_shapes(instance: Instance, shapes: list[ShapeRequest], search: ShapeSearch) -> EstimateResult:
    """Ask the search's estimator for ``shapes``: the roofline, or AIConfigurator (an optional extra)."""
    if not shapes:
        return EstimateResult()
    if search.estimator == "roofline":
        from pdopt.estimate.roofline import estimate_roofline

        return estimate_roofline(instance, shapes, search.roofline)
    from pdopt.estimate.aiconfigurator import AicSettings, estimate_with_aiconfigurator, load_api

    api = load_api()
    if isinstance(api, str):  # not installed: every shape would be a gap; say it once, as an input problem
        raise InputError(f"shape_search.estimator: aiconfigurator: {api}")
    aic = search.aiconfigurator
    models = {s.model for s in shapes}
    missing = sorted(m for m in models if m not in aic.models)
    if missing:
        raise InputError(f"shape_search.aiconfigurator.models: no AIConfigurator model name for {', '.join(missing)}")
    result = EstimateResult()
    for mid in sorted(models):
        settings = AicSettings(model_name=aic.models[mid], systems=dict(aic.systems), backend=aic.backend,
                               backend_version=aic.backend_version)
        result.extend(estimate_with_aiconfigurator([s for s in shapes if s.model == mid], settings))
    return result


def prefill_lengths(instance: Instance, model: str) -> tuple[float, ...]:
    """Input lengths at which to estimate prefill: every length the workload states (its mean, each period's, the
    ends of its length distribution), each also as the uncached part left by its prefix cache hit rate, and
    powers of two from half the shortest to four times the longest, so that interpolation covers them all."""
    wl = instance.workloads[model]
    stated = {wl.input_tokens_mean}
    if wl.input_length_distribution is not None:
        stated |= {min(wl.input_length_distribution.lengths), max(wl.input_length_distribution.lengths)}
    stated |= {o.input_tokens_mean for o in wl.by_period.values() if o.input_tokens_mean is not None}
    needed = stated | {(1.0 - wl.prefix_cache_hit_rate) * n for n in stated}
    lo, hi = min(needed) / 2.0, 4.0 * max(needed)
    grid = {2.0 ** k for k in range(-20, 40) if lo <= 2.0 ** k <= hi}
    return tuple(sorted(grid | needed | {lo}))


def decode_lengths(instance: Instance, model: str) -> tuple[tuple[float, float], ...]:
    """(input, output) lengths of the workload and of every period that restates them (a horizon's night of long
    documents decodes at another context than its day)."""
    wl = instance.workloads[model]
    pairs = {(wl.input_tokens_mean, wl.output_tokens_mean)}
    for o in wl.by_period.values():
        if o.input_tokens_mean is not None or o.output_tokens_mean is not None:
            pairs.add((o.input_tokens_mean or wl.input_tokens_mean, o.output_tokens_mean or wl.output_tokens_mean))
    return tuple(sorted(pairs))


def node_fit(instance: Instance, gpu_type: str, gpus: int) -> bool | None:
    """Where an instance of ``gpus`` GPUs of the type fits: inside one node of some pool (False: it spans no
    nodes), across whole nodes (True), or nowhere (None)."""
    sizes = {p.gpus_per_node for p in instance.node_pools.values() if p.gpu_type == gpu_type}
    if any(gpus <= n for n in sizes):
        return False
    return True if any(fits_nodes(gpus, n, True) for n in sizes) else None


def no_node_reason(instance: Instance, gpu_type: str, gpus: int) -> str:
    """Why no node pool holds the instance (:func:`node_fit` is None)."""
    sizes = sorted({p.gpus_per_node for p in instance.node_pools.values() if p.gpu_type == gpu_type})
    return f"no node pool of {gpu_type} holds {gpus} GPUs (node sizes {sizes or 'none'})"


def _estimable_types(instance: Instance, search: ShapeSearch) -> tuple[list[str], list[str]]:
    """GPU types with a node pool the estimator can estimate on (a spec, or an AIConfigurator system), and the
    others."""
    pooled = sorted({p.gpu_type for p in instance.node_pools.values()})
    if search.estimator == "roofline":
        ok = [g for g in pooled if instance.gpu_types[g].spec is not None]
    else:
        ok = [g for g in pooled if g in search.aiconfigurator.systems]
    return ok, [g for g in pooled if g not in ok]


def requested_shapes(instance: Instance, search: ShapeSearch) -> tuple[list[ShapeRequest], list[Gap]]:
    """The shapes the search names that the instance does not measure; the layouts it cannot place or split are
    gaps, with the reason."""
    have = {p.key for p in instance.profiles}
    shapes, gaps = [], []
    usable, unusable = _estimable_types(instance, search)
    lacking = ("has no gpu_types.{gpu}.spec (its peak numbers)" if search.estimator == "roofline"
               else "has no shape_search.aiconfigurator.systems.{gpu}")
    for mid, fam in search.models.items():
        wl = instance.workloads.get(mid)
        if wl is None:
            continue
        arch = instance.models[mid].architecture
        moe = arch is not None and arch.is_moe
        lengths: dict[str, Any] = {  # the same for every layout of the model
            "input_tokens": prefill_lengths(instance, mid), "decode_input_tokens": wl.input_tokens_mean,
            "output_tokens": wl.output_tokens_mean, "decode_lengths": decode_lengths(instance, mid)}
        for gpu in fam.gpu_types or usable + unusable:
            for tp in sorted(set(fam.tp)):
                spans = node_fit(instance, gpu, tp)
                for ep in sorted(set(fam.ep)):
                    variant = "default" if ep == 1 else f"ep{ep}"
                    roles = tuple(r for r in fam.roles if (mid, r, gpu, tp, variant) not in have)
                    if not roles:
                        continue
                    shape = ShapeRequest(model=mid, gpu_type=gpu, tp=tp, ep=ep, variant=variant,
                                         spans_nodes=bool(spans), roles=roles, batches=tuple(search.batches),
                                         **lengths)
                    reason = None
                    if tp % ep:
                        reason = f"EP {ep} does not divide TP {tp}"
                    elif ep > 1 and not moe:
                        reason = f"EP {ep} for a model without experts"
                    elif gpu in unusable and not fam.gpu_types:
                        reason = f"GPU type {gpu} " + lacking.format(gpu=gpu)
                    elif spans is None:
                        reason = no_node_reason(instance, gpu, tp)
                    if reason is not None:
                        gaps += [Gap(shape, r, reason) for r in roles]
                    else:
                        shapes.append(shape)
    return shapes, gaps


def measured_comparisons(instance: Instance, search: ShapeSearch,
                         keep: Callable[[PrefillProfile | DecodeProfile], bool] = lambda p: True,
                         ) -> tuple[list[ShapeComparison], list[Gap]]:
    """Every measured prefill and decode shape of the instance that ``keep`` accepts, estimated at its own
    measured points and compared with its measurement; and the gaps (a measured shape without points at the
    workload's lengths is left out)."""
    measured = {p.key: p for p in instance.profiles
                if isinstance(p, PrefillProfile | DecodeProfile) and p.estimate is None and keep(p)}
    shapes = [s for p in measured.values() if (s := shape_of(p, instance)) is not None]
    result = estimate_shapes(instance, shapes, search)
    rows = [row for est in result.profiles if (row := compare(measured[est.key], est, instance)) is not None]
    return rows, result.gaps


def _calibration(instance: Instance, search: ShapeSearch,
                 wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Correction]:
    """Corrections of the (GPU type, role) pairs in ``wanted`` from the measured shapes of the searched models."""
    rows, _ = measured_comparisons(instance, search,
                                   lambda p: p.model in search.models and (p.gpu_type, p.role) in wanted)
    return fit_corrections(rows)


def _missing_roles(instance: Instance, search: ShapeSearch, added: list[EstimatedProfile],
                   gaps: list[Gap]) -> list[str]:
    """Each searched (model, role) left with no profile at all, measured or estimated, with the gaps' reasons."""
    have = {(p.model, p.role) for p in [*instance.profiles, *added]}
    problems = []
    for mid, fam in search.models.items():
        if mid not in instance.workloads:
            continue
        modes = instance.workloads[mid].modes
        if modes is not None and "disaggregated" not in modes:
            continue  # served aggregated only: the searched roles are not needed
        if modes is None and (mid, "aggregated") in have:
            continue  # may be served aggregated: the planner chooses among what exists
        for role in fam.roles:
            if (mid, role) not in have:
                why = sorted({g.reason for g in gaps if g.shape.model == mid and g.role == role})
                problems.append(f"shape_search.models.{mid}: no {role} profile measured or estimated"
                                + (f" ({'; '.join(why)})" if why else " (no layout to estimate)"))
    return problems


def expand_shapes(instance: Instance, on_report: Callable[[SearchReport], None] | None = None,
                  use_budget: bool = False) -> Instance:
    """The instance with the estimated profiles of its ``shape_search`` added (unchanged without one).

    Idempotent: the shapes already in the instance (measured, or estimated by an earlier expansion) are not
    estimated again, and the corrections come from the measured ones only. Deterministic unless ``use_budget``
    (``pdopt plan``): then the shapes not reached within ``time_budget_s`` are gaps. Every other reader estimates
    them all, so that a plan made within a budget is verified against a superset of its shapes. InputError when a
    searched model is left without a profile of some role.
    """
    search = instance.shape_search
    if search is None:
        return instance
    start = time.perf_counter()
    budget = search.time_budget_s if use_budget else None
    report = SearchReport(search.estimator, time_budget_s=budget)
    shapes, report.gaps = requested_shapes(instance, search)
    todo: list[EstimatedProfile] = []
    for i, shape in enumerate(shapes):
        if budget is not None and time.perf_counter() - start > budget:
            report.gaps += [Gap(s, r, f"time budget of {budget:g} s spent before it was reached")
                            for s in shapes[i:] for r in s.roles]
            break
        result = estimate_shapes(instance, [shape], search)
        todo.extend(result.profiles)
        report.gaps.extend(result.gaps)
    if search.calibrate and todo:
        report.corrections = _calibration(instance, search, {(p.gpu_type, p.role) for p in todo})
        todo = calibrate(todo, report.corrections)
    report.profiles = todo
    report.seconds = time.perf_counter() - start
    if on_report is not None:
        on_report(report)
    missing = _missing_roles(instance, search, todo, report.gaps)
    if missing:
        raise InputError("; ".join(missing))
    if not todo:
        return instance
    return instance.replace(profiles=[*instance.profiles, *todo])

"""Shape search: estimate the layouts an instance's ``shape_search`` names, so that the planner chooses among them.

For each model of the search, every (GPU type, TP, EP) whose instance fits the GPU type's nodes (inside one node,
or whole nodes when TP is a multiple of the node size) and that the instance does not already measure becomes a
:class:`~pdopt.estimate.base.ShapeRequest`: prefill at input lengths covering the workload's (powers of two up to
four times the longest mean or distribution length, and each mean itself), decode at the workload's input and
output lengths over ``shape_search.batches``. The estimator answers profiles and gaps; with ``calibrate`` the
measured shapes are estimated too and correct the new ones (:mod:`pdopt.estimate.calibrate`). The estimated
profiles are added to the instance, and the MILP chooses GPU type, TP and EP with everything else: one model, the
same exact optimum over a larger set of shapes.

``time_budget_s`` bounds estimating and planning together: shapes not reached in time are gaps (reported), and
the caller gives the solver what is left (:attr:`SearchReport.seconds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    """Input lengths at which to estimate prefill: powers of two from 16 up to four times the longest length the
    workload states (mean, period means, distribution), and every mean itself."""
    wl = instance.workloads[model]
    means = {wl.input_tokens_mean}
    longest = wl.input_tokens_mean
    if wl.input_length_distribution is not None:
        longest = max(longest, max(wl.input_length_distribution.lengths))
        means.add(min(wl.input_length_distribution.lengths))
    for override in wl.by_period.values():
        if override.input_tokens_mean is not None:
            means.add(override.input_tokens_mean)
            longest = max(longest, override.input_tokens_mean)
    grid = {16.0 * 2 ** k for k in range(20) if 16.0 * 2 ** k <= 4 * longest}
    return tuple(sorted(grid | means | {min(means) / 2}))


def requested_shapes(instance: Instance, search: ShapeSearch) -> tuple[list[ShapeRequest], list[Gap]]:
    """The shapes the search names that the instance does not measure, and the layouts no node can hold."""
    have = {p.key for p in instance.profiles}
    shapes, gaps = [], []
    for mid, fam in search.models.items():
        wl = instance.workloads.get(mid)
        if wl is None:
            continue
        arch = instance.models[mid].architecture
        moe = arch is not None and arch.is_moe
        types = fam.gpu_types or sorted({p.gpu_type for p in instance.node_pools.values()})
        for gpu in types:
            node_sizes = {p.gpus_per_node for p in instance.node_pools.values() if p.gpu_type == gpu}
            for tp in sorted(set(fam.tp)):
                for ep in sorted(set(fam.ep)):
                    if tp % ep or (ep > 1 and not moe):
                        continue
                    inside = any(tp <= n for n in node_sizes)
                    spans = not inside and any(fits_nodes(tp, n, True) for n in node_sizes)
                    variant = "default" if ep == 1 else f"ep{ep}"
                    shape = ShapeRequest(model=mid, gpu_type=gpu, tp=tp, ep=ep, variant=variant, spans_nodes=spans,
                                         input_tokens=prefill_lengths(instance, mid),
                                         decode_input_tokens=wl.input_tokens_mean,
                                         output_tokens=wl.output_tokens_mean, batches=tuple(search.batches))
                    roles = tuple(r for r in fam.roles if (mid, r, gpu, tp, variant) not in have)
                    if not roles:
                        continue
                    shape = ShapeRequest(**{**shape.__dict__, "roles": roles})
                    if not inside and not spans:
                        gaps += [Gap(shape, r, f"no node pool of {gpu} holds {tp} GPUs (node sizes "
                                               f"{sorted(node_sizes) or 'none'})") for r in roles]
                        continue
                    shapes.append(shape)
    return shapes, gaps


def _calibration(instance: Instance, search: ShapeSearch) -> dict[tuple[str, str], Correction]:
    """Corrections from the measured prefill and decode shapes of the searched models (each estimated at its own
    measured points)."""
    measured = [p for p in instance.profiles if isinstance(p, PrefillProfile | DecodeProfile)
                and p.estimate is None and p.model in search.models]
    rows: list[ShapeComparison] = []
    for prof in measured:
        result = estimate_shapes(instance, [shape_of(prof, instance)], search)
        for est in result.profiles:
            row = compare(prof, est, instance)
            if row is not None:
                rows.append(row)
    return fit_corrections(rows)


def expand_shapes(instance: Instance, on_report: Callable[[SearchReport], None] | None = None) -> Instance:
    """The instance with the estimated profiles of its ``shape_search`` added (unchanged without one).

    Deterministic and idempotent: the shapes already in the instance (measured, or estimated by an earlier
    expansion) are not estimated again, and the corrections come from the measured ones only.
    """
    search = instance.shape_search
    if search is None:
        return instance
    start = time.perf_counter()
    report = SearchReport(search.estimator, time_budget_s=search.time_budget_s)
    shapes, report.gaps = requested_shapes(instance, search)
    todo: list[EstimatedProfile] = []
    for i, shape in enumerate(shapes):
        if search.time_budget_s is not None and time.perf_counter() - start > search.time_budget_s:
            report.gaps += [Gap(s, r, f"time budget of {search.time_budget_s:g} s spent before it was reached")
                            for s in shapes[i:] for r in s.roles]
            break
        result = estimate_shapes(instance, [shape], search)
        todo.extend(result.profiles)
        report.gaps.extend(result.gaps)
    if search.calibrate and todo:
        report.corrections = _calibration(instance, search)
        todo = calibrate(todo, report.corrections)
    report.profiles = todo
    report.seconds = time.perf_counter() - start
    if on_report is not None:
        on_report(report)
    if not todo:
        return instance
    return instance.replace(profiles=[*instance.profiles, *todo])

"""Simulate a plan: build the servers from an instance and a plan, generate traffic, measure the SLOs.

Traffic (:mod:`pdopt.sim.traffic`): per model a stream at the demand the plan serves
(:meth:`pdopt.plan.Plan.served_demand_rps`: the instance's demand x ``scale_demand`` x ``scale``, the multiplier a
maximize-scale plan found), or a replayed trace, by default rescaled in time to that rate. By default dispatch,
arrivals and service variability follow each shape's capacity model (:mod:`pdopt.sim.assumptions`); each model's
result says what was used (``assumptions``). Statistics exclude the first ``warmup_fraction`` and the last
``cooldown_fraction`` of requests by arrival (the system fills up, then drains), and give a 99% confidence
interval on each mean by batch means (20 consecutive batches, Student t).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pdopt.instance import SHAPE_ROLES, DecodePoint, DecodeProfile, Instance, PrefillProfile
from pdopt.interrupt import Interruption
from pdopt.io import InputError
from pdopt.io.traces import Trace
from pdopt.perf.capacity import decode_correction
from pdopt.perf.decode import batch_cap
from pdopt.perf.prefill import shape_workload
from pdopt.plan import Plan
from pdopt.sim.assumptions import (
    ServiceRule,
    arrival_scv,
    decode_dispatch,
    draw_factors,
    prefill_dispatch,
    service_rule,
)
from pdopt.sim.engine import (
    BoolArray,
    DecodeServer,
    EngineResult,
    FloatArray,
    PrefillServer,
    RequestArrays,
    simulate_engine,
)
from pdopt.sim.modes import route, run_aggregated
from pdopt.sim.options import SimOptions
from pdopt.sim.predict import predicted_metrics
from pdopt.sim.traffic import trace_length_warnings, traffic

STAT_KEYS = ("mean", "p50", "p90", "p95", "p99")
BATCH_MEANS = 20


@dataclass(frozen=True)
class PlannedInstance:
    """One instance of a plan (placements expanded by count)."""

    model: str
    role: str
    gpu_type: str
    gpus_per_instance: int
    pool: str
    capacity_rps: float
    variant: str = "default"


@dataclass
class SimResult:
    """Simulated SLO metrics of a plan."""

    instance: str
    models: dict[str, dict[str, Any]]
    instances: list[dict[str, Any]]
    requests_simulated: int
    wall_s: float
    seed: int
    options: dict[str, Any]
    engine: EngineResult | None = field(default=None, repr=False)
    partial: bool = False
    """Interrupted: the statistics cover the requests that finished before the interruption (``requests_completed``
    of them)."""
    requests_completed: int | None = None
    warnings: list[str] = field(default_factory=list)
    """What the user should know about the inputs (a trace whose lengths are not the workload's)."""

    def slo_met(self) -> bool:
        """True when every model meets both its TTFT and TPOT SLO as stated in the instance."""
        return all(m["slo_met"] for m in self.models.values())

    def to_frame(self) -> Any:
        """A pandas DataFrame: per model, metric and statistic, simulated, its 99% half-width, predicted and the SLO
        target (:func:`pdopt.tables.simulation_rows`; pandas imported only here)."""
        from pdopt.tables import frame, simulation_rows

        return frame(simulation_rows(self))

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``models.<id>.ttft_s`` / ``tpot_ms`` / ``slo_met`` / ``attainment`` are a public contract)."""
        return {"instance": self.instance, "requests_simulated": self.requests_simulated, "wall_s": self.wall_s,
                "seed": self.seed, "options": self.options, "slo_met": self.slo_met(), "models": self.models,
                "instances": self.instances, "partial": self.partial, "requests_completed": self.requests_completed,
                "warnings": self.warnings}


def _rates_measured(req: RequestArrays, keep: BoolArray, sel: BoolArray) -> dict[str, float]:
    """Offered and completed rate of one model over the measured window (first to last kept arrival).

    offered = kept arrivals / window; completed = completions inside the window / window. Under Poisson arrivals
    the count N in the window is Poisson, so the offered rate's 99% interval half-width is 2.576 sqrt(N) / window.
    """
    t0, t1 = float(req.arrival_s[keep].min()), float(req.arrival_s[keep].max())
    window = max(t1 - t0, 1e-12)
    n = int(sel.sum())
    finished = req.finish_s[req.model == req.model[sel][0]]
    done = int(np.count_nonzero((finished >= t0) & (finished <= t1)))
    return {"offered_rps": n / window, "offered_rps_ci99_half_width": 2.576 * float(np.sqrt(n)) / window,
            "completed_rps": done / window}


def planned_instances(plan: Plan) -> list[PlannedInstance]:
    """Expand a plan's placements into one entry per instance."""
    return [PlannedInstance(p.model, p.role, p.gpu_type, p.gpus_per_instance, p.pool, p.capacity_rps, p.variant)
            for p in plan.placements for _ in range(p.count)]


def check_plan_matches(instance: Instance, plan: Plan) -> None:
    """InputError unless the plan is a plan of this instance with instances for every model and role."""
    if plan.instance != instance.name:
        raise InputError(f"plan: it is a plan for instance '{plan.instance}', not '{instance.name}'")
    if not plan.has_plan:
        raise InputError(f"plan: status '{plan.status.value}' has no placements to simulate")
    for i, p in enumerate(plan.placements):
        if p.count < 1:
            raise InputError(f"plan.placements[{i}].count: must be at least 1, got {p.count}")
        try:
            instance.profile(p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)
        except KeyError:
            raise InputError(f"plan.placements[{i}]: no {p.role} profile for model '{p.model}' on "
                             f"{p.gpu_type} x{p.gpus_per_instance} in the instance") from None
    for m in instance.workloads:
        roles = {p.role for p in plan.placements if p.model == m}
        if "aggregated" in roles and not roles & {"prefill", "decode"}:
            continue  # served aggregated only
        for role in ("prefill", "decode"):
            if role not in roles:
                raise InputError(f"plan: no {role} instance for model '{m}'")


def decode_cap(instance: Instance, model: str, profile: DecodeProfile) -> tuple[int, str]:
    """Batch cap of a decode instance and which limit binds (:func:`pdopt.perf.decode.batch_cap`); InputError
    when it has none."""
    cap = batch_cap(instance, profile)
    if isinstance(cap, str):
        raise InputError(f"model '{model}' on {profile.gpu_type} x{profile.gpus_per_instance}: {cap}")
    return cap


def _curve(instance: Instance, model: str, profile: DecodeProfile) -> list[DecodePoint]:
    """The decode TPOT(batch) curve at the workload's input length (a 2-D table interpolated)."""
    curve = profile.points_for(instance.workloads[model].input_tokens_mean)
    if isinstance(curve, str):
        raise InputError(f"model '{model}' on {profile.gpu_type} x{profile.gpus_per_instance}: {curve}")
    return curve


def _step_table(curve: list[DecodePoint], cap: int) -> list[float]:
    bs = np.array([p.batch for p in curve], dtype=float)
    ts = np.array([p.tpot_ms for p in curve], dtype=float) / 1000.0
    return [0.0, *[float(v) for v in np.interp(np.arange(1, cap + 1), bs, ts)]]


def _summary(values: FloatArray, scale: float = 1.0) -> dict[str, float]:
    v = values * scale
    out = {"mean": float(v.mean())}
    for key, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        out[key] = float(np.percentile(v, q))
    k = min(BATCH_MEANS, len(v))
    if k >= 2:
        from scipy import stats  # deferred: scipy loads only when a simulation reports
        means = np.array([b.mean() for b in np.array_split(v, k)])
        out["ci99_half_width"] = float(stats.t.ppf(0.995, k - 1) * means.std(ddof=1) / np.sqrt(k))
    return out


class ServerFactory:
    """Builds the engine's servers of planned instances; a shape's parameters (throughput curve, transfer time,
    service rule, batch cap, step table, join stall) are computed once, from the first instance of the shape, and
    service rules are numbered once (the rows of the requests' service factors)."""

    def __init__(self, models: list[str], opts: SimOptions) -> None:
        self.models = models
        self.opts = opts
        self.rules: dict[tuple[str, float], int] = {}
        self.rule_list: list[ServiceRule] = []
        self.shape_rules: dict[str, dict[str, Any]] = {m: {} for m in models}
        self.shape_pools: dict[str, dict[tuple[str, str, str, int, str], int]] = {}  # ggc: a queue per shape
        self.built: dict[tuple[str, tuple[str, str, str, int, str]], Any] = {}
        """(instance name, shape key) -> the shape's parameters: per instance, so that each period of a horizon
        (a period instance of its own) builds its shapes from its own workload."""

    def make(self, instance: Instance, pi: PlannedInstance, cached: FloatArray, model: FloatArray
             ) -> tuple[PrefillServer | DecodeServer, dict[str, Any]]:
        """One server and its description; ``cached``/``model`` are the simulated requests' uncached input
        lengths and model indices (a prefill shape's service rule is measured on its model's lengths)."""
        models, opts, built = self.models, self.opts, self.built
        prof = instance.profile(pi.model, pi.role, pi.gpu_type, pi.gpus_per_instance, pi.variant)
        desc: dict[str, Any] = {"model": pi.model, "role": pi.role, "gpu_type": pi.gpu_type,
                                "gpus_per_instance": pi.gpus_per_instance, "pool": pi.pool}
        key_of = (instance.name, prof.key)
        if isinstance(prof, PrefillProfile):
            if key_of not in built:
                lengths = np.array([p.input_tokens for p in prof.max_throughput_by_input])
                tputs = np.array([p.max_throughput_tok_per_s for p in prof.max_throughput_by_input])
                mine = cached[model.astype(int) == models.index(pi.model)]
                rule = service_rule(instance, prof, opts, mine / np.interp(mine, lengths, tputs))
                key = (rule.distribution, round(rule.factor_scv, 12))
                if key not in self.rules:
                    self.rules[key] = len(self.rule_list)
                    self.rule_list.append(rule)
                self.shape_rules[pi.model][f"{pi.gpu_type}x{pi.gpus_per_instance}/{pi.variant}"] = rule.describe()
                shaped = shape_workload(instance, prof)
                per_shape = opts.prefill_dispatch == "auto" and instance.workloads[pi.model].queue_model == "ggc"
                pools = self.shape_pools.setdefault(pi.model, {})
                built[key_of] = (lengths, tputs, shaped.ttft_overhead_s if not isinstance(shaped, str) else None,
                                 pools.setdefault(prof.key, len(pools)) if per_shape else 0, self.rules[key])
            lengths, tputs, transfer, pool, row = built[key_of]
            return PrefillServer(models.index(pi.model), pi.capacity_rps, lengths, tputs, transfer_s=transfer,
                                 pool=pool, factor_row=row), desc
        assert isinstance(prof, DecodeProfile)  # aggregated instances are simulated apart (pdopt.sim.modes)
        if key_of not in built:
            cap, bound = decode_cap(instance, pi.model, prof)
            corr = decode_correction(instance, prof)  # under load: steps x f, a stall of s per admission
            if isinstance(corr, str):
                raise InputError(f"model '{pi.model}' on {prof.gpu_type} x{prof.gpus_per_instance}: {corr}")
            f, s_ms = (1.0, 0.0) if corr is None else (corr.factor, corr.join_cost_ms)
            steps = [f * t for t in _step_table(_curve(instance, pi.model, prof), cap)]
            built[key_of] = (cap, bound, steps, s_ms / 1000.0)
        cap, bound, steps, stall = built[key_of]
        desc.update(batch_cap=cap, batch_cap_bound=bound)
        return DecodeServer(models.index(pi.model), pi.capacity_rps, steps, cap, join_stall_s=stall), desc



def simulate(instance: Instance, plan: Plan, options: SimOptions | None = None,
             trace: Trace | None = None) -> SimResult:
    """Simulate ``plan`` under the instance's traffic; see the module docstring."""
    opts = options or SimOptions()
    opts.validate()
    check_plan_matches(instance, plan)
    start = time.perf_counter()
    rng = np.random.default_rng(opts.seed)
    models = list(instance.workloads)
    served = plan.served_demand_rps(instance)
    rates = [served[m] for m in models]
    if opts.lengths == "trace" and trace is None:
        raise InputError("lengths: 'trace' needs a trace (--trace FILE)")
    arrival, model, lin, lout = traffic(instance, models, rates, opts, rng, trace)
    warnings = (trace_length_warnings(instance, models, trace, opts.length_tolerance)
                if trace is not None and opts.lengths == "trace" else [])
    n = len(arrival)
    cached = lin * (1.0 - np.array([instance.workloads[m].prefix_cache_hit_rate for m in models])[model.astype(int)])
    insts = [pi for pi in planned_instances(plan) if pi.role != "aggregated"]
    factory = ServerFactory(models, opts)
    prefill: list[PrefillServer] = []
    decode: list[DecodeServer] = []
    described: list[dict[str, Any]] = []
    for pi in insts:
        srv, desc = factory.make(instance, pi, cached, model)
        if isinstance(srv, PrefillServer):
            prefill.append(srv)
        else:
            decode.append(srv)
        described.append(desc)
    rule_list, shape_rules = factory.rule_list, factory.shape_rules
    factors = (np.vstack([draw_factors(rng, n, r) for r in rule_list]) if rule_list
               else draw_factors(rng, n, ServiceRule("deterministic", 0.0, None, 0.0)))
    req = RequestArrays(
        model=model.astype(np.int64), arrival_s=arrival,
        input_tokens=cached,  # prefill computes only the uncached part
        decode_steps=np.maximum(1, np.round(lout)).astype(np.int64),
        service_factor=factors[0] if len(rule_list) == 1 else factors,
        dispatch_u=rng.random(n),
    )
    to_agg, router = route(plan, models, req.model, opts.seed)
    assumed = {m: {"prefill_dispatch": prefill_dispatch(instance, m, opts),
                   "decode_dispatch": decode_dispatch(instance, m, opts),
                   "arrivals": ("trace" if trace is not None else
                                f"gamma renewal, SCV {arrival_scv(instance, m, opts):g}"
                                if abs(arrival_scv(instance, m, opts) - 1.0) > 1e-12 else "poisson"),
                   "queue_model": instance.workloads[m].queue_model,
                   "decode_model": instance.workloads[m].decode_model,
                   "prefill_service": shape_rules[m]} for m in models}
    overhead = [instance.workloads[m].ttft_overhead_s for m in models]
    with Interruption() as interruption:
        eng = _disaggregated(req, ~to_agg, prefill, decode, overhead,
                             ([prefill_dispatch(instance, m, opts) for m in models],
                              [decode_dispatch(instance, m, opts) for m in models]), lambda: interruption.requested)
        agg = run_aggregated(instance, plan, models, to_agg, router, req.arrival_s, req.model, lin, lout,
                             lambda: interruption.requested)
    eng = dataclasses.replace(eng, makespan_s=max(eng.makespan_s, agg.makespan_s), stopped=eng.stopped or agg.stopped)
    req.finish_s[to_agg] = agg.finish_s[to_agg]
    req.prefill_end_s[to_agg] = req.arrival_s[to_agg] + agg.ttft_s[to_agg]
    makespan = max(eng.makespan_s, 1e-12)
    pi_iter, di_iter = iter(prefill), iter(decode)
    for desc in described:
        if desc["role"] == "prefill":
            srv = next(pi_iter)
            desc.update(utilisation=srv.busy_time / makespan, served=srv.served)
        else:
            ds = next(di_iter)
            desc.update(utilisation=ds.busy_time / makespan, mean_batch=ds.area / makespan)
    arrived = int(np.searchsorted(req.arrival_s, eng.makespan_s, side="right")) if eng.stopped else n
    lo, hi = int(arrived * opts.warmup_fraction), arrived - int(arrived * opts.cooldown_fraction)
    keep = np.zeros(n, dtype=bool)
    keep[lo:hi] = True
    if eng.stopped:  # interrupted: only the requests that finished count (a partial result, marked so)
        keep &= ~np.isnan(req.finish_s)
    ttft = np.where(to_agg, agg.ttft_s, req.join_s - req.arrival_s)
    tpot = np.where(to_agg, agg.tpot_s, (req.finish_s - req.join_s) / req.decode_steps)
    out: dict[str, dict[str, Any]] = {}
    predicted = predicted_metrics(instance, plan)
    for i, m in enumerate(models):
        sel = keep & (req.model == i)
        w = instance.workloads[m]
        if not sel.any():
            if eng.stopped:
                raise KeyboardInterrupt  # interrupted before any request of the model could be measured
            raise InputError(f"requests: too few requests to measure model '{m}' after warm-up; raise --requests")
        t_s, p_ms = _summary(ttft[sel]), _summary(tpot[sel], 1000.0)
        sojourn = _summary(req.prefill_end_s[sel] - req.arrival_s[sel])
        ttft_ok = t_s[w.ttft.statistic] <= w.ttft.target_s
        tpot_ok = p_ms[w.tpot.statistic] <= w.tpot.target_ms
        out[m] = {
            "requests": int(sel.sum()),
            "target_rps": rates[i], **_rates_measured(req, keep, sel),
            "ttft_s": t_s, "tpot_ms": p_ms, "prefill_sojourn_s": sojourn,
            "slo": {"ttft_target_s": w.ttft.target_s, "ttft_statistic": w.ttft.statistic,
                    "tpot_target_ms": w.tpot.target_ms, "tpot_statistic": w.tpot.statistic},
            "slo_met": bool(ttft_ok and tpot_ok), "ttft_slo_met": bool(ttft_ok), "tpot_slo_met": bool(tpot_ok),
            "attainment": {
                "ttft": float(np.mean(ttft[sel] <= w.ttft.target_s)),
                "tpot": float(np.mean(tpot[sel] * 1000.0 <= w.tpot.target_ms)),
                "both": float(np.mean((ttft[sel] <= w.ttft.target_s) & (tpot[sel] * 1000.0 <= w.tpot.target_ms))),
            },
            "predicted": predicted.get(m, {}),
            "assumptions": assumed[m],
        }
    opt_dict = {k: getattr(opts, k) for k in opts.__dataclass_fields__}
    done = int(np.count_nonzero(~np.isnan(req.finish_s)))
    return SimResult(instance.name, out, described + agg.described, n, time.perf_counter() - start, opts.seed,
                     opt_dict, eng, eng.stopped, done, warnings)


def _disaggregated(req: RequestArrays, mine: BoolArray, prefill: list[PrefillServer], decode: list[DecodeServer],
                   overhead: list[float], policies: tuple[list[str], list[str]],
                   stop: Callable[[], bool]) -> EngineResult:
    """The P/D engine on the requests the router sends to P/D pairs (all of them without aggregated instances);
    its outcomes are written back into ``req``. Models with no such request take no part (they may have no P/D
    pair): the engine runs on the others, their model indices renumbered for the run and restored after."""
    if mine.all():
        return simulate_engine(req, prefill, decode, overhead, policies[0], policies[1], stop=stop)
    idx = np.flatnonzero(mine)
    if not len(idx):
        return EngineResult(req, prefill, decode, 0.0)
    used = sorted({int(m) for m in req.model[idx]})
    remap = {m: k for k, m in enumerate(used)}
    sub = RequestArrays(model=np.array([remap[int(m)] for m in req.model[idx]], dtype=np.int64),
                        arrival_s=req.arrival_s[idx], input_tokens=req.input_tokens[idx],
                        decode_steps=req.decode_steps[idx], service_factor=req.service_factor[..., idx],
                        dispatch_u=req.dispatch_u[idx])
    servers: list[PrefillServer | DecodeServer] = [*prefill, *decode]
    original = [srv.model for srv in servers]
    try:
        for srv in servers:
            srv.model = remap.get(srv.model, -1)
        eng = simulate_engine(sub, [x for x in prefill if x.model >= 0], [x for x in decode if x.model >= 0],
                              [overhead[m] for m in used], [policies[0][m] for m in used],
                              [policies[1][m] for m in used], stop=stop)
    finally:
        for srv, m in zip(servers, original, strict=True):
            srv.model = m
    req.prefill_end_s[idx], req.join_s[idx], req.finish_s[idx] = sub.prefill_end_s, sub.join_s, sub.finish_s
    return dataclasses.replace(eng, requests=req, prefill=prefill, decode=decode)


def plan_without_one(plan: Plan, model: str, role: str) -> tuple[Plan, dict[str, Any]] | None:
    """The plan with one instance fewer for (model, role), or None when it has only one.

    The instance removed is one of the smallest per-instance capacity, the removal most likely to keep the SLO.
    The reduced plan keeps its demand multipliers, so it is simulated at the same traffic.
    """
    mine = [p for p in plan.placements if p.model == model and p.role == role]
    if sum(p.count for p in mine) <= 1:
        return None
    victim = min(mine, key=lambda p: (p.capacity_rps, p.gpu_type, p.pool))
    placements = tuple(dataclasses.replace(p, count=p.count - 1) if p is victim else p for p in plan.placements)
    reduced = plan.replace(placements=tuple(p for p in placements if p.count > 0))
    removed = {"gpu_type": victim.gpu_type, "gpus_per_instance": victim.gpus_per_instance, "pool": victim.pool,
               "capacity_rps": victim.capacity_rps}
    return reduced, removed


def tightness(instance: Instance, plan: Plan, options: SimOptions | None = None,
              trace: Trace | None = None) -> list[dict[str, Any]]:
    """For each (model, role) with more than one instance: does the plan still meet that model's SLO with one
    instance fewer? A plan is tight when none does (same traffic, same seed)."""
    out = []
    for m in instance.workloads:
        for role in SHAPE_ROLES:
            reduced = plan_without_one(plan, m, role)
            if reduced is None:
                continue
            res = simulate(instance, reduced[0], options, trace)
            if res.partial:
                raise KeyboardInterrupt  # the tightness verdict needs whole runs
            mm = res.models[m]
            out.append({"model": m, "role": role, "removed": reduced[1], "slo_met": mm["slo_met"],
                        "ttft_s": mm["ttft_s"][mm["slo"]["ttft_statistic"]],
                        "tpot_ms": mm["tpot_ms"][mm["slo"]["tpot_statistic"]]})
    return out

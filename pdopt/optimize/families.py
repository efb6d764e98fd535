"""The constraint families of formulation F1: one ``add_<family>`` each, registered in :data:`FAMILIES`.

Each family's maths is in ``formulations/f1.yaml`` (with a ``code:`` pointer to its function here) and printed in
docs/formulation.md, whose family table is generated from that file. Every function reads the arcs it needs from
the model data's index (:attr:`ModelData.arcs_by_role`, ``arcs_by_pool``, ``arcs_by_shape``), so building is
linear in the number of arcs. The registry says, as data, when a family applies: to which model data (a
network, patterns pools, pooled shapes...) and to which modes (:class:`~pdopt.optimize.build.ModeSpec`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pulp

from pdopt.optimize.cuts import COVER_TOLERANCE, DIVISOR_MULTIPLES, cost_floor, mir_cut
from pdopt.optimize.model_data import Arc, ModelData
from pdopt.optimize.problem import MODES, BuiltProblem, ModeSpec, SlackKey


def role_capacity(built: BuiltProblem, data: ModelData, m: str, r: str, domain: str | None = None,
                  inside: bool = True, pooled: bool = True) -> pulp.LpAffineExpression:
    """Capacity of model m, role r: sum cap_s x[s,p] over its arcs (only pools in ``domain``, or outside it when
    not ``inside``). With ``pooled``, a pooled shape contributes its linearised pooled capacity instead (demand
    cover); otherwise its single-instance capacity per instance, a lower bound as its group may be split."""
    terms = []
    seen_pooled: set[str] = set()
    for s, p in data.arcs_by_role.get((m, r), ()):
        if domain is not None and (data.pools[p].domain == domain) != inside:
            continue
        if pooled and s in built.pooled_capacity:
            if s not in seen_pooled:
                seen_pooled.add(s)
                terms.append(built.pooled_capacity[s])
            continue
        terms.append(data.shapes[s].capacity_rps * built.x[(s, p)])
    return pulp.lpSum(terms)


def role_need(built: BuiltProblem, data: ModelData, m: str, r: str) -> pulp.LpAffineExpression | float:
    """The demand role r of model m serves: scale x demand[m]; for a mixed model, its aggregated share
    (``mode_share[m]``) for the aggregated role and the rest, scale x demand[m] - mode_share[m], for prefill and
    decode."""
    need = built.demand_need(data.model_demand_rps(m))
    if m not in built.mode_share:
        return need
    share = built.mode_share[m]
    return share if r == "aggregated" else need - share


def _mode_of(role: str) -> str:
    return "aggregated" if role == "aggregated" else "disaggregated"


def spare_need(built: BuiltProblem, data: ModelData, m: str, r: str) -> pulp.LpAffineExpression | float:
    """The reserve role r of model m holds: spare[m,r], times mode_on[m, mode] for a mixed model's mode (a mode
    the plan does not use holds no spares)."""
    on = built.mode_on.get((m, _mode_of(r)))
    return data.spare_rps[(m, r)] * on if on is not None else data.spare_rps[(m, r)]


def add_demand_cover(built: BuiltProblem, data: ModelData) -> None:
    """demand_cover[m,r]: sum_s,p cap[s] x[s,p] (+ shortfall[m,r]) >= need[m,r] + spare[m,r].

    need[m,r] is scale x demand[m] (``scale`` is 1 except when maximising it); for a mixed model, the aggregated
    role's need is mode_share[m] and the prefill and decode roles' is scale x demand[m] - mode_share[m]
    (:func:`role_need`). ``spare`` = k x the largest per-instance capacity of the role, so the demand stays
    covered after losing any k instances (N+k); in a mixed model, times mode_on[m, mode] (:func:`spare_need`).
    """
    for m, r in data.demand_rps:
        supply = role_capacity(built, data, m, r)
        if (m, r) in built.shortfall:
            supply = supply + built.shortfall[(m, r)]
        built.add_row("demand_cover", (m, r), supply >= role_need(built, data, m, r) + spare_need(built, data, m, r))


def constant_demand_rows(built: BuiltProblem, data: ModelData) -> list[tuple[str, str, list[Arc], float]]:
    """The demand rows a rounding argument applies to: (m, r, arcs, b) with a constant right-hand side
    b = d_m + spare_mr > 0 (no scale variable, no shortfall, no mode split) and no pooled shape (whose capacity is
    not a multiple of a count)."""
    if built.scale is not None:
        return []
    rows = []
    for m, r in data.demand_rps:
        if (m, r) in built.shortfall or m in built.mode_share:
            continue
        arcs = list(data.arcs_by_role.get((m, r), ()))
        if not arcs or any(s in built.pooled_capacity for s, _ in arcs):
            continue
        rhs = data.model_demand_rps(m) + data.spare_rps[(m, r)]
        if rhs > 0:
            rows.append((m, r, arcs, rhs))
    return rows


def add_demand_rounding(built: BuiltProblem, data: ModelData) -> None:
    """demand_rounding[m,r,k]: the MIR cut of demand_cover[m,r] for the k-th divisor (:mod:`pdopt.optimize.cuts`:
    each distinct per-instance capacity of the row's shapes times 1/2, 1, 2, 3); rows with a variable right-hand
    side or a pooled shape get none."""
    for m, r, arcs, rhs in constant_demand_rows(built, data):
        caps = [data.shapes[s].capacity_rps for s, _ in arcs]
        seen: set[tuple[tuple[float, ...], float]] = set()
        for k, c in enumerate(sorted({cap * f for cap in caps for f in DIVISOR_MULTIPLES})):
            cut = mir_cut(caps, rhs, c)
            if cut is None or (tuple(cut[0]), cut[1]) in seen:
                continue
            seen.add((tuple(cut[0]), cut[1]))
            expr = pulp.lpSum(coef * built.x[arc] for coef, arc in zip(cut[0], arcs, strict=True) if coef)
            built.add_row("demand_rounding", (m, r, str(k)), expr >= cut[1])


def attributed_cost(data: ModelData, s: str, p: str) -> float:
    """The least hourly cost an instance of shape s in pool p brings: its arc cost plus its GPUs' share of a
    node's cost, l_sp = arc_cost_sp + node_cost_p n(s) / k(p). Summed over a plan's instances it never exceeds the
    plan's cost, because every pool's nodes in use hold its instances' GPUs: nodes[p] >= sum_s n(s) x[s,p] / k(p)."""
    pool = data.pools[p]
    return data.arc_cost_usd_per_hour(s, p) + data.node_cost_usd_per_hour(p) * data.shapes[s].gpus_per_instance / (
        pool.gpus_per_node)


def add_role_cost_floor(built: BuiltProblem, data: ModelData) -> None:
    """role_cost_floor[m,r]: sum_(s,p) l_sp x[s,p] >= z_mr, z_mr the least attributed cost (:func:`attributed_cost`)
    of whole instances covering the row's demand b on its own, each arc at most the instances its pool (and its
    GPU type's cap) can hold (:func:`pdopt.optimize.cuts.cost_floor`, exact by branch and bound; in an elastic
    solve, which may exceed them, without those bounds). Added when z_mr is above the row's LP value
    b x min l_sp / cap_s (otherwise implied)."""
    hard = MODES[built.mode].hard_resources  # an elastic solve may exceed pools and caps
    for m, r, arcs, rhs in constant_demand_rows(built, data):
        items = []
        for s, p in arcs:
            shape, pool = data.shapes[s], data.pools[p]
            most = pool.gpus // shape.gpus_per_instance if hard else math.ceil(rhs / shape.capacity_rps)
            if hard and pool.gpu_type in data.gpu_caps:
                most = min(most, data.gpu_caps[pool.gpu_type] // shape.gpus_per_instance)
            items.append((attributed_cost(data, s, p), shape.capacity_rps, most))
        floor = cost_floor(items, rhs)
        lp = rhs * min((c / a for c, a, n in items if n > 0), default=0.0)
        if floor > lp * (1 + 1e-9) and math.isfinite(floor):
            expr = pulp.lpSum(c * built.x[arc] for (c, _, _), arc in zip(items, arcs, strict=True) if c)
            built.add_row("role_cost_floor", (m, r), expr >= floor * (1 - COVER_TOLERANCE))


def add_mode_share_limit(built: BuiltProblem, data: ModelData) -> None:
    """mode_share_limit[m] (mixed models): mode_share[m] <= scale x demand[m]: the aggregated instances take at
    most the whole demand, so the disaggregated part is never negative."""
    for m, share in built.mode_share.items():
        built.add_row("mode_share_limit", (m,), share <= built.demand_need(data.model_demand_rps(m)))


def _mode_bound(built: BuiltProblem, data: ModelData, m: str, roles: tuple[str, ...]) -> float:
    """An upper bound on what a mode of model m can serve: the demand when it is not scaled; under a scale, the
    largest capacity the inventory gives the mode's first role (every x is bounded then)."""
    if built.scale is None:
        return data.model_demand_rps(m)
    best = []
    for r in roles:
        total = 0.0
        for s, p in data.arcs_by_role.get((m, r), ()):
            ub = built.x[(s, p)].upBound
            if ub is None:
                raise ValueError("a scaled demand with unbounded instance counts has no big-M for mode_switch")
            total += data.shapes[s].pooled_capacity_rps(int(ub)) if data.shapes[s].pooled_gains else \
                data.shapes[s].capacity_rps * ub
        best.append(total)
    return min(best)


def add_mode_switch(built: BuiltProblem, data: ModelData) -> None:
    """mode_switch[m,mode] (mixed models whose mode holds spares): what the mode serves <= M x mode_on[m,mode],
    with M the demand (or, under a scale, the most the inventory gives the mode): a mode serving any demand is
    on, and its spares (:func:`spare_need`) are held."""
    for (m, mode), on in built.mode_on.items():
        if mode == "aggregated":
            served, big_m = role_need(built, data, m, "aggregated"), _mode_bound(built, data, m, ("aggregated",))
        else:
            served, big_m = role_need(built, data, m, "prefill"), _mode_bound(built, data, m, ("prefill", "decode"))
        built.add_row("mode_switch", (m, mode), served <= big_m * on)


PRESENCE_BELOW_RPS = 1e-3
"""Demands below this (req/s) get a demand_presence row: a cover row of that size is within a solver's
feasibility tolerance of being met by no instance (larger demands need no extra row, so their LPs are
unchanged)."""


def add_demand_presence(built: BuiltProblem, data: ModelData) -> None:
    """demand_presence[m,r]: sum_s,p x[s,p] >= 1 for every (m, r) with 0 < demand < 1e-3 req/s (for a mixed model,
    the count of r's instances plus its aggregated instances, for r in prefill and decode).

    Implied by demand_cover in exact arithmetic (a positive demand needs positive capacity), it keeps a solver's
    feasibility tolerance (about 1e-6 absolute) from covering a tiny demand with no instance at all.
    """
    for (m, r), demand in data.demand_rps.items():
        if 0 < demand < PRESENCE_BELOW_RPS and not (data.is_mixed(m) and r == "aggregated"):
            # a mixed model: each of prefill and decode, or aggregated instances, must be present
            roles = (r, "aggregated") if data.is_mixed(m) else (r,)
            count = pulp.lpSum(built.x[a] for q in roles for a in data.arcs_by_role.get((m, q), ()))
            built.add_row("demand_presence", (m, r), count >= 1)


def add_pool_gpu_capacity(built: BuiltProblem, data: ModelData) -> None:
    """pool_gpu_capacity[p] (aggregate pools): sum_s g[s] x[s,p] <= GPUs per node[p] x nodes[p].

    Exact for packing: sizes within a node form a divisibility chain dividing the node size (first-fit
    decreasing then fills nodes without fragments), and a spanning instance takes whole nodes.
    """
    for p, n in built.nodes.items():
        pool = data.pools[p]
        if pool.packing != "aggregate":
            continue
        used = pulp.lpSum(data.shapes[s].gpus_per_instance * built.x[(s, p)] for s, _ in data.arcs_by_pool[p])
        built.add_row("pool_gpu_capacity", (p,), used <= pool.gpus_per_node * n)


def add_pattern_cover(built: BuiltProblem, data: ModelData) -> None:
    """pattern_cover[p,g] (patterns pools): sum of x[s,p] over shapes of size g <= sum_q count[q,g]
    pattern_nodes[p,q]."""
    for p in built.nodes:
        pool = data.pools[p]
        if pool.packing != "patterns":
            continue
        for gi, g in enumerate(pool.sizes):
            placed = pulp.lpSum(built.x[(s, p)] for s, _ in data.arcs_by_pool[p]
                                if data.shapes[s].gpus_per_instance == g)
            slots = pulp.lpSum(pat[gi] * built.pattern_nodes[(p, qi)] for qi, pat in enumerate(pool.patterns)
                               if pat[gi])
            built.add_row("pattern_cover", (p, f"g{g}"), placed <= slots)


def add_pattern_node_count(built: BuiltProblem, data: ModelData) -> None:
    """pattern_node_count[p] (patterns pools): nodes[p] = sum_q pattern_nodes[p,q] + sum over spanning shapes of
    (g/k) x[s,p]."""
    for p, n in built.nodes.items():
        pool = data.pools[p]
        if pool.packing != "patterns":
            continue
        patterns = pulp.lpSum(built.pattern_nodes[(p, qi)] for qi in range(len(pool.patterns)))
        spanning = pulp.lpSum(data.nodes_spanned(s, p) * built.x[(s, p)] for s, _ in data.arcs_by_pool[p]
                              if data.nodes_spanned(s, p))
        built.add_row("pattern_node_count", (p,), n == patterns + spanning)


def add_gpu_type_availability(built: BuiltProblem, data: ModelData) -> None:
    """gpu_type_availability[g]: GPUs rented of type g <= cap[g] (+ extra_gpus[g] when elastic).

    Node-billed pools rent whole nodes (GPUs per node x nodes); GPU-billed pools rent their instances' GPUs.
    """
    by_type: dict[str, list[str]] = {}
    for p in built.nodes:
        by_type.setdefault(data.pools[p].gpu_type, []).append(p)
    for g, cap in data.gpu_caps.items():
        terms = []
        for p in by_type.get(g, ()):
            pool = data.pools[p]
            if pool.billed_per_node:
                terms.append(pool.gpus_per_node * built.nodes[p])
            else:
                terms += [data.shapes[s].gpus_per_instance * built.x[(s, p)] for s, _ in data.arcs_by_pool[p]]
        if terms:
            built.add_row("gpu_type_availability", (g,),
                          pulp.lpSum(terms) <= built.rhs_with_slack(cap, SlackKey("gpus", (g,))))


def add_budget(built: BuiltProblem, data: ModelData) -> None:
    """budget: hourly cost <= budget (+ extra_budget when elastic)."""
    assert built.cost is not None and data.budget_usd_per_hour is not None
    built.add_row("budget", ("total",), built.cost <= built.rhs_with_slack(data.budget_usd_per_hour,
                                                                          SlackKey("budget")))


def add_pool_node_limit(built: BuiltProblem, data: ModelData) -> None:
    """pool_node_limit[p] (elastic only; elsewhere the bound of nodes[p]): nodes[p] <= node_count[p] +
    extra_nodes[p]."""
    for p, n in built.nodes.items():
        built.add_row("pool_node_limit", (p,), n <= built.rhs_with_slack(data.pools[p].node_count,
                                                                         SlackKey("nodes", (p,))))


def add_pooled_count(built: BuiltProblem, data: ModelData) -> None:
    """pooled_count[s]: n = sum_c pooled_step[s,c] + pooled_tail[s], with n = sum_p x[s,p] (pooled shapes)."""
    for sid, (steps, tail) in built.pooled_steps.items():
        n = pulp.lpSum(built.x[a] for a in data.arcs_by_shape[sid])
        built.add_row("pooled_count", (sid,), n == pulp.lpSum(steps) + tail)


def add_pooled_step_order(built: BuiltProblem, data: ModelData) -> None:
    """pooled_step_order[s,c]: step[c] >= step[c+1] (the c-th instance's gain counts only after the (c-1)-th)."""
    for sid, (steps, _) in built.pooled_steps.items():
        for c in range(len(steps) - 1):
            built.add_row("pooled_step_order", (sid, f"c{c + 1}"), steps[c] >= steps[c + 1])


def add_pooled_tail_link(built: BuiltProblem, data: ModelData) -> None:
    """pooled_tail_link[s]: tail <= n_max x step[C] (further instances add g_C each, only after all C steps)."""
    for sid, (steps, tail) in built.pooled_steps.items():
        n_max = tail.upBound
        built.add_row("pooled_tail_link", (sid,), tail <= n_max * steps[-1])


def _flow_domains(built: BuiltProblem) -> list[str]:
    return sorted({d for _, d, _ in built.kv_flow})


def _kv_domain_rows(built: BuiltProblem, data: ModelData, family: str, role: str) -> None:
    """Per model and domain: the KV flows leaving it (prefill) or arriving in it (decode) <= the role's capacity
    there (single-instance capacities: a pooled group may be split across domains)."""
    doms = _flow_domains(built)
    for m in data.disaggregated_models:
        for here in doms:
            flows = [built.kv_flow[(m, here, e) if role == "prefill" else (m, e, here)] for e in doms]
            built.add_row(family, (m, here), pulp.lpSum(flows) <= role_capacity(built, data, m, role, here,
                                                                                pooled=False))


def add_kv_prefill_out(built: BuiltProblem, data: ModelData) -> None:
    """kv_prefill_out[m,d]: sum_e kv_flow[m,d,e] <= prefill capacity of m in d (networks only)."""
    _kv_domain_rows(built, data, "kv_prefill_out", "prefill")


def add_kv_decode_in(built: BuiltProblem, data: ModelData) -> None:
    """kv_decode_in[m,e]: sum_d kv_flow[m,d,e] <= decode capacity of m in e (networks only)."""
    _kv_domain_rows(built, data, "kv_decode_in", "decode")


def add_kv_flow_total(built: BuiltProblem, data: ModelData) -> None:
    """kv_flow_total[m]: sum_{d,e} kv_flow[m,d,e] >= the disaggregated demand of m (scale x demand[m], less
    mode_share[m] for a mixed model) (networks only; aggregated instances move no KV cache)."""
    doms = _flow_domains(built)
    for m in data.disaggregated_models:
        total = pulp.lpSum(built.kv_flow[(m, d, e)] for d in doms for e in doms)
        built.add_row("kv_flow_total", (m,), total >= role_need(built, data, m, "prefill"))


def add_link_bandwidth(built: BuiltProblem, data: ModelData) -> None:
    """link_bandwidth[l]: sum_{m,d!=e} kv_gbit[m] share_l(d,e) kv_flow[m,d,e] <= bandwidth_l (+ extra_bandwidth[l])."""
    for link, bandwidth in sorted(data.links.items()):
        load = pulp.lpSum(data.kv_gbit_per_request[m] * share[link] * built.kv_flow[(m, d, e)]
                          for (d, e), share in data.routes.items() if link in share for m in data.disaggregated_models)
        built.add_row("link_bandwidth", link, load <= built.rhs_with_slack(bandwidth, SlackKey("bandwidth", link)))


def add_domain_loss_cover(built: BuiltProblem, data: ModelData) -> None:
    """domain_loss_cover[m,r,D]: capacity of model m, role r outside domain D >= fraction x need[m,r] (the role's
    demand, :func:`role_need`), for every domain D that holds a pool: the fleet survives losing any one domain."""
    assert data.domain_loss_fraction is not None
    for m, r in data.demand_rps:
        for lost in data.domains:
            left = role_capacity(built, data, m, r, lost, inside=False, pooled=False)
            built.add_row("domain_loss_cover", (m, r, lost), left >= data.domain_loss_fraction *
                          role_need(built, data, m, r))


@dataclass(frozen=True)
class Family:
    """A registered constraint family: its name (the row-name prefix), its one function, and when it applies."""

    name: str
    add: Callable[[BuiltProblem, ModelData], None]
    applies: Callable[[ModelData, ModeSpec], bool]
    """True when the family has rows to add for this model data in this mode."""
    when: str
    """When it applies, in words (for the generated docs)."""
    cut: bool = False
    """A valid inequality (it removes no integer plan, only fractional ones): switched off together for ablation
    (``build_problem(..., cuts=False)``, ``pdopt plan --no-cuts``)."""


def _always(data: ModelData, mode: ModeSpec) -> bool:
    return True


def _network(data: ModelData, mode: ModeSpec) -> bool:
    return bool(data.routes)


def _pooled(data: ModelData, mode: ModeSpec) -> bool:
    return any(data.shapes[s].pooled_gains for s in data.arcs_by_shape)


def _patterns(data: ModelData, mode: ModeSpec) -> bool:
    return any(data.pools[p].packing == "patterns" for p in data.pools_in_use)


def _aggregate(data: ModelData, mode: ModeSpec) -> bool:
    return any(data.pools[p].packing == "aggregate" for p in data.pools_in_use)


FAMILIES: tuple[Family, ...] = (
    Family("pool_node_limit", add_pool_node_limit, lambda d, m: m.slack, "elastic mode (diagnosis)"),
    Family("pooled_count", add_pooled_count, _pooled, "pooled (ggc) prefill shapes"),
    Family("pooled_step_order", add_pooled_step_order, _pooled, "pooled (ggc) prefill shapes"),
    Family("pooled_tail_link", add_pooled_tail_link, _pooled, "pooled (ggc) prefill shapes"),
    Family("demand_cover", add_demand_cover, _always, "always"),
    Family("demand_rounding", add_demand_rounding, lambda d, m: not (m.shortfall or m.maximise_scale),
           "demand rows with a constant right-hand side (not under max_scale, shortfall or a mode split)",
           cut=True),
    Family("role_cost_floor", add_role_cost_floor, lambda d, m: not (m.shortfall or m.maximise_scale),
           "demand rows with a constant right-hand side whose whole-instance cost exceeds their LP cost", cut=True),
    Family("mode_share_limit", add_mode_share_limit, lambda d, m: bool(d.mixed_models),
           "a model that may be served both aggregated and disaggregated"),
    Family("mode_switch", add_mode_switch,
           lambda d, m: any(d.spare_rps[(x, r)] > 0 for x in d.mixed_models for r in ("prefill", "decode",
                                                                                        "aggregated")),
           "a mixed model with spare instances"),
    Family("demand_presence", add_demand_presence,
           lambda d, m: not (m.shortfall or m.maximise_scale) and any(0 < v < PRESENCE_BELOW_RPS
                                                                      for v in d.demand_rps.values()),
           "a demand below 1e-3 req/s, in every mode but shortfall and max_scale"),
    Family("pool_gpu_capacity", add_pool_gpu_capacity, _aggregate, "pools with aggregate packing"),
    Family("pattern_cover", add_pattern_cover, _patterns, "pools with pattern packing"),
    Family("pattern_node_count", add_pattern_node_count, _patterns, "pools with pattern packing"),
    Family("gpu_type_availability", add_gpu_type_availability, lambda d, m: bool(d.gpu_caps),
           "GPU types with max_gpus"),
    Family("budget", add_budget, lambda d, m: d.budget_usd_per_hour is not None, "limits.budget_usd_per_hour"),
    Family("kv_prefill_out", add_kv_prefill_out, _network, "a network"),
    Family("kv_decode_in", add_kv_decode_in, _network, "a network"),
    Family("kv_flow_total", add_kv_flow_total, _network, "a network"),
    Family("link_bandwidth", add_link_bandwidth, _network, "a network"),
    Family("domain_loss_cover", add_domain_loss_cover, lambda d, m: d.domain_loss_fraction is not None,
           "resilience.domain_loss_fraction"),
)
"""Every constraint family, in the order its rows are added."""

CONSTRAINT_FAMILIES: tuple[str, ...] = tuple(f.name for f in FAMILIES)

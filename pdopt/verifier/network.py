"""KV-cache flows between failure domains, and link bandwidth.

These checks apply when the instance has a ``network`` and its pools lie in two or more domains; the plan must
then list ``kv_flows``, each {model, from_domain, to_domain, rps >= 0}: requests per second whose prefill runs in
``from_domain`` and whose decode runs in ``to_domain`` (equal domains: no network traffic). A flow of a model
without a workload, or between names that hold no node pool, is a ``bad_plan_field`` and is left out. For each
model:

- ``kv_flow_total``: sum of its flows' rps >= demand x ``scale_demand`` x ``scale`` x (1 - tol): every request is
  prefilled somewhere and decoded somewhere.
- ``kv_flow_capacity``: for each domain D, the flows out of D <= the prefill capacity the plan places in D's pools
  and the flows into D <= the decode capacity there (single-instance capacity x count, x (1 + tol) + 1e-9).

Per link (``link_bandwidth``): a request of model m moves KV bytes per token x L_in bytes, i.e.
kv_bytes_per_token x L_in x 8e-9 Gbit, from its prefill to its decode domain. Flows are routed over the links as
the planner's rule says, recomputed here with networkx: ``shortest_path`` takes one fewest-hop path (lowest total
latency, then the smallest sequence of node names), ``ecmp`` splits a flow evenly over all fewest-hop paths.
Parallel links between two nodes add their bandwidths. Each link's load, sum of Gbit per request x share x rps,
must not exceed its bandwidth x (1 + tol).
"""

from __future__ import annotations

import itertools
import math

from pdopt.instance import Instance
from pdopt.verifier.capacity import demand_rps, single_capacity
from pdopt.verifier.fleet import stated_aggregated_rps
from pdopt.verifier.parse import PlanContext, is_number
from pdopt.verifier.registry import Violation

Flow = tuple[str, str, str, float]
"""(model, from_domain, to_domain, rps)."""


def _route_shares(instance: Instance, src: str, dst: str) -> dict[tuple[str, str], float]:
    """Shares of a src -> dst flow per link, recomputed with networkx from the instance's links: one fewest-hop
    path (lowest latency, then smallest name sequence) or an even split over all fewest-hop paths (ecmp)."""
    import networkx as nx

    net = instance.network
    assert net is not None
    g = nx.Graph()
    for link in net.links:
        k = tuple(sorted((link.a, link.b)))
        lat = g.edges[k]["lat"] if g.has_edge(*k) else math.inf
        g.add_edge(*k, lat=min(lat, link.latency_ms))
    paths = [list(x) for x in nx.all_shortest_paths(g, src, dst)]
    if net.routing == "shortest_path":
        paths = [min(paths, key=lambda q: (sum(g.edges[tuple(sorted(e))]["lat"] for e in itertools.pairwise(q)), q))]
    shares: dict[tuple[str, str], float] = {}
    for q in paths:
        for u, v in itertools.pairwise(q):
            k2 = (u, v) if u < v else (v, u)
            shares[k2] = shares.get(k2, 0.0) + 1.0 / len(paths)
    return shares


def _read_flows(ctx: PlanContext) -> list[Flow] | None:
    """The plan's readable ``kv_flows``; None (after reporting it) when the list itself is missing."""
    raw = ctx.plan.get("kv_flows")
    if not isinstance(raw, list):
        ctx.out.append(Violation("bad_plan_field", f"kv_flows: expected a list (the instance has a network), "
                                                   f"got {raw!r}"))
        return None
    domains = {pool.domain for pool in ctx.instance.node_pools.values()}
    flows: list[Flow] = []
    for i, f in enumerate(raw):
        keys_ok = isinstance(f, dict) and all(isinstance(f.get(k), str) for k in ("model", "from_domain", "to_domain"))
        if not keys_ok or not is_number(f.get("rps")) or f["rps"] < 0:
            ctx.out.append(Violation("bad_plan_field", f"kv_flows[{i}]: needs model, from_domain, to_domain and "
                                                       "rps >= 0"))
            continue
        # a flow runs from a prefill pool's domain to a decode pool's domain, of a model the instance serves: any
        # other name could not be routed (and a flow of another model would otherwise be ignored silently)
        if f["model"] not in ctx.instance.workloads:
            ctx.out.append(Violation("bad_plan_field", f"kv_flows[{i}].model: {f['model']!r} has no workload in the "
                                                       "instance"))
            continue
        unknown = [k for k in ("from_domain", "to_domain") if f[k] not in domains]
        if unknown:
            ctx.out.append(Violation("bad_plan_field", f"kv_flows[{i}].{unknown[0]}: {f[unknown[0]]!r} holds no node "
                                                       f"pool (domains: {', '.join(sorted(domains))})"))
            continue
        flows.append((f["model"], f["from_domain"], f["to_domain"], float(f["rps"])))
    return flows


def check_network(ctx: PlanContext) -> None:
    """KV flows: conserved within prefill and decode capacity per domain, covering demand, fitting every link."""
    instance = ctx.instance
    net = instance.network
    if net is None or len({p.domain for p in instance.node_pools.values()}) < 2:
        return
    flows = _read_flows(ctx)
    if flows is None:
        return
    _check_flow_cover(ctx, flows)
    _check_links(ctx, flows)


def _check_flow_cover(ctx: PlanContext, flows: list[Flow]) -> None:
    """Per model: the flows carry the demand, and no domain sends (receives) more than its prefill (decode)
    instances serve."""
    instance, out, tol = ctx.instance, ctx.out, ctx.tol
    dom = {pid: pool.domain for pid, pool in instance.node_pools.items()}
    for model in instance.workloads:
        mine = [f for f in flows if f[0] == model]
        total = sum(f[3] for f in mine)
        share = stated_aggregated_rps(ctx, model)
        demand = demand_rps(instance, model, ctx.scale) - share
        if total < demand * (1.0 - tol):
            part = " served disaggregated" if share else ""
            out.append(Violation("kv_flow_total", f"model '{model}': KV flows carry {total:.6g} req/s, below the "
                                                  f"demand {demand:.6g}{part}"))
        for role, end in (("prefill", 1), ("decode", 2)):
            for d in sorted({f[end] for f in mine}):
                cap = sum(single_capacity(instance, *p.shape) * p.count for p in ctx.placements
                          if p.model == model and p.role == role and dom.get(p.pool) == d)
                sent = sum(f[3] for f in mine if f[end] == d)
                if sent > cap * (1.0 + tol) + 1e-9:
                    out.append(Violation("kv_flow_capacity", f"model '{model}': {sent:.6g} req/s flow through "
                                                             f"{role} in domain '{d}', which serves {cap:.6g}"))


def _check_links(ctx: PlanContext, flows: list[Flow]) -> None:
    """The KV traffic of the flows between different domains, routed over the links, within each link's
    bandwidth."""
    instance = ctx.instance
    net = instance.network
    assert net is not None
    load: dict[tuple[str, str], float] = {}
    for model, d, e, rps in flows:
        if d == e:
            continue
        gbit = instance.models[model].kv_bytes_per_token_value * instance.workloads[model].input_tokens_mean * 8e-9
        for k, share in _route_shares(instance, d, e).items():
            load[k] = load.get(k, 0.0) + gbit * share * rps
    bandwidth: dict[tuple[str, str], float] = {}
    for link in net.links:
        k = (link.a, link.b) if link.a < link.b else (link.b, link.a)
        bandwidth[k] = bandwidth.get(k, 0.0) + link.bandwidth_gbps
    for k, used in sorted(load.items()):
        if used > bandwidth[k] * (1.0 + ctx.tol):
            ctx.out.append(Violation("link_bandwidth", f"link {k[0]}-{k[1]}: {used:.6g} Gbit/s of KV traffic over "
                                                       f"its {bandwidth[k]:g} Gbit/s"))

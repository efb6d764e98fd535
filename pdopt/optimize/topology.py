"""The network as a networkx graph, and the share of each link on the route between two domains.

Routing rules (``network.routing``):

- ``shortest_path``: one path per domain pair, the fewest hops; ties go to the lowest total latency, then to the
  lexicographically smallest sequence of node names (deterministic). Every link on it carries the whole flow.
- ``ecmp``: the flow splits evenly over all fewest-hop paths; a link carries the fraction of those paths that
  use it.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from pdopt.instance import Instance, Network

if TYPE_CHECKING:
    import networkx as nx

LinkKey = tuple[str, str]
"""A link as (a, b) with a < b."""


def link_key(a: str, b: str) -> LinkKey:
    """Undirected link key."""
    return (a, b) if a < b else (b, a)


def graph(network: Network) -> nx.Graph:
    """The network's graph; parallel links between the same ends add their bandwidth."""
    import networkx as nx  # deferred: networkx loads only for instances with a network

    g = nx.Graph()
    for link in network.links:
        k = link_key(link.a, link.b)
        if g.has_edge(*k):
            g.edges[k]["bandwidth_gbps"] += link.bandwidth_gbps
            g.edges[k]["latency_ms"] = min(g.edges[k]["latency_ms"], link.latency_ms)
        else:
            g.add_edge(*k, bandwidth_gbps=link.bandwidth_gbps, latency_ms=link.latency_ms)
    return g


def route_shares(network: Network, src: str, dst: str) -> dict[LinkKey, float]:
    """Fraction of a src -> dst flow on each link, by the routing rule (empty when src == dst)."""
    if src == dst:
        return {}
    import networkx as nx  # deferred: networkx loads only for instances with a network

    g = graph(network)
    paths = [list(p) for p in nx.all_shortest_paths(g, src, dst)]
    if network.routing == "shortest_path":
        def key(path: list[str]) -> tuple[float, list[str]]:
            return (sum(g.edges[link_key(u, v)]["latency_ms"] for u, v in itertools.pairwise(path)), path)
        paths = [min(paths, key=key)]
    shares: dict[LinkKey, float] = {}
    for path in paths:
        for u, v in itertools.pairwise(path):
            k = link_key(u, v)
            shares[k] = shares.get(k, 0.0) + 1.0 / len(paths)
    return shares


def domains(instance: Instance) -> list[str]:
    """Domains that hold node pools, sorted."""
    return sorted({p.domain for p in instance.node_pools.values()})

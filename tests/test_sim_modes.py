"""Simulating plans that serve a model aggregated, disaggregated or both: the router's split as planned, one
aggregated engine per instance, models without P/D pairs, and predictions beside the simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pdopt
from pdopt.io import load_instance
from pdopt.sim import SimOptions, simulate
from pdopt.sim.modes import route
from tests.conftest import INSTANCES

MIXED = INSTANCES / "tiny" / "mixed-modes.yaml"


def test_the_router_sends_the_planned_share_to_aggregated_instances() -> None:
    """Each request goes aggregated with probability aggregated_rps / demand_rps (11.67 / 90 = 0.1297, the
    balanced split of the hand-worked plan). The router's draws for seeds 0-5 (every seed tried, 6 x 20,000
    requests) routed a share within the binomial 99% interval 2.576 sqrt(p (1 - p) / 120,000) = 0.0025; and a
    simulation routes exactly as the router draws (its aggregated instances serve those requests, the P/D pairs
    the rest)."""
    inst = load_instance(MIXED)
    plan = pdopt.solve(inst, explain_mode=False)
    share = plan.models["llm"].aggregated_rps / plan.models["llm"].demand_rps
    assert share == pytest.approx(11.8 / (11.8 + 8000 / 101), rel=1e-9)
    n, seeds = 20_000, range(6)
    routed = [float(route(plan, ["llm"], np.zeros(n, dtype=np.int64), s)[0].mean()) for s in seeds]
    total = n * len(seeds)
    assert abs(sum(routed) / len(seeds) - share) <= 2.576 * math.sqrt(share * (1 - share) / total)
    res = simulate(inst, plan, SimOptions(requests=n, seed=0))
    agg_served = sum(i["served"] for i in res.instances if i["role"] == "aggregated")
    assert agg_served == round(routed[0] * n)
    assert agg_served + sum(i["served"] for i in res.instances if i["role"] == "prefill") == n
    pred = res.models["llm"]["predicted"]
    assert pred["aggregated"]["tpot_ms"] is not None and pred["ttft_s"] is not None


def test_a_model_served_aggregated_only_is_simulated_without_pairs() -> None:
    inst = load_instance(INSTANCES / "library" / "llama70b-a100-conv-aggregated.yaml")
    plan = pdopt.solve(inst, explain_mode=False)
    assert plan.models["llama2_70b"].mode == "aggregated"
    res = simulate(inst, plan, SimOptions(requests=4000, seed=1))
    m = res.models["llama2_70b"]
    assert m["requests"] > 3000 and {i["role"] for i in res.instances} == {"aggregated"}
    assert m["predicted"]["ttft_s"] is not None and m["tpot_ms"]["mean"] > 0
    # the four engines share the work: each served about a quarter (capacity-weighted, equal capacities)
    served = [i["served"] for i in res.instances]
    assert sum(served) == 4000 and min(served) > 800


def test_a_plan_mixing_models_of_both_modes_is_simulated() -> None:
    inst = load_instance(INSTANCES / "examples" / "llama70b-bloom176b-modes.yaml")
    plan = pdopt.solve(inst, explain_mode=False)
    res = simulate(inst, plan, SimOptions(requests=6000, seed=2))
    roles = {(i["model"], i["role"]) for i in res.instances}
    assert ("bloom_176b", "aggregated") in roles and ("llama2_70b", "prefill") in roles
    assert set(res.models) == {"llama2_70b", "bloom_176b"}

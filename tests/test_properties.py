"""Properties of optimal plans on small generated instances (hypothesis).

- the independent verifier passes on every optimal plan;
- cost never falls when demand rises or an SLO tightens;
- adding capacity (nodes) never raises cost;
- CBC and HiGHS agree on the optimal cost.
"""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pdopt
from pdopt.io import instance_from_dict
from pdopt.optimize.solver import SolverOptions, available_solvers
from pdopt.verifier import verify

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    """1-2 models on 2 GPU types, 8-GPU nodes, TP 1/2/4/8 profiles with random but monotone curves."""
    n_models = draw(st.integers(1, 2))
    gpu_types = {
        "gpu_a": {"memory_gb": 80.0, "price_usd_per_gpu_hour": draw(st.floats(1.0, 3.0))},
        "gpu_b": {"memory_gb": 80.0, "price_usd_per_gpu_hour": draw(st.floats(2.0, 6.0)),
                  "max_gpus": draw(st.sampled_from([None, 8, 16, 32]))},
    }
    if gpu_types["gpu_b"]["max_gpus"] is None:
        del gpu_types["gpu_b"]["max_gpus"]
    pools = {f"pool_{g}": {"gpu_type": g, "gpus_per_node": 8, "node_count": draw(st.integers(2, 12))}
             for g in gpu_types}
    models, workloads, profiles = {}, {}, []
    for i in range(n_models):
        m = f"m{i}"
        models[m] = {"kv_bytes_per_token": 1e5, "weights_gb": 20.0}
        workloads[m] = {
            "demand": {"requests_per_s": draw(st.floats(0.5, 6.0))},
            "input_tokens_mean": 1000.0, "output_tokens_mean": 200.0,
            "ttft": {"target_s": draw(st.floats(0.6, 3.0)), "statistic": draw(st.sampled_from(["mean", "p90"]))},
            "tpot": {"target_ms": draw(st.floats(30.0, 80.0))},
            "ttft_overhead_s": 0.05,
        }
        for g, speed in (("gpu_a", 1.0), ("gpu_b", draw(st.floats(1.2, 3.0)))):
            for tp in draw(st.sets(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=2)):
                x = 2500.0 * speed * tp ** 0.8
                profiles.append({"model": m, "role": "prefill", "gpu_type": g, "gpus_per_instance": tp,
                                 "max_throughput_by_input": [{"input_tokens": 1000.0, "max_throughput_tok_per_s": x}]})
                base = 40.0 / speed / tp ** 0.3
                curve = [{"batch": b, "tpot_ms": base * (1 + 0.02 * b)} for b in (1, 8, 32, 64)]
                profiles.append({"model": m, "role": "decode", "gpu_type": g, "gpus_per_instance": tp,
                                 "tpot_by_batch": curve})
    return {"name": "generated", "gpu_types": gpu_types, "node_pools": pools, "models": models,
            "workloads": workloads, "profiles": profiles}


def _solve(doc: dict[str, Any], **kw: Any) -> pdopt.Plan:
    return pdopt.solve(instance_from_dict(doc), **kw)


@SETTINGS
@given(doc=instances())
def test_verifier_passes_on_every_plan(doc: dict[str, Any]) -> None:
    inst = instance_from_dict(doc)
    plan = pdopt.solve(inst)
    if plan.has_plan:
        assert plan.status is pdopt.SolveStatus.OPTIMAL
        assert verify(inst, plan.to_dict()) == []
    else:
        assert plan.reason


@SETTINGS
@given(doc=instances(), factor=st.floats(1.0, 2.0))
def test_cost_monotone_in_demand(doc: dict[str, Any], factor: float) -> None:
    base, more = _solve(doc), _solve(doc, scale_demand=factor)
    if more.has_plan:
        assert base.has_plan
        assert base.objective_usd_per_hour is not None and more.objective_usd_per_hour is not None
        assert more.objective_usd_per_hour >= base.objective_usd_per_hour - 1e-6


@SETTINGS
@given(doc=instances(), tighten=st.floats(0.5, 1.0))
def test_cost_monotone_in_slo(doc: dict[str, Any], tighten: float) -> None:
    base = _solve(doc)
    tight = {**doc, "workloads": {m: {**w, "tpot": {"target_ms": w["tpot"]["target_ms"] * tighten}}
                                  for m, w in doc["workloads"].items()}}
    t = _solve(tight)
    if t.has_plan:
        assert base.has_plan
        assert t.objective_usd_per_hour >= base.objective_usd_per_hour - 1e-6  # type: ignore[operator]


@SETTINGS
@given(doc=instances(), extra=st.integers(1, 4))
def test_more_nodes_never_cost_more(doc: dict[str, Any], extra: int) -> None:
    base = _solve(doc)
    bigger = {**doc, "node_pools": {p: {**v, "node_count": v["node_count"] + extra}
                                    for p, v in doc["node_pools"].items()}}
    b = _solve(bigger)
    if base.has_plan:
        assert b.has_plan
        assert b.objective_usd_per_hour <= base.objective_usd_per_hour + 1e-6  # type: ignore[operator]


@pytest.mark.skipif("highs" not in available_solvers(), reason="highspy not installed")
@SETTINGS
@given(doc=instances())
def test_cbc_and_highs_agree(doc: dict[str, Any]) -> None:
    inst = instance_from_dict(doc)
    cbc = pdopt.solve(inst, SolverOptions("cbc"))
    highs = pdopt.solve(inst, SolverOptions("highs"))
    assert cbc.status == highs.status
    if cbc.has_plan:
        assert cbc.objective_usd_per_hour == pytest.approx(highs.objective_usd_per_hour, rel=1e-6)
        assert verify(inst, highs.to_dict()) == []

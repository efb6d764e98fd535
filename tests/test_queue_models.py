"""Queue models in planning: percentile targets under M/M/1, G/G/1 and pooled G/G/c prefill, each checked
against the simulator (fixed seeds chosen before the first run; request counts stated)."""

from typing import Any

import pytest
import yaml

import pdopt
from pdopt.io import instance_from_dict
from pdopt.plan import Plan
from pdopt.sim import SimOptions, simulate
from tests.conftest import PAPER


def _paper(**workload: Any) -> pdopt.Instance:
    doc = yaml.safe_load(PAPER.read_text())
    doc["workloads"]["dsv31"].update(workload)
    return instance_from_dict(doc, PAPER.parent)


def _with_prefill(plan: dict[str, Any], n: int) -> dict[str, Any]:
    return {**plan, "placements": [dict(p, count=n) if p["role"] == "prefill" else p for p in plan["placements"]]}


def test_p99_target_under_mm1_needs_six_prefill_instances() -> None:
    """mu = 28309/6144 = 4.6076 req/s, ln(100)/1.9 = 2.4238: 2.1838 req/s per instance, 12.52/2.1838 = 5.73 -> 6.
    Simulated (random dispatch, exponential service, 100,000 requests, seed 11): 6 instances give a p99 TTFT of
    1.97 s (meets 2 s), 5 give 2.36 s (misses)."""
    inst = _paper(ttft={"target_s": 2.0, "statistic": "p99"})
    plan = pdopt.solve(inst)
    assert plan.models["dsv31"].prefill.instances == 6
    assert pdopt.capacity_table(inst).for_role("dsv31", "prefill")[0].capacity_rps == pytest.approx(2.18381, abs=1e-4)
    opts = SimOptions(requests=100000, seed=11, prefill_dispatch="random", prefill_service="exponential")
    six = simulate(inst, plan, opts).models["dsv31"]
    five = simulate(inst, Plan.from_dict(_with_prefill(plan.to_dict(), 5)), opts).models["dsv31"]
    assert six["ttft_slo_met"] and not five["ttft_slo_met"]
    assert 1.85 < six["ttft_s"]["p99"] < 2.0 < five["ttft_s"]["p99"] < 2.5


def test_pooled_prefill_needs_three_instances() -> None:
    """One pooled queue (M/M/c): 4.08, 4.59, 4.60, 4.60 req/s marginal gains, M/M/3 serves 13.27 >= 12.52 req/s,
    so 3 prefill instances instead of 4. Simulated with one pooled queue and exponential service (100,000
    requests, seed 11): the mean TTFT of 3 instances meets 2 s."""
    inst = _paper(queue_model="ggc", arrival_scv=1.0, service_scv=1.0)
    (shape,) = pdopt.capacity_table(inst).for_role("dsv31", "prefill")
    assert [round(g, 2) for g in shape.pooled_gains[:4]] == [4.08, 4.59, 4.6, 4.6]
    assert shape.pooled_capacity_rps(3) == pytest.approx(13.27, abs=0.01)
    plan = pdopt.solve(inst)
    assert plan.models["dsv31"].prefill.instances == 3
    assert pdopt.verify(inst, plan.to_dict()) == []
    opts = SimOptions(requests=100000, seed=11, prefill_dispatch="pooled", prefill_service="exponential")
    res = simulate(inst, plan, opts).models["dsv31"]
    assert res["ttft_slo_met"]
    # the prefill sojourn alone against the exact M/M/3 mean at 12.52 req/s
    from pdopt.perf.queueing import sojourn_statistic
    expected = sojourn_statistic(plan.models["dsv31"].demand_rps, 28309 / 6144, 3, 1.0, 1.0, "mean")
    sim = res["prefill_sojourn_s"]
    assert abs(sim["mean"] - expected) <= sim["ci99_half_width"] + 0.01 * expected


@pytest.mark.parametrize("scv", [0.0, 2.0])
def test_gg1_capacity_holds_in_simulation(scv: float) -> None:
    """G/G/1 with the service SCV of the simulation (deterministic 0, gamma 2): the plan's prefill count meets the
    2 s mean TTFT in simulation (60,000 requests, seed 11), the simulated prefill sojourn matches the M/G/1 mean
    within the 99% CI plus 1%, and the capacity per instance differs from M/M/1's in the expected direction
    (less variable service: more capacity)."""
    inst = _paper(queue_model="gg1", service_scv=scv)
    (shape,) = pdopt.capacity_table(inst).for_role("dsv31", "prefill")
    mm1 = 28309 / 6144 - 1 / 1.9
    assert (shape.capacity_rps > mm1) if scv < 1 else (shape.capacity_rps < mm1)
    plan = pdopt.solve(inst)
    assert pdopt.verify(inst, plan.to_dict()) == []
    service = "deterministic" if scv == 0 else "gamma"
    res = simulate(inst, plan, SimOptions(requests=60000, seed=11, prefill_dispatch="random",
                                                    prefill_service=service, prefill_scv=scv)).models["dsv31"]
    assert res["ttft_slo_met"]
    # random dispatch splits Poisson arrivals: each instance is M/G/1, whose mean (Pollaczek-Khinchine) is exact
    from pdopt.perf.queueing import sojourn_statistic
    m = plan.models["dsv31"]
    expected = sojourn_statistic(m.demand_rps / m.prefill.instances, 28309 / 6144, 1, 1.0, scv, "mean")
    sim = res["prefill_sojourn_s"]
    assert abs(sim["mean"] - expected) <= sim["ci99_half_width"] + 0.01 * expected


def test_measured_ttft_sweep_calibrates_gg1() -> None:
    """A prefill profile carrying a TTFT sweep generated from G/G/1 itself (mu = 28309/6144, cs2 0.5, overhead
    0.1 s): with queue_model gg1 the shape's capacity is that of the fitted model, i.e. of cs2 0.5 and 0.1 s,
    whatever the workload states (here 2.0 and 0.3 s)."""
    from pdopt.perf.queueing import max_arrival_rate, sojourn_statistic

    mu = 28309 / 6144
    sweep = [{"request_rate_rps": r, "ttft_mean_s": 0.1 + sojourn_statistic(r, mu, 1, 1.0, 0.5, "mean")}
             for r in (0.5, 1.5, 2.5, 3.5)]
    doc = yaml.safe_load(PAPER.read_text())
    doc["profiles"][0]["measured_ttft"] = sweep
    doc["workloads"]["dsv31"].update(queue_model="gg1", service_scv=2.0, ttft_overhead_s=0.3)
    inst = instance_from_dict(doc, PAPER.parent)
    (shape,) = pdopt.capacity_table(inst).for_role("dsv31", "prefill")
    assert shape.capacity_rps == pytest.approx(max_arrival_rate(mu, 1, 1.0, 0.5, 1.9, "mean"), rel=1e-6)
    plan = pdopt.solve(inst)
    assert pdopt.verify(inst, plan.to_dict()) == []

"""Purchase options over a horizon: reserved, on-demand and spot units of a pool, chosen at the least cost.

Known answers by hand (instances/tiny/reserved-two-periods.yaml and spot-two-periods.yaml, their descriptions):
a GPU used in both 12-hour periods costs 24.00 on demand and 14.40 reserved (0.60 USD per GPU-hour for 24 h), a
GPU used by day only 12.00 and 14.40, so R = 5 and 156.00 USD per day; the break-even reserved price of a day-only
GPU is 0.50 USD per GPU-hour; with spot at 0.30 (4 per period) R = 5 and 122.40.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.io import InputError, instance_from_dict
from pdopt.optimize.solver import SolverOptions, available_solvers
from pdopt.verifier import verify
from tests.conftest import ROOT

TINY = ROOT / "instances" / "tiny"
RESERVED = TINY / "reserved-two-periods.yaml"
SPOT = TINY / "spot-two-periods.yaml"


def _doc(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def _plan(doc: dict[str, Any], solver: str = "cbc") -> pdopt.HorizonPlan:
    inst = instance_from_dict(doc, TINY)
    plan = pdopt.plan_horizon(inst, SolverOptions(name=solver))
    assert plan.has_plan
    assert verify(inst, plan.to_dict()) == []
    return plan


@pytest.mark.parametrize(("price", "cost", "reserved"), [
    (0.6, 156.0, {5}),       # the instance: reserve the GPUs used in both periods
    (0.4, 115.2, {12}),      # below the break-even 0.50: every GPU reserved, 24 x 0.40 x 12
    (0.5, 144.0, set(range(5, 13))),  # at the break-even: every R from 5 to 12 costs 60.00 + 84.00
    (0.99, 5 * 24 * 0.99 + 84.0, {5}),  # a 1% discount still pays for the GPUs used all day
    (1.0, 204.0, set(range(0, 6))),   # no discount: reserving a GPU used all day costs what on demand does
    (0.0, 0.0, set(range(12, 17))),   # free reserved capacity: at least the day's 12 GPUs, at no cost
])
def test_reserved_break_even_by_hand(price: float, cost: float, reserved: set[int]) -> None:
    doc = _doc(RESERVED)
    doc["node_pools"]["nodes"]["purchase"]["reserved"]["price_usd_per_gpu_hour"] = price
    plan = _plan(doc)
    assert plan.total_cost_usd == pytest.approx(cost, abs=1e-9)
    assert plan.purchase[0].reserved in reserved


def test_upfront_is_spread_over_the_term() -> None:
    """0.30 per GPU-hour plus 2,628 USD upfront over a 8,760-hour year: 0.30 + 0.30 = 0.60, the instance's price."""
    doc = _doc(RESERVED)
    doc["node_pools"]["nodes"]["purchase"]["reserved"].update(price_usd_per_gpu_hour=0.3, upfront_usd_per_unit=2628.0,
                                                             term_hours=8760.0)
    assert _plan(doc).total_cost_usd == pytest.approx(156.0)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_spot_by_hand_and_both_solvers_agree(solver: str) -> None:
    if solver not in available_solvers():
        pytest.skip("highspy not installed")
    plan = _plan(_doc(SPOT), solver)
    assert plan.total_cost_usd == pytest.approx(122.4)
    pool = plan.purchase[0]
    assert pool.reserved == 5
    assert [(p.period, p.used, p.on_demand, p.spot) for p in pool.periods] == [("night", 5, 0, 0), ("day", 12, 3, 4)]


def test_on_demand_only_is_the_plan_without_purchase_options() -> None:
    """A purchase section that sells on demand only: the same cost, the same fleet per period, and the same
    for a horizon with a lead time and a start cost (two-periods.yaml's 242.50)."""
    for path in (RESERVED, TINY / "two-periods.yaml"):
        doc = _doc(path)
        doc["node_pools"]["nodes"].pop("purchase", None)
        plain = _plan(doc)
        doc["node_pools"]["nodes"]["purchase"] = {"on_demand": True}
        bought = _plan(doc)
        assert bought.total_cost_usd == pytest.approx(plain.total_cost_usd)
        assert [sorted((p.role, p.count) for p in q.plan.placements) for q in bought.periods] == \
            [sorted((p.role, p.count) for p in q.plan.placements) for q in plain.periods]
        assert bought.purchase[0].cost_usd == pytest.approx(bought.purchase[0].list_rental_usd)


def test_reserved_only_must_cover_every_period() -> None:
    """No on-demand sales: the reserved layer holds the peak (12 GPUs all day at 0.60: 172.80)."""
    doc = _doc(RESERVED)
    doc["node_pools"]["nodes"]["purchase"]["on_demand"] = False
    plan = _plan(doc)
    assert plan.purchase[0].reserved == 12 and plan.total_cost_usd == pytest.approx(172.8)


@pytest.mark.parametrize(("change", "named"), [
    ({"reserved": {"price_usd_per_node_hour": 0.6, "source": "assumed"}},
     "node_pools.nodes.purchase.reserved: the pool is billed per GPU-hour: give price_usd_per_gpu_hour"),
    ({"reserved": {"price_usd_per_gpu_hour": 0.6}}, "source"),
    ({"reserved": {"price_usd_per_gpu_hour": 0.6, "price_usd_per_node_hour": 4.8, "source": "assumed"}},
     "give exactly one of"),
    ({"reserved": {"price_usd_per_gpu_hour": 0.6, "upfront_usd_per_unit": 10.0, "source": "assumed"}},
     "upfront_usd_per_unit needs term_hours"),
    ({"spot": {"price_usd_per_gpu_hour": 0.3, "available_by_period": {"noon": 2}, "source": "assumed"}},
     "node_pools.nodes.purchase.spot.available_by_period.noon: no period 'noon'"),
    ({"on_demand": False}, "nothing can be bought"),
    ({"reserved": {"price_usd_per_gpu_hour": -1.0, "source": "assumed"}}, "price_usd_per_gpu_hour"),
])
def test_bad_purchase_options_are_named(change: dict[str, Any], named: str) -> None:
    doc = _doc(RESERVED)
    doc["node_pools"]["nodes"]["purchase"] = change
    with pytest.raises(InputError) as exc:
        instance_from_dict(doc, TINY)
    assert named in str(exc.value)


def test_the_json_states_the_purchases(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pdopt.cli import main

    assert main(["plan", str(SPOT), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pool = doc["purchase"]["pools"][0]
    assert (pool["unit"], pool["reserved"], pool["cost_usd"], pool["list_rental_usd"]) == ("gpu", 5, 122.4, 204.0)
    assert doc["purchase"]["adjustment_usd"] == pytest.approx(122.4 - 204.0)
    assert doc["total_cost_usd"] == pytest.approx(122.4)
    assert main(["plan", str(SPOT)]) == 0
    out = capsys.readouterr().out
    assert "reserved 5 GPUs for the horizon" in out and "bought for 122.40 USD against 204.00" in out
    assert "list USD/hour" in out


SPOT_RISK = TINY / "spot-risk-two-periods.yaml"


def test_spot_risk_by_hand_and_both_solvers_agree() -> None:
    """A quarter of the spot GPUs may go: 146.40 USD per day (the description's table of u(S) per period), the day
    running 9 prefill and 5 decode instances on 5 reserved, 4 spot and 5 on-demand GPUs; HiGHS agrees."""
    for solver in ("cbc", "highs"):
        if solver not in available_solvers():
            continue
        plan = _plan(_doc(SPOT_RISK), solver)
        assert plan.total_cost_usd == pytest.approx(146.4)
        day = plan.periods[1].plan
        assert sorted((p.role, p.count) for p in day.placements) == [("decode", 5), ("prefill", 9)]
        assert [(q.used, q.on_demand, q.spot) for q in plan.purchase[0].periods] == [(5, 0, 0), (14, 5, 4)]


@pytest.mark.parametrize("role", ["prefill", "decode"])
def test_the_day_without_its_lost_spot_gpus_still_meets_the_slos(role: str) -> None:
    """Simulated (seed 0, 40,000 requests at the day's 7.5 req/s): the day's fleet less the one GPU a quarter of
    its 4 spot GPUs may take, in the worst case from this role (8 prefill, or 4 decode, instances left), meets
    both mean SLOs: the point estimates are within the targets and no target is refuted by its 99% interval
    (prefill: M/M/1 with mu = 2 req/s and lambda = 7.5/8 gives a mean TTFT of 1/(2 - 0.9375) + 0.25 = 1.19 s
    against 1.25 s)."""
    inst = instance_from_dict(_doc(SPOT_RISK), TINY)
    plan = pdopt.plan_horizon(inst)
    doc = plan.periods[1].plan.to_dict()
    lost = next(p for p in doc["placements"] if p["role"] == role)
    lost["count"] -= 1
    day = inst.period_instance("day")
    result = pdopt.simulate(day, pdopt.Plan.from_dict(doc), pdopt.SimOptions(requests=40_000, seed=0))
    m = result.models["llm"]
    for metric, target in (("ttft_s", 1.25), ("tpot_ms", 50.0)):
        mean, half = m[metric]["mean"], m[metric]["ci99_half_width"]
        assert mean - half <= target, (metric, mean, half)
        assert mean <= target, (metric, mean, half)


def test_without_the_risk_the_same_loss_breaks_the_plan() -> None:
    """The risk-free plan (spot-two-periods.yaml: 8 prefill, 4 decode by day on 4 spot GPUs) checked against the
    risky instance: the verifier finds that losing one GPU leaves 7 prefill (7.0 < 7.5 req/s)."""
    from pdopt.verifier import format_violations

    plan = _plan(_doc(SPOT)).to_dict()
    risky = instance_from_dict({**_doc(SPOT), "node_pools": _doc(SPOT_RISK)["node_pools"]}, TINY)
    found = verify(risky, plan)
    assert {v.check for v in found} == {"spot_loss_cover"}, format_violations(found)


def test_the_horizon_plot_draws_the_purchase_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pdopt.cli import main

    out = tmp_path / "spot.png"
    assert main(["plan", str(SPOT), "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert main(["plan", str(SPOT), "--plot", str(out)]) == 2  # an existing file is never overwritten


def test_a_lost_gpu_takes_down_a_whole_instance() -> None:
    """Decode on 2-GPU instances (2.0 req/s each): losing one spot GPU kills a whole decode instance, not half of
    one. The plan must then keep 7.5 req/s of decode after losing 2.0 per lost GPU, and the verifier charges the
    same: a plan whose day runs 4 decode instances (8.0 req/s) with spot GPUs would leave 6.0 < 7.5."""
    doc = _doc(SPOT_RISK)
    for p in doc["profiles"]:
        if p["role"] == "decode":
            p["gpus_per_instance"] = 2
    plan = _plan(doc)  # verifies clean inside _plan
    day = plan.periods[1].plan
    decode = sum(p.count * p.capacity_rps for p in day.placements if p.role == "decode")
    lost = -(-plan.purchase[0].periods[1].spot // 4)  # ceil(spot / 4) whole GPUs
    assert decode - 2.0 * lost >= 7.5


def test_each_pool_keeps_its_own_survive_fraction() -> None:
    """Two pools, decode on one (spot may lose half, keep all the demand), prefill on the other (keep half): the
    planner's plan verifies; each pool's loss is checked with its own fraction."""
    doc = _doc(SPOT_RISK)
    doc["gpu_types"]["gpub"] = {"memory_gb": 80, "price_usd_per_gpu_hour": 1.0}
    spot = {"price_usd_per_gpu_hour": 0.1, "available_units": 16, "loss_share": 0.5, "source": "assumed"}
    doc["node_pools"] = {
        "nodes": {"gpu_type": "gpu", "gpus_per_node": 8, "node_count": 2,
                  "purchase": {"on_demand": True, "spot": dict(spot)}},
        "poolb": {"gpu_type": "gpub", "gpus_per_node": 8, "node_count": 2,
                  "purchase": {"on_demand": True, "spot": {**spot, "survive_fraction": 0.5}}}}
    for p in doc["profiles"]:
        if p["role"] == "prefill":
            p["gpu_type"] = "gpub"
    _plan(doc)


def test_the_comparison_without_reserved_keeps_what_is_sold() -> None:
    """A pool that sells no on-demand units but has spot: without its reserved layer it still sells none, so the
    comparison plan is bought from spot only (here too little: no plan, reported as None)."""
    from pdopt.optimize.purchase import without_reserved

    doc = _doc(SPOT)
    doc["node_pools"]["nodes"]["purchase"]["on_demand"] = False
    inst = instance_from_dict(doc, TINY)
    stripped = without_reserved(inst).node_pools["nodes"].purchase
    assert stripped is not None and stripped.reserved is None and stripped.on_demand is False
    plan = pdopt.plan_horizon(inst)
    assert plan.has_plan and plan.no_reserved_cost_usd is None


def test_static_all_reserved_respects_max_units() -> None:
    """At most 8 GPUs may be reserved: the static plan's 12 GPUs are 8 reserved (0.60) and 4 on demand (1.00) for
    24 h: 24 x (8 x 0.60 + 4 x 1.00) = 211.20."""
    doc = _doc(RESERVED)
    doc["node_pools"]["nodes"]["purchase"]["reserved"]["max_units"] = 8
    plan = _plan(doc)
    assert plan.static_reserved_cost_usd == pytest.approx(211.2)
    assert plan.purchase[0].reserved <= 8


@pytest.mark.parametrize("corrupt", ["pool_list", "period_name_list", "placement_pool_list", "model_list",
                                     "gpus_zero", "duplicate_pool", "unknown_pool"])
def test_a_malformed_purchase_section_gives_violations_not_a_crash(corrupt: str) -> None:
    inst = instance_from_dict(_doc(SPOT_RISK), TINY)
    doc = pdopt.plan_horizon(inst).to_dict()
    entry: Any = doc["purchase"]["pools"][0]  # type: ignore[index]
    day: Any = doc["periods"][1]  # type: ignore[index]
    if corrupt == "pool_list":
        entry["pool"] = ["nodes"]
    elif corrupt == "period_name_list":
        entry["periods"][0]["name"] = ["night"]
    elif corrupt == "placement_pool_list":
        day["plan"]["placements"][0]["pool"] = ["nodes"]
    elif corrupt == "model_list":
        day["plan"]["placements"][0]["model"] = ["llm"]
    elif corrupt == "gpus_zero":
        day["plan"]["placements"][0]["gpus_per_instance"] = 0
    elif corrupt == "duplicate_pool":
        doc["purchase"]["pools"].insert(0, {**entry, "reserved": 99})  # type: ignore[index]
    else:
        doc["purchase"]["pools"].append({**entry, "pool": "elsewhere"})  # type: ignore[index]
    found = verify(inst, doc)
    assert found and all(v.message for v in found)

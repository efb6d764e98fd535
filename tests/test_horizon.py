"""Plans over a horizon (pdopt/instance/horizon.py, pdopt/optimize/horizon.py): the periods' instances, the known
answers of instances/tiny/two-periods.yaml (derived by hand in its description), and a single period planned as
before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import pdopt
from pdopt.errors import InputError
from pdopt.io import instance_from_dict
from pdopt.optimize.horizon import plan_horizon
from pdopt.optimize.options import SolverOptions
from pdopt.optimize.solver import available_solvers

ROOT = Path(__file__).resolve().parent.parent
TWO = ROOT / "instances" / "tiny" / "two-periods.yaml"


def _doc() -> dict:
    return yaml.safe_load(TWO.read_text())


def test_period_instances_restate_the_workload() -> None:
    inst = pdopt.load_instance(TWO)
    assert inst.period_names == ["night", "day"]
    night, day = inst.period_instance("night"), inst.period_instance("day")
    assert night.workloads["llm"].demand_rps() == 2.5 and day.workloads["llm"].demand_rps() == 7.5
    assert night.horizon is None and night.name == "two-periods.night"
    assert night.workloads["llm"].ttft == inst.workloads["llm"].ttft  # not restated: the workload's own
    with pytest.raises(InputError, match="no period 'noon'"):
        inst.period_instance("noon")


def test_without_a_horizon_the_instance_is_its_only_period() -> None:
    paper = pdopt.load_instance(ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml")
    assert paper.period_names == [""] and paper.period_instance("") is paper


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["workloads"]["llm"]["by_period"].update(noon={"demand": {"requests_per_s": 1.0}}),
     "workloads.llm.by_period.noon: no period 'noon' in horizon.periods"),
    (lambda d: d.pop("horizon"), "workloads.llm.by_period.night: no period 'night' in horizon.periods \\(the "
                                 "instance has no horizon\\)"),
    (lambda d: d["workloads"]["llm"]["by_period"]["night"].update(input_tokens_mean=-3.0),
     "input_tokens_mean"),
    (lambda d: d["horizon"]["periods"].append({"name": "night", "hours": 1.0}), "night appear more than once"),
    (lambda d: d["horizon"].update(lead_time_min=-1.0), "lead_time_min"),
    (lambda d: d["horizon"]["periods"][0].update(hours=0.0), "hours"),
])
def test_bad_horizons_name_the_field(change: object, message: str) -> None:
    doc = _doc()
    change(doc)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        instance_from_dict(doc, TWO.parent)


@pytest.mark.parametrize("solver", available_solvers())
def test_two_periods_known_answer(solver: str) -> None:
    """242.50 USD per day against 288.00 for the static plan (the file's description derives both)."""
    inst = pdopt.load_instance(TWO)
    plan = plan_horizon(inst, SolverOptions(solver))
    assert plan.status.value == "optimal"
    assert plan.total_cost_usd == pytest.approx(242.5)
    assert plan.static_cost_usd == pytest.approx(288.0) and plan.saving_usd == pytest.approx(45.5)
    assert [p.ramp_cost_usd for p in plan.periods] == pytest.approx([0.0, 3.5])
    counts = {p.name: {x.role: x.count for x in p.plan.placements} for p in plan.periods}
    assert counts == {"night": {"prefill": 3, "decode": 2}, "day": {"prefill": 8, "decode": 4}}
    assert [p.starts for p in plan.periods] == [0, 7]
    assert pdopt.verify(inst, plan.to_dict()) == []  # the verifier learns the periods from the instance
    for period in plan.periods:  # each period's plan verifies against that period's instance, found by its name
        assert pdopt.verify(inst.period_instance(period.name), period.plan.to_dict()) == []
        assert pdopt.verify(inst, period.plan.to_dict()) == []
    for period in plan.static_peak:
        assert period.plan.objective_usd_per_hour == pytest.approx(12.0)


@pytest.mark.parametrize(("horizon", "total"), [
    ({"lead_time_min": 0.0}, 239.0),
    ({"lead_time_min": 0.0, "start_cost_usd": 0.0}, 204.0),
    ({"lead_time_min": 0.0, "min_uptime_h": 13.0}, 246.0),
    ({"min_uptime_h": 13.0}, 249.0),
    ({"lead_time_min": 0.0, "cyclic": False}, 239.0 + 5 * 5),  # the night's 5 instances start once, at 5.00 each
    ({"cyclic": False}, 242.5 + 5 * 5 + 0.5 * 5),  # ... and warm up for half an hour before the horizon
])
def test_two_periods_variants(horizon: dict, total: float) -> None:
    """Lead time 0: 239.00, and no start cost: 12 x 5 + 12 x 12 = 204.00; a 13-hour minimum uptime: 246.00, or
    249.00 with the lead time (the file's description); a horizon that is not cyclic also starts the night's fleet
    before its first period."""
    doc = _doc()
    doc["horizon"].update(horizon)
    inst = instance_from_dict(doc, TWO.parent)
    plan = plan_horizon(inst)
    assert plan.status.value == "optimal" and plan.total_cost_usd == pytest.approx(total)
    assert pdopt.verify(inst, plan.to_dict()) == []


def test_a_single_period_plans_as_before() -> None:
    """Without a horizon the instance is one period of one hour: the plan is pdopt.solve's (224 USD/h, the
    paper's known answer)."""
    paper = pdopt.load_instance(ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml")
    plan = plan_horizon(paper)
    alone = pdopt.solve(paper)
    assert len(plan.periods) == 1
    assert plan.total_cost_usd == pytest.approx(alone.objective_usd_per_hour) == pytest.approx(224.0)
    assert [(p.role, p.count) for p in plan.periods[0].plan.placements] == [
        (p.role, p.count) for p in alone.placements]


def test_spec_names_the_linking_functions_and_goldens_match() -> None:
    """formulations/horizon.yaml: every family's code pointer is a function of pdopt/optimize/horizon.py; every
    family has rows in a golden LP (tests/golden/lp_horizon/, recorded on purpose by tests/golden/cases.py), and
    the LPs built now are the recorded ones."""
    import importlib

    from tests.golden.cases import HORIZON_CASES, HORIZON_DIR, horizon_lp_text

    spec = yaml.safe_load((ROOT / "formulations" / "horizon.yaml").read_text())
    for family in (*spec["constraints"].values(), *spec["variables"].values()):
        module, _, func = family["code"].partition("::")
        assert callable(getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), func))
    goldens = {name: (HORIZON_DIR / f"{name}.lp").read_text() for name in HORIZON_CASES}
    for name, text in goldens.items():
        assert horizon_lp_text(name) == text, f"{name}: differs from tests/golden/lp_horizon/{name}.lp"
    everything = "\n".join(goldens.values())
    for family in spec["constraints"]:
        assert f"\n{family}__" in everything, family
    assert "starts__" in goldens["linked"]


def test_a_ramp_exactly_at_the_pools_capacity() -> None:
    """Two nodes of 6 GPUs: the ramp before the day holds the night's 5 instances and the 7 new ones, 12 GPUs,
    exactly the pool; the plan is unchanged (242.50). With 11 GPUs of 1 node... the day alone needs 12: no plan."""
    doc = _doc()
    doc["node_pools"]["nodes"].update(gpus_per_node=6)
    plan = plan_horizon(instance_from_dict(doc, TWO.parent))
    assert plan.status.value == "optimal" and plan.total_cost_usd == pytest.approx(242.5)
    doc["node_pools"]["nodes"].update(gpus_per_node=11, node_count=1)
    assert plan_horizon(instance_from_dict(doc, TWO.parent)).status.value == "infeasible"


def test_a_lead_time_as_long_as_a_period_is_refused() -> None:
    doc = _doc()
    doc["horizon"]["lead_time_min"] = 720.0
    with pytest.raises(InputError, match=r"horizon\.lead_time_min: 720 minutes is not shorter than period 'night'"):
        plan_horizon(instance_from_dict(doc, TWO.parent))


def test_cli_plans_the_horizon(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pdopt.cli import main

    assert main(["plan", str(TWO), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total_cost_usd"] == pytest.approx(242.5) and doc["static_peak_cost_usd"] == pytest.approx(288.0)
    assert doc["saving_usd"] == pytest.approx(45.5) and doc["lead_time_min"] == 30.0
    assert [p["ramp_cost_usd"] for p in doc["periods"]] == [0.0, 3.5]
    assert [(p["name"], p["hours"], p["starts"]) for p in doc["periods"]] == [("night", 12.0, 0), ("day", 12.0, 7)]
    assert doc["periods"][1]["plan"]["objective_usd_per_hour"] == pytest.approx(12.0)
    assert main(["plan", str(TWO), "--maximize-scale"]) == 2
    assert "this instance has a horizon" in capsys.readouterr().err


def test_cli_verifies_a_horizon_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pdopt.cli import main

    out = tmp_path / "plan.json"
    assert main(["plan", str(TWO), "--format", "json"]) == 0
    out.write_text(capsys.readouterr().out)
    assert main(["verify", str(TWO), "--plan", str(out)]) == 0
    assert "satisfies every constraint" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    doc["periods"][1]["starts"] = 6
    out.write_text(json.dumps(doc))
    assert main(["verify", str(TWO), "--plan", str(out)]) == 1
    assert "horizon_starts: periods[1] (day).starts: 6" in capsys.readouterr().out


def test_periods_differing_only_in_demand_share_one_capacity_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Capacities do not depend on demand: two-periods.yaml (the periods differ in demand alone) computes one
    table; with the night's TPOT SLO restated, two."""
    import pdopt.optimize.horizon as horizon

    calls: list[str] = []
    real = horizon.capacity_table

    def counted(inst: pdopt.Instance) -> object:
        calls.append(inst.name)
        return real(inst)

    monkeypatch.setattr(horizon, "capacity_table", counted)
    plan_horizon(pdopt.load_instance(TWO), static_peak=False)
    assert calls == ["two-periods.night"]
    doc = _doc()
    doc["workloads"]["llm"]["by_period"]["night"]["tpot"] = {"target_ms": 60.0}
    calls.clear()
    plan = plan_horizon(instance_from_dict(doc, TWO.parent), static_peak=False)
    assert calls == ["two-periods.night", "two-periods.day"] and plan.has_plan


def test_a_cyclic_horizon_of_one_period_starts_nothing() -> None:
    """One 24-hour period that repeats: its fleet runs on, so no instance is started again and no ramp is paid
    (24 x 12.00 = 288.00 at the day's demand)."""
    doc = _doc()
    doc["horizon"]["periods"] = [{"name": "day", "hours": 24}]
    del doc["workloads"]["llm"]["by_period"]
    plan = plan_horizon(instance_from_dict(doc, TWO.parent))
    assert plan.total_cost_usd == pytest.approx(288.0) and plan.periods[0].starts == 0
    assert plan.periods[0].ramp_cost_usd == pytest.approx(0.0)


def test_a_period_named_like_a_ramp_plans() -> None:
    """Ramp variables carry capitals no period name holds: periods night and ramp_night coexist."""
    doc = _doc()
    doc["horizon"]["periods"][1]["name"] = "ramp_night"
    doc["workloads"]["llm"]["by_period"] = {"night": {"demand": {"requests_per_s": 2.5}}}
    plan = plan_horizon(instance_from_dict(doc, TWO.parent))
    assert plan.total_cost_usd == pytest.approx(242.5)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(lead_time_min=10**400), "lead_time_min: expected a number from 0 to 1e12, got a huge"),
    (lambda d: d["periods"][0].update(hours="12"), r"periods\[0\]\.hours: expected a number"),
    (lambda d: d["periods"][0].update(starts=1.5), r"periods\[0\]: hours must be positive and starts whole"),
    (lambda d: d.update(status="great"), "status: 'great' is not a plan status"),
    (lambda d: d["periods"][1].update(plan=[1]), r"periods\[1\]\.plan: a plan must be a JSON object"),
])
def test_horizon_plan_files_are_read_as_untrusted(change: object, message: str) -> None:
    from pdopt.optimize.horizon import horizon_plan_from_dict

    doc = plan_horizon(pdopt.load_instance(TWO)).to_dict()
    change(doc)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        horizon_plan_from_dict(doc, "plan.json")


@pytest.mark.parametrize("corrupt", [
    lambda d: d["periods"][0].update(plan=[1]),
    lambda d: d["periods"][0]["plan"].update(placements=5),
    lambda d: d["periods"][0]["plan"]["placements"][0].update(gpus_per_instance=0),
    lambda d: d["static_peak"][1].update(plan="x"),
])
def test_the_verifier_reports_malformed_horizon_plans(corrupt: object) -> None:
    inst = pdopt.load_instance(TWO)
    doc = plan_horizon(inst).to_dict()
    corrupt(doc)  # type: ignore[operator]
    violations = pdopt.verify(inst, doc)
    assert violations and all(v.message for v in violations)


@pytest.mark.parametrize("solver", available_solvers())
def test_serving_modes_are_decided_per_period(solver: str) -> None:
    """tiny/mixed-modes.yaml over a 10-hour night at 30 req/s and a 14-hour day at its 90 req/s, 15-minute lead
    time: the night is served by P/D pairs alone, the day by P/D pairs and an aggregated instance, and the plan
    verifies. The horizon costs at least each period's own optimum: the night alone would run three aggregated
    instances (1.80 USD/h); over the horizon it runs the P/D pair (2.00 USD/h) the day needs anyway, which then
    needs no start and no ramp at the morning."""
    path = ROOT / "instances" / "tiny" / "mixed-modes.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["horizon"] = {"periods": [{"name": "night", "hours": 10}, {"name": "day", "hours": 14}],
                      "lead_time_min": 15, "start_cost_usd": 2}
    doc["workloads"]["llm"]["by_period"] = {"night": {"demand": {"requests_per_s": 30}}}
    inst = instance_from_dict(doc, path.parent)
    plan = plan_horizon(inst, SolverOptions(solver))
    assert [p.plan.models["llm"].mode for p in plan.periods] == ["disaggregated", "both"]
    alone = {p.name: pdopt.solve(inst.period_instance(p.name)).objective_usd_per_hour for p in plan.periods}
    assert alone == pytest.approx({"night": 1.8, "day": 3.6})
    assert plan.total_cost_usd >= 10 * 1.8 + 14 * 3.6
    assert pdopt.verify(inst, plan.to_dict()) == []

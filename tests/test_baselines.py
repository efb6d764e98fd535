"""Baseline fleet sizers (pdopt.comparison.baselines): verified plans, hand-checked costs, never below the MILP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdopt.comparison import baselines
from pdopt.comparison.generate import FAMILIES, generate
from pdopt.instance import Instance
from pdopt.io import instance_from_dict, load_instance
from pdopt.plan import Plan
from pdopt.verifier import verify

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "instances/paper/dsv31-h200-5mtpm.yaml"
FILES = [PAPER, ROOT / "instances/examples/llama70b-bloom176b-a100-h100.yaml",
         ROOT / "instances/tiny/mixed-two-models-cap.yaml"]
ROW_KEYS = {"name", "cost_usd_per_hour", "gpus", "nodes", "feasible", "violations", "saving_vs_milp_usd_per_hour",
            "saving_pct", "slo_met", "attainment", "reason"}
NAMES = ["milp", "paper_closed_form", "fixed_ratio_1:1", "fixed_ratio_1:2", "fixed_ratio_1:3", "rate_matching_0.8",
         "rate_matching_0.9", "best_single_type_per_role", "greedy", "lp_rounding"]


def _fleet_s(seed: int) -> Instance:
    params = FAMILIES["fleet-S"]
    doc = generate(type(params)(**{**params.__dict__, "seed": seed}))
    return instance_from_dict(doc)


def _instances() -> list[tuple[str, Instance]]:
    out = [(p.name, load_instance(p)) for p in FILES]
    out += [(f"fleet-S-seed{s}", _fleet_s(s)) for s in range(3)]
    return out


@pytest.fixture(scope="module")
def paper() -> Instance:
    return load_instance(PAPER)


@pytest.fixture(scope="module")
def paper_rows(paper: Instance) -> dict[str, dict[str, object]]:
    return {r["name"]: r for r in baselines.compare(paper)}


def test_paper_hand_checked(paper_rows: dict[str, dict[str, object]]) -> None:
    """Paper instance, by hand. Demand = 5e6 tok/min / 60 / (6144 + 512) = 12.52 req/s per role. One 8-GPU H200
    node per instance at 28 USD/node-hour; prefill 4.0813 req/s, decode 3.3336 req/s per instance.

    - MILP: ceil(12.52/4.0813) = ceil(3.07) = 4 P, ceil(12.52/3.3336) = ceil(3.76) = 4 D -> 8 nodes = 224 USD/h.
    - (a) paper_closed_form: the same 4 P + 4 D = 224 (saving 0; the MILP has only this one shape pair too).
    - (b) 1:1: k >= 4 (prefill) and k >= 4 (decode) -> 4 P + 4 D = 224 (saving 0).
      1:2: k P >= 3.07 -> k = 4 (k = 2 gives 2 x 4.0813 = 8.16 < 12.52), 2k D >= 3.76 needs only k = 2;
      k = 4 -> 4 P + 8 D = 12 nodes = 336 (saving 112).
      1:3: k = 4 -> 4 P + 12 D = 16 nodes = 448 (the pool's 16 nodes, exactly; saving 224).
    - (c) derate 0.8: P ceil(12.52 / 3.2650) = ceil(3.83) = 4, D ceil(12.52 / 2.6669) = ceil(4.69) = 5 -> 9 nodes
      = 252; derate 0.9: P ceil(12.52 / 3.6732) = ceil(3.41) = 4, D ceil(12.52 / 3.0002) = ceil(4.17) = 5 -> 252.
    - (d) one GPU type only: as (a), 224. (e) greedy: 4 + 4 = 224.
    """
    expected = {"milp": (224.0, 8), "paper_closed_form": (224.0, 8), "fixed_ratio_1:1": (224.0, 8),
                "fixed_ratio_1:2": (336.0, 12), "fixed_ratio_1:3": (448.0, 16), "rate_matching_0.8": (252.0, 9),
                "rate_matching_0.9": (252.0, 9), "best_single_type_per_role": (224.0, 8), "greedy": (224.0, 8)}
    for name, (cost, nodes) in expected.items():
        row = paper_rows[name]
        assert row["feasible"] is True, name
        assert row["cost_usd_per_hour"] == pytest.approx(cost), name
        assert row["nodes"] == nodes, name
        assert row["gpus"] == 8 * nodes, name
        assert row["saving_vs_milp_usd_per_hour"] == pytest.approx(cost - 224.0), name
    assert paper_rows["fixed_ratio_1:2"]["saving_pct"] == pytest.approx(100 * 112 / 336)


def test_paper_counts(paper: Instance) -> None:
    """The instance counts behind the costs (4.0813 / 3.3336 req/s per instance, 12.52 req/s demand)."""
    def counts(plan: Plan | None) -> tuple[int, int]:
        assert plan is not None
        return plan.models["dsv31"].prefill.instances, plan.models["dsv31"].decode.instances

    assert counts(baselines.paper_closed_form(paper).plan) == (4, 4)
    assert counts(baselines.fixed_ratio(paper, 1, 2).plan) == (4, 8)
    assert counts(baselines.fixed_ratio(paper, 1, 3).plan) == (4, 12)
    assert counts(baselines.rate_matching(paper, 0.8).plan) == (4, 5)


@pytest.mark.parametrize(("label", "inst"), _instances(), ids=lambda x: x if isinstance(x, str) else "")
def test_never_cheaper_than_milp(label: str, inst: Instance) -> None:
    """Same capacity model: a verified-feasible baseline never undercuts the MILP optimum. Where a baseline has
    no plan it says why; where it has one the verifier checks it."""
    rows = baselines.compare(inst)
    assert [r["name"] for r in rows] == NAMES
    assert all(set(r) == ROW_KEYS for r in rows)
    milp = rows[0]
    assert milp["feasible"] is True and milp["saving_vs_milp_usd_per_hour"] == 0.0
    for r in rows[1:]:
        if r["cost_usd_per_hour"] is None:
            assert r["reason"], r["name"]
            assert r["feasible"] is False
            continue
        if r["feasible"]:
            assert r["cost_usd_per_hour"] >= milp["cost_usd_per_hour"] - 1e-6, (label, r["name"])
            assert r["saving_vs_milp_usd_per_hour"] >= -1e-6
            assert r["saving_pct"] >= -1e-6


@pytest.mark.parametrize(("label", "inst"), _instances(), ids=lambda x: x if isinstance(x, str) else "")
def test_baseline_plans_verify(label: str, inst: Instance) -> None:
    """Baselines respect the inventory (they return None rather than overfill), so on instances without a budget,
    network or resilience rule every plan they return passes the verifier."""
    for b in baselines.all_baselines(inst):
        if b.plan is None:
            assert b.reason
            continue
        doc = b.plan.to_dict()
        assert doc["status"] == "feasible" and doc["scale_demand"] == 1.0 and doc["scale"] is None
        assert doc["solver"]["name"] == f"baseline:{b.name}"
        assert verify(inst, doc) == [], (label, b.name)
        assert Plan.from_dict(doc) == b.plan


def test_mixed_two_models_values() -> None:
    """Known results on the capped two-model tiny instance (see docs/baselines.md): the MILP costs 16 USD/h; the
    best-type-per-role and greedy baselines match it (saving 0); paper_closed_form costs 22."""
    rows = {r["name"]: r for r in baselines.compare(load_instance(FILES[2]))}
    assert rows["milp"]["cost_usd_per_hour"] == pytest.approx(16.0)
    assert rows["best_single_type_per_role"]["saving_vs_milp_usd_per_hour"] == pytest.approx(0.0)
    assert rows["greedy"]["saving_vs_milp_usd_per_hour"] == pytest.approx(0.0)
    assert rows["paper_closed_form"]["cost_usd_per_hour"] == pytest.approx(22.0)


def test_no_fit_returns_reason() -> None:
    """A fixed ratio that cannot fit the pools returns no plan and names the instance that fits nowhere."""
    res = baselines.fixed_ratio(load_instance(FILES[1]), 1, 3)
    assert res.plan is None
    assert res.reason is not None and "fits in no pool" in res.reason


def test_bad_arguments(paper: Instance) -> None:
    with pytest.raises(ValueError, match="derate"):
        baselines.rate_matching(paper, 0.0)
    with pytest.raises(ValueError, match="positive"):
        baselines.fixed_ratio(paper, 0, 1)


def test_simulated_columns(paper: Instance) -> None:
    """With simulate_requests > 0 each planned row carries the simulator's verdict and worst attainment."""
    rows = baselines.compare(paper, simulate_requests=3000)
    for r in rows:
        assert isinstance(r["slo_met"], bool)
        assert 0.0 <= r["attainment"] <= 1.0
    assert {r["name"]: r for r in rows}["fixed_ratio_1:3"]["slo_met"] is True


def test_cli_compare(capsys: pytest.CaptureFixture[str]) -> None:
    from pdopt.cli import main

    paper = Path(__file__).resolve().parents[1] / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"
    assert main(["compare", str(paper), "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["milp"]["cost_usd_per_hour"] == pytest.approx(224.0)
    assert rows["fixed_ratio_1:2"]["cost_usd_per_hour"] == pytest.approx(336.0)
    assert main(["compare", str(paper), "--simulate", "-1"]) == 2

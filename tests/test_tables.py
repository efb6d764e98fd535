"""Plans, capacity tables and simulations as tables (pdopt/tables.py): DataFrames whose totals are the plan's, and
CSV that parses back to the same numbers."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

import pdopt
from pdopt.cli import main
from pdopt.tables import capacity_rows, placement_rows, rows_csv, simulation_rows

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "instances" / "examples" / "llama70b-bloom176b-a100-h100.yaml"


@pytest.fixture(scope="module")
def plan() -> pdopt.Plan:
    return pdopt.solve(pdopt.load_instance(EXAMPLE))


def test_frames_total_the_plan(plan: pdopt.Plan) -> None:
    """Placements: cost sums to the objective (172.04 USD/h, known_answers.yaml), GPUs to gpus_used, counts to the
    models' instances; pools: cost to the objective; cost breakdown: each axis sums to it and shares to 1."""
    df = plan.to_frame()
    assert df["cost_usd_per_hour"].sum() == pytest.approx(plan.objective_usd_per_hour) == pytest.approx(172.04)
    assert df["gpus"].sum() == sum(plan.gpus_used.values())
    for (model, role), count in df.groupby(["model", "role"])["count"].sum().items():
        assert count == getattr(plan.models[model], role).instances
    assert plan.to_frame("pools")["cost_usd_per_hour"].sum() == pytest.approx(plan.objective_usd_per_hour)
    cost = plan.to_frame("cost")
    for _, part in cost.groupby("axis"):
        assert part["cost_usd_per_hour"].sum() == pytest.approx(plan.objective_usd_per_hour)
        assert part["share"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'nodes' is not one of"):
        plan.to_frame("nodes")


def test_csv_parses_back_to_the_same_numbers(plan: pdopt.Plan, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLE), "--format", "csv"]) == 0
    back = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    rows = placement_rows(plan)
    assert len(back) == len(rows)
    for got, want in zip(back, rows, strict=True):
        for key, value in want.items():
            assert (float(got[key]) == value) if isinstance(value, int | float) else got[key] == str(value), key
    inst = pdopt.load_instance(EXAMPLE)
    cap = capacity_rows(pdopt.capacity_table(inst))
    assert main(["capacity", str(EXAMPLE), "--format", "csv"]) == 0
    back = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [float(r["capacity_rps"]) for r in back] == [r["capacity_rps"] for r in cap]


def test_simulation_rows_and_csv() -> None:
    """Per model, metric and statistic; the SLO's own statistic carries the target (the paper: mean TTFT <= 2 s,
    mean TPOT <= 20 ms)."""
    inst = pdopt.load_instance(ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml")
    res = pdopt.simulate(inst, pdopt.solve(inst), pdopt.SimOptions(requests=2000, seed=1))
    rows = simulation_rows(res)
    assert len(rows) == 10
    targets = {(r["metric"], r["statistic"]): r["slo_target"] for r in rows if r["slo_target"] is not None}
    assert targets == {("ttft_s", "mean"): 2.0, ("tpot_ms", "mean"): 20.0}
    mean_ttft = next(r for r in rows if (r["metric"], r["statistic"]) == ("ttft_s", "mean"))
    assert mean_ttft["simulated"] == res.models["dsv31"]["ttft_s"]["mean"]
    back = list(csv.DictReader(io.StringIO(rows_csv(rows))))
    assert float(back[0]["simulated"]) == rows[0]["simulated"]


def test_pandas_is_loaded_only_for_a_frame() -> None:
    code = "import pdopt\nplan = pdopt.solve(pdopt.load_instance('instances/paper/dsv31-h200-5mtpm.yaml'))\n"
    check = "import sys\nprint('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code + check], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    out = subprocess.run([sys.executable, "-c", code + "plan.to_frame()\n" + check], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "True"


def test_comparison_and_simulation_frames(capsys: pytest.CaptureFixture[str]) -> None:
    """compare --format csv: one row per approach, the MILP's cost the plan's (224 USD/h, the paper); a
    simulation's frame has its rows."""
    assert main(["compare", "instances/paper/dsv31-h200-5mtpm.yaml", "--format", "csv"]) == 0
    back = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    milp = next(r for r in back if r["name"] == "milp")
    assert float(milp["cost_usd_per_hour"]) == pytest.approx(224.0) and milp["violations"] == "0"
    inst = pdopt.load_instance(ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml")
    res = pdopt.simulate(inst, pdopt.solve(inst), pdopt.SimOptions(requests=1000, seed=2))
    df = res.to_frame()
    assert len(df) == 10 and set(df["metric"]) == {"ttft_s", "tpot_ms"}

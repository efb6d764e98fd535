"""`pdopt bench`: a set runs end to end and writes its report; sets name existing instances; nothing is
overwritten."""

import csv
from pathlib import Path

import pytest
import yaml

import pdopt
from pdopt.cli import main
from tests.conftest import INSTANCES


def test_sets_name_existing_instances() -> None:
    sets = yaml.safe_load((INSTANCES / "sets.yaml").read_text())
    assert {"smoke", "ci", "bench"} <= set(sets)
    for entries in sets.values():
        for e in entries:
            assert e.startswith("generate:") or (INSTANCES / e).is_file(), e
    known = yaml.safe_load((INSTANCES / "known_answers.yaml").read_text())["instances"]
    # plans over a horizon are not single-period solver benchmarks: tests/test_known_answers.py checks them
    horizons = {path for path, entries in known.items() if any("horizon_cost_usd" in e for e in entries)}
    proven = {path for path, entries in known.items() if all(e["status"] != "best_known" for e in entries)}
    assert set(sets["ci"]) == proven - horizons  # every instance with a proven known answer is in the ci set
    assert set(known) - proven <= set(sets["bench"])  # the best_known ones are the benchmark's to check
    tiers = [e for name, entries in sets.items() if name.startswith("tier_") for e in entries]
    assert len(tiers) == len(set(tiers)) and set(known) - horizons <= set(tiers)  # one tier each


def test_bench_smoke_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["bench", "--set", "smoke", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2/2" not in err  # piped: no progress lines (on a terminal they are shown: tests/test_progress.py)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in rows] == ["optimal", "optimal"]
    assert float(rows[0]["cost_usd_per_hour"]) == pytest.approx(224.0)
    assert all(r["verified"] == "True" for r in rows)
    for name in ("results.md", "machine.json", "solve_time.png", "cost_vs_baselines.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "solve_time.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["bench", "--set", "smoke", "--out", str(out)]) == 2  # not empty: refused, nothing overwritten
    assert main(["bench", "--set", "nope", "--out", str(tmp_path / "x")]) == 2


def test_known_answer_check() -> None:
    """The benchmark's check of a plan against the library's known answers (optimal, infeasible, best_known)."""
    from pdopt.comparison.bench import known_answer_check
    from pdopt.plan import Plan, SolveStatus

    paper = pdopt.solve(pdopt.load_instance(INSTANCES / "paper" / "dsv31-h200-5mtpm.yaml"))
    assert known_answer_check("paper/dsv31-h200-5mtpm.yaml", paper) == "ok"
    assert known_answer_check("paper/dsv31-h200-5mtpm.yaml", paper.replace(objective_usd_per_hour=200.0)) == \
        "below the known optimum 224.0"
    assert known_answer_check("paper/dsv31-h200-5mtpm.yaml", paper.replace(objective_usd_per_hour=252.0)) == \
        "proven 252, known optimum 224.0"
    fleet_l = "generated/fleet-L-seed0.yaml"
    feasible = Plan(instance="fleet-l-s0", status=SolveStatus.FEASIBLE, objective_usd_per_hour=16_800.0)
    assert known_answer_check(fleet_l, feasible) == "ok"
    assert known_answer_check(fleet_l, feasible.replace(objective_usd_per_hour=16_700.0)) == \
        "below the known bound 16749.1"
    assert known_answer_check(fleet_l, feasible.replace(objective_usd_per_hour=16_750.0)) == \
        "better than best known (16750.00)"
    assert known_answer_check("generate:fleet-S:0", paper) == "-"

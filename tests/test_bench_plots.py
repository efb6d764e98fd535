"""The figures of `pdopt bench` draw what results.csv says: each figure's JSON (its data and its axes as drawn)
matches the table, round-off gaps are never bars, the saving axis is linear from zero, an axis is logarithmic
only over more than a decade, and the set entries that grow a generated family read as intended."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from pdopt.comparison.bench import generated_params, run
from pdopt.comparison.bench_plots import GAP_THRESHOLD, axis_scale, write_plots
from pdopt.errors import InputError
from pdopt.optimize.solver import OPTIMALITY_GAP, SolverOptions

NUMBERS = ("variables", "plan_cpu_s", "gap", "cost_usd_per_hour", "best_baseline_usd_per_hour", "saving_pct")


def _csv_rows(path: Path) -> dict[str, dict[str, Any]]:
    """results.csv by instance, numbers as floats and empty cells as None (as the JSON holds them)."""
    out: dict[str, dict[str, Any]] = {}
    for r in csv.DictReader(path.open()):
        out[r["instance"]] = {k: (None if v == "" else float(v) if k in NUMBERS else v) for k, v in r.items()}
    return out


def test_figure_data_is_the_table(tmp_path: Path) -> None:
    """A small bench (two library instances and a generated family at two sizes, about a second): every number
    a figure draws is the one in results.csv."""
    entries = ["paper/dsv31-h200-5mtpm.yaml", "generate:fleet-S:0:models=1", "generate:fleet-S:0:models=2"]
    run(entries, tmp_path, SolverOptions(time_limit_s=30.0, threads=1))
    table = _csv_rows(tmp_path / "results.csv")
    assert list(table) == entries
    assert [r["family"] for r in table.values()] == [None, "fleet-S", "fleet-S"]
    for name in ("solve_time", "cost_vs_baselines", "solve_time_by_family"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"

    times = json.loads((tmp_path / "solve_time.json").read_text())
    assert times["gap_threshold"] == OPTIMALITY_GAP == GAP_THRESHOLD
    assert [p["instance"] for p in times["points"]] == entries
    for p in times["points"]:
        row = table[p["instance"]]
        assert (p["variables"], p["plan_cpu_s"], p["gap"], p["status"]) == \
            (row["variables"], row["plan_cpu_s"], row["gap"], row["status"])
        assert p["plan_cpu_s"] > 0
    assert times["axes"]["gap_bars"] == []  # all proven optimal: no bar, the figure says so in words
    assert {p["gap_shown"] for p in times["points"]} == {"optimal"}

    cost = json.loads((tmp_path / "cost_vs_baselines.json").read_text())
    for r in cost["rows"]:
        row = table[r["instance"]]
        assert r["not_shown"] is None
        for k in ("cost_usd_per_hour", "best_baseline_usd_per_hour", "saving_pct", "best_baseline"):
            assert r[k] == row[k], k
        assert 0 < r["baselines_feasible"] <= r["baselines_run"] == int(row["baselines_run"])
    assert [b["saving_pct"] for b in cost["axes"]["saving_bars"]] == [table[e]["saving_pct"] for e in entries]
    assert cost["axes"]["saving"]["xscale"] == "linear" and cost["axes"]["saving"]["xlim"][0] == 0.0

    family = json.loads((tmp_path / "solve_time_by_family.json").read_text())
    [line] = family["lines"]
    assert line["family"] == "fleet-S" and [p["models"] for p in line["points"]] == [1, 2]
    for p in line["points"]:
        row = table[p["instance"]]
        assert (p["variables"], p["plan_cpu_s"], p["status"]) == (row["variables"], row["plan_cpu_s"], row["status"])
    # one seed per size: the line's medians are the points themselves
    assert [(m["models"], m["variables"], m["plan_cpu_s"], m["instances"]) for m in line["medians"]] == \
        [(p["models"], p["variables"], p["plan_cpu_s"], 1) for p in line["points"]]
    assert family["axes"]["gap_by_models"]["ylim"][0] == 0.0


def _row(instance: str, *, gap: float | None, status: str = "optimal", cost: float | None = 10.0,
         baseline: float | None = 12.0, variables: int = 10, cpu: float = 0.1) -> dict[str, Any]:
    saving = None if baseline is None or cost is None else 100.0 * (baseline - cost) / baseline
    return {"instance": instance, "models": 2, "gpu_types": 1, "pools": 2, "variables": variables,
            "plan_cpu_s": cpu, "time_limit_s": 60.0, "status": status, "cost_usd_per_hour": cost, "gap": gap,
            "best_baseline": None if baseline is None else "greedy", "best_baseline_usd_per_hour": baseline,
            "saving_pct": saving, "baselines_run": None if cost is None else 9,
            "baselines_feasible": None if cost is None else (0 if baseline is None else 7), "family": None}


def test_round_off_gaps_are_not_bars_and_savings_start_at_zero(tmp_path: Path) -> None:
    """Gaps of float noise (either sign) read "optimal"; only open gaps are bars, at their size; an instance
    without a plan or without a feasible baseline is named, not dropped; savings are drawn from zero."""
    rows = [_row("a.yaml", gap=1e-14), _row("b.yaml", gap=-3e-12), _row("c.yaml", gap=GAP_THRESHOLD),
            _row("d.yaml", gap=0.0019, status="feasible", cost=11.0, variables=2000, cpu=61.0),
            _row("e.yaml", gap=None, status="infeasible", cost=None, baseline=None),
            _row("f.yaml", gap=0.0, baseline=None)]
    write_plots(rows, tmp_path)
    times = json.loads((tmp_path / "solve_time.json").read_text())
    assert [p["gap_shown"] for p in times["points"]] == ["optimal", "optimal", "optimal", "bar", "no plan", "optimal"]
    assert times["axes"]["gap_bars"] == [{"instance": "d.yaml", "gap_pct": pytest.approx(0.19)}]
    assert times["axes"]["gap"]["xlim"][0] == 0.0
    # sizes 10 to 2,000 and times 0.1 to 61 s span more than a decade: log axes
    assert (times["axes"]["time"]["xscale"], times["axes"]["time"]["yscale"]) == ("log", "log")
    cost = json.loads((tmp_path / "cost_vs_baselines.json").read_text())
    assert [r["not_shown"] for r in cost["rows"]] == [None, None, None, None, "no MILP plan (infeasible)",
                                                      "no feasible baseline (0 of 9)"]
    assert [b["instance"] for b in cost["axes"]["saving_bars"]] == ["a.yaml", "b.yaml", "c.yaml", "d.yaml"]
    assert cost["axes"]["saving"]["xscale"] == "linear" and cost["axes"]["saving"]["xlim"][0] == 0.0
    assert not (tmp_path / "solve_time_by_family.json").exists()  # no generated instance, no family figure
    with pytest.raises(InputError):  # nothing is overwritten
        write_plots(rows, tmp_path)


def test_log_only_over_a_decade() -> None:
    assert axis_scale([3.0, 4.0, 6.0]) == "linear"
    assert axis_scale([3.0, 30.0]) == "linear"
    assert axis_scale([3.0, 31.0]) == "log"
    assert axis_scale([0.0, 100.0]) == "linear"  # zero has no place on a log axis


def test_generated_entries() -> None:
    p = generated_params("generate:fleet-L:1:models=8:pools=12")
    assert (p.family, p.seed, p.models, p.pools, p.gpu_types) == ("fleet-L", 1, 8, 12, 6)
    assert generated_params("generate:fleet-S:0").models == 2
    for bad in ("generate:fleet-Q:0", "generate:fleet-S", "generate:fleet-S:0:seed=2", "generate:fleet-S:0:models=x"):
        with pytest.raises(InputError):
            generated_params(bad)


def test_an_interrupted_run_with_no_row_still_draws(tmp_path: Path) -> None:
    """Interrupted before its first instance, a bench still writes its (empty) figures, without a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        files = write_plots([], tmp_path)
    assert [f.name for f in files] == ["solve_time.png", "solve_time.json", "cost_vs_baselines.png",
                                       "cost_vs_baselines.json"]
    assert json.loads((tmp_path / "solve_time.json").read_text())["points"] == []

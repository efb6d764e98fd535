"""``pdopt sweep``: the cheapest plan over a grid of what-ifs, the same table however the points are run.

Known answers, by hand from instances/tiny/mixed-two-models-cap.yaml's description (every instance one GPU; a
role served by one fast instance or by slow ones only; at most two fast GPUs): at demand x1, 16.00 USD/h; with
only the slow type, every role all-slow, 8 + 6 + 2 + 10 = 26.00; with the fast type at half price (an instance
2.00 USD/h), the fast savings become alpha prefill 8 - 2 = 6, alpha decode 6 - 2 = 4, beta prefill 0, beta decode
10 - 2 = 8, so the two fast GPUs go to beta decode and alpha prefill: 26 - 8 - 6 = 12.00; at demand x3 no plan
exists (the description's last paragraph).
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
from pathlib import Path

import pytest

from pdopt.cli import main
from pdopt.comparison.sweep import SweepGrid, columns, mark_pareto, sweep
from pdopt.io import load_instance
from pdopt.tables import rows_csv
from tests.conftest import ROOT

TINY = ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml"
GRID = SweepGrid(demand=(0.5, 1.0, 1.5, 2.0, 3.0), available=(("all",), ("slow",)), price={"fast": (1.0, 0.5)})
"""5 x 2 x 2 = 20 points."""


def _table(executor: concurrent.futures.Executor | None) -> str:
    result = sweep(load_instance(TINY), GRID, executor=executor)
    assert result.points == 20 and len(result.rows) == 20
    cols = columns(result.rows)
    return rows_csv([{c: r[c] for c in cols} for r in result.rows])


@pytest.fixture(scope="module")
def serial() -> str:
    return _table(None)


def test_hand_derived_points(serial: str) -> None:
    rows = {(r["demand"], r["available"], r["price:fast"]): r for r in csv.DictReader(io.StringIO(serial))}
    assert float(rows[("1.0", "all", "1.0")]["cost_usd_per_hour"]) == 16.0
    assert float(rows[("1.0", "slow", "1.0")]["cost_usd_per_hour"]) == 26.0
    assert float(rows[("1.0", "slow", "0.5")]["cost_usd_per_hour"]) == 26.0  # the fast price does not matter
    assert float(rows[("1.0", "all", "0.5")]["cost_usd_per_hour"]) == 12.0
    assert rows[("3.0", "all", "1.0")]["status"] == "infeasible"
    assert rows[("3.0", "all", "1.0")]["cost_usd_per_hour"] == ""
    assert list(rows) == [(d, a, p) for d in ("0.5", "1.0", "1.5", "2.0", "3.0") for a in ("all", "slow")
                          for p in ("1.0", "0.5")]  # grid order, the last axis fastest


def test_two_local_processes_give_the_same_table(serial: str) -> None:
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
        assert _table(pool) == serial


def test_a_local_dask_cluster_gives_the_same_table(serial: str) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        assert _table(client.get_executor()) == serial


def test_cli_jobs_2_writes_the_table_and_figures(serial: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", str(TINY), "--demand", "0.5,1,1.5,2,3", "--available", "all", "--available", "slow",
            "--price", "fast=1,0.5", "--jobs", "2", "--out", str(out), "--format", "csv"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed == serial == (out / "sweep.csv").read_text()
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["points"] == 20 and len(doc["cpu_s"]) == 20
    assert (out / "cost_vs_demand.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "cost_vs_ttft.png").exists()  # no TTFT axis: no such figure
    assert main(argv) == 2  # the folder now holds files: refused, nothing overwritten
    assert "not an empty folder" in capsys.readouterr().err


def test_ranges_and_the_pareto_frontier() -> None:
    """TTFT targets 2.25, 1.25 and 1.75 s at demand x1: looser targets never cost more, and a point is on the
    frontier only when no other has a target at least as tight at a cost at most as high, one strictly better."""
    result = sweep(load_instance(TINY), SweepGrid(ttft_target_s=(2.25, 1.25, 1.75)))
    costs = [r["cost_usd_per_hour"] for r in result.rows]
    assert [r["ttft_target_s"] for r in result.rows] == [2.25, 1.25, 1.75]
    by_target = dict(zip([2.25, 1.25, 1.75], costs, strict=True))
    assert by_target[2.25] <= by_target[1.75] <= by_target[1.25]
    for r in result.rows:
        beaten = any(o["ttft_target_s"] <= r["ttft_target_s"] and o["cost_usd_per_hour"] <= r["cost_usd_per_hour"]
                     and o is not r and (o["ttft_target_s"], o["cost_usd_per_hour"])
                     != (r["ttft_target_s"], r["cost_usd_per_hour"]) for o in result.rows)
        assert r["pareto_ttft"] is (not beaten)


def test_without_a_ttft_axis_pareto_is_not_stated() -> None:
    result = sweep(load_instance(TINY), SweepGrid(demand=(1.0, 2.0)))
    assert [r["pareto_ttft"] for r in result.rows] == [None, None]


def test_pareto_is_taken_within_each_demand() -> None:
    rows = [{"demand": d, "ttft_target_s": t, "tpot_target_ms": None, "available": "all", "cost_usd_per_hour": c}
            for d, t, c in ((1.0, 0.5, 20.0), (1.0, 1.0, 10.0), (1.0, 2.0, 10.0), (2.0, 0.5, 40.0),
                            (2.0, 1.0, None), (2.0, 2.0, 30.0))]
    mark_pareto(rows)  # type: ignore[arg-type]
    assert [r["pareto_ttft"] for r in rows] == [True, True, False, True, False, True]


@pytest.mark.parametrize(("argv", "named"), [
    (["--demand", "abc"], "--demand: expected numbers"),
    (["--demand", "0,1"], "--demand: each value must be positive"),
    (["--ttft-target", "2:1:0.5"], "--ttft-target: expected numbers"),
    (["--available", "tpu_v5"], "--available: no GPU type 'tpu_v5'"),
    (["--price", "fast"], "--price: expected GPU_TYPE=MULTIPLIERS"),
    (["--price", "fast=-1"], "--price fast: each multiplier must be >= 0"),
    (["--tpot-target", "nan"], "--tpot-target: each value must be positive"),
    (["--jobs", "0"], "--jobs: must be at least 1"),
    (["--demand", "1:1000000:1"], "at most 10,000"),
    (["--demand", "1:2000:1", "--tpot-target", "1:2000:1", "--max-points", "10"],
     "the grid has 4,000,000 points, above --max-points 10"),  # counted from the axes: no point is made
])
def test_bad_grids_exit_2_naming_the_flag(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", str(TINY), *argv]) == 2
    assert named in capsys.readouterr().err


def test_a_ttft_target_no_shape_meets_is_a_point_with_the_reason() -> None:
    """0.1 s is below every prefill shape's unloaded TTFT (alpha fast: 1000/7000 s + 0.25 s overhead = 0.3929 s):
    that point has no plan and says why; the next point (1.5 s) is planned."""
    result = sweep(load_instance(TINY), SweepGrid(ttft_target_s=(0.1, 1.5)))
    low, ok = result.rows
    assert low["status"] == "infeasible" and low["cost_usd_per_hour"] is None
    assert "not above the unloaded TTFT 0.3929 s" in low["reason"]
    assert ok["status"] == "optimal" and ok["cost_usd_per_hour"] is not None


def test_an_availability_that_leaves_a_role_unserved_is_a_point_without_plan() -> None:
    """Without beta's slow decode profile, the slow type alone leaves beta's decode with no profile at all: the
    point is recorded (no_plan) with the role named, and the sweep goes on to the next point."""
    import yaml

    from pdopt.io import instance_from_dict

    doc = yaml.safe_load(TINY.read_text())
    doc["profiles"] = [p for p in doc["profiles"] if (p["model"], p["role"], p["gpu_type"]) != ("beta", "decode",
                                                                                                "slow")]
    result = sweep(instance_from_dict(doc, TINY.parent), SweepGrid(available=(("slow",), ("all",))))
    gone, full = result.rows
    assert gone["status"] == "no_plan" and gone["cost_usd_per_hour"] is None
    assert "beta" in gone["reason"] and "decode" in gone["reason"], gone["reason"]
    assert full["status"] == "optimal" and full["cost_usd_per_hour"] is not None


def test_a_multi_line_reason_is_kept_whole_in_one_cell() -> None:
    """Three times the demand: the diagnosis names the uncovered demand and the resource, over several lines;
    the row holds all of them, joined."""
    row = sweep(load_instance(TINY), SweepGrid(demand=(3.0,))).rows[0]
    assert row["status"] == "infeasible" and "\n" not in row["reason"]
    assert "req/s" in row["reason"] and ("node pool" in row["reason"] or "GPU type" in row["reason"]), row["reason"]


def test_prices_scale_every_hourly_price_of_the_type() -> None:
    """x2 on the slow type doubles its GPU-hour price and its pools' node-hour price and activation cost."""
    from pdopt.comparison.sweep import apply_point

    doc = yaml_doc()
    doc["node_pools"]["slow_nodes"].update(price_usd_per_node_hour=20.0, activation_cost_usd_per_hour=1.5)
    from pdopt.io import instance_from_dict

    changed = apply_point(instance_from_dict(doc, TINY.parent), {"price:slow": 2.0})
    assert changed.gpu_types["slow"].price_usd_per_gpu_hour == 4.0
    assert changed.node_pools["slow_nodes"].price_usd_per_node_hour == 40.0
    assert changed.node_pools["slow_nodes"].activation_cost_usd_per_hour == 3.0
    assert changed.gpu_types["fast"].price_usd_per_gpu_hour == 4.0  # the other type untouched


def yaml_doc() -> dict[str, object]:
    import yaml

    return yaml.safe_load(TINY.read_text())  # type: ignore[no-any-return]

"""The simulator offers the demand a plan serves: demand x ``scale_demand`` x ``scale``.

A maximize-scale plan is sized for the multiplier it found, a ``--scale-demand`` plan for its factor; simulating
either at the unscaled demand (as pdopt once did for max-scale plans) confirms a plan at a load it was not sized
for. Each test plans through the CLI, simulates with a fixed seed, and checks that the offered rate measured in the
simulation lies within its 99% interval (Poisson count in the measured window: 2.576 sqrt(N) / window) of the
served demand, and far from the unscaled demand.

Hand figures: whole-node-pricing.yaml serves 12 req/s at the maximum (scale 8/3 of 4.5 req/s, see
tests/test_maximize_scale.py). The paper instance with its pool fixed at 7 nodes: demand 12.5200 req/s, 7 nodes
hold 3 prefill (3 x 4.08127 = 12.2438 req/s) and 4 decode (4 x 3.33365 = 13.3346 req/s) whole-node instances, so
the largest multiplier is 12.2438 / 12.5200 = 0.97794 (prefill binds) and the plan serves 12.2438 req/s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pdopt.cli import main
from tests.conftest import INSTANCES, PAPER

WHOLE_NODE = INSTANCES / "tiny" / "whole-node-pricing.yaml"


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(args) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def _paper_at_seven_nodes(tmp_path: Path) -> Path:
    doc = yaml.safe_load(PAPER.read_text())
    doc["node_pools"]["h200_nodes"]["node_count"] = 7
    for prof in doc["profiles"]:
        if "tpot_csv" in prof:
            shutil.copy(PAPER.parent / prof["tpot_csv"], tmp_path / prof["tpot_csv"])
    path = tmp_path / "paper-7-nodes.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(("case", "flags", "served_rps", "unscaled_rps"), [
    ("whole-node", ["--maximize-scale"], 12.0, 4.5),
    ("whole-node", ["--scale-demand", "2.5"], 2.5 * 4.5, 4.5),
    ("paper-7", ["--maximize-scale"], 3 * (28309 / 6144 - 1 / 1.9), 5e6 / 60 / 6656),
])
def test_simulation_offers_served_demand(case: str, flags: list[str], served_rps: float, unscaled_rps: float,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    instance = WHOLE_NODE if case == "whole-node" else _paper_at_seven_nodes(tmp_path)
    plan = _json(["plan", str(instance), "--format", "json", *flags], capsys)
    model = next(iter(plan["models"]))  # type: ignore[call-overload]
    assert plan["models"][model]["demand_rps"] == pytest.approx(served_rps, rel=1e-6)  # type: ignore[index]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    sim = _json(["simulate", str(instance), "--plan", str(path), "--requests", "6000", "--seed", "0",
                 "--format", "json"], capsys)
    m = sim["models"][model]  # type: ignore[index]
    assert m["target_rps"] == pytest.approx(served_rps, rel=1e-6)
    assert abs(m["offered_rps"] - served_rps) <= m["offered_rps_ci99_half_width"]
    assert m["target_rps"] != pytest.approx(unscaled_rps, rel=1e-3)
    if abs(served_rps - unscaled_rps) > 2 * m["offered_rps_ci99_half_width"]:  # separable at this sample size
        assert abs(m["offered_rps"] - unscaled_rps) > m["offered_rps_ci99_half_width"]
    assert m["completed_rps"] == pytest.approx(m["offered_rps"], rel=0.05)


def test_planning_first_with_scale_demand(capsys: pytest.CaptureFixture[str]) -> None:
    sim = _json(["simulate", str(WHOLE_NODE), "--scale-demand", "2", "--requests", "4000", "--format", "json"],
                capsys)
    m = sim["models"]["chat"]  # type: ignore[index]
    assert m["target_rps"] == pytest.approx(9.0)
    assert abs(m["offered_rps"] - 9.0) <= m["offered_rps_ci99_half_width"]

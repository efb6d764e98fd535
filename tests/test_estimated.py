"""Estimated profiles: a profile may say its numbers are estimated (by a roofline, AIConfigurator, ...) rather than
measured; every capacity and placement that rests on one is marked, in the plan, its JSON, its CSV and table, and
the capacity table. The plan itself is planned and verified as any other."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.io import InputError, instance_from_dict
from pdopt.perf.capacity import capacity_table
from pdopt.verifier import verify
from tests.conftest import ROOT

TINY = ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml"
ESTIMATE = {"estimator": "roofline", "version": "1", "inputs": {"efficiency": 0.5, "gpu": "fast"}}


def _doc() -> dict[str, Any]:
    """mixed-two-models-cap with beta's fast profiles estimated (its optimum, 16.00 USD/h, places beta decode on
    a fast GPU: one placement rests on the estimate, the others on measurements)."""
    doc: dict[str, Any] = yaml.safe_load(TINY.read_text())
    for p in doc["profiles"]:
        if (p["model"], p["gpu_type"]) == ("beta", "fast"):
            p["estimate"] = copy.deepcopy(ESTIMATE)
    return doc


def test_placements_on_estimated_profiles_are_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inst = instance_from_dict(_doc(), TINY.parent)
    plan = pdopt.solve(inst)
    assert plan.objective_usd_per_hour == pytest.approx(16.0)  # estimates plan as measurements do
    marks = {(p.model, p.role, p.gpu_type): p.estimated for p in plan.placements}
    assert marks == {("alpha", "decode", "slow"): None, ("alpha", "prefill", "fast"): None,
                     ("beta", "decode", "fast"): "roofline 1", ("beta", "prefill", "slow"): None}
    doc = plan.to_dict()
    assert verify(inst, doc) == []
    assert [p["estimated"] for p in doc["placements"] if p["model"] == "beta"] == ["roofline 1", None]
    again = pdopt.Plan.from_dict(json.loads(json.dumps(doc)))
    assert again.placements == plan.placements
    shapes = {(s.model, s.role, s.gpu_type): s.estimated for s in capacity_table(inst).shapes}
    assert shapes[("beta", "prefill", "fast")] == "roofline 1" and shapes[("alpha", "prefill", "fast")] is None
    path = tmp_path / "est.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    assert main(["plan", str(path), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["estimated"] for r in rows} == {"roofline 1", ""}
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "default*" in out and "* estimated, not measured (roofline 1)" in out
    assert main(["capacity", str(path)]) == 0
    assert capsys.readouterr().out.count("(estimated: roofline 1)") == 2


def test_a_measured_plan_says_nothing_of_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(TINY)]) == 0
    assert "estimated" not in capsys.readouterr().out
    plan = pdopt.solve(pdopt.load_instance(TINY))
    assert all(p.estimated is None for p in plan.placements)


@pytest.mark.parametrize(("estimate", "named"), [
    ({"estimator": "roofline"}, "estimate.version"),
    ({"estimator": "", "version": "1"}, "estimate.estimator"),
    ({"estimator": "roofline", "version": "1", "inputs": {"x": [1, 2]}}, "estimate.inputs.x"),
    ({"estimator": "roofline", "version": "1", "colour": "blue"}, "estimate.colour"),
])
def test_a_bad_estimate_is_named(estimate: dict[str, Any], named: str) -> None:
    doc = _doc()
    doc["profiles"][0]["estimate"] = estimate
    with pytest.raises(InputError) as exc:
        instance_from_dict(doc, TINY.parent)
    assert named in str(exc.value)


def test_the_report_marks_estimated_placements(tmp_path: Path) -> None:
    path = tmp_path / "est.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    out = tmp_path / "r.html"
    assert main(["report", "--instance", str(path), "--out", str(out), "--no-baselines"]) == 0
    page = out.read_text()
    assert "<td>roofline 1</td>" in page and page.count("<td>measured</td>") == 3
    assert "Estimated, not measured" in page

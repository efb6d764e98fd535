"""Plans as if a GPU type were unavailable (`pdopt plan --without`, Instance.without_gpu_types)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.errors import InputError
from pdopt.io import instance_from_dict

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "instances" / "examples" / "llama70b-bloom176b-a100-h100.yaml"


def test_without_h100_the_example_has_no_plan_and_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    """Six A100 nodes alone cannot serve both models: exit 3, naming the uncovered demand and the A100 pool's
    shortfall."""
    assert main(["plan", str(EXAMPLE), "--without", "h100_80gb"]) == 3
    err = capsys.readouterr().err
    assert "no feasible plan without h100_80gb" in err and "node pool 'a100_nodes'" in err
    assert main(["plan", str(EXAMPLE), "--without", "h200"]) == 2
    assert "--without h200: no GPU type 'h200'" in capsys.readouterr().err


def test_with_enough_a100_nodes_the_plan_is_a100_only() -> None:
    """With 20 A100 nodes the plan without H100s uses A100s alone, verifies against the reduced instance, and
    costs at least the plan with both types (a restriction cannot be cheaper)."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["node_pools"]["a100_nodes"]["node_count"] = 20
    inst = instance_from_dict(doc, EXAMPLE.parent)
    both = pdopt.solve(inst)
    reduced = inst.without_gpu_types(["h100_80gb"])
    plan = pdopt.solve(reduced)
    assert plan.has_plan and {p.gpu_type for p in plan.placements} == {"a100_80gb"}
    assert pdopt.verify(reduced, plan.to_dict()) == []
    assert plan.objective_usd_per_hour >= both.objective_usd_per_hour - 1e-9
    assert "h100_nodes" not in reduced.node_pools and reduced.name.endswith("without-h100_80gb")
    with pytest.raises(InputError, match="no GPU type 'l40s'"):
        inst.without_gpu_types(["l40s"])


def test_compare_fallbacks_ranks_the_plan_without_each_type(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """On the variant with 20 A100 nodes: the full plan first, then without H100s (A100 only, its cost above the
    full plan's by the extra shown), then without A100s (no plan: the uncovered demand named)."""
    import json

    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["node_pools"]["a100_nodes"]["node_count"] = 20
    path = tmp_path / "example-more-a100.yaml"  # the example names no other file
    path.write_text(yaml.safe_dump(doc))
    assert main(["compare", str(path), "--fallbacks", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["fallbacks"]
    assert [r["without"] for r in rows] == ["(nothing)", "h100_80gb", "a100_80gb"]
    full, no_h100, no_a100 = rows
    inst = instance_from_dict(doc, EXAMPLE.parent)
    assert no_h100["cost_usd_per_hour"] == pytest.approx(
        pdopt.solve(inst.without_gpu_types(["h100_80gb"])).objective_usd_per_hour)
    assert no_h100["extra_usd_per_hour"] == pytest.approx(no_h100["cost_usd_per_hour"] - full["cost_usd_per_hour"])
    assert no_h100["gpu_types_used"] == "a100_80gb"
    assert no_a100["cost_usd_per_hour"] is None and "of" in no_a100["reason"]

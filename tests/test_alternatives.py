"""``plan --alternatives K``: the K cheapest plans that differ in the set of (GPU type, shape) they use.

The known answers come from the exhaustive enumerator of tests/test_bruteforce.py (no PuLP, no
``pdopt.optimize``): every vector of instance counts is tried, each feasible one gives its configuration (the
(model, role, GPU type, GPUs per instance, variant) it places an instance of) and its cost; cost(C) is the least
over the vectors of configuration C; the alternatives are the C with no strict subset C' such that cost(C') <=
cost(C), ranked by cost, then fewer keys, then the sorted keys (docs/alternatives.md). The generated instances'
numbers are dyadic, so equal costs are exact ties and the tie rule is exercised.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

import pdopt
from pdopt.cli import main
from pdopt.io import instance_from_dict, load_instance
from pdopt.optimize.alternatives import alternatives, configuration, exclude
from pdopt.optimize.build import build_problem
from pdopt.optimize.model_data import build_model_data
from pdopt.perf.capacity import capacity_table
from pdopt.verifier import verify
from tests.conftest import ROOT
from tests.test_bruteforce import all_vectors, enumerate_plans, evaluate, tiny_instances

Key = tuple[str, str, str, int, str]


def by_configuration(doc: dict[str, Any]) -> dict[frozenset[Key], float]:
    """Least cost per configuration over every feasible vector of instance counts."""
    inst = instance_from_dict(doc)
    v = all_vectors(inst)
    shape_key = {a.shape: (a.model, a.role, a.gpu_type, a.gpus, a.variant)
                 for arcs in v.arcs.values() for a in arcs}
    out: dict[frozenset[Key], float] = {}
    for i in np.flatnonzero(v.ok):
        config = frozenset(shape_key[s] for (s, _), c in v.counts(int(i)).items() if c)
        out[config] = min(out.get(config, np.inf), float(v.cost[i]))
    return out


def expected_alternatives(doc: dict[str, Any], k: int) -> list[tuple[float, frozenset[Key]]]:
    """The definition applied to the enumeration: minimal configurations, ranked, the first k."""
    costs = by_configuration(doc)
    minimal = [(c, cfg) for cfg, c in costs.items()
               if not any(other < cfg and c2 <= c + 1e-9 for other, c2 in costs.items())]
    minimal.sort(key=lambda t: (round(t[0], 9), len(t[1]), sorted(t[1])))
    return minimal[:k]


def _found(doc: dict[str, Any], k: int) -> list[tuple[float, frozenset[Key]]]:
    inst = instance_from_dict(doc)
    alts = alternatives(inst, k)
    assert alts.ties_complete
    en = enumerate_plans(inst)
    for a in alts.alternatives:
        assert verify(inst, a.plan.to_dict()) == [], a.rank
        cost, problems = evaluate(inst, en, a.plan)
        assert problems == [], a.rank
        assert cost == pytest.approx(a.cost_usd_per_hour, rel=1e-9)
        assert configuration(a.plan) == a.configuration
    return [(a.cost_usd_per_hour, frozenset((c.model, c.role, c.gpu_type, c.gpus_per_instance, c.variant)
                                            for c in a.configuration)) for a in alts.alternatives]


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=tiny_instances())
def test_three_alternatives_match_the_enumeration(doc: dict[str, Any]) -> None:
    want = expected_alternatives(doc, 3)
    assume(len(want) >= 2)  # instances with no plan or one configuration rank nothing (the tests below cover them)
    got = _found(doc, 3)
    assert [cfg for _, cfg in got] == [cfg for _, cfg in want]
    assert [c for c, _ in got] == pytest.approx([c for c, _ in want], rel=1e-9)


def test_hand_derived_alternatives_of_the_two_model_instance() -> None:
    """instances/tiny/mixed-two-models-cap.yaml's description lists every choice of the two fast GPUs: 16.00
    ({beta decode, alpha prefill} fast), 18.00 ({beta decode, alpha decode}), 20.00 twice ({alpha prefill, alpha
    decode}; beta decode alone). The two at 20.00 have 4 keys each; the sorted keys put 'alpha decode fast' first."""
    inst = load_instance(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
    alts = alternatives(inst, 4)
    assert [a.cost_usd_per_hour for a in alts.alternatives] == [16.0, 18.0, 20.0, 20.0]
    fast = [sorted(f"{k.model} {k.role}" for k in a.configuration if k.gpu_type == "fast") for a in alts.alternatives]
    assert fast == [["alpha prefill", "beta decode"], ["alpha decode", "beta decode"],
                    ["alpha decode", "alpha prefill"], ["beta decode"]]
    assert [len(a.configuration) for a in alts.alternatives] == [4, 4, 4, 4]
    doc = yaml.safe_load((ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml").read_text())
    assert [cfg for _, cfg in expected_alternatives(doc, 4)] == [
        frozenset((c.model, c.role, c.gpu_type, c.gpus_per_instance, c.variant) for c in a.configuration)
        for a in alts.alternatives]


def test_equal_cost_tie_takes_fewer_shapes_first() -> None:
    """tp3-packing: two configurations cost 48.00 (TP3 prefill with TP2+TP3 decode, and TP2+TP3 prefill with TP3
    decode), both of three keys: the sorted keys decide ('llm decode g x2' before 'llm decode g x3')."""
    inst = load_instance(ROOT / "instances" / "tiny" / "tp3-packing.yaml")
    alts = alternatives(inst, 3)
    doc = yaml.safe_load((ROOT / "instances" / "tiny" / "tp3-packing.yaml").read_text())
    want = expected_alternatives(doc, 3)
    assert [a.cost_usd_per_hour for a in alts.alternatives] == pytest.approx([c for c, _ in want])
    assert [frozenset((c.model, c.role, c.gpu_type, c.gpus_per_instance, c.variant) for c in a.configuration)
            for a in alts.alternatives] == [cfg for _, cfg in want]
    assert alts.alternatives[0].cost_usd_per_hour == alts.alternatives[1].cost_usd_per_hour


def test_one_configuration_only_is_exhausted() -> None:
    """The paper's instance has one shape per role: one alternative exists; the CLI says so and exits 0."""
    alts = alternatives(load_instance(ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"), 3)
    assert len(alts.alternatives) == 1 and alts.exhausted
    assert alts.alternatives[0].cost_usd_per_hour == pytest.approx(224.0)


def test_cli_json_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io
    import json

    path = str(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
    assert main(["plan", path, "--alternatives", "2", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [a["rank"] for a in doc["alternatives"]] == [1, 2]
    assert [a["cost_usd_per_hour"] for a in doc["alternatives"]] == [16.0, 18.0]
    assert doc["alternatives"][1]["extra_usd_per_hour"] == 2.0
    assert {(k["model"], k["role"], k["gpu_type"]) for k in doc["alternatives"][1]["removed"]} == {
        ("alpha", "prefill", "fast"), ("alpha", "decode", "slow")}
    inst = load_instance(path)
    for a in doc["alternatives"]:
        assert verify(inst, a["plan"]) == []
    assert main(["plan", path, "--alternatives", "2", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    for rank, total in ((1, 16.0), (2, 18.0)):
        mine = [r for r in rows if r["rank"] == str(rank)]
        assert sum(float(r["cost_usd_per_hour"]) for r in mine) == pytest.approx(total)
        assert {float(r["plan_cost_usd_per_hour"]) for r in mine} == {total}


def test_cli_refusals_and_infeasible(capsys: pytest.CaptureFixture[str]) -> None:
    tiny = ROOT / "instances" / "tiny"
    with pytest.raises(SystemExit) as exc:  # argparse's refusal: exit 2 with the usage
        main(["plan", str(tiny / "mixed-two-models-cap.yaml"), "--alternatives", "0"])
    assert exc.value.code == 2
    assert main(["plan", str(tiny / "mixed-two-models-cap.yaml"), "--alternatives", "2", "--maximize-scale"]) == 2
    assert "--maximize-scale" in capsys.readouterr().err
    assert main(["plan", str(tiny / "two-periods.yaml"), "--alternatives", "2"]) == 2
    assert "horizon" in capsys.readouterr().err
    assert main(["plan", str(tiny / "infeasible-gpu-cap.yaml"), "--alternatives", "2", "--format", "json"]) == 3
    assert "no feasible plan" in capsys.readouterr().err


def test_spec_code_and_golden_lp() -> None:
    """formulations/alternatives.yaml points at the functions that build its families; the LP with the
    cheapest configuration of mixed-two-models-cap excluded is the recorded one (tests/golden/lp_alternatives/)
    and holds a row of each family."""
    from tests.golden.cases import alternatives_lp_text

    spec = yaml.safe_load((ROOT / "formulations" / "alternatives.yaml").read_text())
    for family in (*spec["constraints"].values(), *spec["variables"].values()):
        module, _, func = family["code"].partition("::")
        assert callable(getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), func))
    text = alternatives_lp_text()
    assert text == (Path(__file__).parent / "golden" / "lp_alternatives" / "excluded.lp").read_text()
    for family in spec["constraints"]:
        assert f"\n{family}__" in text, family
    assert "used__" in text


def test_restriction_keeps_dominated_shapes() -> None:
    """A restricted build has arcs for every usable shape (a dominated one may make a different configuration)."""
    inst = load_instance(ROOT / "instances" / "tiny" / "tp3-packing.yaml")
    table = capacity_table(inst)
    pruned = build_model_data(inst, table)
    full = build_model_data(inst, table, prune=False)
    assert len(full.arcs) >= len(pruned.arcs)
    built = build_problem(full)
    exclude([configuration(pdopt.solve(inst))])(built, full)
    assert built.rows["not_superset"] and built.rows["used_link"]


def test_flags_that_do_not_apply_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = str(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
    assert main(["plan", path, "--alternatives", "2", "--plot", str(tmp_path / "x.png")]) == 2
    assert "--plot draws a plan over a horizon" in capsys.readouterr().err
    assert main(["plan", path, "--alternatives", "2", "--explain-mode"]) == 2
    assert "--explain-mode" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(("how", "code"), [("interrupted", 130), ("unproven", 5)])
def test_a_later_solve_that_stops_keeps_what_was_found_and_says_so(how: str, code: int, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The second solve interrupted (Ctrl-C) or ending with an unproven plan: the first alternative is printed,
    the search's stop is said on standard error, and the exit is 130 or 5, not 0."""
    import dataclasses
    import json

    from pdopt.optimize import pipeline
    from pdopt.plan import SolveStatus

    real = pipeline._solve

    def stopping(instance: Any, options: Any, scale: float, maximize: bool,
                 restrict: Any = None) -> tuple[pdopt.Plan, int | None]:
        plan, n = real(instance, options, scale, maximize, restrict=restrict)
        if restrict is not None:
            report = dataclasses.replace(plan.solver, interrupted=how == "interrupted", message="stopped here")
            plan = plan.replace(solver=report, status=SolveStatus.FEASIBLE)
        return plan, n

    monkeypatch.setattr(pipeline, "_solve", stopping)
    path = str(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
    assert main(["plan", path, "--alternatives", "3", "--format", "json"]) == code
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert [a["cost_usd_per_hour"] for a in doc["alternatives"]] == [16.0]
    assert doc["stopped"] == ("interrupted" if how == "interrupted" else "solver") and not doc["ties_complete"]
    assert "stopped" in out.err and "alternatives asked for exist" not in out.err


def test_too_many_ties_are_said_whatever_the_format(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Five identical slow GPU types: the slow-only configurations tie in numbers beyond the extra solves; the
    output says the rank among the ties is not settled, on standard error, in JSON too."""
    import json

    doc = yaml.safe_load((ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml").read_text())
    for i in range(1, 5):
        doc["gpu_types"][f"slow{i}"] = dict(doc["gpu_types"]["slow"])
        doc["node_pools"][f"slow{i}_nodes"] = {**doc["node_pools"]["slow_nodes"], "gpu_type": f"slow{i}"}
        doc["profiles"] += [{**p, "gpu_type": f"slow{i}"} for p in doc["profiles"] if p["gpu_type"] == "slow"]
    path = tmp_path / "five-slow.json"
    path.write_text(json.dumps(doc))
    assert main(["plan", str(path), "--alternatives", "2", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["ties_complete"] is False
    assert "its rank among them is not settled" in out.err

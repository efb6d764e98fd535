"""The spec in formulations/f1.yaml and the code in pdopt/optimize/ name the same families; each family is one
registered ``add_<family>`` function that the spec points at; every family produces named rows on an instance
that exercises it and has a golden LP (tests/golden/lp/, recorded on purpose by tests/golden/cases.py); the
family tables of docs/formulation.md are what formulations/render.py makes of the spec."""

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from formulations.render import DOCS, SPEC, render
from pdopt.io import instance_from_dict
from pdopt.optimize import families, problem
from pdopt.optimize.build import CONSTRAINT_FAMILIES, VARIABLE_FAMILIES, BuiltProblem, build_problem
from pdopt.optimize.model_data import build_model_data
from pdopt.perf.capacity import capacity_table
from tests.golden.cases import CASES, LP_DIR, MODE_CASES, Case, lp_text

ROOT = Path(__file__).resolve().parents[1]


def _doc() -> dict[str, Any]:
    """One model with pooled prefill; a chain pool (TP 2 and 4 on 8-GPU nodes) and a pattern pool (TP 3 and 2) in
    two domains joined by a link; a cap; a budget; resilience to a domain loss."""
    profiles = []
    for gpu, sizes in (("a", (2, 4)), ("b", (2, 3))):
        for n in sizes:
            point = {"input_tokens": 1000.0, "max_throughput_tok_per_s": 3000.0 * n}
            profiles.append({"model": "m", "role": "prefill", "gpu_type": gpu, "gpus_per_instance": n,
                             "max_throughput_by_input": [point]})
            profiles.append({"model": "m", "role": "decode", "gpu_type": gpu, "gpus_per_instance": n,
                             "tpot_by_batch": [{"batch": 1, "tpot_ms": 20.0}, {"batch": 64, "tpot_ms": 60.0}]})
    return {
        "name": "families",
        "gpu_types": {"a": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 2.0, "max_gpus": 16},
                      "b": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 1.5}},
        "node_pools": {"pa": {"gpu_type": "a", "gpus_per_node": 8, "node_count": 2, "price_usd_per_node_hour": 15.0,
                              "domain": "d0"},
                       "pb": {"gpu_type": "b", "gpus_per_node": 8, "node_count": 3, "domain": "d1"}},
        "network": {"links": [{"a": "d0", "b": "d1", "bandwidth_gbps": 100.0}]},
        "resilience": {"domain_loss_fraction": 0.3},
        "models": {"m": {"kv_bytes_per_token": 1e5, "weights_gb": 10.0}},
        "workloads": {"m": {"demand": {"requests_per_s": 6.0}, "input_tokens_mean": 1000.0,
                            "output_tokens_mean": 100.0, "ttft": {"target_s": 1.0}, "tpot": {"target_ms": 50.0},
                            "queue_model": "ggc"}},
        "profiles": profiles,
        "limits": {"budget_usd_per_hour": 500.0},
    }


def _rows(built: BuiltProblem) -> None:
    for family, names in built.rows.items():
        assert names and all(n.startswith(family + "__") for n in names)
        assert all(built.problem.get_constraint_by_name(n) is not None for n in names)


def test_spec_families_match_code() -> None:
    spec = yaml.safe_load((ROOT / "formulations" / "f1.yaml").read_text())
    assert set(spec["constraints"]) == set(CONSTRAINT_FAMILIES)
    assert set(spec["variables"]) == set(VARIABLE_FAMILIES)


def test_every_family_produces_named_rows() -> None:
    inst = instance_from_dict(_doc())
    data = build_model_data(inst, capacity_table(inst))
    assert {p.packing for p in data.pools.values()} == {"aggregate", "patterns"}
    seen_rows: set[str] = set()
    seen_vars: set[str] = set()
    for mode in ("min_cost", "max_scale", "elastic", "shortfall"):
        built = build_problem(data, mode=mode)  # type: ignore[arg-type]
        _rows(built)
        seen_rows |= set(built.rows)
        seen_vars |= {v.name.split("__")[0] for v in built.problem.variables()}
    tiny = _doc()
    tiny["workloads"]["m"]["demand"] = {"requests_per_s": 1e-4}  # demand_presence: only below 1e-3 req/s
    built = build_problem(build_model_data(instance_from_dict(tiny), capacity_table(instance_from_dict(tiny))))
    _rows(built)
    seen_rows |= set(built.rows)
    modes = yaml.safe_load((ROOT / "instances" / "tiny" / "mixed-modes.yaml").read_text())
    modes["workloads"]["llm"]["spare_instances"] = {"aggregated": 1}  # mode_on and mode_switch: spares only
    inst = instance_from_dict(modes)
    built = build_problem(build_model_data(inst, capacity_table(inst)))
    _rows(built)
    seen_rows |= set(built.rows)
    seen_vars |= {v.name.split("__")[0] for v in built.problem.variables()}
    assert seen_rows == set(CONSTRAINT_FAMILIES)
    assert seen_vars == set(VARIABLE_FAMILIES)


def test_every_registered_family_has_a_golden_case() -> None:
    assert set(CASES) == set(CONSTRAINT_FAMILIES)
    assert {p.stem for p in LP_DIR.glob("*.lp")} == set(CASES) | set(MODE_CASES)


@pytest.mark.parametrize(("name", "case"), [*CASES.items(), *MODE_CASES.items()], ids=lambda x: x
                         if isinstance(x, str) else "")
def test_golden_lp(name: str, case: Case) -> None:
    """The LP built now is the recorded one, small enough to read, and holds a row of its family."""
    text, rows = lp_text(case)
    golden = (LP_DIR / f"{name}.lp").read_text()
    assert sum(len(v) for v in rows.values()) < 40
    if name in CASES:
        assert re.search(rf"^{name}__\S*:", golden, re.M), f"{name}: the golden LP has no row of its family"
        assert rows.get(name), name
    assert text == golden, f"{name}: the LP differs from tests/golden/lp/{name}.lp (record on purpose only)"


def test_mode_goldens_hold_their_variables() -> None:
    assert "scale" in (LP_DIR / "mode_max_scale.lp").read_text()
    assert "shortfall__" in (LP_DIR / "mode_shortfall.lp").read_text()
    elastic = (LP_DIR / "mode_elastic.lp").read_text()
    assert "extra_nodes__" in elastic and "extra_gpus__" in elastic


def test_code_pointers_name_the_registered_functions() -> None:
    """Each family: exactly one add_<family> in families.py, registered, and the spec's code: points at it."""
    spec = yaml.safe_load(SPEC.read_text())
    registered = {f.name: f.add for f in families.FAMILIES}
    for name, entry in spec["constraints"].items():
        path, _, func = entry["code"].partition("::")
        assert path == "pdopt/optimize/families.py" and func == f"add_{name}", name
        assert registered[name] is getattr(families, func), name
    adders = [n for n, f in inspect.getmembers(families, inspect.isfunction)
              if n.startswith("add_") and f.__module__ == families.__name__]
    assert sorted(adders) == sorted(f"add_{n}" for n in CONSTRAINT_FAMILIES)
    for name, entry in spec["variables"].items():
        path, _, func = entry["code"].partition("::")
        assert path == "pdopt/optimize/problem.py" and callable(getattr(problem, func)), name


def test_docs_family_tables_are_generated_from_the_spec() -> None:
    page = DOCS.read_text()
    assert render(page, yaml.safe_load(SPEC.read_text())) == page, "run formulations/render.py"

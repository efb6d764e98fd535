"""The spec in formulations/f1.yaml and the code in pdopt/milp.py name the same families."""

from pathlib import Path

import yaml

from pdopt.capacity import capacity_table
from pdopt.io import load_instance
from pdopt.milp import CONSTRAINT_FAMILIES, VARIABLE_FAMILIES, build_problem
from pdopt.model_data import build_model_data

ROOT = Path(__file__).resolve().parents[1]


def test_spec_families_match_code() -> None:
    spec = yaml.safe_load((ROOT / "formulations" / "f1.yaml").read_text())
    assert set(spec["constraints"]) == set(CONSTRAINT_FAMILIES)
    assert set(spec["variables"]) == set(VARIABLE_FAMILIES)


def test_every_family_produces_named_rows() -> None:
    """An instance with a cap exercises every constraint family; row names start with their family."""
    inst = load_instance(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
    built = build_problem(build_model_data(inst, capacity_table(inst)))
    assert set(built.rows) == set(CONSTRAINT_FAMILIES)
    for family, names in built.rows.items():
        assert names and all(n.startswith(family + "__") for n in names)
        assert all(built.problem.get_constraint_by_name(n) is not None for n in names)
    assert {v.name.split("__")[0] for v in built.problem.variables()} <= set(VARIABLE_FAMILIES)

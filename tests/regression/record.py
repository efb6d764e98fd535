"""Write the regression record: the plan JSON of every bundled instance and of generated fleet-S seeds 0-2.

Run from the repository root, only on purpose (a record changes when a plan is meant to change):

    .venv/bin/python tests/regression/record.py

Each record is ``pdopt plan --format json`` output with the fields that vary from run to run removed
(:data:`RUNTIME_FIELDS`). ``tests/test_regression.py`` re-plans every case and compares status, objective, and
GPUs and nodes per model, role and pool, and the placements where the optimum is unique.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import instance_files

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "plans"
RUNTIME_FIELDS = ("runtime_s",)
"""Keys of ``solver`` that depend on the machine, not on the plan."""
GENERATED = tuple(f"generate:fleet-S:{seed}" for seed in range(3))


def cases() -> list[str]:
    """Every instance file under instances/ (the library's index files excluded, and the fleets whose known answer
    is only ``best_known``: they do not prove in a test's time), then the generated seeds."""
    known = yaml.safe_load((ROOT / "instances" / "known_answers.yaml").read_text())["instances"]
    unproven = {path for path, entries in known.items() if any(e["status"] == "best_known" for e in entries)}
    unproven |= {path for path, entries in known.items() if any("horizon_cost_usd" in e for e in entries)}  # plans
    # over a horizon: their known answers and tests/test_horizon.py hold them
    files = [str(p.relative_to(ROOT / "instances")) for p in instance_files()]
    return [*(f for f in files if f not in unproven), *GENERATED]


def record_name(case: str) -> str:
    """File name of a case's record: its path with '/' and ':' replaced."""
    return case.replace("/", "__").replace(":", "__").removesuffix(".yaml") + ".json"


def strip_runtime(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan without the fields that vary between runs."""
    out = json.loads(json.dumps(plan))
    for key in RUNTIME_FIELDS:
        out.get("solver", {}).pop(key, None)
    return out


def plan_case(case: str) -> dict[str, Any]:
    """The plan JSON of one case, as ``pdopt plan --format json`` prints it."""
    import pdopt
    from pdopt.comparison.generate import FAMILIES, generate

    if case.startswith("generate:"):
        _, family, seed = case.split(":")
        import dataclasses

        doc = generate(dataclasses.replace(FAMILIES[family], seed=int(seed)))
        instance = pdopt.instance_from_dict(doc, source=case)
    else:
        instance = pdopt.load_instance(ROOT / "instances" / case)
    return strip_runtime(pdopt.solve(instance).to_dict())


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for case in cases():
        plan = plan_case(case)
        (OUT / record_name(case)).write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n")
        print(f"{case}: {plan['status']} {plan['objective_usd_per_hour']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

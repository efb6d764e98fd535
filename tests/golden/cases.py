"""Golden LP cases: one per constraint family (and per mode for the mode-only variables), each on an instance
small enough to read (under 40 rows) that emits at least one row of the family.

Record on purpose only (a golden changes when the formulation is meant to change):

    .venv/bin/python tests/golden/cases.py
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
LP_DIR = Path(__file__).resolve().parent / "lp"
TINY = ROOT / "instances" / "tiny"
PAPER = ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"


@dataclass(frozen=True)
class Case:
    """An instance file, changes to its document (top-level key -> nested dict merged in), and a build mode."""

    file: Path
    mode: str = "min_cost"
    patch: tuple[tuple[str, Any], ...] = ()
    cuts: tuple[str, ...] = ()
    """The valid inequalities (cut families) to build with: none except in a cut family's own case, which has
    that family alone, so that each golden shows its family without the other cuts' rows."""
    held_cost: float | None = None
    """The objective's second stage (:mod:`pdopt.optimize.lexicographic`): the cost held at this value (the
    instance's known optimum), the objective fewest GPUs then nodes."""


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in change.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


POOLED = (("workloads", {"dsv31": {"queue_model": "ggc"}}), ("options", {"pooled_max_steps": 4}))
DOMAIN_LOSS = (("resilience", {"domain_loss_fraction": 0.5}),)

CASES: dict[str, Case] = {
    "demand_cover": Case(PAPER),
    "demand_rounding": Case(TINY / "mixed-two-models-cap.yaml", cuts=("demand_rounding",)),
    "role_cost_floor": Case(TINY / "mixed-two-models-cap.yaml", cuts=("role_cost_floor",)),
    "demand_presence": Case(PAPER, patch=(("workloads", {"dsv31": {"demand": {"tokens_per_min": 1.0}}}),)),
    "pool_gpu_capacity": Case(TINY / "whole-node-pricing.yaml"),
    "pattern_cover": Case(TINY / "tp3-packing.yaml"),
    "pattern_node_count": Case(TINY / "tp3-packing.yaml"),
    "gpu_type_availability": Case(TINY / "infeasible-gpu-cap.yaml"),
    "budget": Case(TINY / "infeasible-budget.yaml"),
    "pool_node_limit": Case(TINY / "infeasible-budget.yaml", "elastic"),
    "pooled_count": Case(PAPER, patch=POOLED),
    "pooled_step_order": Case(PAPER, patch=POOLED),
    "pooled_tail_link": Case(PAPER, patch=POOLED),
    "kv_prefill_out": Case(TINY / "network-spine.yaml"),
    "kv_decode_in": Case(TINY / "network-spine.yaml"),
    "kv_flow_total": Case(TINY / "network-spine.yaml"),
    "link_bandwidth": Case(TINY / "network-spine.yaml", "elastic"),
    "domain_loss_cover": Case(TINY / "network-spine.yaml", patch=DOMAIN_LOSS),
    "mode_share_limit": Case(TINY / "mixed-modes.yaml"),
    "mode_switch": Case(TINY / "mixed-modes.yaml",
                        patch=(("workloads", {"llm": {"spare_instances": {"aggregated": 1, "decode": 1}}}),)),
}
"""Constraint family -> the case its golden LP is built from."""

MODE_CASES: dict[str, Case] = {
    "mode_max_scale": Case(TINY / "mixed-two-models-cap.yaml", "max_scale"),
    "mode_shortfall": Case(TINY / "infeasible-budget.yaml", "shortfall"),
    "mode_elastic": Case(TINY / "mixed-two-models-cap.yaml", "elastic"),
    "stage_tie_break": Case(PAPER, held_cost=224.0),  # instances/known_answers.yaml: 224 USD/h
    "mode_max_scale_mixed": Case(TINY / "mixed-modes.yaml", "max_scale",
                                 patch=(("workloads", {"llm": {"spare_instances": {"aggregated": 1}}}),)),
}
"""The modes' own variables (scale, shortfall, extra_*) on small instances."""


def lp_text(case: Case) -> tuple[str, dict[str, list[str]]]:
    """The LP file PuLP writes for the case, and its rows by family."""
    from pdopt.io import instance_from_dict
    from pdopt.optimize.build import build_problem
    from pdopt.optimize.model_data import build_model_data
    from pdopt.perf.capacity import capacity_table

    doc = yaml.safe_load(case.file.read_text())
    for key, change in case.patch:
        doc = _merge(doc, {key: change})
    instance = instance_from_dict(doc, case.file.parent, str(case.file))
    data = build_model_data(instance, capacity_table(instance))
    built = build_problem(data, name=f"golden_{instance.name}", mode=case.mode,  # type: ignore[arg-type]
                          cuts=case.cuts)
    if case.held_cost is not None:
        from pdopt.optimize.lexicographic import hold_cost, objective_step

        hold_cost(built, data, case.held_cost, objective_step(built.problem.objective))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "golden.lp"
        built.problem.writeLP(str(path))
        return path.read_text(), built.rows


HORIZON_DIR = Path(__file__).resolve().parent / "lp_horizon"
TWO_PERIODS = ROOT / "instances" / "tiny" / "two-periods.yaml"
HORIZON_CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "linked": ({"min_uptime_h": 13.0, "lead_time_min": 0.0}, False),
    "static": ({"lead_time_min": 0.0}, True),
    "ramp": ({}, False),
    "purchase": ({}, False),
    "spot_loss": ({}, False),
}
HORIZON_FILES = {"purchase": ROOT / "instances" / "tiny" / "spot-two-periods.yaml",
                 "spot_loss": ROOT / "instances" / "tiny" / "spot-risk-two-periods.yaml"}
"""Horizon cases on another file than two-periods.yaml (purchase options: reserved, on demand, spot)."""
"""Horizon golden LPs (formulations/horizon.yaml): instances/tiny/two-periods.yaml with a change to its horizon, and
whether the fleet is static."""


def horizon_lp_text(name: str) -> str:
    """The LP file PuLP writes for a horizon case."""
    from pdopt.io import instance_from_dict
    from pdopt.optimize.horizon import build_horizon

    change, static = HORIZON_CASES[name]
    file = HORIZON_FILES.get(name, TWO_PERIODS)
    doc = yaml.safe_load(file.read_text())
    doc["horizon"].update(change)
    instance = instance_from_dict(doc, file.parent, str(file))
    assert instance.horizon is not None
    built = build_horizon(instance, instance.horizon, cuts=False, static=static)
    assert not isinstance(built, str)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "golden.lp"
        built[0].writeLP(str(path))
        return path.read_text()


ALTERNATIVES_DIR = Path(__file__).resolve().parent / "lp_alternatives"


def alternatives_lp_text() -> str:
    """The LP of the second alternative of instances/tiny/mixed-two-models-cap.yaml: F1 (unpruned, no cuts) with
    the cheapest plan's configuration excluded (formulations/alternatives.yaml)."""
    import pdopt
    from pdopt.io import load_instance
    from pdopt.optimize.alternatives import configuration, exclude
    from pdopt.optimize.build import build_problem
    from pdopt.optimize.model_data import build_model_data
    from pdopt.perf.capacity import capacity_table

    instance = load_instance(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
    data = build_model_data(instance, capacity_table(instance), prune=False)
    built = build_problem(data, name="golden_alternatives", cuts=False)
    exclude([configuration(pdopt.solve(instance))])(built, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "golden.lp"
        built.problem.writeLP(str(path))
        return path.read_text()


def main() -> int:
    ALTERNATIVES_DIR.mkdir(exist_ok=True)
    (ALTERNATIVES_DIR / "excluded.lp").write_text(alternatives_lp_text())
    print("alternatives excluded")
    HORIZON_DIR.mkdir(exist_ok=True)
    for name in HORIZON_CASES:
        (HORIZON_DIR / f"{name}.lp").write_text(horizon_lp_text(name))
        print(f"horizon {name}")
    LP_DIR.mkdir(exist_ok=True)
    for name, case in {**CASES, **MODE_CASES}.items():
        text, _ = lp_text(case)
        (LP_DIR / f"{name}.lp").write_text(text)
        print(f"{name}: {case.file.name} ({case.mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

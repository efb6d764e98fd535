"""The spec in formulations/f1.yaml and the code in pdopt/milp.py name the same families, and every family
produces named rows on an instance that exercises it."""

from pathlib import Path
from typing import Any

import yaml

from pdopt.capacity import capacity_table
from pdopt.io import instance_from_dict
from pdopt.optimize.build import CONSTRAINT_FAMILIES, VARIABLE_FAMILIES, BuiltProblem, build_problem
from pdopt.optimize.model_data import build_model_data

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
    assert seen_rows == set(CONSTRAINT_FAMILIES)
    assert seen_vars == set(VARIABLE_FAMILIES)

"""A 100-instance plan for simulator benchmarks: 4 models x (12 prefill + 13 decode) 1-GPU instances.

Built directly (no solve), with per-instance capacities from pdopt.perf.capacity so the plan is consistent with the
instance; demand is set so prefill runs at about 80% of its SLO capacity.
"""

from typing import Any

import pdopt
from pdopt.instance import Instance
from pdopt.io import instance_from_dict

N_MODELS, N_PREFILL, N_DECODE = 4, 12, 13


def fleet100() -> tuple[Instance, dict[str, Any]]:
    """The instance and its plan (JSON form)."""
    models = {f"m{i}": {"kv_bytes_per_token": 1.0e5, "weights_gb": 16.0} for i in range(N_MODELS)}
    profiles: list[dict[str, Any]] = []
    for m in models:
        profiles.append({"model": m, "role": "prefill", "gpu_type": "gpu", "gpus_per_instance": 1,
                         "max_throughput_by_input": [{"input_tokens": 1000.0, "max_throughput_tok_per_s": 10000.0}]})
        profiles.append({"model": m, "role": "decode", "gpu_type": "gpu", "gpus_per_instance": 1,
                         "tpot_by_batch": [{"batch": b, "tpot_ms": 20.0 + 0.25 * b} for b in (1, 16, 32, 64, 128)]})
    doc = {"name": "fleet100", "gpu_types": {"gpu": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 2.0}},
           "node_pools": {"pool": {"gpu_type": "gpu", "gpus_per_node": 8, "node_count": 13}},
           "models": models, "workloads": {}, "profiles": profiles}
    for m in models:
        doc["workloads"][m] = {"demand": {"requests_per_s": 1.0}, "input_tokens_mean": 1000.0,
                               "output_tokens_mean": 100.0, "ttft": {"target_s": 1.0}, "tpot": {"target_ms": 40.0}}
    inst = instance_from_dict(doc)
    table = pdopt.capacity_table(inst)
    cap = {(s.model, s.role): s.capacity_rps for s in table.shapes}
    rate = 0.8 * N_PREFILL * cap[("m0", "prefill")]
    for m in models:
        doc["workloads"][m]["demand"] = {"requests_per_s": rate}
    inst = instance_from_dict(doc)
    placements = [{"model": m, "role": r, "gpu_type": "gpu", "gpus_per_instance": 1, "pool": "pool",
                   "count": n, "capacity_rps": cap[(m, r)], "cost_usd_per_hour": 0.0}
                  for m in models for r, n in (("prefill", N_PREFILL), ("decode", N_DECODE))]
    return inst, {"instance": "fleet100", "status": "feasible", "scale_demand": 1.0, "placements": placements}

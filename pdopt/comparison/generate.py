"""Scaling families of synthetic instances, for benchmarks that grow an instance one axis at a time.

GPU types come from the public spec and price tables in ``../shared/data/gpu-prices-specs/`` (dense BF16
TFLOP/s, HBM bandwidth and size, an on-demand price per GPU-hour). Performance is synthetic but shaped like
measurements (Splitwise's Llama2-70B on A100/H100 is the anchor):

- prefill max throughput X = 0.4 x TFLOP/s x TP^0.9 / (2 x parameters) tok/s (compute-bound, 40% of peak,
  sub-linear in TP); Llama2-70B on H100 TP 4 gives 9,800 tok/s against 10,200 measured at 2,048 tokens;
- decode TPOT(B) = (8 ms + weights / (0.7 x HBM bandwidth x TP^0.85)) x (1 + B/64) (memory-bound, growing with
  the batch); measured batches 1, 8, 16, 32, 64, 128.

Only shapes whose weights fit in 90% of the instance's memory are benchmarked. Demand is set per model so that
the GPUs of the cheapest shapes (by cost per req/s) fill ``demand_level`` of the inventory; the optimum then uses
about that share, and the generator's parameters are recorded in the instance (``generated_by``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# name: (memory GB, dense BF16 TFLOP/s, HBM GB/s, USD per GPU-hour); gpu_specs.csv and gpu_prices.csv rows
GPU_CATALOG: dict[str, tuple[float, float, float, float]] = {
    "a100_80gb": (80.0, 312.0, 2039.0, 2.21),   # CoreWeave per-GPU list price
    "h100_80gb": (80.0, 989.0, 3350.0, 4.25),   # CoreWeave
    "h200_141gb": (141.0, 989.0, 4800.0, 3.50),  # Nebius
    "l40s_48gb": (48.0, 362.0, 864.0, 1.5484),  # Nebius
    "b200_180gb": (180.0, 2250.0, 7700.0, 5.50),  # Nebius
    "a10g_24gb": (24.0, 70.0, 600.0, 1.006),     # AWS g5.xlarge
    "l4_24gb": (24.0, 121.0, 300.0, 0.9776),     # AWS g6.2xlarge (specs: aiconfigurator systems/l4.yaml)
    "a100_40gb": (40.0, 312.0, 1555.0, 1.29),    # Lambda gpu_8x_a100 (specs: llm-analysis a100-sxm-40gb.json)
}
"""The first ``gpu_types`` entries are a family's GPU types: new entries go at the end, so that the existing
families generate the same instances."""
MODEL_SIZES_B = (7.0, 8.0, 13.0, 14.0, 32.0, 34.0, 70.0, 72.0)
BATCHES = (1, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class GeneratorParams:
    """One point of a scaling family."""

    family: str = "custom"
    models: int = 4
    gpu_types: int = 3
    tp_sizes: tuple[int, ...] = (1, 2, 4, 8)
    pools: int = 8
    nodes_min: int = 4
    nodes_max: int = 64
    gpus_per_node: int = 8
    domains: int = 2
    demand_level: float = 0.55
    seed: int = 0
    spine_gbps: float | None = None
    """When set: a network, every domain joined to one spine switch by a link of this bandwidth (Gbit/s)."""

    def validate(self) -> None:
        """ValueError naming the parameter at fault."""
        if not 1 <= self.gpu_types <= len(GPU_CATALOG):
            raise ValueError(f"gpu_types: between 1 and {len(GPU_CATALOG)}, got {self.gpu_types}")
        for name in ("models", "pools", "domains", "nodes_min", "gpus_per_node"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.nodes_max < self.nodes_min:
            raise ValueError(f"nodes_max: {self.nodes_max} is below nodes_min {self.nodes_min}")
        if self.pools < self.gpu_types:
            raise ValueError(f"pools: need at least one pool per GPU type ({self.gpu_types}), got {self.pools}")
        if self.spine_gbps is not None and not self.spine_gbps > 0:
            raise ValueError(f"spine_gbps: must be positive, got {self.spine_gbps}")
        if not 0 < self.demand_level < 1:
            raise ValueError(f"demand_level: a fraction in (0, 1), got {self.demand_level}")
        if any(t < 1 or self.gpus_per_node % t for t in self.tp_sizes):
            raise ValueError(f"tp_sizes: each must divide gpus_per_node {self.gpus_per_node}, got {self.tp_sizes}")


FAMILIES: dict[str, GeneratorParams] = {
    "fleet-S": GeneratorParams("fleet-S", models=2, gpu_types=2, pools=4, nodes_min=2, nodes_max=8, domains=2),
    "fleet-M": GeneratorParams("fleet-M", models=4, gpu_types=3, pools=8, nodes_min=4, nodes_max=32, domains=2),
    "fleet-L": GeneratorParams("fleet-L", models=16, gpu_types=6, pools=32, nodes_min=4, nodes_max=64, domains=4),
    "fleet-XL": GeneratorParams("fleet-XL", models=64, gpu_types=8, pools=64, nodes_min=4, nodes_max=64, domains=8,
                                spine_gbps=12800.0),
}


def _prefill_tok_s(tflops: float, params_b: float, tp: int) -> float:
    return float(0.4 * tflops * 1e12 * tp ** 0.9 / (2.0 * params_b * 1e9))


def _tpot_ms(hbm_gbs: float, params_b: float, tp: int, batch: int) -> float:
    return float((8.0 + 1000.0 * 2.0 * params_b / (0.7 * hbm_gbs * tp ** 0.85)) * (1.0 + batch / 64.0))


def _calibrate(doc: dict[str, Any], level: float) -> float:
    """Demand multiplier f such that the LP relaxation's cheapest plan uses about ``level`` of the GPUs.

    Usage grows with f; bisection on f over (0, 0.9 x the LP's largest servable multiplier], 30 steps. Only LP
    relaxations are solved, so generation stays fast; the integer optimum uses a little more (rounding). The LP is
    built once, with the demand times a scale variable held at f (only its bounds change between solves; HiGHS
    keeps the model and its basis: fleet-L 0.9 s, fleet-XL 6 s, against 2.4 s and 31 s when each multiplier
    built and converted its own LP, the same instances byte for byte). The LPs are solved by HiGHS, or by CBC
    where the optional HiGHS is not installed (an LP with several optima may then use a little more or less, and
    the multiplier differ in its last digits: the benchmark's fleets are committed as files, instances/generated/).
    """
    from pdopt.io import instance_from_dict
    from pdopt.optimize.build import build_problem, gpus_expression, nodes_expression, relax
    from pdopt.optimize.model_data import build_model_data
    from pdopt.optimize.solver import LpResolve, SolverOptions, available_solvers, run_solver
    from pdopt.perf.capacity import capacity_table  # local: generate is imported by the CLI at start-up

    inst = instance_from_dict(doc)
    total = sum(p.gpus_per_node * p.node_count for p in inst.node_pools.values())
    table = capacity_table(inst)  # the same at every multiplier: computed once
    lp = SolverOptions(name="highs" if "highs" in available_solvers() else "cbc")

    # One LP for every multiplier: demand = f x the document's demand through the scale variable, held at f (its
    # bounds are all that changes between solves; the model is built and converted once)
    data = build_model_data(inst, table)
    built = build_problem(data, min_scale=0.0, cuts=False)  # the instance's own LP, whatever cuts the planner adds
    scale = built.scale
    assert scale is not None
    # among the LP's cheapest plans, fewer GPUs then nodes, by small weights (the calibration's own rule)
    built.problem.setObjective(built.problem.objective + 1e-6 * gpus_expression(built, data)
                               + 1e-8 * nodes_expression(built))
    relax(built)
    gpus = [(data.shapes[s].gpus_per_instance, v) for (s, _), v in built.x.items()]
    resolve = LpResolve(built.problem) if lp.name == "highs" else None

    def usage(f: float) -> float | None:
        if resolve is not None:
            values = resolve.solve(scale, f)
            if values is None:
                return None
            return sum(n * values[v.name] for n, v in gpus) / total
        scale.lowBound = scale.upBound = f
        sol = run_solver(built.problem, lp)
        if sol.report.objective is None:
            return None
        return sum(n * sol.value(v.name) for n, v in gpus) / total

    data = build_model_data(inst, table)
    top = build_problem(data, mode="max_scale")
    relax(top)
    sol = run_solver(top.problem, lp)
    assert top.scale is not None
    lo, hi = 0.0, 0.9 * sol.value(top.scale.name)
    u_hi = usage(hi)
    if u_hi is None or u_hi <= level:
        return hi
    for _ in range(30):
        mid = (lo + hi) / 2
        u = usage(mid)
        if u is not None and u > level:
            hi = mid
        else:
            lo = mid
    return lo


def generate(params: GeneratorParams) -> dict[str, Any]:
    """An instance document (validate it with :func:`pdopt.io.instance_from_dict`)."""
    params.validate()
    import numpy as np  # deferred: the CLI reads FAMILIES at start-up

    rng = np.random.default_rng(params.seed)
    types = list(GPU_CATALOG)[: params.gpu_types]
    gpu_types = {g: {"memory_gb": GPU_CATALOG[g][0], "price_usd_per_gpu_hour": GPU_CATALOG[g][3]} for g in types}
    pools: dict[str, Any] = {}
    for i in range(params.pools):
        g = types[i % len(types)]
        pool: dict[str, Any] = {"gpu_type": g, "gpus_per_node": params.gpus_per_node,
                                "node_count": int(rng.integers(params.nodes_min, params.nodes_max + 1)),
                                "domain": f"d{i % params.domains}"}
        if i % 2 == 0:  # half the pools rent whole nodes at a pool-specific price
            pool["price_usd_per_node_hour"] = round(float(GPU_CATALOG[g][3] * params.gpus_per_node
                                                          * rng.uniform(0.85, 1.1)), 4)
        pools[f"p{i:02d}_{g}"] = pool
    models: dict[str, Any] = {}
    workloads: dict[str, Any] = {}
    profiles: list[dict[str, Any]] = []
    weights = rng.dirichlet(np.ones(params.models))
    gpus_per_rps: list[float] = []
    for j in range(params.models):
        name = f"m{j:02d}"
        size = float(rng.choice(MODEL_SIZES_B))
        l_in, l_out = float(rng.integers(512, 4097)), float(rng.integers(64, 513))
        models[name] = {"weights_gb": 2.0 * size, "kv_bytes_per_token": float(2 * 80 * 8 * 128 * 2 * size / 70.0)}
        shapes = [(g, tp) for g in types for tp in params.tp_sizes
                  if 2.0 * size < 0.9 * GPU_CATALOG[g][0] * tp]
        if not shapes:
            shapes = [(types[0], max(params.tp_sizes))]
        best_tpot = min(_tpot_ms(GPU_CATALOG[g][2], size, tp, 1) for g, tp in shapes)
        tpot_target = round(best_tpot * float(rng.uniform(2.0, 3.5)), 2)
        best_unloaded = min(l_in / _prefill_tok_s(GPU_CATALOG[g][1], size, tp) for g, tp in shapes)
        ttft_target = round(0.1 + max(3.0 * best_unloaded, float(rng.uniform(0.8, 2.5))), 3)
        workloads[name] = {"demand": {"requests_per_s": 1.0}, "input_tokens_mean": l_in, "output_tokens_mean": l_out,
                           "ttft": {"target_s": ttft_target, "statistic": str(rng.choice(["mean", "p90"]))},
                           "tpot": {"target_ms": tpot_target}, "ttft_overhead_s": 0.1}
        best = {"prefill": np.inf, "decode": np.inf}
        for g, tp in shapes:
            _, tflops, hbm, _ = GPU_CATALOG[g]
            x = _prefill_tok_s(tflops, size, tp)
            point = {"input_tokens": l_in, "max_throughput_tok_per_s": round(x, 1)}
            profiles.append({"model": name, "role": "prefill", "gpu_type": g, "gpus_per_instance": tp,
                             "max_throughput_by_input": [point]})
            curve = [{"batch": b, "tpot_ms": round(_tpot_ms(hbm, size, tp, b), 3)} for b in BATCHES]
            profiles.append({"model": name, "role": "decode", "gpu_type": g, "gpus_per_instance": tp,
                             "tpot_by_batch": curve})
            budget = ttft_target - 0.1
            cap_p = x / l_in - (np.log(10.0) if workloads[name]["ttft"]["statistic"] == "p90" else 1.0) / budget
            feasible_b = [c for c in curve if c["tpot_ms"] <= tpot_target]
            cap_d = feasible_b[-1]["batch"] / (feasible_b[-1]["tpot_ms"] / 1000.0 * l_out) if feasible_b else 0.0
            for role, cap in (("prefill", cap_p), ("decode", cap_d)):
                if cap > 0:
                    best[role] = min(best[role], tp / cap)
        gpus_per_rps.append(best["prefill"] + best["decode"])
    total_gpus = sum(p["gpus_per_node"] * p["node_count"] for p in pools.values())
    for j, name in enumerate(models):
        rate = params.demand_level * total_gpus * float(weights[j]) / gpus_per_rps[j]
        workloads[name]["demand"] = {"requests_per_s": rate}
    doc: dict[str, Any] = {"name": "calibrating", "gpu_types": gpu_types, "node_pools": pools, "models": models,
                           "workloads": workloads, "profiles": profiles}
    if params.spine_gbps is not None:
        doc["network"] = {"switches": ["spine"], "links": [
            {"a": f"d{i}", "b": "spine", "bandwidth_gbps": params.spine_gbps}
            for i in range(min(params.domains, params.pools))]}
    factor = _calibrate(doc, params.demand_level)
    for name in models:
        rate = workloads[name]["demand"]["requests_per_s"] * factor
        workloads[name]["demand"] = {"requests_per_s": round(float(rate), 4)}
    record: dict[str, Any] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()
                              if v is not None}
    out = {
        "name": f"{params.family.lower()}-s{params.seed}",
        "description": f"Synthetic instance generated by `pdopt generate` (family {params.family}); performance "
                       "curves are synthetic, shaped like measurements (see pdopt/generate.py); GPU prices and "
                       "specs from ../shared/data/gpu-prices-specs/.",
        "generated_by": record,
        "gpu_types": gpu_types,
        "node_pools": pools,
        "models": models,
        "workloads": workloads,
        "profiles": profiles,
    }
    if "network" in doc:
        out["network"] = doc["network"]
    return out

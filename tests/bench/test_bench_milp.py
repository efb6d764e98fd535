"""MILP build and solve times over the generator's scaling families (pytest-benchmark).

In the test suite benchmarks are disabled and only the smallest family runs, once, as a smoke check. To measure
all families (results in docs/benchmarks.md):

    PDOPT_BENCH_FAMILIES=fleet-S,fleet-M,fleet-L PDOPT_BENCH_TIME_LIMIT=60 \\
        .venv/bin/pytest tests/bench/test_bench_milp.py --benchmark-enable --benchmark-json=bench.json
"""

import dataclasses
import os
from typing import Any

import pytest

from pdopt import solve
from pdopt.comparison.generate import FAMILIES, GeneratorParams, generate
from pdopt.io import instance_from_dict
from pdopt.optimize.build import build_problem
from pdopt.optimize.model_data import build_model_data
from pdopt.optimize.solver import SolverOptions, available_solvers
from pdopt.perf.capacity import capacity_table

SELECTED = os.environ.get("PDOPT_BENCH_FAMILIES", "fleet-S").split(",")
TIME_LIMIT = float(os.environ.get("PDOPT_BENCH_TIME_LIMIT", "60"))
SPINE = os.environ.get("PDOPT_BENCH_SPINE_GBPS")
"""When set, the families get a spine network at this bandwidth (Gbit/s)."""


def _family(name: str) -> GeneratorParams:
    params = FAMILIES[name]
    return dataclasses.replace(params, spine_gbps=float(SPINE)) if SPINE else params
SOLVERS = [s for s in ("cbc", "highs") if s in available_solvers()]


@pytest.mark.parametrize("family", SELECTED)
def test_build(benchmark: Any, family: str) -> None:
    inst = instance_from_dict(generate(_family(family)))
    data = build_model_data(inst, capacity_table(inst))
    built = benchmark.pedantic(build_problem, args=(data,), rounds=3, iterations=1)
    benchmark.extra_info.update(variables=len(built.problem.variables()), rows=built.problem.numConstraints(),
                                arcs=len(data.arcs), shapes=len(data.shapes))
    assert built.rows["demand_cover"]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("family", SELECTED)
def test_solve(benchmark: Any, family: str, solver: str) -> None:
    inst = instance_from_dict(generate(_family(family)))
    opts = SolverOptions(name=solver, time_limit_s=TIME_LIMIT, threads=2)
    plan = benchmark.pedantic(solve, args=(inst, opts), rounds=1, iterations=1)
    assert plan.has_plan
    gpus = sum(p.gpus_per_node * p.node_count for p in inst.node_pools.values())
    benchmark.extra_info.update(
        status=plan.status.value, objective=plan.objective_usd_per_hour, gap=plan.solver.gap,
        bound=plan.solver.bound, root_lp_bound=plan.solver.root_lp_bound,
        greedy_start=plan.solver.heuristic_usd_per_hour, solver_runtime_s=plan.solver.runtime_s,
        gpu_share=sum(u.gpus_used for u in plan.pools.values()) / gpus,
        models=len(inst.models), gpu_types=len(inst.gpu_types), pools=len(inst.node_pools))

"""Simulator throughput (simulated requests per second of wall time) on a 100-instance plan.

In the test suite benchmarks are disabled (each case runs once, as a smoke check). To measure:

    PDOPT_BENCH_REQUESTS=1000000 .venv/bin/pytest tests/bench/test_bench_sim.py --benchmark-enable

The figure reached is recorded in docs/simulator.md.
"""

import os
from typing import Any

from pdopt.plan import Plan
from pdopt.sim import SimOptions, simulate
from tests.bench.fleet100 import fleet100

REQUESTS = int(os.environ.get("PDOPT_BENCH_REQUESTS", "20000"))


def test_simulate_fleet100(benchmark: Any) -> None:
    inst, plan = fleet100()
    args = (inst, Plan.from_dict(plan), SimOptions(requests=REQUESTS))
    result = benchmark.pedantic(simulate, args=args, rounds=1, iterations=1)
    assert result.requests_simulated == REQUESTS
    assert len(result.instances) == 100
    benchmark.extra_info["requests"] = REQUESTS
    benchmark.extra_info["requests_per_s"] = REQUESTS / result.wall_s

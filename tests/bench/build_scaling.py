"""Build time of the MILP per arc, from 16 to 64 models (fleet-L's other parameters, seed 0): best of 5 CPU
seconds (``time.process_time``) of ``build_problem`` alone, model data built beforehand.

    .venv/bin/python tests/bench/build_scaling.py [--spine=GBPS] [MODELS ...]

Prints a Markdown table (docs/benchmarks.md, "Building is linear in the arcs"). Runs against older checkouts
too (it falls back to their module names), so that two versions can be measured side by side.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any


def _modules() -> tuple[Any, Any]:
    try:
        from pdopt.optimize import build, model_data
    except ImportError:  # an older layout
        from pdopt import milp as build  # type: ignore[no-redef]
        from pdopt import model_data  # type: ignore[no-redef]
    return build, model_data


def measure(models: int, repeats: int = 5, spine_gbps: float | None = None) -> tuple[int, int, float]:
    """(arcs, rows, best CPU seconds of one build) for a fleet-L-like instance with ``models`` models (and a spine
    network at ``spine_gbps`` when given)."""
    from pdopt.comparison.generate import FAMILIES, generate
    from pdopt.io import instance_from_dict
    from pdopt.perf.capacity import capacity_table

    build, model_data = _modules()
    inst = instance_from_dict(generate(dataclasses.replace(FAMILIES["fleet-L"], models=models, seed=0,
                                                                 spine_gbps=spine_gbps)))
    data = model_data.build_model_data(inst, capacity_table(inst))
    best = float("inf")
    rows = 0
    for _ in range(repeats):
        start = time.process_time()
        built = build.build_problem(data)
        best = min(best, time.process_time() - start)
        rows = built.problem.numConstraints()
    return len(data.arcs), rows, best


def main(argv: list[str]) -> int:
    spine = None
    if argv and argv[0].startswith("--spine="):
        spine = float(argv.pop(0).split("=", 1)[1])
    sizes = [int(a) for a in argv] or [16, 32, 64]
    print("| models | network | arcs | rows | build CPU s (best of 5) | CPU us per arc |")
    print("|---|---|---|---|---|---|")
    for m in sizes:
        arcs, rows, cpu = measure(m, spine_gbps=spine)
        net = "none" if spine is None else f"spine {spine:g} Gbit/s"
        print(f"| {m} | {net} | {arcs} | {rows} | {cpu:.3f} | {1e6 * cpu / arcs:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

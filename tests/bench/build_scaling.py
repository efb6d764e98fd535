"""Build time of the MILP per arc, from 16 to 64 models (fleet-L's other parameters, seed 0): best of 5 CPU
seconds (``time.process_time``) of ``build_model_data`` and of ``build_problem`` (model data built beforehand).

    .venv/bin/python tests/bench/build_scaling.py [--spine=GBPS] [MODELS ...]

Prints a Markdown table (docs/benchmarks.md, "Building is linear in the arcs"). Runs against older checkouts
too (it falls back to their module names), so that two versions can be measured side by side.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any


def _modules() -> tuple[Any, Any, Any, Any]:
    """(build, model data, capacity, generate) modules of this checkout, whichever its layout."""
    import importlib

    import pdopt

    if hasattr(pdopt, "_EXPORTS"):
        names = ("pdopt.optimize.build", "pdopt.optimize.model_data", "pdopt.perf.capacity",
                 "pdopt.comparison.generate")
    else:  # the layout before the stages were subpackages
        names = ("pdopt.milp", "pdopt.model_data", "pdopt.capacity", "pdopt.generate")
    mods = [importlib.import_module(n) for n in names]
    return mods[0], mods[1], mods[2], mods[3]


def measure(models: int, repeats: int = 5, spine_gbps: float | None = None) -> tuple[int, int, float, float]:
    """(arcs, rows, best CPU seconds of one build, best CPU seconds of the model data) for a fleet-L-like instance
    with ``models`` models (and a spine network at ``spine_gbps`` when given)."""
    from pdopt.io import instance_from_dict

    build, model_data, capacity, gen = _modules()
    inst = instance_from_dict(gen.generate(dataclasses.replace(gen.FAMILIES["fleet-L"], models=models, seed=0,
                                                               spine_gbps=spine_gbps)))
    table = capacity.capacity_table(inst)
    data_cpu = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        data = model_data.build_model_data(inst, table)
        data_cpu = min(data_cpu, time.process_time() - start)
    best = float("inf")
    rows = 0
    for _ in range(repeats):
        start = time.process_time()
        built = build.build_problem(data)
        best = min(best, time.process_time() - start)
        rows = built.problem.numConstraints()
    return len(data.arcs), rows, best, data_cpu


def main(argv: list[str]) -> int:
    spine = None
    if argv and argv[0].startswith("--spine="):
        spine = float(argv.pop(0).split("=", 1)[1])
    sizes = [int(a) for a in argv] or [16, 32, 64]
    print("| models | network | arcs | rows | model data CPU s | build CPU s | build CPU us per arc |")
    print("|---|---|---|---|---|---|---|")
    for m in sizes:
        arcs, rows, cpu, data_cpu = measure(m, spine_gbps=spine)
        net = "none" if spine is None else f"spine {spine:g} Gbit/s"
        print(f"| {m} | {net} | {arcs} | {rows} | {data_cpu:.3f} | {cpu:.3f} | {1e6 * cpu / arcs:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

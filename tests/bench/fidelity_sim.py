"""The capacity model's predicted mean TTFT and TPOT against the simulator, run with its default options (which
follow the capacity model, pdopt/sim/assumptions.py), on a grid of queue models and loads and on the bundled
instances, and on the Azure traces replayed.

    PYTHONPATH=. python tests/bench/fidelity_sim.py [--requests N] [--seed S] [--quick]

Prints Markdown tables (docs/capacity.md, "The capacity model against the simulator"). A full run takes about
two minutes of one core.

SweepGrid: the paper's instance (instances/paper/dsv31-h200-5mtpm.yaml) under each queue model, planned at demand
multipliers that put the prefill utilisation near 0.5 and near 0.8 (the planner picks the counts; the table
gives the utilisation reached), simulated with N requests (default 200,000) at a fixed seed. The error is
(predicted - simulated) / simulated of the mean TTFT with the simulator's 99% half-width beside it; the mean TTFT
of the simulation includes the wait to join a running decode batch (up to one iteration, ~20 ms), which the
prefill model does not count. Cases:

- mm1: the paper as published (exponential service, Poisson arrivals, random splitting);
- gg1 SCV 0.3 / 2: service SCV stated; Poisson arrivals, so each instance is M/G/1;
- gg1 ca2 2: arrival SCV 2, service 0.5 (renewal gamma arrivals split at random);
- ggc SCV 0.5 / 1 / 2: one pooled queue, service SCV stated.

Bundled instances: every instance of the ``ci`` set with a feasible plan, its plan simulated with defaults
(20,000 requests); per model the predicted and simulated mean TTFT and TPOT. Traces: the two-model example
(examples/llama70b-bloom176b-a100-h100.yaml, planned for Poisson arrivals) replayed with each Azure trace (both
models get the trace, each rescaled in time to its planned rate; lengths rescaled to the workload's means, so
that only the arrival process differs): what a plan made for a Poisson stream meets when real arrivals come.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import pdopt
from pdopt.io import instance_from_dict, load_instance, parse_yaml
from pdopt.io.traces import read_trace
from pdopt.sim.options import SimOptions
from pdopt.sim.run import simulate

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"
MU = 28309 / 6144

GRID: list[tuple[str, dict[str, Any]]] = [
    ("mm1", {}),
    ("gg1 SCV 0.3", {"queue_model": "gg1", "service_scv": 0.3}),
    ("gg1 SCV 2", {"queue_model": "gg1", "service_scv": 2.0}),
    ("gg1 ca2 2, SCV 0.5", {"queue_model": "gg1", "service_scv": 0.5, "arrival_scv": 2.0}),
    ("ggc SCV 0.5", {"queue_model": "ggc", "service_scv": 0.5}),
    ("ggc SCV 1", {"queue_model": "ggc", "service_scv": 1.0}),
    ("ggc SCV 2", {"queue_model": "ggc", "service_scv": 2.0}),
]
SCALES = (0.55, 0.85, 1.0)


def _rel(pred: float | None, sim: float) -> str:
    return "overloaded" if pred is None else f"{(pred - sim) / sim:+.1%}"


def grid(requests: int, seed: int) -> list[list[str]]:
    """One row per (case, demand multiplier)."""
    rows = []
    for label, update in GRID:
        doc = parse_yaml(PAPER.read_text(), str(PAPER))
        doc["workloads"]["dsv31"].update(update)
        inst = instance_from_dict(copy.deepcopy(doc), PAPER.parent)
        for scale in SCALES:
            plan = pdopt.solve(inst, scale_demand=scale)
            n_pre = sum(p.count for p in plan.placements if p.role == "prefill")
            rho = plan.served_demand_rps(inst)["dsv31"] / (n_pre * MU)
            m = simulate(inst, plan, SimOptions(requests=requests, seed=seed)).models["dsv31"]
            pred = m["predicted"]["ttft_s"]
            sim = m["ttft_s"]
            rows.append([label, f"{scale:g}", str(n_pre), f"{rho:.2f}", f"{sim['mean']:.4f}",
                         f"{sim['ci99_half_width'] / sim['mean']:.1%}",
                         "-" if pred is None else f"{pred['mean']:.4f}", _rel(pred and pred["mean"], sim["mean"])])
    return rows


def bundled(requests: int, seed: int) -> list[list[str]]:
    """Predicted against simulated means on each bundled instance of the ci set with a plan."""
    sets = parse_yaml((ROOT / "instances" / "sets.yaml").read_text(), "sets.yaml")
    rows = []
    for rel in (r for r in sets["ci"] if not r.startswith("generated/")):
        inst = load_instance(ROOT / "instances" / rel)
        plan = pdopt.solve(inst)
        if not plan.has_plan:
            continue
        res = simulate(inst, plan, SimOptions(requests=requests, seed=seed))
        for m, mm in res.models.items():
            pred = mm["predicted"]
            for key, unit in (("ttft_s", "s"), ("tpot_ms", "ms")):
                p = pred.get(key)
                rows.append([rel, m, f"{key.split('_')[0].upper()} {unit}", f"{mm[key]['mean']:.4g}",
                             f"{mm[key]['ci99_half_width'] / mm[key]['mean']:.1%}",
                             "overloaded" if p is None else f"{p['mean']:.4g}",
                             _rel(p and p["mean"], mm[key]["mean"])])
    return rows


def traces(requests: int, seed: int) -> list[list[str]]:
    """The Azure instance replayed with each model's trace (time rescaled to the planned rate)."""
    inst = load_instance(ROOT / "instances" / "examples" / "llama70b-bloom176b-a100-h100.yaml")
    plan = pdopt.solve(inst)
    rows = []
    for name in ("azure-conv-2023.csv", "azure-code-2023.csv"):
        trace = read_trace(ROOT / "instances" / "traces" / name)
        res = simulate(inst, plan, SimOptions(requests=requests, seed=seed, lengths="trace_scaled"), trace)
        for model, mm in res.models.items():
            for key, unit in (("ttft_s", "s"), ("tpot_ms", "ms")):
                p = mm["predicted"].get(key)
                rows.append([name, model, f"{key.split('_')[0].upper()} {unit}", f"{mm[key]['mean']:.4g}",
                             f"{mm[key]['p99']:.4g}", "overloaded" if p is None else f"{p['mean']:.4g}",
                             _rel(p and p["mean"], mm[key]["mean"])])
    return rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="20,000 requests per grid case")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.requests
    print(markdown(["case", "demand x", "prefill", "utilisation", "simulated mean TTFT s", "99% half-width",
                    "predicted", "error"], grid(n, args.seed)))
    print()
    print(markdown(["instance", "model", "metric", "simulated mean", "99% half-width", "predicted", "error"],
                   bundled(100_000, args.seed)))
    print()
    print(markdown(["trace", "model", "metric", "simulated mean", "simulated p99", "predicted mean", "error"],
                   traces(20_000, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

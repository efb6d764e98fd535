"""The 24-hour instance simulated over its horizon, seeds 0 to 9 (docs/horizon.md, "Simulation over the horizon").

    PYTHONPATH=. .venv/bin/python tests/bench/horizon_sim.py

For each traffic (each hour's seconds of the trace; generated at each hour's planned rate) and seed: the periods
whose SLO point estimate misses, and those missed beyond their 99% interval; and seed 0's highest p90 TTFT.
"""

from __future__ import annotations

from pathlib import Path

import pdopt
from pdopt.io.traces import read_trace
from pdopt.sim.horizon import simulate_horizon
from pdopt.sim.options import SimOptions

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    inst = pdopt.load_instance(ROOT / "instances" / "library" / "azure-conv-24h.yaml")
    plan = pdopt.plan_horizon(inst)
    trace = read_trace(ROOT / "instances" / "library" / "azure-conv-2023-min128.csv")
    for label, kw, static in (("trace (its lengths, as the CLI)", {"trace": trace, "trace_s_per_hour": 145.0}, False),
                              ("generated", {}, False), ("static, generated", {}, True)):
        misses, refuted, top = [], [], 0.0
        for seed in range(1 if static else 10):
            opts = SimOptions(seed=seed, lengths="trace" if kw else "workload")
            res = simulate_horizon(inst, plan, opts, requests_per_period=2000, static=static,
                                   **kw)  # type: ignore[arg-type]
            models = [p["models"]["llama2_70b"] for p in res.periods]
            misses.append(sum(not m["slo_met"] for m in models))
            refuted.append(sum(not m["slo_not_refuted"] for m in models))
            if seed == 0:
                top = max(m["ttft_s"]["p90"] for m in models)
        print(f"{label}: misses per run {misses}, beyond the 99% interval {sum(refuted)} of {24 * len(refuted)}, "
              f"seed 0 highest p90 TTFT {top:.3f} s")


if __name__ == "__main__":
    main()

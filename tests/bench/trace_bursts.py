"""Burstiness of the Azure LLM inference traces (2023) at several time scales: the table of docs/horizon.md.

    PYTHONPATH=. .venv/bin/python tests/bench/trace_bursts.py

For each trace and window w: the number of whole windows, the mean count, the index of dispersion of counts
I(w) = Var(N_w) / E(N_w), the 50th, 95th and 99th percentiles and the maximum of the window rates N_w / w, and the
inter-arrival SCV within windows (pdopt.io.traces.within_window_scv); the whole-trace inter-arrival SCV above
each. The traces are read from ../shared/data/azure-llm-inference-2023/ (Azure/AzurePublicDataset, CC-BY 4.0).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pdopt.io.traces import arrival_scv, dispersion_index, read_trace, window_counts, within_window_scv

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "azure-llm-inference-2023"
TRACES = {"conversation": "AzureLLMInferenceTrace_conv.csv", "code": "AzureLLMInferenceTrace_code.csv"}
WINDOWS_S = (1.0, 10.0, 60.0, 300.0)


def rows() -> list[list[str]]:
    """One row per trace and window."""
    out = []
    for name, file in TRACES.items():
        trace = read_trace(DATA / file)
        for w in WINDOWS_S:
            counts = window_counts(trace, w)
            rates = counts / w
            out.append([name, f"{len(trace.arrival_s):,}", f"{arrival_scv(trace):.2f}", f"{w:g}", f"{len(counts)}",
                        f"{counts.mean():.2f}", f"{dispersion_index(trace, w):.2f}",
                        *(f"{np.percentile(rates, q):.2f}" for q in (50, 95, 99)), f"{rates.max():.2f}",
                        f"{within_window_scv(trace, w):.2f}"])
    return out


def main() -> int:
    print("| trace | requests | inter-arrival SCV | window s | windows | mean count | I(w) | rate p50 | rate p95 "
          "| rate p99 | rate max | SCV within windows |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows():
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The GPU catalog behind estimates: peak numbers per GPU, each row with its source.

``gpu_specs.csv`` beside this module is a copy of ``data/gpu-prices-specs/gpu_specs.csv`` of pdopt's reference
data: HBM size and bandwidth, dense BF16 and FP8 TFLOP/s, NVLink/PCIe and inter-node bandwidth per GPU, each row
citing where it comes from (NVIDIA's AIConfigurator system files for A100/H100/H200/L40S/L4/B200, cli99/
llm-analysis for A100-40GB and A10G, secondary sources, flagged as such, for H20 and MI300X). A GPU type of an
instance names a row with ``spec.catalog`` and may override any number (:class:`pdopt.instance.GpuSpec`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pdopt.errors import InputError
from pdopt.instance import GpuType


@dataclass(frozen=True)
class ResolvedSpec:
    """The numbers an estimator uses for one GPU type (bytes/s and FLOP/s), and where they come from."""

    name: str
    memory_gb: float
    hbm_bytes_per_s: float
    dense_flops: float
    fp8_flops: float | None
    intra_node_bytes_per_s: float | None
    inter_node_bytes_per_s: float | None
    source: str

    def flops_for(self, bytes_per_parameter: float) -> float:
        """Peak dense FLOP/s at the model's precision: FP8 for weights of at most one byte when the GPU has it,
        else BF16/FP16."""
        if bytes_per_parameter <= 1.0 and self.fp8_flops is not None:
            return self.fp8_flops
        return self.dense_flops


def _number(row: dict[str, str], column: str) -> float | None:
    text = row.get(column, "").strip()
    return float(text) if text else None


DEVIATIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("A100-SXM-40GB", "inter_node_bw_GBps_per_gpu_unidir"): (
        "", "llm-analysis's inter_node 200 is not a per-GPU GB/s figure (its own note doubts it; A100-80GB has 25): "
            "left unknown, state spec.inter_node_gb_per_s"),
    ("A10G", "inter_node_bw_GBps_per_gpu_unidir"): (
        "", "llm-analysis's inter_node 200 is not a per-GPU GB/s figure for a PCIe card: left unknown, state "
            "spec.inter_node_gb_per_s"),
}
"""Where pdopt's catalog departs from the CSV it copies, (GPU, column) -> (value used, why); the reason is added
to the row's notes."""


@cache
def catalog() -> dict[str, dict[str, str]]:
    """The catalog's rows by GPU name, as the CSV gives them, with the :data:`DEVIATIONS` applied."""
    text = resources.files("pdopt.estimate").joinpath("gpu_specs.csv").read_text(encoding="utf-8")
    rows = {row["gpu"]: row for row in csv.DictReader(io.StringIO(text))}
    for (gpu, column), (value, why) in DEVIATIONS.items():
        rows[gpu][column] = value
        rows[gpu]["notes"] = f"{rows[gpu]['notes']}; pdopt: {why}"
    return rows


def resolve_spec(gpu_type_id: str, gpu: GpuType) -> ResolvedSpec:
    """The peak numbers of a GPU type: its catalog row overridden by what ``gpu_types.<id>.spec`` states.

    Raises InputError naming the field when the GPU type has no spec, names a GPU the catalog lacks, or leaves
    HBM bandwidth or dense TFLOP/s unknown.
    """
    at = f"gpu_types.{gpu_type_id}.spec"
    spec = gpu.spec
    if spec is None:
        raise InputError(f"{at}: needed to estimate a profile on GPU type '{gpu_type_id}': name a catalog GPU "
                         f"(one of {', '.join(sorted(catalog()))}) or state hbm_bandwidth_gb_per_s and dense_tflops")
    row: dict[str, str] = {}
    if spec.catalog is not None:
        if spec.catalog not in catalog():
            raise InputError(f"{at}.catalog: '{spec.catalog}' is not in pdopt's GPU catalog; known: "
                             f"{', '.join(sorted(catalog()))}")
        row = catalog()[spec.catalog]

    def pick(stated: float | None, column: str) -> float | None:
        return stated if stated is not None else (_number(row, column) if row else None)

    hbm = pick(spec.hbm_bandwidth_gb_per_s, "hbm_bw_GBps")
    dense = pick(spec.dense_tflops, "bf16_dense_tflops")
    if hbm is None or dense is None:
        missing = "hbm_bandwidth_gb_per_s" if hbm is None else "dense_tflops"
        raise InputError(f"{at}.{missing}: unknown for '{spec.catalog}'; state it")
    fp8 = pick(spec.fp8_dense_tflops, "fp8_dense_tflops")
    intra = pick(spec.intra_node_gb_per_s, "intra_node_bw_GBps_per_gpu_unidir")
    if intra is None and row:
        intra = _number(row, "pcie_bw_GBps_unidir")
    inter = pick(spec.inter_node_gb_per_s, "inter_node_bw_GBps_per_gpu_unidir")
    source = (f"pdopt GPU catalog row {spec.catalog} ({row.get('source', '')}: {row.get('source_detail', '')})"
              if row else "stated in the instance")
    overridden = [n for n, v in (("hbm_bandwidth_gb_per_s", spec.hbm_bandwidth_gb_per_s),
                                 ("dense_tflops", spec.dense_tflops), ("fp8_dense_tflops", spec.fp8_dense_tflops),
                                 ("intra_node_gb_per_s", spec.intra_node_gb_per_s),
                                 ("inter_node_gb_per_s", spec.inter_node_gb_per_s)) if v is not None]
    if row and overridden:
        source += f"; stated: {', '.join(overridden)}"
    return ResolvedSpec(
        name=spec.catalog or gpu_type_id, memory_gb=gpu.memory_gb, hbm_bytes_per_s=hbm * 1e9,
        dense_flops=dense * 1e12, fp8_flops=fp8 * 1e12 if fp8 is not None else None,
        intra_node_bytes_per_s=intra * 1e9 if intra is not None else None,
        inter_node_bytes_per_s=inter * 1e9 if inter is not None else None, source=source)

"""llm-d-benchmark Benchmark Reports (pdopt/io/importers/llmd_report.py) on the project's own example reports kept
in ../shared/data/benchmark-formats/llm-d-benchmark-report/ (llm-d/llm-d-benchmark @ 8bc9f1dd; Apache-2.0;
illustrative values): each version reads as the same fields read by hand with PyYAML, units converted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pdopt.errors import InputError
from pdopt.io.importers.llmd_report import read_llmd_report
from pdopt.io.measurements import read_measurements

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "benchmark-formats" / "llm-d-benchmark-report"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmark-formats is not beside the project")


@pytest.mark.parametrize("version", ["0_2", "0_2_1"])
def test_v02_reads_as_by_hand(version: str) -> None:
    """The stack (one decode engine, 2 replicas of 8 H100) and the aggregate statistics: TTFT in s as written,
    TPOT in s/token x 1000, the achieved request rate, the measured lengths."""
    doc = yaml.safe_load((DATA / f"br_v{version}_example.yaml").read_text())
    agg = doc["results"]["request_performance"]["aggregate"]
    run = read_llmd_report(DATA / f"br_v{version}_example.yaml")
    assert run.stack == (("decode", "NVIDIA-H100-80GB-HBM3", 8, 2),)
    assert run.deployment("h100") == "decode=h100x8:2"
    assert run.ttft_s["p90"] == agg["latency"]["time_to_first_token"]["p90"]  # units s
    assert run.tpot_ms["mean"] == pytest.approx(agg["latency"]["time_per_output_token"]["mean"] * 1000)
    assert run.rate_rps == agg["throughput"]["request_rate"]["mean"]
    assert run.input_tokens_mean == agg["requests"]["input_length"]["mean"]


def test_v01_groups_the_pods_by_role() -> None:
    """v0.1's parallel lists: 1 prefill pod of 1 H100 and 2 decode pods of 8; TTFT in ms x 0.001."""
    doc = yaml.safe_load((DATA / "br_v0_1_example.yaml").read_text())
    run = read_llmd_report(DATA / "br_v0_1_example.yaml")
    assert run.stack == (("prefill", "H100", 1, 1), ("decode", "H100", 8, 2))
    assert run.ttft_s["mean"] == pytest.approx(doc["metrics"]["latency"]["time_to_first_token"]["mean"] / 1000)
    assert run.rate_rps == doc["metrics"]["throughput"]["requests_per_sec"]


def test_fidelity_takes_the_reports_deployment(tmp_path: Path) -> None:
    points = read_measurements([DATA / "br_v0_2_example.yaml"], "qwen")
    assert points[0].deployment.text == "decode=nvidia_h100_80gb_hbm3x8:2"
    points = read_measurements([DATA / "br_v0_2_example.yaml"], "qwen", "decode=h100x8:2")
    assert points[0].deployment.text == "decode=h100x8:2"
    doc = yaml.safe_load((DATA / "br_v0_2_example.yaml").read_text())
    doc["results"]["request_performance"]["aggregate"]["latency"]["time_to_first_token"]["units"] = "minutes"
    bad = tmp_path / "report.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match=r"time_to_first_token\.units: 'minutes' is not one of ms, s"):
        read_llmd_report(bad)

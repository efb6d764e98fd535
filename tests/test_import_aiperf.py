"""NVIDIA AIPerf exports (pdopt/io/importers/aiperf.py) on the real example run kept in
../shared/data/benchmark-formats/aiperf/ (ai-dynamo/aiperf @ 7c31f579, examples/artifacts/run1; Apache-2.0)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from pdopt.errors import InputError
from pdopt.io.importers.aiperf import read_aiperf
from pdopt.io.measurements import read_measurements

ROOT = Path(__file__).resolve().parent.parent
RUN1 = ROOT.parent / "shared" / "data" / "benchmark-formats" / "aiperf"
SUMMARY, RECORDS = RUN1 / "run1_profile_export_aiperf.json", RUN1 / "run1_profile_export.jsonl"

pytestmark = pytest.mark.skipif(not RUN1.is_dir(), reason="../shared/data/benchmark-formats is not beside the project")


def _by_hand() -> dict[str, float]:
    """Plain Python over the JSONL: the 89 records without an error (11 were cancelled, code 499); mean TTFT and
    ITL (ms), the mean lengths, and completed requests over first send to last response."""
    ok = [r["metrics"] for r in map(json.loads, RECORDS.read_text().splitlines()) if not r.get("error")]
    first = min(m["min_request_timestamp"]["value"] for m in ok)
    last = max(m["max_response_timestamp"]["value"] for m in ok)
    return {"n": len(ok), "ttft_ms": statistics.fmean(m["ttft"]["value"] for m in ok),
            "itl_ms": statistics.fmean(m["inter_token_latency"]["value"] for m in ok),
            "isl": statistics.fmean(m["input_sequence_length"]["value"] for m in ok),
            "osl": statistics.fmean(m["output_sequence_length"]["value"] for m in ok),
            "rate": len(ok) / ((last - first) / 1e9)}


@pytest.mark.parametrize("path", [SUMMARY, RECORDS], ids=["summary", "records"])
def test_the_example_run_reads_as_the_hand_calculation(path: Path) -> None:
    """Summary and per-request file give the same run: 89 completed, 11 failed, mean TTFT 2.3432 s, TPOT (ITL)
    27.763 ms, 550 input and 242.97 output tokens, 9.5516 req/s (AIPerf's request_throughput equals the hand
    rate over first send to last response)."""
    hand = _by_hand()
    run = read_aiperf(path)
    assert (run.completed, run.failed) == (89, 11) and hand["n"] == 89
    assert run.ttft_s["mean"] == pytest.approx(hand["ttft_ms"] / 1000, rel=1e-12)
    assert run.tpot_ms["mean"] == pytest.approx(hand["itl_ms"], rel=1e-12)
    assert (run.input_tokens_mean, run.output_tokens_mean) == pytest.approx((hand["isl"], hand["osl"]))
    assert run.rate_rps == pytest.approx(hand["rate"], rel=1e-8)
    assert run.ttft_s["p90"] == pytest.approx(3.796931168, rel=1e-9)


def test_fidelity_reads_an_aiperf_run() -> None:
    points = read_measurements([SUMMARY], "llama2_70b", "prefill=h100_80gbx2:4+decode=a100_80gbx4:2")
    assert len(points) == 1 and points[0].rate_rps == pytest.approx(9.551622, rel=1e-6)
    assert points[0].tpot_ms["mean"] == pytest.approx(27.763065, rel=1e-6)
    with pytest.raises(InputError, match="give --model and --deployment"):
        read_measurements([SUMMARY])


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["records"].pop("ttft"), r"records\.ttft \(or time_to_first_token\) is missing"),
    (lambda d: d["records"]["ttft"].update(unit="s"), r"records\.ttft\.unit is 's', expected 'ms'"),
    (lambda d: d["records"]["inter_token_latency"].update(avg="fast"), "expected a finite number, got 'fast'"),
])
def test_a_broken_summary_names_the_field(tmp_path: Path, change: object, message: str) -> None:
    doc = json.loads(SUMMARY.read_text())
    change(doc)  # type: ignore[operator]
    bad = tmp_path / "profile_export_aiperf.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=message):
        read_aiperf(bad)

"""Noisy measured curves (pdopt/io/importers/monotone.py) and imports whose output pastes into an instance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.errors import InputError
from pdopt.io import instance_from_dict
from pdopt.io.importers import import_csv, import_vllm_bench
from pdopt.io.importers.monotone import envelope, isotonic, monotone_fit

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "instances" / "paper" / "dsv31-h200-5mtpm.yaml"
VLLM = ROOT / "tests" / "data" / "vllm-bench"


def test_pool_adjacent_violators_by_hand() -> None:
    """y = 1, 3, 2, 4: the violating pair (3, 2) pools to 2.5; with weights 1, 1, 3, 1 to (3 + 6) / 4 = 2.25.
    The envelope raises 2 to 3."""
    assert isotonic([1, 3, 2, 4]) == [1, 2.5, 2.5, 4]
    assert isotonic([1, 3, 2, 4], [1, 1, 3, 1]) == [1, 2.25, 2.25, 4]
    assert isotonic([5, 4, 3]) == [4, 4, 4]
    assert envelope([1, 3, 2, 4]) == [1, 3, 3, 4]
    assert isotonic([1, 2, 2, 7]) == [1, 2, 2, 7]  # a non-decreasing curve is left as it is


@pytest.mark.parametrize("how", ["isotonic", "envelope"])
def test_the_fit_of_a_noisy_curve_is_within_the_noise_of_the_truth(how: str) -> None:
    """A true TPOT curve (20 + 0.4 B ms, B = 1..64) measured with uniform noise of +-0.8 ms (seed 7): both fits
    are non-decreasing, within 0.8 ms of the truth at every batch (isotonic regression is non-expansive in the
    sup norm and fixes a monotone curve; the envelope lies between y_i and f_i + eps), and every point they
    moved is listed with its measured and fitted value."""
    rng = np.random.default_rng(7)
    batches = np.arange(1, 65)
    truth = 20.0 + 0.4 * batches
    eps = 0.8
    measured = truth + rng.uniform(-eps, eps, len(batches))
    assert np.any(np.diff(measured) < 0)  # the noise makes the measured curve fall somewhere
    fitted, moved = monotone_fit(batches, measured, how, digits=9)
    assert np.all(np.diff(fitted) >= 0)
    assert np.max(np.abs(np.array(fitted) - truth)) <= eps + 1e-9
    changed = {i for i in range(len(batches)) if abs(fitted[i] - measured[i]) > 1e-9}
    assert {a.index for a in moved} == changed and changed
    for a in moved:
        assert (a.x, a.measured, a.fitted) == (batches[a.index], pytest.approx(measured[a.index]),
                                              pytest.approx(fitted[a.index]))
    if how == "envelope":
        assert all(a.delta > 0 for a in moved)  # never below a measurement


def _falling_csv(tmp_path: Path) -> Path:
    path = tmp_path / "curve.csv"
    path.write_text("model,gpu_type,gpus_per_instance,role,input_tokens,batch,max_throughput_tok_per_s,tpot_ms\n"
                    "m,g,1,decode,,1,,20.0\nm,g,1,decode,,8,,23.0\nm,g,1,decode,,16,,22.0\nm,g,1,decode,,32,,30.0\n")
    return path


def test_a_falling_curve_is_refused_or_fitted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Batch 16 measured below batch 8 (22.0 < 23.0): refused by default, naming the rows; isotonic pools the two
    to 22.5, the envelope raises batch 16 to 23.0; the source says so and the CLI prints it."""
    path = _falling_csv(tmp_path)
    with pytest.raises(InputError, match=r"batch 16 has tpot_ms 22\.0 .* below batch 8's 23\.0"):
        import_csv(path)
    iso = import_csv(path, monotone="isotonic")[0]
    assert [p["tpot_ms"] for p in iso["tpot_by_batch"]] == [20.0, 22.5, 22.5, 30.0]
    assert "isotonic fit moved 2 point(s): batch 8: tpot_ms 23 -> 22.5 (-0.5), batch 16: tpot_ms 22 -> 22.5" \
        in iso["source"]
    env = import_csv(path, monotone="envelope")[0]
    assert [p["tpot_ms"] for p in env["tpot_by_batch"]] == [20.0, 23.0, 23.0, 30.0]
    assert main(["profile", "import", str(path), "--monotone", "envelope"]) == 0
    captured = capsys.readouterr()
    assert "envelope fit moved 1 point(s): batch 16: tpot_ms 22 -> 23 (+1)" in captured.err
    assert yaml.safe_load(captured.out)["profiles"][0]["tpot_by_batch"][2]["tpot_ms"] == 23.0


def test_a_vllm_decode_sweep_that_falls_is_fitted(tmp_path: Path) -> None:
    """The decode sweep of tests/data/vllm-bench with the batch-8 run's TPOT raised above batch 32's: refused,
    or fitted with weights (one run per batch)."""
    files = []
    for name in ("decode-c1.json", "decode-c8.json", "decode-c32.json"):
        doc = json.loads((VLLM / name).read_text())
        if name == "decode-c8.json":
            doc["mean_tpot_ms"] = 40.0
        (tmp_path / name).write_text(json.dumps(doc))
        files.append(tmp_path / name)
    with pytest.raises(InputError, match="must not fall"):
        import_vllm_bench(files, "m", "h100", 1, "decode")
    prof, _ = import_vllm_bench(files, "m", "h100", 1, "decode", monotone="isotonic")
    tpots = [p["tpot_ms"] for p in prof["tpot_by_batch"]]
    assert tpots == sorted(tpots) and "isotonic fit moved" in prof["source"]


def test_a_vllm_prefill_import_pastes_into_the_paper_instance(capsys: pytest.CaptureFixture[str]) -> None:
    """What `profile import --role prefill` prints, pasted as it is under the paper instance's profiles (as a
    variant of its shape), validates with no problem, and its measured_ttft holds the two runs at a configured
    rate (4 and 8 req/s; the unlimited-rate run measures saturation, not a queue at an offered rate)."""
    files = [str(VLLM / f"prefill-{r}.json") for r in ("r4", "r8", "rinf")]
    assert main(["profile", "import", *files, "--model", "dsv31", "--gpu-type", "h200", "--gpus-per-instance",
                 "8", "--role", "prefill", "--variant", "vllm"]) == 0
    printed = capsys.readouterr().out
    assert "# measured_points:" in printed  # the details stay, as comments
    pasted = yaml.safe_load(printed)["profiles"]
    assert [(p["request_rate_rps"], p["ttft_mean_s"]) for p in pasted[0]["measured_ttft"]] == [(4.0, 0.2127),
                                                                                          (8.0, 0.4813)]
    doc = yaml.safe_load(PAPER.read_text())
    doc["profiles"] += pasted
    inst = instance_from_dict(doc, PAPER.parent)
    assert inst.profile("dsv31", "prefill", "h200", 8, "vllm").max_throughput_by_input[0].input_tokens == 2048
    assert pdopt.solve(inst).has_plan


def test_the_tpot_definition_switch(tmp_path: Path) -> None:
    """decode-c1/c8/c32: TPOT from mean_tpot_ms (first token excluded, the default) or mean_itl_ms; with a
    mean_e2el_ms, (e2el - TTFT) / (output - 1) (by hand: (2000 - 20) / (256 - 1) = 7.765 ms at batch 8)."""
    files = [VLLM / f"decode-c{c}.json" for c in (1, 8, 32)]
    docs = [json.loads(f.read_text()) for f in files]
    tpot, _ = import_vllm_bench(files, "m", "h100", 1, "decode")
    itl, _ = import_vllm_bench(files, "m", "h100", 1, "decode", tpot_from="itl")
    assert [p["tpot_ms"] for p in tpot["tpot_by_batch"]] == [d["mean_tpot_ms"] for d in docs]
    assert [p["tpot_ms"] for p in itl["tpot_by_batch"]] == [d["mean_itl_ms"] for d in docs]
    assert "tpot_ms = mean_itl_ms" in itl["source"]
    with pytest.raises(InputError, match="mean_e2el_ms"):
        import_vllm_bench(files, "m", "h100", 1, "decode", tpot_from="e2el")
    with_e2el = []
    for f, d in zip(files, docs, strict=True):
        out = d["total_output_tokens"] / d["completed"]
        d = {**d, "mean_ttft_ms": 20.0, "mean_e2el_ms": 20.0 + 7.0 * (out - 1) if f.name != "decode-c8.json"
             else 2000.0}
        (tmp_path / f.name).write_text(json.dumps(d))
        with_e2el.append(tmp_path / f.name)
    e2el, _ = import_vllm_bench(with_e2el, "m", "h100", 1, "decode", tpot_from="e2el", monotone="envelope")
    out8 = docs[1]["total_output_tokens"] / docs[1]["completed"]
    assert out8 == 256
    assert e2el["tpot_by_batch"][1]["tpot_ms"] == round((2000.0 - 20.0) / 255, 3)

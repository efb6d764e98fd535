"""NVIDIA Dynamo profiler data (pdopt/io/importers/dynamo_profiler.py) on the real H200 TP1 run kept in
../shared/data/benchmark-formats/dynamo-profiler/ (ai-dynamo/dynamo, added in dea0b201; Apache-2.0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pdopt.cli import main
from pdopt.errors import InputError
from pdopt.io.importers import detect_format, import_dynamo_profile

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "benchmark-formats" / "dynamo-profiler"
PREFILL = DATA / "H200_TP1P_TP1D_selected_prefill_interpolation_raw_data.npz"
DECODE = DATA / "H200_TP1P_TP1D_selected_decode_interpolation_raw_data.npz"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmark-formats is not beside the project")


def test_prefill_is_input_length_over_ttft() -> None:
    """By hand from the file's first two points: 100 tokens in 19.525209 ms = 5121.6 tok/s; 1117 tokens in
    38.494131 ms = 29017.4 tok/s (one request at a time, TP1: the file's own per-GPU throughput)."""
    prof = import_dynamo_profile(PREFILL, "llama8b", "h200", 1)
    pts = prof["max_throughput_by_input"]
    assert len(pts) == 17 and pts[0] == {"input_tokens": 100, "max_throughput_tok_per_s": 5121.6}
    assert pts[1] == {"input_tokens": 1117, "max_throughput_tok_per_s": round(1117 / 0.038494131, 1)}
    with pytest.raises(InputError, match="is gpus_per_instance 2 the profiled TP"):
        import_dynamo_profile(PREFILL, "llama8b", "h200", 2)


def test_decode_curves_per_context_length() -> None:
    """Batch = x_kv_usage x 945,029 / context: at context 2997 (input 2747 with 500 output tokens) the batches
    are 1, 49, 97, ..., 289 with TPOT = z_itl; the curve at context 350 falls (46.648 ms at 1049, 40.964 at 1311)
    and is refused, or fitted, naming the points moved."""
    with pytest.raises(InputError, match=r"at y_context_length 350, z_itl 40\.964 ms at batch 1311 is below"):
        import_dynamo_profile(DECODE, "llama8b", "h200", 1)
    prof = import_dynamo_profile(DECODE, "llama8b", "h200", 1, monotone="envelope")
    data = np.load(DECODE, allow_pickle=False)
    k = data["y_context_length"] == 2997
    curve = next(c for c in prof["tpot_by_input"] if c["input_tokens"] == 2747)
    assert [p["batch"] for p in curve["tpot_by_batch"]] == [1, 49, 97, 145, 193, 241, 289]
    assert [p["tpot_ms"] for p in curve["tpot_by_batch"]] == [round(float(v), 3) for v in data["z_itl"][k]]
    assert prof["output_tokens"] == 500 and "envelope fit moved" in prof["source"]
    assert [c["input_tokens"] for c in prof["tpot_by_input"]] == [100, 2747, 5394, 8041, 10688, 13335]


def test_the_json_form_reads_as_the_npz_and_cli_detects_both(capsys: pytest.CaptureFixture[str]) -> None:
    json_decode = DECODE.with_suffix(".json")
    assert detect_format(DECODE) == detect_format(json_decode) == "dynamo_profiler"
    a = import_dynamo_profile(DECODE, "m", "h200", 1, monotone="isotonic")
    b = import_dynamo_profile(json_decode, "m", "h200", 1, monotone="isotonic")
    assert a["tpot_by_input"] == b["tpot_by_input"]
    assert main(["profile", "import", str(PREFILL), str(DECODE), "--model", "llama8b", "--gpu-type", "h200",
                 "--gpus-per-instance", "1", "--monotone", "isotonic"]) == 0
    out = capsys.readouterr()
    assert [p["role"] for p in yaml.safe_load(out.out)["profiles"]] == ["prefill", "decode"]
    assert "isotonic fit moved" in out.err


def test_hostile_profiler_files_are_refused(tmp_path: Path) -> None:
    pickled = tmp_path / "raw_data.npz"
    np.savez(pickled, prefill_isl=np.array([object()], dtype=object))
    with pytest.raises(InputError, match="without pickled objects"):
        import_dynamo_profile(pickled, "m", "g", 1)
    bad = tmp_path / "raw.json"
    doc = json.loads(DECODE.with_suffix(".json").read_text())
    doc["z_itl"]["values"][3] = "fast"
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"z_itl\.values: not a list of numbers"):
        import_dynamo_profile(bad, "m", "g", 1)
    del doc["z_itl"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="neither prefill"):
        import_dynamo_profile(bad, "m", "g", 1)

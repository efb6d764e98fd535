"""The command line: exit codes, error messages that name the field, no tracebacks, nothing overwritten."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pdopt.cli import main
from tests.conftest import EXAMPLE, PAPER


def _write(tmp_path: Path, doc: object, name: str = "inst.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def _paper_doc(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    shutil.copy(PAPER.parent / "decode_tpot_6k.csv", tmp_path / "decode_tpot_6k.csv")
    return yaml.safe_load(PAPER.read_text())  # type: ignore[no-any-return]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    doc["gpu_types"]["h200"]["memroy_gb"] = 141
    code, _, err = _run(["plan", str(_write(tmp_path, doc))], capsys)
    assert code == 2
    assert "gpu_types.h200.memroy_gb: unknown key (not part of the format; check the spelling)\n" in err
    assert "1 problem(s)" in err
    assert "Traceback" not in err


def test_negative_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    doc["workloads"]["dsv31"]["demand"] = {"requests_per_s": -3}
    code, _, err = _run(["validate", str(_write(tmp_path, doc))], capsys)
    assert code == 2
    assert "workloads.dsv31.demand.requests_per_s: Input should be greater than 0 (got -3)" in err


def test_missing_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    doc["profiles"] = [p for p in doc["profiles"] if p["role"] == "prefill"]
    code, _, err = _run(["plan", str(_write(tmp_path, doc))], capsys)
    assert code == 2
    assert "no decode profile for model 'dsv31'" in err


def test_unknown_cross_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    doc["profiles"][0]["gpu_type"] = "h100"
    doc["node_pools"]["h200_nodes"]["gpu_type"] = "b200"
    code, _, err = _run(["validate", str(_write(tmp_path, doc))], capsys)
    assert code == 2
    assert "profiles[0].gpu_type: unknown GPU type 'h100'" in err
    assert "node_pools.h200_nodes.gpu_type: unknown GPU type 'b200'" in err


def test_not_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "name: [unclosed\n  - : :\n")
    code, _, err = _run(["plan", str(path)], capsys)
    assert code == 2 and "not valid YAML or JSON" in err


def test_missing_file_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["plan", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and "cannot read the instance file" in err
    doc = yaml.safe_load(PAPER.read_text())  # its CSV is not beside the copy
    code, _, err = _run(["plan", str(_write(tmp_path, doc))], capsys)
    assert code == 2 and "profiles[1].tpot_csv: " in err and "cannot read the decode curve CSV" in err


def test_instance_larger_than_a_node_needs_spans_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    doc["profiles"][0]["gpus_per_instance"] = 16
    code, _, err = _run(["validate", str(_write(tmp_path, doc))], capsys)
    assert code == 2
    assert "profiles[0].gpus_per_instance: 16 GPUs fit no 'h200' pool" in err and "spans_nodes" in err
    doc["profiles"][0]["spans_nodes"] = True
    assert _run(["validate", str(_write(tmp_path, doc))], capsys)[0] == 0
    doc["profiles"][0]["gpus_per_instance"] = 12  # not a whole number of 8-GPU nodes
    assert _run(["validate", str(_write(tmp_path, doc))], capsys)[0] == 2


def test_no_shape_can_serve_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    doc["workloads"]["dsv31"]["tpot"]["target_ms"] = 10.0
    code, out, _ = _run(["plan", str(_write(tmp_path, doc))], capsys)
    assert code == 3
    assert "model 'dsv31', role decode: no usable shape" in out
    assert "below the TPOT at the smallest benchmarked batch" in out


def test_inventory_too_small_exits_3_with_shortfall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """5 M tok/min needs 4 P + 4 D eight-GPU nodes; with 6 nodes something must be short."""
    doc = _paper_doc(tmp_path)
    doc["node_pools"]["h200_nodes"]["node_count"] = 6
    code, out, err = _run(["plan", str(_write(tmp_path, doc)), "--format", "json"], capsys)
    assert code == 3
    res = json.loads(out)
    assert res["status"] == "infeasible"
    assert "node pool 'h200_nodes' (h200, domain default): 2 more node(s) beyond its 6" in res["reason"]
    assert res["resource_needs"] and "2 more node(s)" in res["resource_needs"][0]
    assert sum(v for roles in res["shortfall_rps"].values() for v in roles.values()) > 0
    assert "no feasible plan" in err


def test_bad_flag_values(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--scale-demand", "-1"], ["--scale-demand", "abc"], ["--time-limit", "0"], ["--gap", "2"]):
        with pytest.raises(SystemExit) as exc:
            main(["plan", str(PAPER), *args])
        assert exc.value.code == 2


def test_input_file_is_not_modified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _paper_doc(tmp_path)
    path = tmp_path / "paper.yaml"
    shutil.copy(PAPER, path)
    before = path.read_bytes()
    assert main(["plan", str(path), "--format", "json"]) == 0
    assert path.read_bytes() == before


def test_schema_and_validate(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["schema"], capsys)
    schema = json.loads(out)
    assert code == 0 and {"gpu_types", "node_pools", "models", "workloads", "profiles"} <= set(schema["properties"])
    code, out, _ = _run(["validate", str(EXAMPLE)], capsys)
    assert code == 0 and "valid instance" in out


def test_verify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["plan", str(PAPER), "--format", "json"], capsys)
    plan = json.loads(out)
    good = _write(tmp_path, json.dumps(plan), "plan.json")
    assert _run(["verify", str(PAPER), "--plan", str(good)], capsys)[0] == 0
    plan["placements"] = [p for p in plan["placements"] if p["role"] != "decode"]
    bad = _write(tmp_path, json.dumps(plan), "bad.json")
    code, out, _ = _run(["verify", str(PAPER), "--plan", str(bad)], capsys)
    assert code == 1 and "demand_cover" in out


def test_installed_script_runs_the_example() -> None:
    """The console script, run as a separate process from the same interpreter's bin directory."""
    script = Path(sys.executable).parent / "pdopt"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "pdopt.cli"]
    res = subprocess.run([*cmd, "plan", str(EXAMPLE)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "status optimal" in res.stdout

"""`pdopt simulate`: JSON contract, determinism, traces, tightness, and bad input (exit 2)."""

import json
from pathlib import Path

import numpy as np
import pytest

from pdopt.cli import main
from pdopt.io.traces import arrival_scv, read_trace
from tests.conftest import EXAMPLE, INSTANCES, PAPER, ROOT

AZURE = INSTANCES / "traces" / "azure-conv-2023.csv"
MOONCAKE = ROOT / "tests" / "data" / "mooncake-small.jsonl"
STATS = {"mean", "p50", "p90", "p95", "p99"}


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["simulate", str(PAPER), "--requests", "5000", "--format", "json"], capsys)
    assert code == 0
    res = json.loads(out)
    assert res["requests_simulated"] == 5000 and res["wall_s"] > 0
    m = res["models"]["dsv31"]
    assert set(m["ttft_s"]) >= STATS and set(m["tpot_ms"]) >= STATS
    assert isinstance(m["slo_met"], bool)
    assert set(m["attainment"]) >= {"ttft", "tpot"}
    assert all(0.0 <= v <= 1.0 for v in m["attainment"].values())
    assert m["predicted"]["ttft_s"]["mean"] > 0


def test_same_seed_same_result(capsys: pytest.CaptureFixture[str]) -> None:
    runs = []
    for _ in range(2):
        _, out, _ = _run(["simulate", str(EXAMPLE), "--requests", "4000", "--seed", "3", "--format", "json",
                          "--prefill-service", "exponential"], capsys)
        res = json.loads(out)
        res.pop("wall_s")
        runs.append(res)
    assert runs[0] == runs[1]
    _, out, _ = _run(["simulate", str(EXAMPLE), "--requests", "4000", "--seed", "4", "--format", "json",
                      "--prefill-service", "exponential"], capsys)
    assert json.loads(out)["models"] != runs[0]["models"]


def test_plan_file_and_tightness(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(["plan", str(PAPER), "--format", "json"], capsys)
    plan = tmp_path / "plan.json"
    plan.write_text(out)
    code, out, _ = _run(["simulate", str(PAPER), "--plan", str(plan), "--requests", "20000", "--tightness",
                         "--format", "json"], capsys)
    assert code == 0
    tight = {t["role"]: t for t in json.loads(out)["tightness"]}
    # 3 decode instances run a batch near 52 at about 24 ms > 20 ms (see tests/test_sim_paper.py)
    assert tight["decode"]["slo_met"] is False
    # 3 prefill instances under the paper's M/M/1 (the default simulation): utilisation 12.52/3/4.607 = 0.906,
    # mean TTFT 0.1 + 1/(4.607 - 4.173) = 2.4 s > 2 s, so the 4 prefill instances are tight too
    assert tight["prefill"]["slo_met"] is False
    assert tight["prefill"]["ttft_s"] > 2.0


def test_plan_of_another_instance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(["plan", str(PAPER), "--format", "json"], capsys)
    plan = tmp_path / "plan.json"
    plan.write_text(out)
    code, _, err = _run(["simulate", str(EXAMPLE), "--plan", str(plan)], capsys)
    assert code == 2 and "plan for instance 'dsv31-h200-5mtpm'" in err and "Traceback" not in err


def test_trace_missing_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.68,374\n")
    code, _, err = _run(["simulate", str(PAPER), "--trace", str(bad)], capsys)
    assert code == 2 and "missing column(s) GeneratedTokens" in err


def test_zero_requests_and_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["simulate", str(PAPER), "--requests", "0"], capsys)
    assert code == 2 and "requests: must be at least 1" in err
    code, _, err = _run(["simulate", str(PAPER), "--trace-rate", "fast"], capsys)
    assert code == 2 and "--trace-rate" in err
    code, _, err = _run(["simulate", str(PAPER), "--lengths", "trace"], capsys)
    assert code == 2 and "needs a trace" in err


def test_azure_trace_replay_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["simulate", str(EXAMPLE), "--trace", str(AZURE), "--requests", "8000", "--format", "json"],
                        capsys)
    assert code == 0
    res = json.loads(out)
    assert res["requests_simulated"] == 8000
    assert res["options"]["lengths"] == "trace"


def test_mooncake_trace_replay(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["simulate", str(PAPER), "--trace", str(MOONCAKE), "--lengths", "fixed", "--format", "json"],
                        capsys)
    assert code == 0
    assert json.loads(out)["requests_simulated"] == 200


def test_trace_readers() -> None:
    az = read_trace(AZURE)
    assert len(az.arrival_s) == 19366
    assert az.arrival_s[0] == 0.0 and np.all(np.diff(az.arrival_s) >= 0)
    assert az.input_tokens.mean() == pytest.approx(1154.7, abs=0.1)
    assert az.rate_rps == pytest.approx(19365 / az.arrival_s[-1])
    assert az.rescaled(10.0).rate_rps == pytest.approx(10.0)
    mc = read_trace(MOONCAKE)
    assert len(mc.arrival_s) == 200 and mc.arrival_s[-1] > 0
    # the file was written from exponential gaps (rate 2/s): inter-arrival SCV near 1 (200 samples: +-0.4)
    assert 0.6 < arrival_scv(mc) < 1.4
    # the Azure conversation trace is burstier than Poisson
    assert arrival_scv(az) > 1.0

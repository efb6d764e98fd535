"""Every CLI flag that takes a value refuses a bad one: exit 2, the flag named, no traceback."""

from __future__ import annotations

import pytest

from pdopt.cli import main
from tests.conftest import PAPER

P = str(PAPER)
CASES = [
    (["plan", P, "--time-limit", "-1"], "--time-limit"), (["plan", P, "--time-limit", "nan"], "--time-limit"),
    (["plan", P, "--gap", "1.5"], "--gap"), (["plan", P, "--gap", "x"], "--gap"),
    (["plan", P, "--solver", "gurobi"], "--solver"), (["plan", P, "--threads", "0"], "--threads"),
    (["plan", P, "--scale-demand", "0"], "--scale-demand"), (["plan", P, "--format", "xml"], "--format"),
    (["simulate", P, "--requests", "0"], "requests"), (["simulate", P, "--requests", "x"], "--requests"),
    (["simulate", P, "--seed", "-1"], "--seed"), (["simulate", P, "--seed", "1e3"], "--seed"),
    (["simulate", P, "--prefill-scv", "-1"], "prefill_scv"), (["simulate", P, "--trace-rate", "-2"], "--trace-rate"),
    (["simulate", P, "--trace-rate", "fast"], "--trace-rate"), (["simulate", P, "--dispatch", "bogus"], "--dispatch"),
    (["simulate", P, "--decode-dispatch", "x"], "--decode-dispatch"),
    (["simulate", P, "--prefill-service", "x"], "--prefill-service"),
    (["simulate", P, "--lengths", "trace"], "lengths"),
    (["simulate", P, "--trace", "/nonexistent.csv"], "/nonexistent.csv"),
    (["simulate", P, "--plan", "/nonexistent.json"], "/nonexistent.json"),
    (["simulate", P, "--plan", P, "--scale-demand", "2"], "--scale-demand"),
    (["compare", P, "--simulate", "-1"], "--simulate"), (["compare", P, "--seed", "-5"], "--seed"),
    (["bench", "--set", "nope", "--out", "/tmp/pdopt-never"], "--set"),
    (["bench", "--time-limit", "0", "--out", "/tmp/pdopt-never"], "--time-limit"),
    (["generate", "--models", "0"], "models"), (["generate", "--tp", "x"], "--tp"),
    (["generate", "--nodes", "a-b"], "--nodes"), (["generate", "--demand-level", "2"], "demand_level"),
    (["generate", "--seed", "-1"], "--seed"), (["generate", "--spine-gbps", "-3"], "spine_gbps"),
    (["generate", "--family", "fleet-XXL"], "--family"),
    (["profile", "fit", P, "--input-tokens", "-5"], "--input-tokens"),
    (["verify", P, "--plan", "/nonexistent.json"], "/nonexistent.json"),
    (["validate", P, "--allow-path"], "--allow-path"),
    (["simulate", P, "--length-tolerance", "-1"], "length_tolerance"),
    (["simulate", P, "--arrivals", "bursty"], "--arrivals"),
    (["fidelity", P, "/nonexistent.csv"], "/nonexistent.csv"),
    (["fidelity", P, P, "--requests", "5"], "--requests"),
    (["fidelity", P, P, "--queue-model", "mm2"], "--queue-model"),
    (["fidelity", P, "/nonexistent.json", "--model", "dsv31", "--deployment", "decode=h200"], "--deployment"),
]


@pytest.mark.parametrize(("argv", "named"), CASES, ids=[" ".join(a[2:] if a[0] != "bench" else a[1:])[:40]
                                                        for a, _ in CASES])
def test_a_bad_flag_value_is_refused(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses before the command runs
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    assert named in err and "Traceback" not in err and "internal error" not in err, err

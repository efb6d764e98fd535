"""Exit codes mean one thing each (docs/cli.md): a crash is not a rejected plan, and a plan file without a plan is
invalid input for ``verify``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdopt.cli import (
    COMMANDS,
    EXIT_INFEASIBLE,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_SOLVER,
    main,
)
from pdopt.plan import Plan, SolverReport, SolveStatus
from tests.conftest import INSTANCES, PAPER


def test_codes_are_distinct() -> None:
    codes = [0, 1, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_INTERNAL, EXIT_SOLVER, EXIT_INTERRUPTED]
    assert codes == [0, 1, 2, 3, 4, 5, 130]


@pytest.mark.parametrize("status", ["infeasible", "no_solution", "error"])
def test_verify_refuses_a_file_without_a_plan(status: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"status": status}))
    assert main(["verify", str(PAPER), "--plan", str(path)]) == EXIT_INPUT
    captured = capsys.readouterr()
    assert f"status '{status}': the file holds no plan" in captured.err
    assert "satisfies" not in captured.out


def test_an_internal_error_is_one_line_and_exit_4(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(COMMANDS, "validate", broken)
    assert main(["validate", str(PAPER)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "pdopt: internal error: ZeroDivisionError: a bug" in err and "Traceback" not in err
    assert main(["--debug", "validate", str(PAPER)]) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_interrupted_is_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, "validate", interrupted)
    assert main(["validate", str(PAPER)]) == EXIT_INTERRUPTED
    assert "pdopt: interrupted" in capsys.readouterr().err


def test_a_solver_error_is_5(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> Plan:
        return Plan("dsv31-h200-5mtpm", SolveStatus.ERROR, reason="the solver ended with status Not Solved",
                    solver=SolverReport("cbc", 0.0, None, None, "Not Solved", status=SolveStatus.ERROR))

    monkeypatch.setattr("pdopt.optimize.pipeline.solve", failing)
    assert main(["plan", str(PAPER)]) == EXIT_SOLVER


def test_infeasible_is_3() -> None:
    assert main(["plan", str(INSTANCES / "tiny" / "infeasible-budget.yaml")]) == EXIT_INFEASIBLE


@pytest.mark.parametrize("value", ["1e308", "0", "-1", "1e-7", "nan", "inf"])
def test_scale_demand_is_a_bounded_multiplier(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(PAPER), "--scale-demand", value])
    assert exc.value.code == 2 and "--scale-demand" in capsys.readouterr().err


def test_interrupted_compare_prints_the_rows_done(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(instance: object) -> list[object]:
        raise KeyboardInterrupt

    monkeypatch.setattr("pdopt.comparison.baselines.all_baselines", interrupted)
    assert main(["compare", str(PAPER), "--format", "json"]) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["partial"] is True and [r["name"] for r in out["rows"]] == ["milp"]
    assert "1 row(s) done" in captured.err


def test_interrupted_bench_writes_what_it_measured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from pdopt.comparison import bench

    real = bench.measure
    calls: list[str] = []

    def second_interrupts(entry: str, *args: object) -> dict[str, object]:
        calls.append(entry)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(entry, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(bench, "measure", second_interrupts)
    out = tmp_path / "report"
    assert main(["bench", "--set", "smoke", "--out", str(out), "--no-baselines"]) == EXIT_INTERRUPTED
    assert (out / "results.csv").read_text().count("\n") == 2  # header and the one instance measured
    assert "covers the 1 instance(s)" in capsys.readouterr().err


def test_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """``pdopt plan ... | head -1``: the reader closes the pipe early; pdopt says nothing and exits 0."""
    import subprocess
    import sys

    example = INSTANCES / "examples" / "llama70b-bloom176b-a100-h100.yaml"
    run = subprocess.run(f"{sys.executable} -m pdopt plan {example} | head -1", shell=True, capture_output=True,
                         text=True, check=False)
    assert run.stdout.startswith("instance ") and "internal error" not in run.stderr and "Traceback" not in run.stderr

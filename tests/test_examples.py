"""Bundled examples by name (instances/examples.yaml): each names a library file that validates, the known ones
plan at their known answers (instances/known_answers.yaml), and ``--example`` works on every command that reads
one instance; a wrong name, both a file and a name, or neither, exit 2 saying what to give."""

from __future__ import annotations

import pytest
import yaml

from pdopt.cli import main
from pdopt.io.library import example, examples, known_answers
from tests.conftest import ROOT

NAMES = list(yaml.safe_load((ROOT / "instances" / "examples.yaml").read_text()))


def test_the_registry_names_library_files() -> None:
    assert list(examples()) == NAMES and "paper" in NAMES
    for name in NAMES:
        assert example(name).is_file()
        assert example(name).is_relative_to((ROOT / "instances").resolve())


@pytest.mark.parametrize("name", NAMES)
def test_every_example_validates(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--example", name]) == 0


@pytest.mark.parametrize("name", ["paper", "llama-bloom", "two-models"])
def test_examples_plan_at_their_known_answers(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    path = examples()[name]["path"]
    known = next(e for e in known_answers()[path] if e["status"] == "optimal" and e.get("scale_demand", 1.0) == 1.0)
    assert main(["plan", "--example", name, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["objective_usd_per_hour"] == pytest.approx(
        known["objective_usd_per_hour"], rel=1e-6)


@pytest.mark.parametrize("argv", [["capacity"], ["simulate", "--requests", "2000"], ["compare"],
                                  ["sweep", "--demand", "1,2"], ["plan", "--alternatives", "2"]])
def test_every_instance_command_takes_an_example(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([argv[0], "--example", "two-models", *argv[1:]]) in (0, 1)
    out = capsys.readouterr().out
    if argv[0] == "capacity":  # the example's shapes
        assert "alpha" in out and "beta" in out
    elif argv[0] != "simulate":  # its known cost, 16 USD/h (simulate prints the plan's SLO statistics)
        assert "16" in out.split() or "16.00" in out.split(), out


def test_examples_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["examples"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in NAMES)


@pytest.mark.parametrize(("argv", "said"), [
    (["plan", "--example", "nope"], "--example: no example 'nope' (examples: paper,"),
    (["plan", "x.yaml", "--example", "paper"], "give an instance file or --example, not both"),
    (["plan"], "plan: name an instance file, or a bundled example with --example NAME"),
    (["capacity"], "capacity: name an instance file"),
])
def test_wrong_use_exits_2_saying_what_to_give(argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert said in capsys.readouterr().err

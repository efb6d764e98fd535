"""Every JSON document pdopt writes starts with ``format_version`` (pdopt.io.files.FORMAT_VERSION); a plan file
of another major version, or with a malformed one, is refused by name (exit 2); one without it is read as 1.x."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdopt.cli import main
from pdopt.io.files import FORMAT_VERSION
from tests.conftest import ROOT

TINY = str(ROOT / "instances" / "tiny" / "mixed-two-models-cap.yaml")
HORIZON = str(ROOT / "instances" / "tiny" / "two-periods.yaml")


@pytest.mark.parametrize("argv", [
    ["plan", TINY], ["plan", TINY, "--alternatives", "2"], ["plan", HORIZON], ["capacity", TINY],
    ["simulate", TINY, "--requests", "2000"], ["compare", TINY], ["compare", TINY, "--fallbacks"],
    ["sweep", TINY, "--demand", "1,2"],
], ids=lambda a: "-".join(x for x in a if not x.startswith("/"))[:40])
def test_json_outputs_carry_the_format_version_first(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--format", "json"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    assert next(iter(doc)) == "format_version" and doc["format_version"] == FORMAT_VERSION


def test_files_written_carry_it_too(tmp_path: Path) -> None:
    assert main(["bench", "--set", "smoke", "--no-baselines", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "machine.json").read_text())["format_version"] == FORMAT_VERSION
    assert main(["sweep", TINY, "--demand", "1,2", "--out", str(tmp_path / "s")]) == 0
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["format_version"] == FORMAT_VERSION


@pytest.mark.parametrize(("version", "said"), [
    ("2.0", "format_version 2.0 is not readable by this pdopt (it reads 1.x)"),
    ("1", "format_version must be a string MAJOR.MINOR"),
    (1.0, "format_version must be a string MAJOR.MINOR such as '1.0', got 1.0"),
    (None, "got null"),
])
def test_a_plan_of_another_version_is_refused_by_name(version: object, said: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", TINY, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    plan["format_version"] = version
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    for argv in (["verify", TINY, "--plan", str(path)], ["simulate", TINY, "--plan", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert said in err and str(path) in err, err
    assert path.read_text() == json.dumps(plan)  # the user's file is untouched


def test_a_plan_without_a_version_and_a_later_minor_are_read(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", TINY, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    for version in (None, "1.7"):
        doc = {k: v for k, v in plan.items() if k != "format_version"}
        if version is not None:
            doc["format_version"] = version
        path = tmp_path / f"plan-{version}.json"
        path.write_text(json.dumps(doc))
        assert main(["verify", TINY, "--plan", str(path)]) == 0

"""Commands shown in README.md and docs/ run and succeed; the formulation page names every family."""

import re
import shlex
from pathlib import Path

import pytest

from pdopt.cli import main
from pdopt.optimize.build import CONSTRAINT_FAMILIES, VARIABLE_FAMILIES

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = [
    (page.name, line.split("$ ", 1)[1])
    for page in PAGES
    for block in re.findall(r"```console\n(.*?)```", page.read_text(), re.S)
    for line in block.splitlines()
    if line.startswith("$ ")
]


def test_docs_show_commands() -> None:
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize(("page", "command"), COMMANDS)
def test_documented_command_runs(page: str, command: str, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)
    if "--out" in argv:  # commands that write a report get a fresh folder each run
        argv[argv.index("--out") + 1] = str(tmp_path / "out")
    if "--plot" in argv:  # and a plot a fresh file
        argv[argv.index("--plot") + 1] = str(tmp_path / "plot.png")
    assert Path(argv[0]).name == "pdopt", f"{page}: {command}"
    assert main(argv[1:]) == 0


def test_formulation_page_names_every_family() -> None:
    text = (ROOT / "docs" / "formulation.md").read_text()
    for family in (*CONSTRAINT_FAMILIES, *VARIABLE_FAMILIES):
        assert f"`{family}`" in text


PYTHON_BLOCKS = [
    (page.name, block) for page in PAGES for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
]


@pytest.mark.parametrize(("page", "code"), PYTHON_BLOCKS)
def test_documented_python_runs(page: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(code, page, "exec"), {})

"""Files an instance names stay in its folder: a CSV curve or a length trace that leaves it (``..``, an absolute
path, a symbolic link pointing out) is refused with the field named and the opt-in (``--allow-path DIR``,
``allow_paths=``) named; the opt-in reads from the folder it allows, and no further."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pdopt.cli import main
from pdopt.errors import InputError
from pdopt.io import instance_from_dict, load_instance
from tests.conftest import PAPER

CSV = "decode_tpot_6k.csv"


def _doc() -> dict[str, object]:
    doc: dict[str, object] = yaml.safe_load(PAPER.read_text())
    return doc


def _with_csv(doc: dict[str, object], ref: str) -> dict[str, object]:
    profiles = doc["profiles"]
    assert isinstance(profiles, list)
    profiles[1]["tpot_csv"] = ref
    return doc


@pytest.mark.parametrize("ref", ["../../../../../../etc/passwd", "/etc/hostname", "../paper/" + CSV])
def test_paths_leaving_the_folder_are_refused(ref: str, tmp_path: Path) -> None:
    (tmp_path / "inst").mkdir()
    with pytest.raises(InputError, match=r"profiles\[1\]\.tpot_csv: .* leaves the instance's folder .*--allow-path"):
        instance_from_dict(_with_csv(_doc(), ref), tmp_path / "inst")


def test_a_symlink_pointing_out_is_refused(tmp_path: Path) -> None:
    (tmp_path / "inst").mkdir()
    (tmp_path / "inst" / CSV).symlink_to(PAPER.parent / CSV)
    with pytest.raises(InputError, match="leaves the instance's folder"):
        instance_from_dict(_with_csv(_doc(), CSV), tmp_path / "inst")


def test_sibling_folder_allowed_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "inst").mkdir()
    (tmp_path / "profiles").mkdir()
    shutil.copy(PAPER.parent / CSV, tmp_path / "profiles" / CSV)
    path = tmp_path / "inst" / "paper.yaml"
    path.write_text(yaml.safe_dump(_with_csv(_doc(), "../profiles/" + CSV)))
    assert main(["validate", str(path)]) == 2
    assert "--allow-path" in capsys.readouterr().err
    assert main(["validate", str(path), "--allow-path", str(tmp_path / "profiles")]) == 0
    assert load_instance(path, allow_paths=[tmp_path / "profiles"]).name == "dsv31-h200-5mtpm"
    assert main(["plan", str(path), "--allow-path", str(tmp_path / "elsewhere")]) == 2  # only the folder allowed


def test_files_inside_the_folder_still_load(tmp_path: Path) -> None:
    (tmp_path / "curves").mkdir()
    shutil.copy(PAPER.parent / CSV, tmp_path / "curves" / CSV)
    inst = instance_from_dict(_with_csv(_doc(), "curves/" + CSV), tmp_path)
    assert inst.profiles[1].role == "decode"


@pytest.mark.parametrize("threads", ["0", "-4", "two"])
def test_threads_must_be_positive(threads: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", str(PAPER), "--threads", threads])
    assert exc.value.code == 2 and "--threads" in capsys.readouterr().err

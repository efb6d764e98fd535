"""Untrusted instance files are read within bounds, with the numbers and words users mean, by both YAML loaders
(libyaml's C parser and PyYAML's Python parser, :data:`pdopt.io.yaml_safe.LOADERS`).

The cases that need a process boundary (``/dev/zero``, an alias bomb, deep nesting) run ``pdopt validate`` as a
subprocess under a 512 MB address-space limit and a 20 s timeout; the process must exit 2 with a message and no
traceback."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pdopt.cli import main
from pdopt.errors import InputError
from pdopt.io import yaml_safe
from pdopt.io.files import parse_yaml, read_json_object, read_text
from tests.conftest import PAPER

LOADERS = sorted(yaml_safe.LOADERS)


def test_both_loaders_are_here() -> None:
    assert "python" in LOADERS
    assert "c" in LOADERS, "PyYAML without libyaml: the C loader's cases would not run"


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("text", "value"), [
    ("5e6", 5e6), ("1e-3", 1e-3), ("1.0e6", 1e6), ("1e+6", 1e6), ("1.0e+308", 1.0e308), ("1_000_000", 1_000_000),
    ("010", 10), ("-7", -7), ("+3", 3), ("0x10", 16), ("0o17", 15), ("1.5", 1.5), ("-.5", -0.5), ("2.", 2.0),
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("Yes", "Yes"), ("y", "y"), ("true", True),
    ("false", False), ("~", None), ("null", None), ("2026-01-01", "2026-01-01"), ("'010'", "010"), ("1e", "1e"),
    ("0x_", "0x_"), ("0o_", "0o_"), ("._", "._"),
])
def test_scalars_read_as_users_mean(loader: str, text: str, value: object) -> None:
    got = parse_yaml(f"v: {text}\n", "t.yaml", loader)["v"]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("loader", LOADERS)
def test_a_pool_called_on_stays_a_name(loader: str) -> None:
    assert parse_yaml("node_pools:\n  on: {a: 1}\n  off: {a: 2}\n", "t.yaml", loader) == {
        "node_pools": {"on": {"a": 1}, "off": {"a": 2}}}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("text", "message"), [
    ("a: 1\nb: 2\na: 3\n", r"line 3: the key 'a' is given twice, on lines 1 and 3"),
    ("p:\n  node_count: 0\n  node_count: 16\n", r"the key 'node_count' is given twice, on lines 2 and 3"),
    ("x: &a [1, 2]\ny: *a\n", r"line 2: YAML aliases \(\*a\) are not accepted"),
    ("[" * 150 + "]" * 150, r"nested deeper than (100 levels|the YAML parser allows)"),
    ("a: [1, 2\n", r"not valid YAML or JSON"),
    ("? [1, 2]\n: x\n", r"mapping key must be a plain value|must be text"),
    ("1: a\n", r"the key 1 must be text"), ("true: a\n\"true\": b\n", r"the key True must be text"),
("v: !!int abc\n", r"not an integer"), ("v: !!float abc\n", r"not a number"),
    ("v: !!bool maybe\n", r"not true or false"), ("v: !!binary aGVsbG8=\n", r"not accepted"),
    ("v: !!set {a, b}\n", r"not accepted"), ("v: " + "9" * 5000 + "\n", r"digits is longer"),
])
def test_unsafe_or_ambiguous_documents_are_refused(loader: str, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_yaml(text, "t.yaml", loader)


def test_size_limit_and_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * 2_000_000 + "\n")
    monkeypatch.setattr("pdopt.io.files.LIMITS_MB", {"instance": 1.0})
    with pytest.raises(InputError, match=r"larger than the 1 MB limit for instance files .* PDOPT_MAX_FILE_MB"):
        read_text(big, "instance file")
    monkeypatch.setenv("PDOPT_MAX_FILE_MB", "3")
    assert len(read_text(big, "instance file")) > 2_000_000
    monkeypatch.setenv("PDOPT_MAX_FILE_MB", "lots")
    with pytest.raises(InputError, match=r"PDOPT_MAX_FILE_MB: .lots. is not a positive number"):
        read_text(big, "instance file")


@pytest.mark.parametrize(("content", "message"), [
    (b"name: x\x00\n", "not a text file"), (b"\xff\xfe\x00a", "not a text file"), (b"name: \xe9t\xe9\n", "not UTF-8"),
])
def test_non_text_is_refused(content: bytes, message: str, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1, "a": 2}', "gives the key 'a' twice"), ("[" * 100_000 + "]" * 100_000, "nested too deeply|not valid"),
    ("[1, 2]", "must be a JSON object"), ("{", "not valid JSON"),
])
def test_plan_json_bounds(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_json_object(path, "plan")


def test_a_duplicate_key_in_an_instance_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = PAPER.read_text().replace("    node_count: 16\n", "    node_count: 0\n    node_count: 16\n")
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    (tmp_path / "decode_tpot_6k.csv").write_text((PAPER.parent / "decode_tpot_6k.csv").read_text())
    assert main(["validate", str(path)]) == 2
    assert "the key 'node_count' is given twice" in capsys.readouterr().err


def test_numbers_without_exponent_sign_reach_the_schema(tmp_path: Path) -> None:
    """``tokens_per_min: 5e6`` was a string to PyYAML; it is the number 5,000,000 (and plans as the paper's)."""
    import pdopt

    text = PAPER.read_text().replace("tokens_per_min: 5000000", "tokens_per_min: 5e6")
    assert "5e6" in text
    path = tmp_path / "paper.yaml"
    path.write_text(text)
    (tmp_path / "decode_tpot_6k.csv").write_text((PAPER.parent / "decode_tpot_6k.csv").read_text())
    assert pdopt.solve(pdopt.load_instance(path)).objective_usd_per_hour == pytest.approx(224.0)


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))


def _validate_in_a_box(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pdopt", "validate", path], capture_output=True, text=True,
                          timeout=20, preexec_fn=_limited, check=False)


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))


@pytest.mark.parametrize(("name", "content"), [
    ("alias-bomb.yaml", ALIAS_BOMB),
    ("deep.yaml", "[" * 20_000 + "]" * 20_000),
    ("deep-block.yaml", "".join(" " * i + "- \n" for i in range(1000))),
])
def test_bombs_end_quickly_in_a_box(name: str, content: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert len(content) < 1_000_000
    run = _validate_in_a_box(str(path))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "pdopt: error:" in run.stderr


def test_dev_zero_ends_quickly_in_a_box() -> None:
    run = _validate_in_a_box("/dev/zero")
    assert run.returncode == 2, run.stderr
    assert "not a text file" in run.stderr and "Traceback" not in run.stderr


def test_alias_bomb_is_a_bomb() -> None:
    """The bomb above really expands: 9^10 leaves if aliases were followed (PyYAML's own loader keeps it shared,
    so this counts the expansion without building it)."""
    doc = yaml.safe_load(ALIAS_BOMB)

    def leaves(x: object, memo: dict[int, int]) -> int:
        if not isinstance(x, list):
            return 1
        if id(x) not in memo:
            memo[id(x)] = sum(leaves(v, memo) for v in x)
        return memo[id(x)]

    assert leaves(doc["j"], {}) == 9 ** 10

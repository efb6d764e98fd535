"""The hostile-input suite: every kind of bad instance gets a clean error (exit 2, the field named, no traceback)
through the CLI's entry function, and mutations of valid instances never crash pdopt.

Cases: an unknown key at each level of the schema; a wrong type for each kind of field; each defect of a
decode-curve CSV and of a length trace. Numbers out of range are tests/test_numeric_ranges.py's; files that need
a process boundary (bombs, /dev/zero) are tests/test_hostile_yaml.py's."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdopt.cli import main
from tests.test_numeric_ranges import _paths, rich_doc


def _run(doc: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str,
         name: str = "inst.yaml") -> tuple[int, str]:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False) if not isinstance(doc, str) else doc)
    code = main(["validate", str(path), *extra])
    return code, capsys.readouterr().err


def _mapping_paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every mapping in the document (the places an unknown key can be put)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        out.append(path)
        for k, v in doc.items():
            out += _mapping_paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _mapping_paths(v, (*path, i))
    return out


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


MAPPINGS = [p for p in _mapping_paths(rich_doc())
            if not (p and p[-1] in ("gpu_types", "node_pools", "models", "workloads", "spare_instances", "by_period",
                                    "available_by_period", "inputs"))]
"""Mappings with fixed fields (id-keyed tables take any identifier as a key)."""


def test_the_suite_has_enough_cases() -> None:
    from tests.test_numeric_ranges import CASES

    assert len(MAPPINGS) + len(WRONG_TYPES) + len(CSV_DEFECTS) + len(TRACE_DEFECTS) + len(CASES) >= 150


@pytest.mark.parametrize("where", MAPPINGS, ids=lambda p: ".".join(map(str, p)) or "top")
def test_an_unknown_key_at_each_level(where: tuple[Any, ...], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    doc = copy.deepcopy(rich_doc())
    _at(doc, where)["colour"] = "blue"
    code, err = _run(doc, tmp_path, capsys)
    assert code == 2 and "colour: unknown key" in err and "Traceback" not in err, err
    assert err.count("unknown key") == 1


WRONG_TYPES: list[tuple[str, Any]] = [
    ("memory_gb", "eighty"), ("node_count", 2.5), ("node_count", "4"), ("gpus_per_node", True),
    ("price_usd_per_gpu_hour", [1, 2]), ("name", 7), ("gpu_type", 3), ("target_s", {"a": 1}),
    ("statistic", "p42"), ("queue_model", "mm2"), ("routing", "random"), ("batch", 1.5),
    ("tpot_by_batch", "fast"), ("max_throughput_by_input", {}), ("lengths", "many"), ("spare_instances", [1]),
    ("demand", 5), ("links", {"a": "b"}), ("role", "train"), ("description", 3),
]


@pytest.mark.parametrize(("field", "value"), WRONG_TYPES, ids=lambda x: str(x)[:20])
def test_a_wrong_type_names_the_field(field: str, value: Any, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    doc = copy.deepcopy(rich_doc())
    paths = _paths(doc, field)
    assert paths, field
    node = _at(doc, paths[0][:-1])
    node[paths[0][-1]] = value
    code, err = _run(doc, tmp_path, capsys)
    assert code == 2 and "Traceback" not in err, err
    assert field in err or paths[0][-2] in err or "role" in err, err


def _paper_doc(tmp_path: Path) -> dict[str, Any]:
    from tests.conftest import PAPER

    shutil.copy(PAPER.parent / "decode_tpot_6k.csv", tmp_path / "decode_tpot_6k.csv")
    doc: dict[str, Any] = yaml.safe_load(PAPER.read_text())
    return doc


CSV_DEFECTS = [
    ("batch,tpot\n1,10\n", "must have the columns batch,tpot_ms"),
    ("batch,tpot_ms\n1,ten\n", "line 2: batch must be an integer and tpot_ms a number"),
    ("batch,tpot_ms\n1.5,10\n", "line 2"),
    ("batch,tpot_ms\n", "tpot_by_batch"),
    ("batch,tpot_ms\n1,10\n", "at least 2"),
    ("batch,tpot_ms\n1,10\n2,5\n", "tpot"),
    ("batch,tpot_ms\n2,10\n1,12\n", "batch"),
    ("batch,tpot_ms\n1,nan\n2,12\n", "tpot_ms"),
    ("batch,tpot_ms\n1,-3\n2,12\n", "tpot_ms"),
    ("", "must have the columns"),
]


@pytest.mark.parametrize(("content", "message"), CSV_DEFECTS, ids=range(len(CSV_DEFECTS)))
def test_decode_curve_csv_defects(content: str, message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    (tmp_path / "bad.csv").write_text(content)
    doc["profiles"][1]["tpot_csv"] = "bad.csv"
    code, err = _run(doc, tmp_path, capsys)
    assert code == 2 and "Traceback" not in err, err
    assert message in err, err


TRACE_DEFECTS = [
    ("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.6805900,100\n", "missing column(s) GeneratedTokens"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,100,10\n2023-11-16 18:15:47,100,10\n", "line 2"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,0,10\n2023-11-16 18:15:47,100,10\n",
     "1 to 1e+08 tokens"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,100,10\n", "at least 2 requests"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "at least 2 requests"),
]


@pytest.mark.parametrize(("content", "message"), TRACE_DEFECTS, ids=range(len(TRACE_DEFECTS)))
def test_length_trace_defects(content: str, message: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    (tmp_path / "trace.csv").write_text(content)
    doc["workloads"]["dsv31"]["input_length_distribution"] = {"trace": "trace.csv"}
    code, err = _run(doc, tmp_path, capsys)
    assert code == 2 and "Traceback" not in err, err
    assert message in err and "input_length_distribution.trace" in err, err


def _mutate(doc: Any, data: st.DataObject) -> Any:
    """Drop, duplicate (as a renamed copy), retype or perturb one field somewhere in the document."""
    doc = copy.deepcopy(doc)
    places = [p for p in _mapping_paths(doc) if _at(doc, p)]
    where = data.draw(st.sampled_from(places))
    node = _at(doc, where)
    key = data.draw(st.sampled_from(sorted(node, key=str)))
    action = data.draw(st.sampled_from(["drop", "copy", "retype", "perturb"]))
    if action == "drop":
        del node[key]
    elif action == "copy":
        node[f"{key}_copy"] = node[key]
    elif action == "retype":
        node[key] = data.draw(st.sampled_from([None, "x", 1, -1, 0.5, [], {}, True, "1e400", float("nan")]))
    elif isinstance(node[key], int | float) and not isinstance(node[key], bool):
        node[key] = node[key] * data.draw(st.sampled_from([0, -1, 0.5, 2, 1e6, 1e-9, 1e300]))
    else:
        node[key] = data.draw(st.sampled_from(["", "a" * 300, "UPPER", "with space"]))
    return doc


@settings(max_examples=200, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_instances_never_crash(data: st.DataObject, tmp_path: Path) -> None:
    """Any mutation of a valid instance plans (0), is refused as input (2) or is infeasible (3): never a crash
    (4), a solver error (5) or a traceback."""
    doc = _mutate(rich_doc(), data)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    code = main(["plan", str(path), "--time-limit", "5"])
    assert code in (0, 2, 3)


def test_profile_import_of_dev_zero_and_a_missing_output_folder(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "import", "/dev/zero"]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err
    src = Path(__file__).resolve().parent / "data" / "pdopt-profiles.csv"
    assert main(["profile", "import", str(src), "--output", str(tmp_path / "no" / "such" / "out.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_paths_that_cannot_be_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A NUL byte in a path, a loop of symbolic links and a FIFO are refused (exit 2), never a crash or a hang."""
    import os

    doc = _paper_doc(tmp_path)
    (tmp_path / "loop.csv").symlink_to("loop.csv")
    os.mkfifo(tmp_path / "fifo.csv")
    for ref, message in (("a\x00b.csv", "not a path pdopt can follow"), ("loop.csv", "not a path pdopt can follow"),
                         ("fifo.csv", "not a regular file")):
        doc["profiles"][1]["tpot_csv"] = ref
        path = tmp_path / "inst.json"
        path.write_text(json.dumps(doc))
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


@pytest.mark.parametrize(("name", "content", "message"), [
    ("wide.csv", 'batch,tpot_ms\n1,"' + "1" * 200_000 + '"\n', "not a readable CSV"),
])
def test_csv_over_the_field_limit(name: str, content: str, message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    doc = _paper_doc(tmp_path)
    (tmp_path / name).write_text(content)
    doc["profiles"][1]["tpot_csv"] = name
    code, err = _run(doc, tmp_path, capsys)
    assert code == 2 and message in err, err


@pytest.mark.parametrize(("content", "message"), [
    ('{"timestamp": ' + "9" * 400 + ', "input_length": 10, "output_length": 5}\n'
     '{"timestamp": 1, "input_length": 10, "output_length": 5}\n', "trace"),
    ("[" * 100_000 + "\n", "trace"),
    ('{"timestamp": 1, "input_length": 1e300, "output_length": 5}\n'
     '{"timestamp": 2, "input_length": 10, "output_length": 5}\n', "1 to 1e+08 tokens"),
])
def test_hostile_mooncake_traces(content: str, message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t.jsonl").write_text(content)
    from tests.conftest import PAPER

    shutil.copy(PAPER.parent / "decode_tpot_6k.csv", tmp_path / "decode_tpot_6k.csv")
    code = main(["simulate", str(PAPER), "--trace", str(tmp_path / "t.jsonl"), "--requests", "100"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and "internal error" not in err, err


def _simulate_changed_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str], top: dict[str, Any],
                           placement: dict[str, Any]) -> str:
    """Plan the paper instance, change the plan's JSON, simulate it: exit 2, and the error text."""
    from tests.conftest import PAPER

    assert main(["plan", str(PAPER), "--format", "json"]) == 0
    plan = {**json.loads(capsys.readouterr().out), **top}
    plan["placements"][0].update(placement)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert main(["simulate", str(PAPER), "--plan", str(path), "--requests", "200"]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("change", [
    {"count": 10**9}, {"count": "3"}, {"count": True}, {"capacity_rps": 0}, {"gpus_per_instance": 10**400},
])
def test_hostile_plans_for_simulate(change: dict[str, Any], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert "placements[0]" in _simulate_changed_plan(tmp_path, capsys, {}, change)


@pytest.mark.parametrize("change", [{"scale_demand": 0}, {"scale": -1}, {"scale_demand": "2"}])
def test_hostile_plan_multipliers(change: dict[str, Any], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert next(iter(change)) in _simulate_changed_plan(tmp_path, capsys, change, {})

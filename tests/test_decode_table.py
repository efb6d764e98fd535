"""A 2-D decode table, TPOT(batch, input length): the paper's curves at 6,144 and 12,288 input tokens."""

from pathlib import Path

import pytest
import yaml

import pdopt
from pdopt.io import InputError, instance_from_dict
from tests.conftest import PAPER


def _with_table(input_tokens: float) -> pdopt.Instance:
    doc = yaml.safe_load(PAPER.read_text())
    dec = doc["profiles"][1]
    del dec["tpot_csv"]
    dec["tpot_by_input"] = [{"input_tokens": 6144, "tpot_csv": "decode_tpot_6k.csv"},
                            {"input_tokens": 12288, "tpot_csv": "decode_tpot_12k.csv"}]
    doc["workloads"]["dsv31"]["input_tokens_mean"] = input_tokens
    doc["profiles"][0]["max_throughput_by_input"] = [{"input_tokens": 6144, "max_throughput_tok_per_s": 28309},
                                                     {"input_tokens": 12288, "max_throughput_tok_per_s": 26000}]
    return instance_from_dict(doc, PAPER.parent)


def test_at_a_measured_length_the_table_gives_that_curve_within_the_shared_range() -> None:
    """At 6,144 tokens the 6k curve applies on the batches both curves cover (10-40): B* = 34 at 19.92 ms, as in
    the paper (the 12k curve stops at batch 40, so the table's range is 10-40)."""
    (shape,) = pdopt.capacity_table(_with_table(6144)).for_role("dsv31", "decode")
    assert shape.detail["batch"] == 34 and shape.detail["tpot_ms"] == pytest.approx(19.92)


def test_between_lengths_the_curves_are_interpolated() -> None:
    """At 9,216 tokens (halfway): TPOT(B) = (TPOT_6k(B) + TPOT_12k(B)) / 2. At batch 20: (16.4 + 17.4)/2 = 16.9;
    at 25: (17.6 + 19.5)/2 = 18.55; at 30: (18.8 + 21.2)/2 = 20.0 -> B* = 30 exactly at 20 ms."""
    inst = _with_table(9216)
    prof = inst.profile("dsv31", "decode", "h200", 8)
    assert isinstance(prof, pdopt.instance.DecodeProfile)
    curve = prof.points_for(9216)
    assert not isinstance(curve, str)
    assert {p.batch: round(p.tpot_ms, 3) for p in curve}[20] == 16.9
    (shape,) = pdopt.capacity_table(inst).for_role("dsv31", "decode")
    assert shape.detail["batch"] == 30 and shape.detail["tpot_ms"] == pytest.approx(20.0)
    plan = pdopt.solve(inst)
    assert pdopt.verify(inst, plan.to_dict()) == []


def test_outside_the_table_is_not_extrapolated() -> None:
    inst = _with_table(6144)
    doc_inst = inst.model_copy(update={"workloads": {"dsv31": inst.workloads["dsv31"].model_copy(
        update={"input_tokens_mean": 4096.0})}})
    table = pdopt.capacity_table(doc_inst)
    assert any("outside the decode table" in s.reason for s in table.skipped if s.role == "decode")


def test_a_table_with_gaps_is_an_input_error(tmp_path: Path) -> None:
    doc = yaml.safe_load(PAPER.read_text())
    dec = doc["profiles"][1]
    del dec["tpot_csv"]
    dec["tpot_by_input"] = [
        {"input_tokens": 6144, "tpot_by_batch": [{"batch": 1, "tpot_ms": 10.0}, {"batch": 8, "tpot_ms": 12.0}]},
        {"input_tokens": 12288, "tpot_by_batch": [{"batch": 16, "tpot_ms": 15.0}, {"batch": 32, "tpot_ms": 20.0}]}]
    with pytest.raises(InputError, match="share no batch range"):
        instance_from_dict(doc, PAPER.parent)

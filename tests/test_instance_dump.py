"""A dump of an instance (``model_dump(mode="json")``) is self-contained: it loads again from any directory and
gives the same instance; file references are read once, their paths kept only as provenance."""

from pathlib import Path

import pytest
import yaml

import pdopt
from pdopt.instance import DecodeProfile, Instance
from pdopt.io import InputError, instance_from_dict, load_instance
from tests.conftest import INSTANCES, PAPER, instance_files

BUNDLED = instance_files()


def test_every_bundled_instance_is_covered() -> None:
    assert len(BUNDLED) >= 10
    assert any("trace" in p.read_text() for p in BUNDLED) and any("tpot_csv" in p.read_text() for p in BUNDLED)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(INSTANCES)))
def test_a_dump_loads_again_from_another_directory(path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    instance = load_instance(path)
    monkeypatch.chdir(tmp_path)  # nothing next to the instance file can be found from here
    assert instance_from_dict(instance.model_dump(mode="json")) == instance


def test_a_dump_written_to_a_file_elsewhere_loads_with_load_instance(tmp_path: Path) -> None:
    instance = load_instance(PAPER)
    (tmp_path / "copy.yaml").write_text(yaml.safe_dump(instance.model_dump(mode="json")))
    assert load_instance(tmp_path / "copy.yaml") == instance


def _paper_decode(instance: Instance) -> DecodeProfile:
    prof = instance.profile("dsv31", "decode", "h200", 8)
    assert isinstance(prof, DecodeProfile)
    return prof


def test_the_csv_path_becomes_provenance() -> None:
    dumped = load_instance(PAPER).model_dump(mode="json")["profiles"][1]
    assert dumped["tpot_csv"] is None and dumped["tpot_csv_source"] == "decode_tpot_6k.csv"
    assert dumped["tpot_by_batch"][0] == {"batch": 10, "tpot_ms": 12.8}


def test_a_trace_becomes_lengths_weights_and_a_source() -> None:
    dist = load_instance(INSTANCES / "library" / "azure-mix-code-conv.yaml").model_dump(mode="json")[
        "workloads"]["bloom_176b"]["input_length_distribution"]
    assert set(dist) == {"lengths", "weights", "source"}
    assert dist["source"].startswith("azure-code-2023-min128.csv: ")


def test_a_2d_table_read_from_csvs_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = yaml.safe_load(PAPER.read_text())
    dec = doc["profiles"][1]
    del dec["tpot_csv"]
    dec["tpot_by_input"] = [{"input_tokens": 6144, "tpot_csv": "decode_tpot_6k.csv"},
                            {"input_tokens": 12288, "tpot_csv": "decode_tpot_12k.csv"}]
    doc["profiles"][0]["max_throughput_by_input"] = [{"input_tokens": 6144, "max_throughput_tok_per_s": 28309},
                                                     {"input_tokens": 12288, "max_throughput_tok_per_s": 26000}]
    instance = instance_from_dict(doc, PAPER.parent)
    table = _paper_decode(instance).tpot_by_input
    assert table is not None and [c.tpot_csv_source for c in table] == ["decode_tpot_6k.csv", "decode_tpot_12k.csv"]
    monkeypatch.chdir(tmp_path)
    assert instance_from_dict(instance.model_dump(mode="json")) == instance


def test_inline_points_and_a_csv_to_read_are_refused() -> None:
    doc = yaml.safe_load(PAPER.read_text())
    doc["profiles"][1]["tpot_by_batch"] = [{"batch": 1, "tpot_ms": 10.0}, {"batch": 8, "tpot_ms": 12.0}]
    with pytest.raises(InputError, match=r"profiles\[1\]\.tpot_csv: give tpot_by_batch inline or tpot_csv, not both"):
        instance_from_dict(doc, PAPER.parent)


def test_a_csv_to_read_and_a_recorded_source_are_refused() -> None:
    doc = yaml.safe_load(PAPER.read_text())
    doc["profiles"][1]["tpot_csv_source"] = "elsewhere.csv"
    with pytest.raises(InputError, match=r"profiles\[1\]\.tpot_csv: give tpot_csv or tpot_csv_source, not both"):
        instance_from_dict(doc, PAPER.parent)


def test_a_null_csv_names_no_file() -> None:
    doc = yaml.safe_load(PAPER.read_text())
    doc["profiles"][1]["tpot_csv"] = None
    doc["profiles"][1]["tpot_by_batch"] = [{"batch": 1, "tpot_ms": 10.0}, {"batch": 8, "tpot_ms": 12.0}]
    assert _paper_decode(instance_from_dict(doc)).tpot_csv_source is None


def test_validating_without_the_loader_refuses_a_csv_still_to_read() -> None:
    """``Instance.model_validate`` reads no files: a CSV reference there is an error, not a silent empty curve."""
    doc = load_instance(PAPER).model_dump(mode="json")
    doc["profiles"][1]["tpot_csv"] = "decode_tpot_6k.csv"
    with pytest.raises(ValueError, match=r"decode_tpot_6k\.csv' is a CSV still to read"):
        pdopt.Instance.model_validate(doc)

"""The AIConfigurator adapter without AIConfigurator: importing it loads nothing of AIC, and estimating without AIC
gives a gap per shape and role saying how to install it; the TPOT envelope it applies (tests/test_aiconfigurator.py
has the tests that need AIC)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pdopt.cli import main
from pdopt.estimate.aiconfigurator import AicSettings, estimate_with_aiconfigurator, upper_envelope
from pdopt.estimate.base import ShapeRequest
from tests.conftest import ROOT


def test_importing_the_adapter_does_not_import_aic() -> None:
    code = ("import sys, pdopt.estimate.aiconfigurator\n"
            "print(sorted(m for m in sys.modules if m.startswith(('aiconfigurator', 'aisimulate'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_without_aic_every_role_is_a_gap_saying_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiconfigurator", None)
    monkeypatch.setitem(sys.modules, "aisimulate", None)
    shapes = [ShapeRequest("llama", "h100", 4), ShapeRequest("llama", "h100", 8, roles=("decode",))]
    result = estimate_with_aiconfigurator(shapes, AicSettings("meta-llama/Meta-Llama-3.1-70B", {"h100": "h100_sxm"}))
    assert result.profiles == []
    assert [(g.shape.tp, g.role) for g in result.gaps] == [(4, "prefill"), (4, "decode"), (8, "decode")]
    assert all("pip install 'pdopt[aiconfigurator]'" in g.message() for g in result.gaps)


def test_the_envelope_raises_a_falling_tpot_and_names_it() -> None:
    points, moved = upper_envelope([(1, 10.0), (2, 9.5), (4, 9.8), (8, 11.0), (16, 10.9)])
    assert [(p.batch, p.tpot_ms) for p in points] == [(1, 10.0), (2, 10.0), (4, 10.0), (8, 11.0), (16, 11.0)]
    assert moved == ["batch 2 9.500 -> 10.000 ms", "batch 4 9.800 -> 10.000 ms", "batch 16 10.900 -> 11.000 ms"]
    assert upper_envelope([(1, 1.0), (2, 2.0)])[1] == []


def test_a_search_with_aic_missing_exits_2_saying_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_shape_search import search_doc

    monkeypatch.setitem(sys.modules, "aiconfigurator", None)
    monkeypatch.setitem(sys.modules, "aisimulate", None)
    doc = search_doc([4])
    doc["shape_search"].update({"estimator": "aiconfigurator", "aiconfigurator": {
        "models": {"llama": "meta-llama/Meta-Llama-3.1-70B"}, "systems": {"h100_80gb": "h100_sxm"}}})
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "shape_search.estimator: aiconfigurator: AIConfigurator is not installed" in err
    assert "pip install 'pdopt[aiconfigurator]'" in err and "Traceback" not in err

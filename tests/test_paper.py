"""The paper's worked example (Li et al. 2026), reproduced from the API and the CLI.

Expected numbers are the paper's, recomputed by hand in ../shared/data/paper-li2026/README.md:
prefill 28,309 - 6144/1.9 = 25,075.3 tok/s; decode whole batch 34 at 18.8 + 4 x 0.28 = 19.92 ms gives
34 / 0.01992 = 1,706.8 tok/s, fractional batch 30 + 1.2/0.28 = 34.286 at 20 ms gives 1,714.3 tok/s;
R_P/D = 6144 x 1706.8 / (512 x 25075.3) = 0.8168; at 5 M tok/min: N_P = 3.068, N_D = 3.756.
"""

import json
import math

import pytest

import pdopt
from pdopt.cli import main
from pdopt.instance import Instance
from pdopt.paper import closed_form_for_model
from pdopt.verifier import verify
from tests.conftest import PAPER


def _shape(inst: Instance, role: str) -> pdopt.ShapeCapacity:
    (shape,) = pdopt.capacity_table(inst).for_role("dsv31", role)
    return shape


def test_prefill_throughput_eq13(paper: Instance) -> None:
    shape = _shape(paper, "prefill")
    assert shape.throughput_tok_per_s == pytest.approx(28309 - 6144 / 1.9, rel=1e-12)
    assert round(shape.throughput_tok_per_s) == 25075


def test_decode_throughput_whole_batch(paper: Instance) -> None:
    shape = _shape(paper, "decode")
    assert shape.detail["batch"] == 34
    assert shape.detail["tpot_ms"] == pytest.approx(19.92)
    assert shape.throughput_tok_per_s == pytest.approx(34 / 0.01992)
    assert 1705 <= shape.throughput_tok_per_s <= 1715


def test_decode_throughput_fractional_batch(paper: Instance) -> None:
    inst = paper.model_copy(update={"options": paper.options.model_copy(update={"decode_batch_rule": "fractional"})})
    shape = _shape(inst, "decode")
    assert shape.detail["batch"] == pytest.approx(30 + 1.2 / 0.28)
    assert shape.throughput_tok_per_s == pytest.approx((30 + 1.2 / 0.28) / 0.020)
    assert 1705 <= shape.throughput_tok_per_s <= 1715


def test_closed_form_counts_and_ratio(paper: Instance) -> None:
    cf = closed_form_for_model(paper, "dsv31")
    assert cf.total_throughput_tok_per_s == pytest.approx(5e6 / 60)
    assert cf.pd_ratio == pytest.approx(0.82, abs=0.01)
    assert cf.n_prefill == pytest.approx(3.07, abs=0.005)
    assert 3.73 <= cf.n_decode <= 3.77
    # eq. (7) is the ratio of eqs. (5) and (6)
    assert cf.pd_ratio == pytest.approx(cf.n_prefill / cf.n_decode)


def test_plan_rounds_up_to_4p4d(paper: Instance) -> None:
    plan = pdopt.solve(paper)
    assert plan.status is pdopt.SolveStatus.OPTIMAL
    m = plan.models["dsv31"]
    assert (m.prefill.instances, m.decode.instances) == (4, 4)
    assert m.prefill.fractional_instances == pytest.approx(3.068, abs=1e-3)
    assert verify(paper, plan.to_dict()) == []


def test_plan_at_paper_measured_limit_is_3p4d(paper: Instance) -> None:
    plan = pdopt.solve(paper, scale_demand=0.96)
    m = plan.models["dsv31"]
    assert (m.prefill.instances, m.decode.instances) == (3, 4)
    assert plan.objective_usd_per_hour == pytest.approx(7 * 28.0)
    assert verify(paper, plan.to_dict()) == []


def test_cli_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(PAPER), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal"
    assert out["objective_usd_per_hour"] == pytest.approx(224.0)
    m = out["models"]["dsv31"]
    assert (m["prefill"]["instances"], m["decode"]["instances"]) == (4, 4)
    assert math.isclose(m["demand_rps"], 5e6 / 60 / 6656)
    assert {p["role"]: p["count"] for p in out["placements"]} == {"prefill": 4, "decode": 4}
    assert set(out["solver"]) >= {"name", "runtime_s", "gap"}


def test_cli_scale_demand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(PAPER), "--format", "json", "--scale-demand", "0.96"]) == 0
    m = json.loads(capsys.readouterr().out)["models"]["dsv31"]
    assert (m["prefill"]["instances"], m["decode"]["instances"]) == (3, 4)


def test_cli_capacity_shows_paper_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capacity", str(PAPER), "--format", "json"]) == 0
    shapes = {s["role"]: s for s in json.loads(capsys.readouterr().out)["shapes"]}
    assert round(shapes["prefill"]["throughput_tok_per_s"]) == 25075
    assert round(shapes["decode"]["throughput_tok_per_s"]) == 1707


def test_cli_curves_names_binding_limit_and_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["curves", str(PAPER), "--format", "json"]) == 0
    shapes = {s["role"]: s for s in json.loads(capsys.readouterr().out)["shapes"]}
    assert shapes["prefill"]["binding"] == "ttft_target" and shapes["decode"]["binding"] == "tpot_target"
    assert shapes["prefill"]["inputs"]["queue_model"] == "mm1"
    assert "Li et al. 2026" in shapes["decode"]["inputs"]["profile_source"]


@pytest.mark.parametrize("name", ["PaperPlan", "paper_closed_form", "closed_form_for_model", "mm1_max_arrival_rate",
                                  "max_batch_within_tpot"])
def test_old_names_are_deprecated_aliases(name: str) -> None:
    """The paper helpers moved to pdopt.paper; their old names still work for one release, with a warning."""
    import pdopt.paper

    with pytest.warns(DeprecationWarning, match=f"pdopt.paper.{name}"):
        old = getattr(pdopt, name)
    assert old is getattr(pdopt.paper, name)

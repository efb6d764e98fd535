"""Changing an instance in Python: ``Instance.replace`` and ``Instance.with_demand`` validate the copy as a loaded
file is validated (``model_copy(update=...)`` does not: a negative demand would plan at cost 0)."""

import math

import pytest

import pdopt
from pdopt.instance import Instance, Limits
from pdopt.io import InputError, load_instance
from tests.conftest import EXAMPLE, PAPER


@pytest.mark.parametrize("value", [-5.0, 0.0, math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(("keyword", "field"), [("rps", "requests_per_s"), ("tokens_per_min", "tokens_per_min")])
def test_a_demand_that_is_not_positive_and_finite_is_refused_by_name(paper: Instance, keyword: str, field: str,
                                                                      value: float) -> None:
    with pytest.raises(InputError) as exc:
        paper.with_demand("dsv31", **{keyword: value})
    assert f"workloads.dsv31.demand.{field}: " in str(exc.value)
    assert f"(got {value!r})" in str(exc.value)


def test_an_unknown_model_is_refused_by_name(paper: Instance) -> None:
    with pytest.raises(InputError, match="no workload for model 'llama3' \\(workloads: dsv31\\)"):
        paper.with_demand("llama3", rps=1.0)


@pytest.mark.parametrize("kwargs", [{}, {"rps": 1.0, "tokens_per_min": 1e6}])
def test_exactly_one_demand_is_given(paper: Instance, kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError, match="exactly one of rps or tokens_per_min"):
        paper.with_demand("dsv31", **kwargs)


def test_a_new_demand_plans_and_verifies_and_the_original_is_unchanged(paper: Instance) -> None:
    """4.8 M tokens/min on the paper instance, as requests/s: 4.8e6 / 60 / 6656 = 12.02 req/s, 3 + 4 instances
    (quickstart.md); the original keeps its 5 M tokens/min."""
    rps = 4.8e6 / 60 / (6144 + 512)
    changed = paper.with_demand("dsv31", rps=rps)
    assert changed.workloads["dsv31"].demand_rps() == rps
    assert changed.workloads["dsv31"].demand.tokens_per_min is None
    plan = pdopt.solve(changed)
    assert pdopt.verify(changed, plan.to_dict()) == []
    assert (plan.models["dsv31"].prefill.instances, plan.models["dsv31"].decode.instances) == (3, 4)
    assert paper.workloads["dsv31"].demand.tokens_per_min == 5e6 and paper == load_instance(PAPER)


def test_with_demand_in_tokens_per_min_changes_only_that_workload() -> None:
    example = load_instance(EXAMPLE)
    first, *others = example.workloads
    changed = example.with_demand(first, tokens_per_min=1e6)
    assert changed.workloads[first].demand.tokens_per_min == 1e6
    assert changed.workloads[first].demand_rps() == pytest.approx(
        1e6 / 60 / (example.workloads[first].input_tokens_mean + example.workloads[first].output_tokens_mean))
    assert all(changed.workloads[m] == example.workloads[m] for m in others)
    assert changed.profiles == example.profiles


def test_replace_takes_models_or_plain_data(paper: Instance) -> None:
    assert paper.replace() == paper
    assert paper.replace(limits=Limits(budget_usd_per_hour=500.0)).limits.budget_usd_per_hour == 500.0
    assert paper.replace(limits={"budget_usd_per_hour": 500}) == paper.replace(limits=Limits(budget_usd_per_hour=500))
    assert paper.limits.budget_usd_per_hour is None


def test_replace_names_the_field_at_fault(paper: Instance) -> None:
    workloads = {"dsv31": paper.workloads["dsv31"].model_dump(mode="json") | {"demand": {"requests_per_s": -1.0}}}
    with pytest.raises(InputError, match=r"workloads\.dsv31\.demand\.requests_per_s: Input should be greater than 0"):
        paper.replace(workloads=workloads)
    with pytest.raises(InputError, match="budgt: unknown key"):
        paper.replace(budgt=100.0)


def test_replace_checks_cross_references(paper: Instance) -> None:
    with pytest.raises(InputError, match=r"node_pools\.h200_nodes\.gpu_type: unknown GPU type 'h200'"):
        paper.replace(gpu_types={"h100": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 2.0}})


def test_replace_reads_no_file(paper: Instance) -> None:
    profiles = [p.model_dump(mode="json") for p in paper.profiles]
    profiles[1] = {k: v for k, v in profiles[1].items() if k not in ("tpot_by_batch", "tpot_csv_source")}
    profiles[1]["tpot_csv"] = "decode_tpot_6k.csv"
    with pytest.raises(InputError, match=r"profiles\[1\]\.tpot_csv: 'decode_tpot_6k\.csv' is a CSV still to read"):
        paper.replace(profiles=profiles)


def test_what_is_not_instance_data_is_an_input_error(paper: Instance) -> None:
    with pytest.raises(InputError, match="a change is not instance data"):
        paper.replace(limits=object())

"""Input-length distributions and prefix caching in the capacity model, checked by hand and by simulation."""

from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.io import InputError, instance_from_dict
from pdopt.perf.queueing import sojourn_statistic
from pdopt.plan import Plan
from pdopt.sim import SimOptions, simulate
from tests.conftest import PAPER

CURVE = [{"input_tokens": 2048, "max_throughput_tok_per_s": 20000},
         {"input_tokens": 6144, "max_throughput_tok_per_s": 28309},
         {"input_tokens": 10240, "max_throughput_tok_per_s": 30000}]


def _doc(**workload: Any) -> dict[str, Any]:
    doc = yaml.safe_load(PAPER.read_text())
    doc["profiles"][0]["max_throughput_by_input"] = CURVE
    doc["workloads"]["dsv31"].update(workload)
    return doc


def test_prefix_cache_shortens_prefill() -> None:
    """h = 2/3 leaves 2048 of 6144 tokens to compute: t = 2048/20000 = 0.1024 s, mu = 9.7656 req/s,
    capacity 9.7656 - 1/1.9 = 9.2393 req/s (against 4.0813 without the cache)."""
    inst = instance_from_dict(_doc(prefix_cache_hit_rate=2 / 3), PAPER.parent)
    (shape,) = pdopt.capacity_table(inst).for_role("dsv31", "prefill")
    assert shape.capacity_rps == pytest.approx(20000 / 2048 - 1 / 1.9, rel=1e-9)
    assert pdopt.solve(inst).models["dsv31"].prefill.instances == 2  # 12.52 / 9.239 = 1.36


def test_uncached_length_outside_the_benchmark_is_not_extrapolated() -> None:
    doc = yaml.safe_load(PAPER.read_text())
    doc["workloads"]["dsv31"]["prefix_cache_hit_rate"] = 0.5
    table = pdopt.capacity_table(instance_from_dict(doc, PAPER.parent))
    assert not table.for_role("dsv31", "prefill")
    assert "uncached input length 3072 is outside the benchmarked range" in table.skipped[0].reason


# lengths 2048, 6144, 10240 with weights 1, 2, 1 (mean 6144): service times t = L / X(L)
T = [2048 / 20000, 6144 / 28309, 10240 / 30000]
P = [0.25, 0.5, 0.25]
MEAN_T = sum(p * t for p, t in zip(P, T, strict=True))
SCV = sum(p * t * t for p, t in zip(P, T, strict=True)) / MEAN_T**2 - 1
DIST = {"lengths": [2048, 6144, 10240], "weights": [1, 2, 1]}


def test_distribution_sets_mean_service_and_scv() -> None:
    """By hand: t = 0.10240, 0.21703, 0.34133 s; E[t] = 0.25 x 0.10240 + 0.5 x 0.21703 + 0.25 x 0.34133 = 0.21945;
    E[t^2] = 0.05530; SCV = 0.05530 / 0.21945^2 - 1 = 0.1483. M/M/1 uses mu = 1/E[t]; G/G/1 the derived SCV."""
    mm1 = instance_from_dict(_doc(input_length_distribution=DIST), PAPER.parent)
    (shape,) = pdopt.capacity_table(mm1).for_role("dsv31", "prefill")
    assert shape.capacity_rps == pytest.approx(1 / MEAN_T - 1 / 1.9, rel=1e-9)
    gg1 = instance_from_dict(_doc(input_length_distribution=DIST, queue_model="gg1"), PAPER.parent)
    (shape,) = pdopt.capacity_table(gg1).for_role("dsv31", "prefill")
    assert pytest.approx(0.1483, abs=1e-4) == SCV
    assert "cs2 0.1483" in shape.formula


def test_simulated_mix_matches_mg1_with_the_derived_scv() -> None:
    """One prefill instance at rho = 0.6 under random dispatch: Poisson arrivals, service t(L) for L drawn from
    the distribution, so M/G/1 with SCV 0.1483 and Pollaczek-Khinchine's mean is exact (100,000 requests, seed 5)."""
    inst = instance_from_dict(_doc(input_length_distribution=DIST, queue_model="gg1",
                                   demand={"requests_per_s": 0.6 / MEAN_T}), PAPER.parent)
    plan = pdopt.solve(inst).to_dict()
    plan["placements"] = [dict(p, count=1) if p["role"] == "prefill" else p for p in plan["placements"]]
    opts = SimOptions(requests=100000, seed=5, prefill_dispatch="random")
    res = simulate(inst, Plan.from_dict(plan), opts).models["dsv31"]
    expected = sojourn_statistic(0.6 / MEAN_T, 1 / MEAN_T, 1, 1.0, SCV, "mean")
    sim = res["prefill_sojourn_s"]
    assert abs(sim["mean"] - expected) <= sim["ci99_half_width"] + 0.005 * expected


def test_distribution_must_match_the_stated_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="differs from the mean"):
        instance_from_dict(_doc(input_length_distribution={"lengths": [1000, 2000], "weights": [1, 1]}),
                           PAPER.parent)
    with pytest.raises(InputError, match="weights has 1"):
        instance_from_dict(_doc(input_length_distribution={"lengths": [6000, 6288], "weights": [1]}), PAPER.parent)
    bad = _doc(ttft={"target_s": 2.0, "statistic": "p100"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    (tmp_path / "decode_tpot_6k.csv").write_text((PAPER.parent / "decode_tpot_6k.csv").read_text())
    assert main(["validate", str(path)]) == 2
    assert "workloads.dsv31.ttft.statistic" in capsys.readouterr().err


def test_length_distribution_from_a_trace(tmp_path: Path) -> None:
    """input_length_distribution: {trace: FILE} bins the trace's input lengths (64 equal-count bins): the bundled
    Azure conversation trace has mean input 1,154.7 tokens, which the binned distribution keeps exactly."""
    from tests.conftest import INSTANCES

    doc = yaml.safe_load(PAPER.read_text())
    w = doc["workloads"]["dsv31"]
    w["input_tokens_mean"] = 1154.7
    w["input_length_distribution"] = {"trace": str(INSTANCES / "traces" / "azure-conv-2023.csv")}
    doc["profiles"][0]["max_throughput_by_input"] = [{"input_tokens": 1, "max_throughput_tok_per_s": 5000},
                                                     {"input_tokens": 20000, "max_throughput_tok_per_s": 30000}]
    with pytest.raises(InputError, match=r"input_length_distribution\.trace: .* leaves the instance's folder"):
        instance_from_dict(doc, PAPER.parent)  # the trace is in a sibling folder: refused unless allowed
    inst = instance_from_dict(doc, PAPER.parent, allow_paths=[INSTANCES / "traces"])
    dist = inst.workloads["dsv31"].input_length_distribution
    assert dist is not None and len(dist.lengths) <= 64 and sum(dist.weights) == 19366
    assert dist.mean == pytest.approx(1154.697, abs=1e-3)
    assert "equal-count bins" in dist.source
    assert pdopt.capacity_table(inst).for_role("dsv31", "prefill")
    w["input_length_distribution"] = {"trace": "missing.csv"}
    with pytest.raises(InputError, match=r"input_length_distribution\.trace"):
        instance_from_dict(doc, PAPER.parent)

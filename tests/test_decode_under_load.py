"""Decode under load (the running batch fluctuates) and the KV-cache bound on the decode batch."""

from pathlib import Path

import pytest
import yaml

import pdopt
from pdopt.io import instance_from_dict
from pdopt.perf.capacity import decode_rate_under_load
from pdopt.plan import Plan
from pdopt.sim import SimOptions, simulate
from tests.conftest import EXAMPLE, PAPER


def _paper_under_load() -> pdopt.Instance:
    doc = yaml.safe_load(PAPER.read_text())
    doc["workloads"]["dsv31"]["decode_model"] = "under_load"
    return instance_from_dict(doc, PAPER.parent)


def test_under_load_capacity_is_below_the_mean_batch_capacity() -> None:
    """At the mean batch (paper) one instance takes 3.334 req/s at TPOT 19.92 ms; with the batch fluctuating as
    1 + Poisson(B) the mean TPOT reaches 20 ms at a lower rate: about 3.25 req/s at a mean batch near 33."""
    (shape,) = pdopt.capacity_table(_paper_under_load()).for_role("dsv31", "decode")
    assert shape.binding == "tpot_target"
    assert shape.detail["tpot_ms"] == pytest.approx(20.0, abs=0.01)
    assert 3.1 < shape.capacity_rps < 3.334
    assert 31 < shape.detail["mean_batch"] < 35


@pytest.mark.parametrize("scale", [1.0, 1.2])
def test_simulator_agrees_with_the_planned_decode_count(scale: float) -> None:
    """Poisson arrivals, 40,000 requests, seed 1 (chosen before the first run): the planned decode count meets
    the 20 ms mean TPOT, one fewer misses it (measured at scale 1.0: 19.1 ms and 24.5 ms; at 1.2: 18.5 and
    22.3 ms; the 99% batch-means half-widths are under 0.2 ms)."""
    inst = _paper_under_load()
    plan = pdopt.solve(inst, scale_demand=scale).to_dict()
    assert pdopt.verify(inst, plan) == []
    res = simulate(inst, Plan.from_dict(plan), SimOptions(requests=40000, seed=1)).models["dsv31"]
    assert res["tpot_slo_met"]
    fewer = {**plan, "placements": [dict(p, count=p["count"] - 1) if p["role"] == "decode" else p
                                    for p in plan["placements"]]}
    res_fewer = simulate(inst, Plan.from_dict(fewer), SimOptions(requests=40000, seed=1)).models["dsv31"]
    assert not res_fewer["tpot_slo_met"]


def test_percentile_statistic_is_stricter() -> None:
    inst = _paper_under_load()
    prof = inst.profile("dsv31", "decode", "h200", 8)
    assert isinstance(prof, pdopt.instance.DecodeProfile)
    w = inst.workloads["dsv31"]
    mean_rate = decode_rate_under_load(prof.tpot_by_batch, w, 60)[0]
    p90 = w.model_copy(update={"tpot": w.tpot.model_copy(update={"statistic": "p90"})})
    assert decode_rate_under_load(prof.tpot_by_batch, p90, 60)[0] < mean_rate


def test_memory_bound_decode_says_so() -> None:
    """BLOOM-176B on 8 x H100-80GB: 0.9 x 640 GB - 352 GB of weights = 224 GB of KV cache; a request holds
    (1,024 + 128) tokens x 4,014,080 B = 4.62 GB, so at most 48 run, below the 56 the 60 ms TPOT target allows."""
    inst = pdopt.load_instance(EXAMPLE)
    shape = next(s for s in pdopt.capacity_table(inst).for_role("bloom_176b", "decode") if s.gpu_type == "h100_80gb")
    assert shape.binding == "kv_memory"
    assert shape.detail["batch"] == 48 and shape.detail["batch_cap"] == 48
    a100 = next(s for s in pdopt.capacity_table(inst).for_role("bloom_176b", "decode") if s.gpu_type == "a100_80gb")
    assert a100.binding == "tpot_target" and a100.detail["batch"] == 21


def test_kv_cache_too_small_for_one_request_skips_the_shape(tmp_path: Path) -> None:
    doc = yaml.safe_load(PAPER.read_text())
    doc["models"]["dsv31"]["architecture"]["num_parameters_billion"] = 1100.0  # 1 byte each: 1128 x 0.9 - 1100 < 0
    inst = instance_from_dict(doc, PAPER.parent)
    table = pdopt.capacity_table(inst)
    assert not table.for_role("dsv31", "decode")
    assert any("KV cache" in s.reason for s in table.skipped if s.role == "decode")

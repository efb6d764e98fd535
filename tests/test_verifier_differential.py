"""The verifier's capacities against the planner's, shape by shape, on every bundled instance.

The verifier recomputes per-instance capacities on its own (pdopt/verifier/capacity.py) precisely so that it does
not share the planner's bugs; this test is where the two independent implementations meet. A disagreement means
a bug in one of them (or a semantic drift between them), and would otherwise show up only as a plan of pdopt's
own that the verifier rejects, or worse, a wrong plan that both accept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pdopt import solve
from pdopt.instance import Instance
from pdopt.io import instance_from_dict, load_instance
from pdopt.perf.capacity import capacity_table
from pdopt.verifier import format_violations, recompute_shape, verify
from pdopt.verifier.fleet import AGGREGATED_TOLERANCE
from tests.conftest import instance_files

INSTANCES = Path(__file__).resolve().parents[1] / "instances"
FILES = instance_files()

Key = tuple[str, str, str, int, str]


def _assert_agree(inst: Instance) -> None:
    """Every profile (every shape and variant) of the instance: usable shapes agree on capacity_rps within a
    relative 1e-6 (aggregated shapes: within AGGREGATED_TOLERANCE, two implementations of one numerical
    analysis); shapes the table skips (or leaves out: no workload) are unusable or absent for the verifier.
    For pooled (``ggc``) prefill the table's capacity_rps is the single-instance (c = 1) capacity, which is what
    recompute_shape returns; the pooled capacity of a group is compared by the shape check itself."""
    table = capacity_table(inst)
    usable = {(s.model, s.role, s.gpu_type, s.gpus_per_instance, s.variant): s for s in table.shapes}
    skipped = {(s.model, s.role, s.gpu_type, s.gpus_per_instance, s.variant): s.reason for s in table.skipped}
    assert not set(usable) & set(skipped)
    for prof in inst.profiles:
        key: Key = (prof.model, prof.role, prof.gpu_type, prof.gpus_per_instance, prof.variant)
        mine = recompute_shape(inst, *key)
        if key in usable:
            assert mine is not None and mine.unusable is None, (key, mine)
            rel = AGGREGATED_TOLERANCE if prof.role == "aggregated" else 1e-6  # see AGGREGATED_TOLERANCE
            assert mine.capacity_rps == pytest.approx(usable[key].capacity_rps, rel=rel), key
        else:
            why = skipped.get(key, "left out of the table: the model has no workload")
            assert mine is None or mine.unusable is not None, (key, why, mine)
    assert set(usable) | set(skipped) <= {(p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant)
                                          for p in inst.profiles}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(INSTANCES)))
def test_verifier_capacities_match_the_capacity_table(path: Path) -> None:
    """How the expected values are obtained: live, from the planner's own ``pdopt.perf.capacity.capacity_table`` on
    the same instance file; nothing is stored, so the test follows both implementations as they change."""
    _assert_agree(load_instance(path))


def test_the_comparison_covers_usable_and_skipped_shapes() -> None:
    """The bundled instances exercise both branches above, and enough shapes to mean something."""
    usable = skipped = 0
    for path in FILES:
        table = capacity_table(load_instance(path))
        usable += len(table.shapes)
        skipped += len(table.skipped)
    assert len(FILES) >= 10 and usable >= 50 and skipped >= 3


def _transfer_variant(nic_gbps: float) -> Instance:
    """network-spine with the transfer time in TTFT (tests/test_network.py derives it): client I/O 0.05 s plus
    1 Gbit of KV cache over the instance's NIC; at 1 Gbit/s GPU b's prefill becomes unusable."""
    doc = yaml.safe_load((INSTANCES / "tiny" / "network-spine.yaml").read_text())
    doc["network"]["client_io_s"] = 0.05
    for gpu in doc["gpu_types"].values():
        gpu["nic_gbps_per_gpu"] = nic_gbps
    return instance_from_dict(doc)


@pytest.mark.parametrize("nic_gbps", [100.0, 2.0, 1.0])
def test_transfer_time_enters_the_verifiers_ttft(nic_gbps: float) -> None:
    """No bundled instance sets ``network.client_io_s``, so the comparison above cannot see the transfer time:
    here the same comparison on the spine with it, and pdopt's plan verifies clean (it did not when the verifier
    used ``ttft_overhead_s`` alone: capacity_mismatch on every prefill placement)."""
    inst = _transfer_variant(nic_gbps)
    _assert_agree(inst)
    a = recompute_shape(inst, "m", "prefill", "a", 1)
    assert a is not None and a.capacity_rps == pytest.approx(6 - 1 / (1.25 - 0.05 - 1 / nic_gbps))
    b = recompute_shape(inst, "m", "prefill", "b", 1)
    assert b is not None and (b.unusable is None) is (nic_gbps > 1.0)
    plan = solve(inst).to_dict()
    assert verify(inst, plan) == [], format_violations(verify(inst, plan))


def _calibrated_variant(case: str) -> Instance:
    """The spine without its network, prefill on GPU a calibrated to a measured TTFT sweep (``gg1``)."""
    doc = yaml.safe_load((INSTANCES / "tiny" / "network-spine.yaml").read_text())
    del doc["network"]
    doc["workloads"]["m"]["queue_model"] = "gg1"
    prof = doc["profiles"][0]
    prof["measured_ttft"] = [{"request_rate_rps": r, "ttft_mean_s": 0.25 + 1 / (6 - r)} for r in (1, 2, 3, 4)]
    if case == "one_rate":  # a fit needs two distinct rates or more
        prof["measured_ttft"] = prof["measured_ttft"][:1]
    elif case == "cached_beyond_benchmark":  # half the input cached: 500 tokens computed, benchmarked 400-800,
        prof["max_throughput_by_input"] = [{"input_tokens": 400, "max_throughput_tok_per_s": 6000},  # but the fit
                                           {"input_tokens": 800, "max_throughput_tok_per_s": 6000}]  # needs X(1000)
        doc["workloads"]["m"]["prefix_cache_hit_rate"] = 0.5
    return instance_from_dict(doc)


@pytest.mark.parametrize("case", ["fit", "one_rate", "cached_beyond_benchmark"])
def test_calibrated_prefill_agrees(case: str) -> None:
    """G/G/1 calibrated to a TTFT sweep: the same capacity when the fit works; unusable for both (not an
    exception, not a capacity the planner refuses) when it cannot be made."""
    inst = _calibrated_variant(case)
    _assert_agree(inst)
    a = recompute_shape(inst, "m", "prefill", "a", 1)
    assert a is not None and (a.unusable is None) is (case == "fit")

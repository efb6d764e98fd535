"""Every numeric field of the instance format has a finite range (pdopt.instance.base.RANGES): NaN, infinities,
negative, zero where the range excludes it, and huge values are refused naming the field, the value and the
range, before anything reaches the solver. The test finds each field in a document that holds every field at
least once, and fails when the schema has a numeric field without a range or without a case here."""

from __future__ import annotations

import copy
import math
import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from pdopt.errors import InputError
from pdopt.instance import DecodeProfile, Instance, PrefillProfile
from pdopt.instance.base import RANGES
from pdopt.io import instance_from_dict

NUMERIC = (int, float)


def _numeric_fields(cls: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Names of the fields holding numbers (alone, optional, in a list or as a mapping's values), recursively."""
    out: set[str] = set()
    if cls in seen:
        return out
    seen.add(cls)
    for name, field in cls.model_fields.items():
        stack: list[Any] = [field.annotation]
        while stack:
            t = stack.pop()
            origin = typing.get_origin(t)
            if origin is typing.Annotated:
                stack.append(typing.get_args(t)[0])
            elif origin in (typing.Union, types.UnionType, list, tuple, dict):
                args = typing.get_args(t)
                stack.extend(args[1:] if origin is dict else args)
            elif isinstance(t, type) and issubclass(t, BaseModel):
                out |= _numeric_fields(t, seen)
            elif t in NUMERIC and t is not bool:
                out.add(name)
    return out


PROVENANCE_ONLY = {"generated_by"}
"""Fields whose numbers record where an instance came from (the generator's parameters) and are never used."""

SCHEMA_FIELDS = (_numeric_fields(Instance, set()) | _numeric_fields(PrefillProfile, set())
                 | _numeric_fields(DecodeProfile, set())) - PROVENANCE_ONLY


def rich_doc() -> dict[str, Any]:
    """A valid instance that holds every numeric field of the format at least once."""
    return {
        "name": "rich",
        "description": "every numeric field of the format, at least once",
        "gpu_types": {"g": {"memory_gb": 80.0, "price_usd_per_gpu_hour": 2.0, "max_gpus": 64,
                            "nic_gbps_per_gpu": 100.0,
                            "spec": {"catalog": "H100-SXM-80GB", "hbm_bandwidth_gb_per_s": 3000.0,
                                     "dense_tflops": 900.0, "fp8_dense_tflops": 1800.0, "intra_node_gb_per_s": 400.0,
                                     "inter_node_gb_per_s": 50.0}}},
        "node_pools": {
            "p0": {"gpu_type": "g", "gpus_per_node": 8, "node_count": 4, "price_usd_per_node_hour": 16.0,
                   "activation_cost_usd_per_hour": 0.5, "domain": "d0",
                   "purchase": {"reserved": {"price_usd_per_node_hour": 10.0, "upfront_usd_per_unit": 1000.0,
                                             "term_hours": 8760.0, "max_units": 2, "source": "assumed"},
                                "spot": {"price_usd_per_node_hour": 5.0, "available_units": 1,
                                         "available_by_period": {"night": 2}, "loss_share": 0.5,
                                         "survive_fraction": 0.8, "source": "assumed"}}},
            "p1": {"gpu_type": "g", "gpus_per_node": 8, "node_count": 4, "domain": "d1"}},
        "network": {"links": [{"a": "d0", "b": "d1", "bandwidth_gbps": 400.0, "latency_ms": 0.1}],
                    "client_io_s": 0.01, "routing": "shortest_path"},
        "resilience": {"domain_loss_fraction": 0.5},
        "limits": {"budget_usd_per_hour": 1000.0},
        "horizon": {"periods": [{"name": "night", "hours": 12.0}, {"name": "day", "hours": 12.0}],
                    "start_cost_usd": 1.0, "min_uptime_h": 2.0, "lead_time_min": 5.0},
        "shape_search": {"models": {"b": {"tp": [2], "ep": [2]}}, "time_budget_s": 60.0, "batches": [1, 8],
                         "roofline": {"compute_efficiency": 0.5, "memory_efficiency": 0.8, "network_efficiency": 0.7,
                                      "step_overhead_ms": 2.0, "collective_latency_us": 10.0}},
        "options": {"pooled_gain_epsilon": 1e-3, "pooled_max_steps": 8, "kv_usable_fraction": 0.9},
        "models": {
            "a": {"kv_bytes_per_token": 1.0e5, "weights_gb": 10.0},
            "b": {"architecture": {"num_layers": 32, "num_kv_heads": 8, "head_dim": 128,
                                   "num_parameters_billion": 8.0, "bytes_per_parameter": 2.0,
                                   "kv_bytes_per_element": 2.0, "hidden_size": 4096, "num_attention_heads": 32,
                                   "num_experts": 8, "experts_per_token": 2, "expert_parameters_billion": 6.0}}},
        "workloads": {
            "a": {"demand": {"requests_per_s": 2.0}, "input_tokens_mean": 1000.0, "output_tokens_mean": 100.0,
                  "ttft": {"target_s": 2.0, "statistic": "mean"}, "tpot": {"target_ms": 50.0, "statistic": "mean"},
                  "ttft_overhead_s": 0.05,
                  "prefix_cache_hit_rate": 0.1, "service_scv": 1.0, "arrival_scv": 1.0, "queue_model": "gg1",
                  "spare_instances": {"decode": 1},
                  "input_length_distribution": {"lengths": [500.0, 1500.0], "weights": [1.0, 1.0]},
                  "by_period": {"night": {"demand": {"requests_per_s": 1.0}, "arrival_scv": 2.0}}},
            "b": {"demand": {"tokens_per_min": 60000.0}, "input_tokens_mean": 1000.0, "output_tokens_mean": 100.0,
                  "ttft": {"target_s": 2.0}, "tpot": {"target_ms": 50.0}}},
        "profiles": [
            {"model": m, "role": "prefill", "gpu_type": "g", "gpus_per_instance": 2,
             "estimate": {"estimator": "roofline", "version": "1", "inputs": {"efficiency": 0.5}},
             "max_throughput_by_input": [{"input_tokens": 100.0, "max_throughput_tok_per_s": 8000.0},
                                         {"input_tokens": 4000.0, "max_throughput_tok_per_s": 12000.0}],
             **({"measured_ttft": [{"request_rate_rps": 1.0, "ttft_mean_s": 0.2},
                                   {"request_rate_rps": 3.0, "ttft_mean_s": 0.3},
                                   {"request_rate_rps": 5.0, "ttft_mean_s": 0.5}]} if m == "a" else {})}
            for m in ("a", "b")] + [
            {"model": m, "role": "decode", "gpu_type": "g", "gpus_per_instance": 2, "input_tokens": 1000.0,
             "output_tokens": 100.0, "tpot_by_batch": [{"batch": 1, "tpot_ms": 10.0}, {"batch": 64, "tpot_ms": 40.0}],
             **({"measured_tpot": [{"mean_batch": 30.0, "tpot_mean_ms": 25.0},
                                   {"request_rate_rps": 1.0, "tpot_mean_ms": 20.0, "output_tokens_mean": 100.0}]}
                if m == "a" else {"load_correction": {"factor": 1.05, "join_cost_ms": 0.5, "source": "stated"}})}
            for m in ("a", "b")] + [
            {"model": "a", "role": "aggregated", "gpu_type": "g", "gpus_per_instance": 2, "token_budget": 2048,
             "max_batch": 128, "kv_tokens": 200000,
             "iteration": {"overhead_ms": 20.0, "per_prefill_token_ms": 0.05, "prefill_quadratic_ms": 1e-6,
                           "per_context_token_ms": 1e-4, "per_decode_seq_ms": 0.1},
             "measured_runs": [{"request_rate_rps": 1.0, "ttft_mean_s": 0.1, "tpot_mean_ms": 25.0}]}],
    }


def _paths(doc: Any, field: str, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in the document to a key named ``field``."""
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == field:
                out.append((*path, k))
            out += _paths(v, field, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, field, (*path, i))
    return out


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for k in path[:-1]:
        node = node[k]
    old = node[path[-1]]
    if isinstance(old, list):
        value = [value, *old[1:]]
    elif isinstance(old, dict):
        value = {next(iter(old)): value}
    node[path[-1]] = value
    return out


def test_the_rich_document_is_valid_and_holds_every_field() -> None:
    instance_from_dict(rich_doc())
    assert {f for f in SCHEMA_FIELDS if not _paths(rich_doc(), f)} == set()


def test_every_numeric_field_has_a_range() -> None:
    assert SCHEMA_FIELDS - set(RANGES) == set()
    assert set(RANGES) - SCHEMA_FIELDS == set()  # no stale entry


def _bad_values(field: str) -> list[Any]:
    lo, hi, _ = RANGES[field]
    vals: list[Any] = [math.nan, math.inf, -math.inf, hi * 10 + 1, 1e308, -1.0]
    if lo > 0:
        vals.append(0.0)
    if isinstance(hi, int) or float(hi).is_integer():
        vals.append(10**400)
    return vals


CASES = [(f, v) for f in sorted(RANGES) for v in _bad_values(f)]


@pytest.mark.parametrize(("field", "value"), CASES, ids=[f"{f}={v!r}"[:40] for f, v in CASES])
def test_out_of_range_values_are_refused(field: str, value: Any) -> None:
    doc = _set(rich_doc(), _paths(rich_doc(), field)[0], value)
    with pytest.raises(InputError) as err:
        instance_from_dict(doc)
    text = str(err.value)
    assert field in text, text
    assert "Traceback" not in text and text.count("\n") < 20, text


@pytest.mark.parametrize("field", sorted(RANGES))
def test_the_largest_value_in_range_is_read(field: str) -> None:
    """At the top of its range a value is not refused for its size (it may still break a cross-field rule, such
    as weights larger than the GPU memory, which is a different message)."""
    hi = RANGES[field][1]
    doc = _set(rich_doc(), _paths(rich_doc(), field)[0], type(_first(rich_doc(), field))(hi))
    try:
        instance_from_dict(doc)
    except InputError as exc:
        assert "outside the range" not in str(exc), str(exc)


def _first(doc: dict[str, Any], field: str) -> Any:
    node: Any = doc
    for k in _paths(doc, field)[0]:
        node = node[k]
    if isinstance(node, list):
        return node[0]
    if isinstance(node, dict):
        return next(iter(node.values()))
    return node


def test_docs_print_the_ranges() -> None:
    from pathlib import Path

    from pdopt.instance.base import ranges_markdown

    page = (Path(__file__).resolve().parents[1] / "docs" / "instance-format.md").read_text()
    section = page.partition("<!-- ranges:start -->\n")[2].partition("\n<!-- ranges:end -->")[0]
    assert section == ranges_markdown(), "regenerate the table from pdopt.instance.base.ranges_markdown()"

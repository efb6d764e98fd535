"""Demand derived from a trace (pdopt/io/demand_trace.py): the rate per window at a percentile, the SCV within
windows and the lengths, period by period, on traces whose answers are counted by hand; bad input names the field."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import pdopt
from pdopt.errors import InputError
from pdopt.io import instance_from_dict
from pdopt.io.demand_trace import trace_rate
from pdopt.io.traces import Trace

ROOT = Path(__file__).resolve().parent.parent
TWO = ROOT / "instances" / "tiny" / "two-periods.yaml"


def _trace(times: list[float], lin: float = 1000.0, lout: float = 100.0) -> Trace:
    n = len(times)
    return Trace(np.array(times), np.full(n, lin), np.full(n, lout), "hand")


def test_rate_is_the_percentile_of_window_rates() -> None:
    """Windows of 10 s over [0, 40): 1, 3, 2 and 6 requests, rates 0.1, 0.3, 0.2, 0.6 req/s. numpy's linear
    percentile of the sorted rates (0.1, 0.2, 0.3, 0.6): p50 = 0.25, p100 = 0.6, p75 = 0.3 + 0.25 x 0.3 = 0.375."""
    times = [5.0, 11.0, 12.0, 13.0, 25.0, 26.0, 30.5, 31.0, 32.0, 33.0, 34.0, 35.0]
    tr = _trace(times)
    assert trace_rate(tr, 0.0, 40.0, 10.0, 50).rate_rps == pytest.approx(0.25)
    assert trace_rate(tr, 0.0, 40.0, 10.0, 100).rate_rps == pytest.approx(0.6)
    assert trace_rate(tr, 0.0, 40.0, 10.0, 75).rate_rps == pytest.approx(0.375)
    r = trace_rate(tr, 0.0, 45.0, 10.0, 100)  # a last partial window is dropped
    assert (r.windows, r.requests, r.mean_rps) == (4, 12, pytest.approx(12 / 40))
    with pytest.raises(ValueError, match="no whole window"):
        trace_rate(tr, 0.0, 5.0, 10.0, 95)


def test_scv_within_windows_of_a_regular_stream_is_zero() -> None:
    """Evenly spaced arrivals whose spacing changes between windows: every gap equals its window's mean gap, so
    the SCV within windows is 0, while the whole-trace SCV is not."""
    times = list(np.arange(0.0, 10.0, 1.0)) + list(np.arange(10.0, 20.0, 0.25))
    r = trace_rate(_trace(times), 0.0, 20.0, 10.0, 100)
    assert r.arrival_scv == pytest.approx(0.0, abs=1e-12)
    assert r.rate_rps == pytest.approx(4.0)


def _doc_with_trace(tmp_path: Path, times: list[float], spec: dict[str, Any]) -> dict[str, Any]:
    start = datetime(2023, 11, 16, 18, 0, 0)
    (tmp_path / "t.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(
        f"{(start + timedelta(seconds=t)).strftime('%Y-%m-%d %H:%M:%S.%f')},1000,{100 + 20 * (t >= 30)}\n"
        for t in times))
    doc: dict[str, Any] = yaml.safe_load(TWO.read_text())
    wl = doc["workloads"]["llm"]
    del wl["by_period"], wl["demand"]
    wl["demand_trace"] = {"trace": "t.csv", **spec}
    return doc


def test_periods_take_their_seconds_of_the_trace(tmp_path: Path) -> None:
    """Two 12-hour periods at 2.5 trace seconds per hour: night = seconds [0, 30), day = [30, 60). Night: 3
    windows of 10 s with 2, 2, 3 requests; day: 5, 6, 8. p100 rates 0.3 and 0.8 req/s. The day's outputs are 120
    tokens (the file says so from second 30), the night's 100."""
    night = [0.0, 6.0, 11.0, 16.0, 21.0, 24.0, 27.0]  # a trace's seconds count from its first request
    day = [30.0 + 2 * k for k in range(5)] + [40.0 + 1.5 * k for k in range(6)] + [50.0 + k for k in range(8)]
    doc = _doc_with_trace(tmp_path, night + day + [60.5],  # the trace ends after the day's last window
                          {"window_s": 10, "percentile": 100, "trace_s_per_hour": 2.5})
    inst = instance_from_dict(doc, tmp_path)
    n, d = inst.period_instance("night").workloads["llm"], inst.period_instance("day").workloads["llm"]
    assert n.demand_rps() == pytest.approx(0.3) and d.demand_rps() == pytest.approx(0.8)
    assert n.output_tokens_mean == pytest.approx(100.0) and d.output_tokens_mean == pytest.approx(120.0)
    assert "t.csv seconds [30, 60): p100 of 3 windows of 10 s (19 requests" in str(d.demand.source)
    assert inst.workloads["llm"].demand_rps() == pytest.approx(0.8)  # the workload's own: the peak period's
    assert n.arrival_scv is not None and d.arrival_scv is not None
    plan = pdopt.plan_horizon(inst)
    assert plan.has_plan and pdopt.verify(inst, plan.to_dict()) == []
    again = instance_from_dict(inst.model_dump(mode="json"), tmp_path / "elsewhere")  # the dump needs no trace
    assert again.period_instance("day").workloads["llm"].demand_rps() == pytest.approx(0.8)


@pytest.mark.parametrize(("spec", "message"), [
    ({"window_s": 0, "percentile": 95}, r"demand_trace\.window_s: 0 is outside \(0, 86400\]"),
    ({"window_s": 10, "percentile": 101}, r"demand_trace\.percentile: 101 is outside \[0, 100\]"),
    ({"window_s": "10", "percentile": 95}, r"demand_trace\.window_s: expected a number, got '10'"),
    ({"window_s": 10, "percentile": 95, "every": 3}, r"demand_trace\.every: unknown key"),
    ({"window_s": 10, "percentile": 95, "trace_s_per_hour": 100}, r"the horizon needs trace seconds \[0, 2400\)"),
    ({"window_s": 10, "percentile": 0, "trace_s_per_hour": 2.5}, r"period day: the p0 rate .* \[30, 60\) is 0"),
    ({"window_s": 10, "percentile": 95, "lengths": "yes"}, r"demand_trace\.lengths: expected true or false"),
    ({"window_s": 10, "percentile": 95, "trace": "../t.csv"}, r"leaves the instance's folder"),
])
def test_bad_demand_traces_name_the_field(tmp_path: Path, spec: dict[str, Any], message: str) -> None:
    times = [0.0, 6.0, 11.0, 16.0, 21.0, 24.0, 27.0, 30.0, 31.0, 59.0]  # day: 2, 0 requests in its windows
    base = tmp_path / "inst"
    base.mkdir()
    doc = _doc_with_trace(base, times, {"trace_s_per_hour": 2.5, **spec})
    with pytest.raises(InputError, match=message):
        instance_from_dict(doc, base)


def test_a_period_stated_twice_is_refused(tmp_path: Path) -> None:
    doc = _doc_with_trace(tmp_path, [1.0, 6.0, 11.0, 16.0, 21.0, 24.0, 27.0, 30.0, 45.0, 59.0],
                          {"window_s": 10, "percentile": 95, "trace_s_per_hour": 2.5})
    doc["workloads"]["llm"]["by_period"] = {"day": {"demand": {"requests_per_s": 1.0}}}
    with pytest.raises(InputError, match=r"workloads\.llm\.by_period\.day\.demand: stated as well as demand_trace"):
        instance_from_dict(doc, tmp_path)


def test_by_period_must_be_a_mapping(tmp_path: Path) -> None:
    doc = _doc_with_trace(tmp_path, [0.0, 6.0, 11.0, 16.0, 21.0, 24.0, 27.0, 30.0, 31.0, 59.0, 61.0],
                          {"window_s": 10, "percentile": 95, "trace_s_per_hour": 2.5})
    doc["workloads"]["llm"]["by_period"] = None
    with pytest.raises(InputError, match=r"workloads\.llm\.by_period: expected a mapping of period names"):
        instance_from_dict(doc, tmp_path)


def test_without_a_horizon_the_whole_trace_is_the_workload(tmp_path: Path) -> None:
    """No horizon: the whole trace (seconds [0, 61.5]: 6 whole windows of 10 s with 2, 2, 3, 2, 0, 1 requests,
    p100 0.3 req/s) gives the workload's demand, SCV and lengths: the mean over all its 11 requests, 7 with 100
    output tokens (before second 30) and 4 with 120: 1,180 / 11 = 107.27."""
    times = [0.0, 6.0, 11.0, 16.0, 21.0, 24.0, 27.0, 30.0, 31.0, 59.0, 61.5]
    doc = _doc_with_trace(tmp_path, times, {"window_s": 10, "percentile": 100})
    del doc["horizon"]
    inst = instance_from_dict(doc, tmp_path)
    w = inst.workloads["llm"]
    assert w.demand_rps() == pytest.approx(0.3)
    assert w.output_tokens_mean == pytest.approx(1180 / 11)
    assert "t.csv seconds [0, 61.5)" in str(w.demand.source)

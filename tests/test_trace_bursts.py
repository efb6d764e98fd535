"""Burstiness measures of a trace (pdopt/io/traces.py): counts per window, the index of dispersion of counts and the
inter-arrival SCV within windows, against hand-worked counts, Poisson streams (fixed seeds, bands of four standard
errors) and the Azure traces' figures printed in docs/horizon.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pdopt.io.traces import Trace, dispersion_index, read_trace, window_counts, within_window_scv

AZURE = Path(__file__).resolve().parents[2] / "shared" / "data" / "azure-llm-inference-2023"


def _trace(times: list[float] | np.ndarray) -> Trace:
    t = np.asarray(times, dtype=float)
    ones = np.ones_like(t)
    return Trace(t, ones, ones, "test")


def test_counts_by_hand() -> None:
    """Arrivals 0, 0.5, 1.2, 1.4, 3.0, 3.1, 4.5 s in 1-s windows over the whole span (4 windows; the last partial
    one, holding 4.5, dropped): [0,1) 2, [1,2) 2, [2,3) 0, [3,4) 2. Mean 1.5, sample variance
    (3 x 0.25 + 2.25) / 3 = 1.0, so I = 1.0 / 1.5 = 0.667."""
    trace = _trace([0.0, 0.5, 1.2, 1.4, 3.0, 3.1, 4.5])
    assert list(window_counts(trace, 1.0)) == [2.0, 2.0, 0.0, 2.0]
    assert dispersion_index(trace, 1.0) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="window_s must be positive"):
        window_counts(trace, 0.0)


def test_poisson_stream_is_neither_dispersed_nor_bursty() -> None:
    """A Poisson stream (rate 5/s, 20,000 requests, seed 7): I(10 s) within 1 +/- 4 x sqrt(2 / (n - 1)) (the
    sample index's standard error, n windows); the SCV within windows within 1 +/- 0.1 (its standard error is
    about sqrt(8 / 20,000) = 0.02)."""
    rng = np.random.default_rng(7)
    trace = _trace(np.cumsum(rng.exponential(1 / 5.0, 20_000)))
    n = len(window_counts(trace, 10.0))
    assert abs(dispersion_index(trace, 10.0) - 1.0) < 4 * np.sqrt(2 / (n - 1))
    assert abs(within_window_scv(trace, 10.0) - 1.0) < 0.1


def test_a_changing_rate_is_dispersion_not_burstiness() -> None:
    """Poisson at 2/s for 2,000 s then 8/s for 2,000 s (seed 11): counts per minute are over-dispersed (I(60 s)
    near (60 x 3)^2 / (60 x 5) + 1 = 109 for two equal halves), while within each minute the stream is Poisson."""
    rng = np.random.default_rng(11)
    slow = np.cumsum(rng.exponential(1 / 2.0, 4_000))
    slow = slow[slow < 2000.0]
    fast = 2000.0 + np.cumsum(rng.exponential(1 / 8.0, 16_000))
    trace = _trace(np.concatenate([slow, fast[fast < 4000.0]]))
    assert dispersion_index(trace, 60.0) > 50.0
    assert abs(within_window_scv(trace, 60.0) - 1.0) < 0.1


@pytest.mark.skipif(not AZURE.exists(), reason="../shared/data is not beside the checkout")
def test_azure_figures_in_the_docs() -> None:
    """docs/horizon.md's table (tests/bench/trace_bursts.py): the conversation trace has inter-arrival SCV 1.20
    but counts per minute over-dispersed 16.4-fold, and is Poisson within 10-s windows (SCV 1.01); the code
    trace stays bursty at every scale (SCV within 1-s windows 2.16)."""
    conv = read_trace(AZURE / "AzureLLMInferenceTrace_conv.csv")
    code = read_trace(AZURE / "AzureLLMInferenceTrace_code.csv")
    assert dispersion_index(conv, 60.0) == pytest.approx(16.41, abs=0.01)
    assert within_window_scv(conv, 10.0) == pytest.approx(1.01, abs=0.01)
    assert dispersion_index(code, 60.0) == pytest.approx(166.89, abs=0.01)
    assert within_window_scv(code, 1.0) == pytest.approx(2.16, abs=0.01)

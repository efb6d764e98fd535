"""The simulated traffic: arrival times, the model of each request, and its input and output lengths.

Generated traffic: per model a stream at the rate the plan serves, Poisson, or a gamma renewal stream with the
workload's arrival SCV where the capacity model assumes one (:func:`pdopt.sim.assumptions.arrival_scv`); with
every stream Poisson, one Poisson stream of the total rate whose requests pick their model in proportion to the
rates (the same process, drawn as before). Replayed traffic: the trace, per model, rescaled in time as
``trace_rate`` says. Lengths as ``lengths`` says (:class:`pdopt.sim.options.SimOptions`).

A trace replayed with its own lengths is checked against each workload: a mean input or output length that
differs from the workload's by more than ``length_tolerance`` (relative) gives a warning, since the plan was
sized for the workload's lengths; ``lengths: trace_scaled`` rescales each model's trace lengths so their means
are the workload's, keeping the trace's shape of the distribution.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pdopt.instance import Instance
from pdopt.io.traces import Trace
from pdopt.sim.assumptions import arrival_scv, renewal_gaps
from pdopt.sim.options import SimOptions

FloatArray = npt.NDArray[np.float64]


def trace_length_warnings(instance: Instance, models: list[str], trace: Trace, tolerance: float) -> list[str]:
    """One warning per model whose workload means differ from the trace's by more than ``tolerance``."""
    out = []
    t_in, t_out = float(trace.input_tokens.mean()), float(trace.output_tokens.mean())
    for m in models:
        w = instance.workloads[m]
        for what, traced, planned in (("input", t_in, w.input_tokens_mean), ("output", t_out, w.output_tokens_mean)):
            if abs(traced - planned) > tolerance * planned:
                out.append(f"trace {trace.source}: mean {what} length {traced:,.0f} tokens differs from workload "
                           f"'{m}''s {planned:,.0f} by {traced / planned - 1:+.0%} (tolerance {tolerance:.0%}); the "
                           f"plan was sized for the workload's lengths (--lengths trace_scaled rescales the trace's "
                           f"lengths to the workload's means)")
    return out


def _generated(instance: Instance, models: list[str], rates: list[float], opts: SimOptions,
               rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    total = sum(rates)
    scvs = [arrival_scv(instance, m, opts) for m in models]
    if all(abs(s - 1.0) < 1e-12 for s in scvs):
        gaps = rng.exponential(1.0 / total, opts.requests)
        arrival = np.cumsum(gaps)
        model = rng.choice(len(models), size=opts.requests, p=np.array(rates) / total).astype(float)
        return arrival, model
    # each stream up to one common time horizon that holds at least `requests` arrivals in all (a count per
    # stream would cut the burstier ones short), then the first `requests` of the merged streams
    horizon = opts.requests / total
    streams = [np.empty(0) for _ in models]
    while True:
        for i, (rate, scv) in enumerate(zip(rates, scvs, strict=True)):
            while not len(streams[i]) or streams[i][-1] < horizon:
                start = streams[i][-1] if len(streams[i]) else 0.0
                chunk = renewal_gaps(rng, rate, scv, max(64, int(rate * horizon * 0.25)))
                streams[i] = np.concatenate([streams[i], start + np.cumsum(chunk)])
        if sum(int(np.count_nonzero(st <= horizon)) for st in streams) >= opts.requests:
            break
        horizon *= 1.5
    arrival = np.concatenate([st[st <= horizon] for st in streams])
    labels = np.concatenate([np.full(int(np.count_nonzero(st <= horizon)), float(i)) for i, st in enumerate(streams)])
    order = np.argsort(arrival, kind="stable")[: opts.requests]
    return arrival[order], labels[order]


def traffic(instance: Instance, models: list[str], rates: list[float], opts: SimOptions,
            rng: np.random.Generator, trace: Trace | None) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Arrival times, model index, input and output lengths, sorted by arrival."""
    if trace is None:
        arrival, model = _generated(instance, models, rates, opts, rng)
        lin = np.array([instance.workloads[m].input_tokens_mean for m in models])[model.astype(int)]
        lout = np.array([instance.workloads[m].output_tokens_mean for m in models])[model.astype(int)]
    else:
        own = opts.lengths in ("trace", "trace_scaled")
        parts = []
        for i, (m, rate) in enumerate(zip(models, rates, strict=True)):
            if opts.trace_rate == "workload":
                tr = trace.rescaled(rate)
            elif opts.trace_rate == "native":
                tr = trace
            else:
                tr = trace.rescaled(float(opts.trace_rate))
            w = instance.workloads[m]
            ins = tr.input_tokens if own else np.full(len(tr.arrival_s), w.input_tokens_mean)
            outs = tr.output_tokens if own else np.full(len(tr.arrival_s), w.output_tokens_mean)
            if opts.lengths == "trace_scaled":
                ins = ins * (w.input_tokens_mean / float(tr.input_tokens.mean()))
                outs = outs * (w.output_tokens_mean / float(tr.output_tokens.mean()))
            parts.append((tr.arrival_s, np.full(len(tr.arrival_s), float(i)), ins, outs))
        arrival = np.concatenate([p[0] for p in parts])
        order = np.argsort(arrival, kind="stable")[: opts.requests]
        model = np.concatenate([p[1] for p in parts])[order]
        lin = np.concatenate([p[2] for p in parts])[order]
        lout = np.concatenate([p[3] for p in parts])[order]
        arrival = arrival[order]
    if opts.lengths == "exponential":
        lin = np.maximum(1.0, np.round(rng.exponential(lin)))
        lout = np.maximum(1.0, np.round(rng.exponential(lout)))
    if opts.lengths == "workload":
        lin = lin.copy()
        for i, m in enumerate(models):
            dist = instance.workloads[m].input_length_distribution
            sel = model.astype(int) == i
            if dist is not None and sel.any():
                p = np.array(dist.weights) / sum(dist.weights)
                lin[sel] = rng.choice(np.array(dist.lengths), size=int(sel.sum()), p=p)
    return arrival, model, lin, lout

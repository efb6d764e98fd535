"""Discrete-event simulation of one aggregated engine: prefill and decode in one engine with chunked prefill.

The engine is the one docs/capacity.md states ("Aggregated instances: chunked prefill in one engine"), the one
:mod:`pdopt.perf.aggregated` analyses; its rules, exactly as simulated:

- Iterations run back to back while there is work; an idle engine starts an iteration at the next arrival.
  Requests that arrive at or before an iteration's start time (equal times included) are present at it.
- At the start of an iteration every decoding request takes one token of the budget K (``token_budget``). The
  K - B tokens left go, in arrival order, first to admitted prompts still prefilling (as many of each prompt's
  remaining tokens as fit), then to waiting prompts. A waiting prompt is admitted only when it gets tokens in
  this iteration, only while fewer than ``max_batch`` requests run (prefilling or decoding) and only if its
  reservation of L_in + L_out tokens fits in ``kv_tokens`` (held until it leaves). Admission is first come,
  first served: a waiting prompt that cannot be admitted blocks the ones behind it.
- The iteration lasts t = a + b P + c Q + d C + e B ms (:meth:`pdopt.instance.IterationModel.time_ms`): P the
  prompt tokens prefilled in it, Q the sum over its chunks of p (2 o + p) (a chunk of p tokens at offset o), C
  the context of the decoding requests (prompt L plus tokens generated so far: L + j at a request's j-th decode
  iteration), B the decoding requests. With prefix-cache hit rate h a prompt computes
  u = max(1, floor((1 - h) L + 1/2)) tokens, at offsets L - u to L (the cached part is not computed; a full hit
  still computes the last token), so that its chunks' Q sums to L^2 - (L - u)^2.
- At the iteration's end every decoding request emits a token and leaves once it has emitted L_out tokens in
  all (freeing its KV reservation); every prompt whose last chunk ran emits its first token (TTFT = end -
  arrival) and decodes from the next iteration on, or leaves at once when L_out = 1.
- Per request: TTFT (s), TPOT = (finish - first token) / (L_out - 1) ms (NaN when L_out = 1), finish time (s).

Event skipping: while no prompt is prefilling and none can be admitted (none waits, or the first waiting one is
blocked by the batch cap or the KV cache, which only a departure lifts), the iterations differ only in C, which
grows by B per iteration: their times form an arithmetic progression, t_i = t_0 + d B i, and the engine jumps
in closed form to the first boundary at or after the next arrival (which then joins at that boundary) or to the
next departure, whichever comes first. Iteration-by-iteration and skipped runs give the same outcomes (to
rounding: tests/test_sim_aggregated.py checks this against a plain reference).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pdopt.instance import IterationModel
from pdopt.sim.engine import FloatArray

STOP_CHECK_EVERY = 4096
"""Loop steps between two calls of the ``stop`` callback."""


@dataclass
class AggregatedResult:
    """What one aggregated engine measured (per request in arrival order; NaN where a request did not get there
    before the run stopped)."""

    ttft_s: FloatArray
    tpot_ms: FloatArray
    """(finish - first token) / (L_out - 1); NaN when L_out = 1."""
    finish_s: FloatArray
    admit_s: FloatArray
    """Start of the iteration that admitted the request (its first chunk): TTFT = (admit - arrival) + prefill."""
    iterations: int
    """Iterations run."""
    prefill_iterations: int
    """Iterations that carried prefill tokens."""
    busy_ms: float
    """Time the engine spent iterating."""
    decode_batch_area_ms: float
    """Integral over time of the decode batch B (divide by ``busy_ms`` for the time-average batch)."""
    decode_batch_sum: int
    """Sum over iterations of B (divide by ``iterations`` for the iteration-average batch)."""
    stopped: bool = False
    """``stop()`` ended the run before every request finished."""


def computed_tokens(prompt_tokens: int, prefix_hit_rate: float) -> int:
    """Prompt tokens prefill computes with prefix-cache hit rate h: max(1, floor((1 - h) L + 1/2))."""
    return max(1, math.floor((1.0 - prefix_hit_rate) * prompt_tokens + 0.5))


def _validate(token_budget: int, max_batch: int, kv_tokens: int, arrivals: list[float], lin: list[int],
              lout: list[int], prefix_hit_rate: float) -> None:
    if token_budget < 1 or max_batch < 1 or kv_tokens < 1:
        raise ValueError(f"token_budget {token_budget}, max_batch {max_batch} and kv_tokens {kv_tokens} must be "
                         "positive")
    if max_batch > token_budget:
        raise ValueError(f"max_batch {max_batch} exceeds token_budget {token_budget}: every decoding request takes "
                         "one token of the budget per iteration")
    if not 0.0 <= prefix_hit_rate < 1.0:
        raise ValueError(f"prefix_hit_rate {prefix_hit_rate} must lie in [0, 1)")
    if not len(arrivals) == len(lin) == len(lout):
        raise ValueError(f"arrivals ({len(arrivals)}), prompt_tokens ({len(lin)}) and output_tokens ({len(lout)}) "
                         "differ in length")
    for r, (x, y) in enumerate(zip(lin, lout, strict=True)):
        if x < 1 or y < 1:
            raise ValueError(f"request {r}: prompt_tokens {x} and output_tokens {y} must be at least 1")
        if x + y > kv_tokens:
            raise ValueError(f"request {r} can never be admitted: its context of {x} + {y} tokens exceeds "
                             f"kv_tokens {kv_tokens}")
    for r in range(1, len(arrivals)):
        if not arrivals[r] >= arrivals[r - 1]:
            raise ValueError(f"arrivals must be sorted: request {r} arrives at {arrivals[r]} s, before request "
                             f"{r - 1} at {arrivals[r - 1]} s")
    if arrivals and not (math.isfinite(arrivals[0]) and math.isfinite(arrivals[-1])):
        raise ValueError("arrivals must be finite")


def _iterations_to_reach(now: float, t0: float, g: float, target: float, most: int) -> int:
    """Smallest k in [1, most] with now + k t0 + g k (k - 1) / 2 >= target (``most`` when none is)."""

    def end(k: int) -> float:
        return now + k * t0 + g * (k * (k - 1) / 2.0)

    if end(most) < target:
        return most
    gap = target - now
    if g > 0.0:
        lin = t0 - g / 2.0
        k_real = (-lin + math.sqrt(lin * lin + 2.0 * g * gap)) / g
    elif t0 > 0.0:
        k_real = gap / t0
    else:
        return most
    k = min(max(1, math.ceil(k_real)), most)
    while k > 1 and end(k - 1) >= target:
        k -= 1
    while end(k) < target:
        k += 1
    return k


def simulate_aggregated(iteration: IterationModel, token_budget: int, max_batch: int, kv_tokens: int,
                        arrivals_s: npt.ArrayLike, prompt_tokens: npt.ArrayLike, output_tokens: npt.ArrayLike,
                        prefix_hit_rate: float = 0.0, stop: Callable[[], bool] | None = None) -> AggregatedResult:
    """Run one aggregated engine over requests sorted by arrival (module docstring) until all have finished, or
    until ``stop()`` says so (checked every 4,096 loop steps; the result is then marked ``stopped``).

    Raises ValueError for inconsistent inputs, among them a request whose L_in + L_out exceeds ``kv_tokens``
    (it could never be admitted)."""
    arr_s = [float(x) for x in np.asarray(arrivals_s, dtype=np.float64)]
    lin = [int(x) for x in np.asarray(prompt_tokens)]
    lout = [int(x) for x in np.asarray(output_tokens)]
    _validate(token_budget, max_batch, kv_tokens, arr_s, lin, lout, prefix_hit_rate)
    n = len(arr_s)
    arr = [x * 1000.0 for x in arr_s]
    comp = [computed_tokens(x, prefix_hit_rate) for x in lin]
    left = list(comp)
    """Prompt tokens still to compute."""
    first_ms = [math.nan] * n
    finish_ms = [math.nan] * n
    admit_ms = [math.nan] * n
    d_ctx = iteration.per_context_token_ms

    waiting: deque[int] = deque()
    prefilling: deque[int] = deque()
    decoding: list[tuple[int, int]] = []
    """Heap of (iterations completed when the request leaves, request)."""
    ctx_base = 0
    """Sum over decoding requests of L - s + 1 (s: index of its first decode iteration): C = ctx_base + B i."""
    kv_used = 0
    now = 0.0
    i = 0
    """Iterations completed (the index of the next one)."""
    nxt = 0
    prefill_its = 0
    busy = 0.0
    area = 0.0
    batch_sum = 0
    steps = 0
    stopped = False

    def leave(r: int, end: float) -> None:
        nonlocal kv_used
        finish_ms[r] = end
        kv_used -= lin[r] + lout[r]

    room = p_tok = q_sum = 0
    """The current iteration's prefill room left, prompt tokens and quadratic work Q."""
    done: list[int] = []
    """Prompts whose last chunk the current iteration runs."""

    def chunk(r: int) -> None:
        """Prompt r gets what room the iteration has left: p tokens at offset o, Q += p (2 o + p)."""
        nonlocal p_tok, q_sum, room
        p = min(room, left[r])
        o = lin[r] - left[r]
        q_sum += p * (2 * o + p)
        p_tok += p
        room -= p
        left[r] -= p
        if not left[r]:
            done.append(r)

    def departures(end: float) -> None:
        """Decoding requests whose last token the iteration just completed leave."""
        nonlocal ctx_base
        while decoding and decoding[0][0] == i:
            r = heapq.heappop(decoding)[1]
            ctx_base -= lin[r] - i + lout[r]  # L - s + 1, with s = i - (L_out - 1) its first decode iteration
            leave(r, end)

    while True:
        steps += 1
        if stop is not None and not steps % STOP_CHECK_EVERY and stop():
            stopped = True
            break
        while nxt < n and arr[nxt] <= now:
            waiting.append(nxt)
            nxt += 1
        batch = len(decoding)
        running = batch + len(prefilling)
        if not running and not waiting:
            if nxt == n:
                break
            now = arr[nxt]  # idle until the next arrival, which starts an iteration
            continue
        blocked = bool(waiting) and (running >= max_batch or kv_used + lin[waiting[0]] + lout[waiting[0]] > kv_tokens
                                     or batch >= token_budget)
        if not prefilling and (not waiting or blocked):
            # pure decode until the next departure (or, when nothing waits, the boundary the next arrival joins)
            most = decoding[0][0] - i
            t0 = iteration.time_ms(0.0, 0.0, float(ctx_base + batch * i), float(batch))
            g = d_ctx * batch
            k = most
            if not waiting and nxt < n:
                k = _iterations_to_reach(now, t0, g, arr[nxt], most)
            span = k * t0 + g * (k * (k - 1) / 2.0)
            now += span
            busy += span
            area += batch * span
            batch_sum += batch * k
            i += k
            departures(now)
            continue
        # a general iteration: decode tokens, then chunks to the prefilling prompts and admissions, in order
        room = token_budget - batch
        p_tok = q_sum = 0
        done.clear()
        for r in prefilling:
            if room <= 0:
                break
            chunk(r)
        while waiting and room > 0 and running < max_batch:
            r = waiting[0]
            if kv_used + lin[r] + lout[r] > kv_tokens:
                break
            waiting.popleft()
            kv_used += lin[r] + lout[r]
            running += 1
            admit_ms[r] = now
            prefilling.append(r)
            chunk(r)
        ctx = ctx_base + batch * i
        t = iteration.time_ms(float(p_tok), float(q_sum), float(ctx), float(batch))
        now += t
        busy += t
        area += batch * t
        batch_sum += batch
        prefill_its += 1
        i += 1
        departures(now)
        for r in done:
            prefilling.popleft()
            first_ms[r] = now
            if lout[r] == 1:
                leave(r, now)
            else:
                heapq.heappush(decoding, (i + lout[r] - 1, r))
                ctx_base += lin[r] - i + 1  # its j-th decode iteration (index i + j - 1) holds L + j
    return _result(arr, first_ms, finish_ms, admit_ms, lout, i, prefill_its, busy, area, batch_sum, stopped)


def _result(arr_ms: list[float], first_ms: list[float], finish_ms: list[float], admit_ms: list[float],
            lout: list[int], iterations: int, prefill_its: int, busy: float, area: float, batch_sum: int,
            stopped: bool) -> AggregatedResult:
    arr = np.array(arr_ms)
    first = np.array(first_ms)
    finish = np.array(finish_ms)
    steps = np.array(lout, dtype=np.float64) - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(steps > 0, (finish - first) / np.maximum(steps, 1.0), np.nan)
    return AggregatedResult(ttft_s=(first - arr) / 1000.0, tpot_ms=tpot, finish_s=finish / 1000.0,
                            admit_s=np.array(admit_ms) / 1000.0, iterations=iterations,
                            prefill_iterations=prefill_its, busy_ms=busy, decode_batch_area_ms=area,
                            decode_batch_sum=batch_sum, stopped=stopped)

"""Discrete-event simulation of a plan: prefill queues, P->D transfer, continuous-batching decode.

The simulation advances from event to event (arrival, prefill done, decode ready, decode batch change), never
token by token. Rules, chosen to match how P/D engines behave and stated so tests can check them:

- Prefill: each instance serves FCFS, one request at a time. Service time = L_in / X(L_in) x F, where X is the
  benchmarked max prefill throughput interpolated at the request's input length (clamped to the measured
  range: throughput is held constant beyond it) and F a factor with mean 1 and a chosen squared coefficient of
  variation (deterministic F = 1; exponential SCV 1; gamma or lognormal with any SCV).
- Transfer: the workload's ``ttft_overhead_s`` after prefill completes, the request is ready for decode.
- Decode: continuous batching. An instance runs iterations back to back while its batch is non-empty; an
  iteration with batch B lasts TPOT(B) (the benchmarked curve, linear between measured batches; below the
  smallest measured batch the smallest batch's TPOT, which over-states it). A ready request joins an idle
  instance at once, and a busy one at the first iteration boundary after it is ready, if a slot is free;
  otherwise it waits (FIFO) for a slot. Each admission may stall the instance: with ``join_stall_s`` = s, the
  iteration that follows a boundary at which a requests were admitted starts a x s later (the join cost of
  docs/capacity.md, "Decode calibration under load"; 0 by default). A request leaves after ``steps``
  iterations, steps = its output length rounded to an integer >= 1. The batch cap is the largest benchmarked
  batch or the KV-cache bound (memory x GPUs x usable fraction - weights) / (KV bytes per token x (L_in +
  L_out)), whichever is smaller.
- Metrics per request: TTFT = decode join - arrival (waiting for a decode slot counts), TPOT = decode time /
  steps, prefill sojourn = prefill end - arrival.

Between two events an instance's batch is constant, so after ``k`` iterations its time is t_b + k TPOT(B): the
next event of an instance is its earliest completion or the boundary at which a waiting request may join. A join
stall moves t_b forward by the stall at the admission boundary (the boundary stays at the event's time, the
iterations count from t_b), and the stall is counted at once in the instance's busy time and batch-time area, with
the batch that waits through it (the one just admitted), since the next event adds only the time after t_b.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pdopt.progress import done, report

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

"""``jsq`` (join the shortest queue, relative to capacity) is also called ``least_loaded``."""


@dataclass
class PrefillServer:
    """One prefill instance: a FCFS queue in front of one server."""

    model: int
    weight: float
    """Planned capacity (req/s) used to weight dispatch."""
    lengths: FloatArray
    throughputs: FloatArray
    queue: deque[int] = field(default_factory=deque)
    transfer_s: float | None = None
    """P->D transfer time of this instance's requests (network-derived); None: the model's overhead."""
    pool: int = 0
    """Under ``pooled`` dispatch, which of the model's pools (one FCFS queue each) the instance serves: all in
    pool 0 is one queue for the model; one pool per shape is the ``ggc`` model's pooling. An arrival picks a pool
    at random in proportion to the pools' planned capacity."""
    factor_row: int = 0
    """Row of the requests' service factors this instance draws from (a 2-D ``service_factor``: one row per
    service rule, :mod:`pdopt.sim.assumptions`)."""
    epochs: frozenset[int] | None = None
    """The epochs (periods of a horizon) in which the instance takes new requests; None: all. Outside them it
    finishes what it holds and takes nothing new."""
    epoch_weights: dict[int, float] | None = None
    """Dispatch weight per epoch (the capacity planned in that period); None or a missing epoch: ``weight``."""
    busy: bool = False
    busy_time: float = 0.0
    served: int = 0
    _cache: dict[float, float] = field(default_factory=dict)

    def base_service_s(self, input_tokens: float) -> float:
        """L_in / X(L_in), X interpolated linearly and clamped at the measured ends."""
        t = self._cache.get(input_tokens)
        if t is None:
            x = float(np.interp(input_tokens, self.lengths, self.throughputs))
            t = input_tokens / x
            self._cache[input_tokens] = t
        return t


@dataclass
class DecodeServer:
    """One decode instance under continuous batching."""

    model: int
    weight: float
    step_s: list[float]
    """step_s[b] = iteration time with batch b (index 0 unused)."""
    cap: int
    batch: list[tuple[int, int]] = field(default_factory=list)
    """Heap of (finish step, request)."""
    waiting: deque[int] = field(default_factory=deque)
    steps: int = 0
    t_b: float = 0.0
    """Time of the last boundary processed (or of the admission that started an idle instance)."""
    tau: float = 0.0
    k: int = 0
    """Iterations from t_b to the next scheduled event."""
    version: int = 0
    area: float = 0.0
    """Integral of the batch size over time."""
    busy_time: float = 0.0
    join_stall_s: float = 0.0
    """Stall of the next iteration per request admitted at a boundary (s); 0: joining costs nothing."""
    epochs: frozenset[int] | None = None
    """The epochs in which the instance takes new requests (None: all); outside them it finishes its batch and
    the requests already waiting for it."""
    epoch_weights: dict[int, float] | None = None
    """Dispatch weight per epoch (the capacity planned in that period); None or a missing epoch: ``weight``."""

    def stall(self, admitted: int) -> None:
        """Delay the next iteration by ``admitted`` x join_stall_s: t_b moves forward, and the stall is counted in
        busy time and in the area with the current batch (which includes the admitted requests)."""
        if admitted and self.join_stall_s > 0.0:
            delay = admitted * self.join_stall_s
            self.t_b += delay
            self.busy_time += delay
            self.area += len(self.batch) * delay

    def load(self) -> float:
        """Requests held (running and waiting) relative to capacity, for least-loaded dispatch."""
        return (len(self.batch) + len(self.waiting)) / self.weight


@dataclass
class RequestArrays:
    """Per-request inputs and outcomes (index = request id, in arrival order)."""

    model: IntArray
    arrival_s: FloatArray
    input_tokens: FloatArray
    decode_steps: IntArray
    service_factor: FloatArray
    """Per request, the factor F of its prefill service time: one row (1-D), or one row per service rule (2-D,
    rows x requests; a prefill instance reads its ``factor_row``)."""
    dispatch_u: FloatArray
    prefill_end_s: FloatArray = field(init=False)
    join_s: FloatArray = field(init=False)
    finish_s: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        self.prefill_end_s = np.full(n, np.nan)
        self.join_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)


class _Dispatcher:
    """Chooses an instance among a model's instances of one role."""

    def __init__(self, policy: str, weights: list[float]) -> None:
        self.policy = policy
        self.weights = weights
        total = sum(weights)
        self.cumulative = list(np.cumsum(weights) / total)
        self.current = [0.0] * len(weights)
        self.total = total
        self.equal = max(weights) == min(weights)
        self.counter = 0

    def leftover(self, u: float, k: int) -> float:
        """The uniform left after ``random`` picked ``k`` with ``u``: (u - F_{k-1}) / w_k, again uniform on [0, 1)
        and independent of the pick, so that a later random choice of the same request does not follow this
        one (prefill instance i would otherwise always pair with the same decode instances)."""
        lo = self.cumulative[k - 1] if k else 0.0
        hi = self.cumulative[k]
        return min(max((u - lo) / (hi - lo), 0.0), 1.0 - 1e-16) if hi > lo else u

    def pick_static(self, u: float) -> int:
        """Random (weighted by capacity, using the request's pre-drawn uniform) or smooth weighted round-robin."""
        n = len(self.weights)
        if self.policy == "random":
            return min(bisect.bisect_right(self.cumulative, u), n - 1)
        if self.equal:
            self.counter += 1
            return (self.counter - 1) % n
        cur, w = self.current, self.weights
        best = 0
        for i in range(n):
            cur[i] += w[i]
            if cur[i] > cur[best]:
                best = i
        cur[best] -= self.total
        return best


EV_PREFILL_DONE, EV_DECODE_READY, EV_DECODE = 0, 1, 2


@dataclass
class EngineResult:
    """What the engine measured."""

    requests: RequestArrays
    prefill: list[PrefillServer]
    decode: list[DecodeServer]
    makespan_s: float
    stopped: bool = False
    """The run was stopped before every request finished (an interruption): only finished requests count."""


def simulate_engine(
    req: RequestArrays,
    prefill: list[PrefillServer],
    decode: list[DecodeServer],
    overhead_s: list[float],
    prefill_policy: str | Sequence[str],
    decode_policy: str | Sequence[str],
    stop: Callable[[], bool] | None = None,
    epoch_starts: Sequence[float] = (),
) -> EngineResult:
    """Run the event loop over all requests (sorted by arrival) until every request has finished, or until
    ``stop()`` says so (checked every 4,096 events; the result is then marked ``stopped``). A policy is one for
    every model or one per model index.

    ``epoch_starts`` (ascending): the times at which a new epoch (a period of a horizon) begins; epoch 0 runs until
    the first. In each epoch, arrivals and requests ready for decode go only to the instances whose ``epochs``
    hold it; an instance leaving finishes what it holds (its queue, its batch and the requests waiting for it),
    and an instance joining starts idle (under pooled dispatch, at once with the pool's waiting requests)."""
    n_models = len(overhead_s)
    n_epochs = len(epoch_starts) + 1
    p_pol = [prefill_policy] * n_models if isinstance(prefill_policy, str) else list(prefill_policy)
    d_pol = [decode_policy] * n_models if isinstance(decode_policy, str) else list(decode_policy)

    def active(srv: PrefillServer | DecodeServer, e: int) -> bool:
        return srv.epochs is None or e in srv.epochs

    every: list[PrefillServer | DecodeServer] = [*prefill, *decode]
    planned: dict[int, float] = {id(srv): srv.weight for srv in every}  # ``weight`` is rewritten per epoch

    def weight(srv: PrefillServer | DecodeServer, e: int) -> float:
        base = planned[id(srv)]
        return base if srv.epoch_weights is None else srv.epoch_weights.get(e, base)

    p_all = [[[i for i, s in enumerate(prefill) if s.model == m and active(s, e)] for m in range(n_models)]
             for e in range(n_epochs)]
    d_all = [[[i for i, s in enumerate(decode) if s.model == m and active(s, e)] for m in range(n_models)]
             for e in range(n_epochs)]
    for e in range(n_epochs):
        for m in range(n_models):
            if not p_all[e][m] or not d_all[e][m]:
                raise ValueError(f"model index {m} has no prefill or no decode instance in the plan"
                                 + (f" (epoch {e})" if n_epochs > 1 else ""))
    p_disps = [[_Dispatcher(p_pol[m], [weight(prefill[i], e) for i in p_all[e][m]]) for m in range(n_models)]
               for e in range(n_epochs)]
    d_disps = [[_Dispatcher(d_pol[m], [weight(decode[i], e) for i in d_all[e][m]]) for m in range(n_models)]
               for e in range(n_epochs)]
    pools_all = [[sorted({prefill[i].pool for i in p_all[e][m]}) for m in range(n_models)] for e in range(n_epochs)]
    members_all = [{(m, g): [i for i in p_all[e][m] if prefill[i].pool == g] for m in range(n_models)
                    for g in pools_all[e][m]} for e in range(n_epochs)]
    pool_disps = [[_Dispatcher("random", [sum(weight(prefill[i], e) for i in members_all[e][(m, g)])
                                          for g in pools_all[e][m]]) for m in range(n_models)]
                  for e in range(n_epochs)]
    pool_queue: dict[tuple[int, int], deque[int]] = {key: deque() for ms in members_all for key in ms}
    epoch = 0
    servers: list[PrefillServer | DecodeServer] = [*prefill, *decode]
    weighted = [srv for srv in servers if srv.epoch_weights is not None]
    for srv in weighted:
        srv.weight = weight(srv, 0)
    p_of, d_of, p_disp, d_disp = p_all[0], d_all[0], p_disps[0], d_disps[0]
    pools_of, members, pool_disp = pools_all[0], members_all[0], pool_disps[0]

    arrival, model_of, lin = req.arrival_s, req.model, req.input_tokens
    steps_of, factor, u_of = req.decode_steps, np.atleast_2d(req.service_factor), req.dispatch_u
    prefill_end, join, finish = req.prefill_end_s, req.join_s, req.finish_s
    heap: list[tuple[float, int, int, int, int]] = []
    seq = 0
    push, pop = heapq.heappush, heapq.heappop

    def start_prefill(pi: int, r: int, now: float) -> None:
        nonlocal seq
        srv = prefill[pi]
        srv.busy = True
        dur = srv.base_service_s(float(lin[r])) * float(factor[srv.factor_row, r])
        srv.busy_time += dur
        seq += 1
        push(heap, (now + dur, seq, EV_PREFILL_DONE, pi, r))

    def choose_prefill(m: int, r: int) -> int:
        idx = p_of[m]
        if p_pol[m] == "jsq":
            best, best_load = idx[0], math.inf
            for i in idx:
                s = prefill[i]
                load = (len(s.queue) + s.busy) / s.weight
                if load < best_load:
                    best, best_load = i, load
            return best
        disp = p_disp[m]
        k = disp.pick_static(float(u_of[r]))
        if p_pol[m] == "random":
            u_of[r] = disp.leftover(float(u_of[r]), k)
        return idx[k]

    def admit(ds: DecodeServer, r: int, now: float) -> None:
        join[r] = now
        heapq.heappush(ds.batch, (ds.steps + int(steps_of[r]), r))

    def schedule(di: int, ds: DecodeServer, k: int) -> None:
        nonlocal seq
        ds.k = k
        ds.version += 1
        seq += 1
        push(heap, (ds.t_b + k * ds.tau, seq, EV_DECODE, di, ds.version))

    def decode_ready(m: int, r: int, now: float) -> None:
        idx = d_of[m]
        if d_pol[m] in ("jsq", "pooled"):
            di, best_load = idx[0], math.inf
            for i in idx:
                load = decode[i].load()
                if load < best_load:
                    di, best_load = i, load
        else:
            di = idx[d_disp[m].pick_static(float(u_of[r]))]
        ds = decode[di]
        if not ds.batch:
            ds.t_b = now
            admit(ds, r, now)
            ds.stall(1)
            ds.tau = ds.step_s[1]
            schedule(di, ds, ds.batch[0][0] - ds.steps)
            return
        ds.waiting.append(r)
        if len(ds.batch) < ds.cap and len(ds.waiting) == 1:
            # during a join stall (now < t_b) the first boundary ahead is the end of the stalled iteration, k = 1
            k_join = max(1, int((now - ds.t_b) / ds.tau) + 1)
            # the first boundary strictly after ``now``, computed as the event time is (t_b + k tau), so that
            # rounding cannot put a ready time that falls on a boundary into that boundary
            while k_join > 1 and ds.t_b + (k_join - 1) * ds.tau > now:
                k_join -= 1
            while ds.t_b + k_join * ds.tau <= now:
                k_join += 1
            if k_join < ds.k:
                schedule(di, ds, k_join)

    def decode_event(di: int, now: float) -> None:
        ds = decode[di]
        b = len(ds.batch)
        ds.area += b * (now - ds.t_b)
        ds.busy_time += now - ds.t_b
        ds.steps += ds.k
        ds.t_b = now
        while ds.batch and ds.batch[0][0] <= ds.steps:
            _, r = heapq.heappop(ds.batch)
            finish[r] = now
        admitted = 0
        while ds.waiting and len(ds.batch) < ds.cap:
            admit(ds, ds.waiting.popleft(), now)
            admitted += 1
        ds.stall(admitted)
        if ds.batch:
            ds.tau = ds.step_s[len(ds.batch)]
            schedule(di, ds, ds.batch[0][0] - ds.steps)

    n = len(arrival)
    nxt = 0
    now = 0.0
    ticks = 0
    stopped = False
    def enter_epoch(e: int, now: float) -> None:
        nonlocal epoch, p_of, d_of, p_disp, d_disp, pools_of, members, pool_disp
        epoch = e
        for srv in weighted:  # least-loaded dispatch reads ``weight``: the new period's capacity
            srv.weight = weight(srv, e)
        p_of, d_of, p_disp, d_disp = p_all[e], d_all[e], p_disps[e], d_disps[e]
        pools_of, members, pool_disp = pools_all[e], members_all[e], pool_disps[e]
        for (m, g), q in pool_queue.items():  # a pool no instance serves any more: its queue to the model's first
            if q and (m, g) not in members and p_pol[m] == "pooled":
                pool_queue[(m, pools_of[m][0])].extend(q)
                q.clear()
        for (m, g), q in pool_queue.items():  # pooled: instances joining take the pool's waiting requests
            for i in members.get((m, g), ()):
                if q and not prefill[i].busy:
                    start_prefill(i, q.popleft(), now)

    while nxt < n or heap:
        ticks += 1
        if not ticks & 4095:
            report(f"simulating: {nxt:,} of {n:,} requests arrived")
            if stop is not None and stop():
                stopped = True
                break
        upcoming = min(float(arrival[nxt]) if nxt < n else math.inf, heap[0][0] if heap else math.inf)
        while epoch < n_epochs - 1 and upcoming >= epoch_starts[epoch]:
            enter_epoch(epoch + 1, float(epoch_starts[epoch]))
        if nxt < n and (not heap or arrival[nxt] <= heap[0][0]):
            r = nxt
            nxt += 1
            now = float(arrival[r])
            m = int(model_of[r])
            if p_pol[m] == "pooled":
                g = pools_of[m][0]
                if len(pools_of[m]) > 1:
                    k = pool_disp[m].pick_static(float(u_of[r]))
                    u_of[r] = pool_disp[m].leftover(float(u_of[r]), k)
                    g = pools_of[m][k]
                idle = [i for i in members[(m, g)] if not prefill[i].busy]
                if idle:
                    start_prefill(max(idle, key=lambda i: prefill[i].weight), r, now)
                else:
                    pool_queue[(m, g)].append(r)
                continue
            pi = choose_prefill(m, r)
            if prefill[pi].busy:
                prefill[pi].queue.append(r)
            else:
                start_prefill(pi, r, now)
            continue
        now, _, kind, a, b = pop(heap)
        if kind == EV_PREFILL_DONE:
            srv = prefill[a]
            srv.busy = False
            srv.served += 1
            prefill_end[b] = now
            m = srv.model
            seq += 1
            transfer = srv.transfer_s if srv.transfer_s is not None else overhead_s[m]
            push(heap, (now + transfer, seq, EV_DECODE_READY, m, b))
            q = pool_queue[(m, srv.pool)] if p_pol[m] == "pooled" and active(srv, epoch) else srv.queue
            if q:
                start_prefill(a, q.popleft(), now)
        elif kind == EV_DECODE_READY:
            decode_ready(a, b, now)
        elif b == decode[a].version:
            decode_event(a, now)
    done()
    return EngineResult(req, prefill, decode, now, stopped)

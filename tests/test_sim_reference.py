"""The event-skipping decode engine against a brute-force, token-by-token reference.

The reference below is written from the rules in the docstring of ``pdopt.sim.engine`` only, and simulates
every decode iteration one by one:

- an instance runs iterations back to back while its batch is non-empty; an iteration lasts ``step_s[B]`` with
  ``B`` the batch at the iteration's start;
- a request that becomes ready at an idle instance joins at once, and the instance starts iterating then;
- a busy instance admits waiting requests (FIFO, while the batch is below its cap) at each iteration boundary
  strictly after they became ready;
- a request leaves at the end of its ``steps``-th iteration; its slot frees at that boundary, so a waiting request
  can take it at the same boundary;
- with a join stall s, an iteration that starts with a admissions (at its boundary, or at an idle instance's
  join) lasts a x s + ``step_s[B]``; a request ready during the stall waits for the end of that iteration.

Dispatch is reproduced too: ``round_robin`` with equal weights sends the k-th ready request of a model to the
model's instance k mod n; ``jsq`` picks the instance with the fewest requests held (running plus waiting)
relative to its weight, at the ready time, the first such instance on ties. Instances of different models never
share requests, so several models pin requests to groups of instances.

Each case drives ``simulate_engine`` directly: one prefill server per model with a tiny deterministic service, so
the ready times are the engine's own ``prefill_end_s + overhead`` (the same float sum the engine computes); the
prefill end times are checked separately against the FCFS (Lindley) recursion. Join and finish times of every
request, and each instance's busy time and batch-time integral, must agree to 1e-9 relative.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from pdopt.sim.engine import DecodeServer, EngineResult, PrefillServer, RequestArrays, simulate_engine

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CASES = 30
PREFILL_SERVICE_S = 1e-4
RTOL = 1e-9


@dataclass
class DecodeCase:
    """One random case: requests (in arrival order) and decode instances (each bound to one model)."""

    arrival_s: FloatArray
    model: IntArray
    steps: IntArray
    overhead_s: list[float]
    inst_model: list[int]
    inst_weight: list[float]
    step_s: list[list[float]]
    cap: list[int]
    policy: str
    stall_s: list[float] = field(default_factory=list)
    """Join stall of each instance (empty: none)."""


@dataclass
class RefInstance:
    """Reference decode instance, advanced one iteration at a time."""

    step_s: list[float]
    cap: int
    weight: float
    stall_s: float = 0.0
    batch: list[list[int]] = field(default_factory=list)
    """[request, iterations still to run] in join order."""
    waiting: deque[int] = field(default_factory=deque)
    start: float = 0.0
    """Start time of the iteration in progress, its stall included (valid while the batch is non-empty)."""
    stall: float = 0.0
    """Stall of the iteration in progress: its admissions x the instance's stall."""
    area: float = 0.0
    busy: float = 0.0

    def load(self) -> float:
        return (len(self.batch) + len(self.waiting)) / self.weight


@dataclass
class RefResult:
    """Reference outcomes, and how often each admission rule fired (to show the cases exercise them)."""

    join_s: FloatArray
    finish_s: FloatArray
    area: list[float]
    busy: list[float]
    joined_idle: int = 0
    joined_free_slot: int = 0
    """Admitted at a boundary where no request left (a slot was already free)."""
    joined_freed_slot: int = 0
    """Admitted at a boundary where a request left."""


class Reference:
    """Token-by-token reference of the decode stage of one case."""

    def __init__(self, case: DecodeCase) -> None:
        self.case = case
        self.steps = [int(s) for s in case.steps]
        n = len(self.steps)
        self.insts = [RefInstance(case.step_s[i], case.cap[i], case.inst_weight[i],
                                  case.stall_s[i] if case.stall_s else 0.0) for i in range(len(case.cap))]
        self.out = RefResult(np.full(n, np.nan), np.full(n, np.nan), [], [])

    def _boundary(self, inst: RefInstance, end: float) -> None:
        """End the iteration in progress at ``end``: departures, then FIFO admissions into free slots."""
        inst.area += len(inst.batch) * (end - inst.start)
        inst.busy += end - inst.start
        for entry in inst.batch:
            entry[1] -= 1
        left = [e[0] for e in inst.batch if e[1] == 0]
        for r in left:
            self.out.finish_s[r] = end
        inst.batch = [e for e in inst.batch if e[1] > 0]
        inst.stall = 0.0
        while inst.waiting and len(inst.batch) < inst.cap:
            r = inst.waiting.popleft()
            self.out.join_s[r] = end
            inst.batch.append([r, self.steps[r]])
            inst.stall += inst.stall_s
            if left:
                self.out.joined_freed_slot += 1
            else:
                self.out.joined_free_slot += 1
        inst.start = end

    def _advance(self, inst: RefInstance, until: float) -> None:
        """Run the iterations that end strictly before ``until``."""
        while inst.batch:
            end = inst.start + inst.stall + inst.step_s[len(inst.batch)]
            if not end < until:
                return
            self._boundary(inst, end)

    def run(self, ready_s: FloatArray) -> RefResult:
        """Simulate with these decode-ready times; ready requests are taken in time order."""
        case, insts, out = self.case, self.insts, self.out
        of_model = [[i for i, m in enumerate(case.inst_model) if m == k] for k in range(len(case.overhead_s))]
        counter = [0] * len(of_model)
        for r in sorted(range(len(ready_s)), key=lambda q: (float(ready_s[q]), q)):
            t = float(ready_s[r])
            for inst in insts:
                self._advance(inst, t)
            m = int(case.model[r])
            idx = of_model[m]
            if case.policy == "round_robin":
                chosen = idx[counter[m] % len(idx)]
                counter[m] += 1
            else:
                chosen = idx[0]
                for i in idx:
                    if insts[i].load() < insts[chosen].load():
                        chosen = i
            inst = insts[chosen]
            if not inst.batch:
                out.join_s[r] = t
                inst.batch.append([r, self.steps[r]])
                inst.start = t
                inst.stall = inst.stall_s
                out.joined_idle += 1
            else:
                inst.waiting.append(r)
        for inst in insts:
            self._advance(inst, math.inf)
        out.area = [inst.area for inst in insts]
        out.busy = [inst.busy for inst in insts]
        return out


def reference(case: DecodeCase, ready_s: FloatArray) -> RefResult:
    """Token-by-token reference outcomes of ``case`` given each request's decode-ready time."""
    return Reference(case).run(ready_s)


def make_case(seed: int, stalls: bool = False) -> DecodeCase:
    """1-3 decode instances over 1-3 models, 5-60 requests in a burst, outputs 1-40 tokens, caps 1-8; with
    ``stalls``, a join stall per instance of 0-30 ms (up to above the 5-44 ms iterations, so that a request can be
    ready during a stall longer than the iteration after it)."""
    rng = np.random.default_rng(seed)
    n_inst = int(rng.integers(1, 4))
    n_models = int(rng.integers(1, n_inst + 1))
    inst_model = list(range(n_models)) + [int(rng.integers(0, n_models)) for _ in range(n_inst - n_models)]
    n = int(rng.integers(5, 61))
    window = float(rng.uniform(0.02, 2.0))
    arrival = np.sort(rng.uniform(0.0, window, n))
    policy = "round_robin" if seed % 2 == 0 else "jsq"
    weights = [1.0] * n_inst if policy == "round_robin" else [float(w) for w in rng.uniform(0.5, 2.0, n_inst)]
    step_s, caps = [], []
    for _ in range(n_inst):
        k = int(rng.integers(2, 5))
        batches = np.sort(rng.choice(np.arange(1, 11), size=k, replace=False)).astype(float)
        tpot_ms = np.cumsum(rng.uniform(0.0, 6.0, k)) + rng.uniform(5.0, 20.0)
        cap = int(rng.integers(1, 9))
        caps.append(cap)
        step_s.append([0.0, *[float(v) for v in np.interp(np.arange(1, cap + 1), batches, tpot_ms / 1000.0)]])
    return DecodeCase(
        arrival_s=arrival,
        model=rng.integers(0, n_models, n).astype(np.int64),
        steps=rng.integers(1, 41, n).astype(np.int64),
        overhead_s=[float(rng.choice([0.0, 0.003])) for _ in range(n_models)],
        inst_model=inst_model,
        inst_weight=weights,
        step_s=step_s,
        cap=caps,
        policy=policy,
        stall_s=[float(v) for v in rng.uniform(0.0, 0.03, n_inst)] if stalls else [],
    )


def run_engine(case: DecodeCase) -> EngineResult:
    n = len(case.arrival_s)
    req = RequestArrays(
        model=case.model.copy(), arrival_s=case.arrival_s.copy(), input_tokens=np.ones(n),
        decode_steps=case.steps.copy(), service_factor=np.ones(n), dispatch_u=np.full(n, 0.5),
    )
    prefill = [PrefillServer(m, 1.0, np.array([1.0]), np.array([1.0 / PREFILL_SERVICE_S]))
               for m in range(len(case.overhead_s))]
    decode = [DecodeServer(case.inst_model[i], case.inst_weight[i], list(case.step_s[i]), case.cap[i],
                           join_stall_s=case.stall_s[i] if case.stall_s else 0.0) for i in range(len(case.cap))]
    return simulate_engine(req, prefill, decode, case.overhead_s, "round_robin", case.policy)


def _fcfs_prefill_end(case: DecodeCase) -> FloatArray:
    """Lindley recursion per model: end = max(arrival, previous end) + service."""
    end = np.full(len(case.arrival_s), np.nan)
    last = [-math.inf] * len(case.overhead_s)
    for r, (a, m) in enumerate(zip(case.arrival_s, case.model, strict=True)):
        end[r] = max(float(a), last[int(m)]) + PREFILL_SERVICE_S
        last[int(m)] = float(end[r])
    return end


def check_case(seed: int, stalls: bool = False) -> RefResult:
    case = make_case(seed, stalls)
    eng = run_engine(case)
    req = eng.requests
    np.testing.assert_allclose(req.prefill_end_s, _fcfs_prefill_end(case), rtol=RTOL, atol=0.0)
    ready = req.prefill_end_s + np.array(case.overhead_s)[case.model]
    ref = reference(case, ready)
    assert not np.isnan(req.join_s).any()
    assert not np.isnan(req.finish_s).any()
    np.testing.assert_allclose(req.join_s, ref.join_s, rtol=RTOL, atol=0.0, err_msg=f"join_s, seed {seed}")
    np.testing.assert_allclose(req.finish_s, ref.finish_s, rtol=RTOL, atol=0.0, err_msg=f"finish_s, seed {seed}")
    np.testing.assert_allclose([d.area for d in eng.decode], ref.area, rtol=RTOL, err_msg=f"area, seed {seed}")
    np.testing.assert_allclose([d.busy_time for d in eng.decode], ref.busy, rtol=RTOL,
                               err_msg=f"busy_time, seed {seed}")
    assert eng.makespan_s == pytest.approx(float(ref.finish_s.max()), rel=RTOL)
    return ref


@pytest.mark.parametrize("seed", range(CASES))
def test_engine_matches_token_by_token_reference(seed: int) -> None:
    check_case(seed)


@pytest.mark.parametrize("seed", range(CASES))
def test_engine_with_join_stalls_matches_the_reference(seed: int) -> None:
    """The engine shifts an instance's iteration clock by the stall; the reference lengthens the iteration."""
    check_case(seed, stalls=True)


def test_reference_hand_example_with_a_stall() -> None:
    """The hand example below with a stall of 0.5 s per admission: r0 joins at 0, its first iteration lasts
    0.5 + 1 = 1.5 s; at 1.5, r1 and r2 wait, r1 joins (one slot): 0.5 + 2 s to 4; r1 leaves, r2 joins at 4:
    0.5 + 2 to 6.5, r0 (3 iterations) leaves; 6.5-7.5 (B=1, no admission): r2 leaves at 7.5. Area 1 x 1.5
    + 2 x 2.5 + 2 x 2.5 + 1 x 1 = 12.5; busy 7.5 s."""
    case = DecodeCase(arrival_s=np.array([0.0, 0.5, 0.7]), model=np.zeros(3, dtype=np.int64),
                      steps=np.array([3, 1, 2], dtype=np.int64), overhead_s=[0.0], inst_model=[0],
                      inst_weight=[1.0], step_s=[[0.0, 1.0, 2.0]], cap=[2], policy="round_robin", stall_s=[0.5])
    ref = reference(case, case.arrival_s)
    assert list(ref.join_s) == [0.0, 1.5, 4.0]
    assert list(ref.finish_s) == [6.5, 4.0, 7.5]
    assert ref.area == [12.5] and ref.busy == [7.5]
    eng = run_engine(case)
    ref2 = reference(case, eng.requests.prefill_end_s)
    np.testing.assert_allclose(eng.requests.join_s, ref2.join_s, rtol=RTOL)
    np.testing.assert_allclose(eng.requests.finish_s, ref2.finish_s, rtol=RTOL)
    np.testing.assert_allclose([eng.decode[0].area], ref2.area, rtol=RTOL)


def test_cases_exercise_every_admission_rule() -> None:
    """The cases are not trivial: requests join idle instances, join busy ones at a boundary with a free slot,
    and wait for a slot that a departure frees, many times each over the 30 cases."""
    refs = [check_case(seed) for seed in range(CASES)]
    assert sum(r.joined_idle for r in refs) >= 30
    assert sum(r.joined_free_slot for r in refs) >= 30
    assert sum(r.joined_freed_slot for r in refs) >= 30
    assert sum(1 for r in refs if r.joined_freed_slot) >= 10


def test_reference_hand_example() -> None:
    """The reference itself on a case worked by hand (one instance, cap 2, step 1 s with 1, 2 s with 2).

    r0 ready 0 (3 steps), r1 ready 0.5 (1 step), r2 ready 0.7 (2 steps):
    r0 joins the idle instance at 0; boundary 1 (B=1): r1 and r2 are waiting, one slot free -> r1 joins at 1;
    iteration 1-3 (B=2) ends with r1 gone (its 1 step), r2 takes its slot at 3; iteration 3-5 (B=2): r0 has
    run 3 iterations -> leaves at 5; iteration 5-6 (B=1): r2 (2 steps) leaves at 6.
    """
    case = DecodeCase(arrival_s=np.array([0.0, 0.5, 0.7]), model=np.zeros(3, dtype=np.int64),
                      steps=np.array([3, 1, 2], dtype=np.int64), overhead_s=[0.0], inst_model=[0],
                      inst_weight=[1.0], step_s=[[0.0, 1.0, 2.0]], cap=[2], policy="round_robin")
    ref = reference(case, case.arrival_s)
    assert list(ref.join_s) == [0.0, 1.0, 3.0]
    assert list(ref.finish_s) == [5.0, 3.0, 6.0]
    assert ref.area == [1 * 1 + 2 * 2 + 2 * 2 + 1 * 1]
    assert ref.busy == [6.0]
    eng = run_engine(case)
    ready = eng.requests.prefill_end_s
    # the engine sees ready times 1e-4 s later (tiny prefill); with those the same schedule shifts by 1e-4
    ref2 = reference(case, ready)
    np.testing.assert_allclose(eng.requests.join_s, ref2.join_s, rtol=RTOL)
    np.testing.assert_allclose(eng.requests.finish_s, ref2.finish_s, rtol=RTOL)


def test_ready_time_on_a_boundary_joins_the_next_one() -> None:
    """A request ready exactly at an iteration boundary of a busy instance joins at the NEXT boundary.

    One decode instance (step 0.1 s at batch 1 and 2) starts request 0 at 0.5 s (a 0.5 s prefill); request 1
    arrives at 0.9 s and is ready at 1.4 s, which is boundary 9 of request 0 (0.5 + 9 x 0.1 in floating point
    is 1.4000000000000001 or 1.4 depending on rounding): it must join at 1.5 and, with 3 steps, finish at 1.8.
    """
    req = RequestArrays(model=np.zeros(2, dtype=np.int64), arrival_s=np.array([0.0, 0.9]), input_tokens=np.ones(2),
                        decode_steps=np.array([10, 3], dtype=np.int64), service_factor=np.ones(2),
                        dispatch_u=np.full(2, 0.5))
    simulate_engine(req, [PrefillServer(0, 1.0, np.array([1.0]), np.array([2.0]))],
                    [DecodeServer(0, 1.0, [0.0, 0.1, 0.1], 2)], [0.0], "round_robin", "jsq")
    assert req.join_s[1] == pytest.approx(1.5, rel=1e-12)
    assert req.finish_s[1] == pytest.approx(1.8, rel=1e-12)

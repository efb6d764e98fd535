"""The aggregated capacity formula (pdopt/perf/aggregated.py) against the aggregated engine's simulator
(pdopt/sim/aggregated.py) on a grid of 27 cases, for the mean, p90 and p99 statistics.

    PYTHONPATH=. python tests/bench/aggregated_grid.py [--quick] [--requests N] [--seed S] [--diagnose]
                                                       [--coefficients FILE]

(from the checkout: ``PYTHONPATH=.`` makes it measure this checkout's pdopt, not another one installed.) Prints
a Markdown table and the summary; exits 1 when the criterion fails. A full run takes about 4 minutes of one core.

Engine: OPT-66B on 4 A100-80GB (TP 4) with DistServe's fitted vLLM coefficients, file
``profiler-a100-80g.vllm.json`` of DistServe (https://github.com/LLMServe/DistServe, commit
82831f1604cc6b10bebd360f6c437a07790dde9f), model "facebook/opt-66b", key "4": prefill [a, b, c] and
decoding_smallbs [a, b, c], mapped as docs/capacity.md says: overhead = max(prefill a, decode a), per prefill
token = prefill b, prefill quadratic = prefill c, per context token = decode b, per decode request = decode c.
The numbers are copied below (``COEFFICIENTS``); ``--coefficients FILE`` reads them from the JSON file instead.

SweepGrid: prompt L in (256, 1024, 4096) tokens x output O in (16, 128, 512) tokens x token budget K in (512, 2048,
8192); max_batch 256 (vLLM's default max_num_seqs) and KV room for 256 requests of L + O tokens, so that neither
binds: the grid tests the TTFT and TPOT analysis, the random cases of tests/test_sim_aggregated.py the caps.

Targets, one rule for every case: TTFT target = 2, 3 and 4 x the unloaded prefill time of a prompt,
ceil(L / K) a + b L + c L^2, for the mean, p90 and p99; TPOT target = 3 x the unloaded decode iteration,
a + e + d (L + O / 2), for all three. Under load TPOT grows about as 1 / (1 - rho) and TTFT with the prompt queue,
so short prompts and budgets that split them tend to be TTFT-bound, long prompts and outputs TPOT-bound: the
table shows both. The TTFT multiple grows with the percentile because without any queueing a percentile of TTFT
already reaches about twice the unloaded prefill (an arrival during another prompt's prefill waits for it): a p99
target of 2 x would sit on that flat tail, where d ln TTFT_p99 / d ln lambda is about 0.1, so that a 1% error in
the statistic, or the simulation's own sampling noise, moves the rate by 10% and the comparison tests nothing.
The table's ``slope`` column is that sensitivity, measured on the simulator (0.9 and 1.1 x the simulated rate):
a relative error e in the statistic is an error of about e / slope in the rate.

Simulated capacity, per case and statistic: the largest Poisson rate at which the simulated statistic of TTFT and
the simulated statistic of TPOT both meet their targets. Arrivals are one fixed-seed stream of unit-rate
exponential gaps divided by the rate (common random numbers: the same stream at every rate); the statistics
exclude the first and the last 10% of requests by arrival (filling up, draining). Search: from the formula's
rate, widen by x1.25 steps to a bracket, then geometric bisection to 0.5% (the rate reported is the bracket's
geometric middle). Simulations are cached by rate and give all three statistics at once.

Pass criterion: the formula's rate within 10% of the simulated one for the mean, 20% for p90 and p99; at most 3
of the 81 comparisons outside their limit, none by more than twice it. ``--quick``: 9 cases (each L, O and K
three times) and fewer requests.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pdopt.instance import AggregatedProfile, IterationModel, Workload
from pdopt.perf.aggregated import aggregated_load, tpot_statistic_ms, ttft_statistic_s
from pdopt.perf.aggregated_search import aggregated_max_rate
from pdopt.sim.aggregated import AggregatedResult, simulate_aggregated

DISTSERVE = "DistServe profiler-a100-80g.vllm.json, commit 82831f1604cc6b10bebd360f6c437a07790dde9f"
COEFFICIENTS = {"prefill": [42.965489361973944, 0.2128658422785494, 4.601017396226869e-05],
                "decoding_smallbs": [39.58178936012414, 0.0006945721692406896, 0.13580868185596764]}
"""facebook/opt-66b, tensor parallel 4, A100-80GB: DistServe's fit of vLLM's iteration times (ms)."""

PROMPTS = (256, 1024, 4096)
OUTPUTS = (16, 128, 512)
BUDGETS = (512, 2048, 8192)
STATISTICS = ("mean", "p90", "p99")
QUANTILE = {"p90": 0.90, "p99": 0.99}
LIMIT = {"mean": 0.10, "p90": 0.20, "p99": 0.20}
MAX_OUTSIDE = 3
MAX_BATCH = 256
TTFT_FACTOR = {"mean": 2.0, "p90": 3.0, "p99": 4.0}
TPOT_FACTOR = {"mean": 3.0, "p90": 3.0, "p99": 3.0}
TRIM = 0.10
"""Share of requests dropped at each end (by arrival)."""
REQUESTS = 40_000
QUICK_REQUESTS = 12_000
SEED = 20240611
WIDEN = 1.25
RESOLUTION = 1.005


def iteration_model(coefficients: dict[str, list[float]] | None = None) -> IterationModel:
    co = coefficients or COEFFICIENTS
    (pa, pb, pc), (da, db, dc) = co["prefill"], co["decoding_smallbs"]
    return IterationModel(overhead_ms=max(pa, da), per_prefill_token_ms=pb, prefill_quadratic_ms=pc,
                          per_context_token_ms=db, per_decode_seq_ms=dc, source=DISTSERVE)


@dataclass(frozen=True)
class Case:
    prompt: int
    output: int
    budget: int

    @property
    def name(self) -> str:
        return f"L{self.prompt} O{self.output} K{self.budget}"

    def ttft_target_s(self, it: IterationModel, statistic: str) -> float:
        """TTFT_FACTOR x the unloaded prefill: ceil(L / K) iterations, the prompt's own work b L + c L^2."""
        alone = (math.ceil(self.prompt / self.budget) * it.overhead_ms + it.per_prefill_token_ms * self.prompt
                 + it.prefill_quadratic_ms * self.prompt ** 2)
        return TTFT_FACTOR[statistic] * alone / 1000.0

    def tpot_target_ms(self, it: IterationModel, statistic: str) -> float:
        """TPOT_FACTOR x the unloaded decode iteration (batch 1, mean context L + O / 2)."""
        return TPOT_FACTOR[statistic] * it.time_ms(0.0, 0.0, self.prompt + self.output / 2.0, 1.0)

    def kv_tokens(self) -> int:
        return MAX_BATCH * (self.prompt + self.output)

    def profile(self, it: IterationModel) -> AggregatedProfile:
        return AggregatedProfile(model="opt_66b", role="aggregated", gpu_type="a100_80g", gpus_per_instance=4,
                                 token_budget=self.budget, max_batch=MAX_BATCH, iteration=it,
                                 kv_tokens=self.kv_tokens(), source=DISTSERVE)

    def workload(self, it: IterationModel, statistic: str) -> Workload:
        return Workload.model_validate({
            "demand": {"requests_per_s": 1.0}, "input_tokens_mean": self.prompt, "output_tokens_mean": self.output,
            "ttft": {"target_s": self.ttft_target_s(it, statistic), "statistic": statistic},
            "tpot": {"target_ms": self.tpot_target_ms(it, statistic), "statistic": statistic}})


ALL_CASES = [Case(p, o, k) for p, o, k in itertools.product(PROMPTS, OUTPUTS, BUDGETS)]
QUICK_CASES = [Case(PROMPTS[i], OUTPUTS[j], BUDGETS[(i + j) % 3]) for i in range(3) for j in range(3)]


def statistic(values: np.ndarray, name: str) -> float:
    return float(np.mean(values)) if name == "mean" else float(np.quantile(values, QUANTILE[name]))


@dataclass
class Simulator:
    """Simulations of one case at any rate, cached, over one stream of arrivals (common random numbers)."""

    case: Case
    it: IterationModel
    requests: int
    seed: int = SEED
    gaps: np.ndarray = field(init=False)
    cache: dict[float, AggregatedResult] = field(default_factory=dict)
    runs: int = 0

    def __post_init__(self) -> None:
        self.gaps = np.cumsum(np.random.default_rng(self.seed).exponential(1.0, self.requests))

    def run(self, rate: float) -> AggregatedResult:
        if rate not in self.cache:
            n, c = self.requests, self.case
            self.cache[rate] = simulate_aggregated(self.it, c.budget, MAX_BATCH, c.kv_tokens(), self.gaps / rate,
                                                   np.full(n, c.prompt), np.full(n, c.output))
            self.runs += 1
        return self.cache[rate]

    def kept(self) -> slice:
        trim = int(TRIM * self.requests)
        return slice(trim, self.requests - trim)

    def stats(self, rate: float, name: str) -> tuple[float, float]:
        """(TTFT statistic s, TPOT statistic ms) at ``rate``."""
        res, keep = self.run(rate), self.kept()
        return statistic(res.ttft_s[keep], name), statistic(res.tpot_ms[keep], name)

    def fails(self, rate: float, name: str) -> list[str]:
        ttft, tpot = self.stats(rate, name)
        out = []
        if ttft > self.case.ttft_target_s(self.it, name):
            out.append("ttft")
        if tpot > self.case.tpot_target_ms(self.it, name):
            out.append("tpot")
        return out

    def max_rate(self, name: str, start: float) -> tuple[float, str]:
        """Largest rate meeting both targets at statistic ``name`` (module docstring), and what fails above it."""
        lo, hi = start, start
        if self.fails(start, name):
            while self.fails(lo, name):
                hi, lo = lo, lo / WIDEN
        else:
            while not self.fails(hi, name):
                lo, hi = hi, hi * WIDEN
        while hi / lo > RESOLUTION:
            mid = math.sqrt(lo * hi)
            if self.fails(mid, name):
                hi = mid
            else:
                lo = mid
        return math.sqrt(lo * hi), "+".join(self.fails(hi, name))


    def slope(self, rate: float, name: str, which: str) -> float:
        """d ln(statistic) / d ln(rate) of the simulated TTFT (``which`` = ttft) or TPOT statistic between 0.9 and
        1.1 times ``rate``: how much a relative error in the statistic moves the rate (error / slope)."""
        i = 0 if which == "ttft" else 1
        return math.log(self.stats(1.1 * rate, name)[i] / self.stats(0.9 * rate, name)[i]) / math.log(1.1 / 0.9)


@dataclass
class Row:
    case: Case
    statistic: str
    formula_rps: float
    formula_binding: str
    sim_rps: float
    sim_binding: str
    slope: float = math.nan

    @property
    def error(self) -> float:
        return self.formula_rps / self.sim_rps - 1.0

    @property
    def outside(self) -> bool:
        return abs(self.error) > LIMIT[self.statistic]


def compare(case: Case, it: IterationModel, requests: int, seed: int = SEED) -> list[Row]:
    sim = Simulator(case, it, requests, seed)
    rows = []
    for name in STATISTICS:
        rate, binding = aggregated_max_rate(it, case.profile(it), case.workload(it, name), case.kv_tokens(), 0.0)
        sim_rate, sim_binding = sim.max_rate(name, rate)
        slope = sim.slope(sim_rate, name, sim_binding.split("+")[0] or "ttft")
        rows.append(Row(case, name, rate, binding.removesuffix("_target"), sim_rate, sim_binding, slope))
    return rows


def verdict(rows: list[Row]) -> tuple[bool, str]:
    outside = [r for r in rows if r.outside]
    far = [r for r in rows if abs(r.error) > 2 * LIMIT[r.statistic]]
    ok = len(outside) <= MAX_OUTSIDE and not far
    parts = []
    for name in STATISTICS:
        sel = [r for r in rows if r.statistic == name]
        if sel:
            errs = np.array([r.error for r in sel])
            parts.append(f"{name}: {sum(not r.outside for r in sel)}/{len(sel)} within {LIMIT[name]:.0%}, "
                         f"mean |error| {np.mean(np.abs(errs)):.1%}, bias {np.mean(errs):+.1%}, "
                         f"worst {errs[np.argmax(np.abs(errs))]:+.1%}")
    parts.append(f"outside the limit: {len(outside)} (at most {MAX_OUTSIDE}), beyond twice the limit: {len(far)} "
                 f"(none allowed) -> {'PASS' if ok else 'FAIL'}")
    return ok, "\n".join(parts)


def table(rows: list[Row], it: IterationModel) -> str:
    lines = ["| case | statistic | TTFT target s | TPOT target ms | binding (formula / sim) | slope | formula rps | "
             "simulated rps | error |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        flag = " **" if r.outside else ""
        lines.append(f"| {r.case.name} | {r.statistic} | {r.case.ttft_target_s(it, r.statistic):.3f} | "
                     f"{r.case.tpot_target_ms(it, r.statistic):.1f} | {r.formula_binding} / {r.sim_binding} | "
                     f"{r.slope:.2f} | {r.formula_rps:.4g} | {r.sim_rps:.4g} | {r.error:+.1%}{flag} |")
    return "\n".join(lines)


def diagnose(case: Case, it: IterationModel, requests: int, rate: float) -> str:
    """The simulated engine against the formula's AggregatedLoad at one rate: iteration time, batch, TTFT parts."""
    sim = Simulator(case, it, requests)
    res, keep = sim.run(rate), sim.kept()
    load = aggregated_load(it, case.budget, case.workload(it, "mean"), rate, 0.0)
    wait = (res.admit_s - sim.gaps / rate)[keep]
    own = (res.ttft_s[keep] - wait)
    busy = res.busy_ms / (res.finish_s.max() * 1e3)
    ttft_ms, tpot = res.ttft_s[keep] * 1e3, res.tpot_ms[keep]
    sim_line = (f"sim:     iteration {res.busy_ms / res.iterations:.2f} ms, busy {busy:.3f}, batch "
                f"{res.decode_batch_area_ms / res.busy_ms:.2f}, prefill iterations "
                f"{res.prefill_iterations / res.iterations:.3f}, TPOT {np.mean(tpot):.2f} / "
                f"{np.quantile(tpot, 0.9):.2f} / {np.quantile(tpot, 0.99):.2f} ms, TTFT {np.mean(ttft_ms):.1f} / "
                f"{np.quantile(ttft_ms, 0.9):.1f} / {np.quantile(ttft_ms, 0.99):.1f} ms = wait "
                f"{np.mean(wait) * 1e3:.1f} + own {np.mean(own) * 1e3:.1f}")
    if load is None:
        return f"{case.name} at {rate:.4g} rps: formula saturated\n  {sim_line}"
    tp = [tpot_statistic_ms(load, s) for s in STATISTICS]
    tt = [ttft_statistic_s(load, s) * 1e3 for s in STATISTICS]
    return (f"{case.name} at {rate:.4g} rps (mean / p90 / p99):\n  formula: iteration {load.iteration_ms:.2f} ms, "
            f"rho {load.engine_load:.3f}, batch {load.mean_batch:.2f}, prefill share {load.prefill_load:.3f}, "
            f"TPOT {tp[0]:.2f} / {tp[1]:.2f} / {tp[2]:.2f} ms, TTFT {tt[0]:.1f} / {tt[1]:.1f} / {tt[2]:.1f} ms\n"
            f"  {sim_line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="9 cases, fewer requests")
    ap.add_argument("--requests", type=int, default=None)
    ap.add_argument("--seed", type=int, default=SEED, help="seed of the arrival stream (another seed shows the "
                    "simulated rates' sampling noise)")
    ap.add_argument("--coefficients", type=Path, default=None, help="DistServe's profiler JSON to read")
    ap.add_argument("--diagnose", action="store_true", help="also compare the engine's internals at each "
                    "simulated mean-statistic capacity")
    args = ap.parse_args(argv)
    co = None
    if args.coefficients is not None:
        co = json.loads(args.coefficients.read_text())["facebook/opt-66b"]["4"]
    it = iteration_model(co)
    cases = QUICK_CASES if args.quick else ALL_CASES
    requests = args.requests or (QUICK_REQUESTS if args.quick else REQUESTS)
    t0 = time.perf_counter()
    rows: list[Row] = []
    for case in cases:
        t = time.perf_counter()
        rows.extend(compare(case, it, requests, args.seed))
        print(f"{case.name}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    print(f"{len(cases)} cases x {len(STATISTICS)} statistics, {requests} requests per simulation "
          f"({TRIM:.0%} dropped at each end), seed {args.seed}, {DISTSERVE}\n")
    print(table(rows, it))
    ok, summary = verdict(rows)
    print("\n" + summary)
    if args.diagnose:
        print()
        for r in rows:
            if r.statistic == "mean":
                print(diagnose(r.case, it, requests, r.sim_rps))
    print(f"\nwall time {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

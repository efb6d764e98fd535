"""The command line's grammar: every command, flag and choice. Light by design (argparse and constants only), so
that ``pdopt --version`` and ``pdopt --help`` start fast; the commands load their stages when they run."""

from __future__ import annotations

import argparse

from pdopt import __version__
from pdopt.comparison.generate import FAMILIES
from pdopt.optimize.options import CUT_FAMILIES, SOLVERS
from pdopt.sim.options import ARRIVAL_MODES, DISPATCH_POLICIES, LENGTH_MODES, SERVICE_DISTRIBUTIONS

DISPATCH_CHOICES = (*DISPATCH_POLICIES, "least_loaded")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2^63 - 1 (what numpy's generators take)."""
    value = _whole(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 2^63 - 1, got {text}")
    return value


def _multiplier(text: str) -> float:
    """A demand multiplier in (1e-6, 1e6]: beyond it the solver would see overflowing or vanishing numbers."""
    value = _positive_float(text)
    if not 1e-6 < value <= 1e6:
        raise argparse.ArgumentTypeError(f"must be a multiplier in (1e-06, 1e+06], got {text}")
    return value


def _gap(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a relative gap in [0, 1), got {text}")
    return value


def _cut_families(text: str) -> tuple[str, ...]:
    """A comma-separated list of cut families (``--cuts``), each one of :data:`CUT_FAMILIES`."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CUT_FAMILIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown cut family {', '.join(map(repr, unknown)) or repr(text)} "
                                         f"(choose from {', '.join(CUT_FAMILIES)})")
    return names


def _solver_flags(sp: argparse.ArgumentParser, time_limit: float | None, threads: int = 1) -> None:
    """The solver's flags, the same on every command that solves (plan, compare, bench)."""
    sp.add_argument("--solver", choices=SOLVERS, default="cbc")
    sp.add_argument("--time-limit", type=_positive_float, default=time_limit, metavar="SECONDS",
                    help="for the whole planning: building, starts and every solve"
                    + (f" (default {time_limit:g})" if time_limit else ""))
    sp.add_argument("--gap", type=_gap, default=0.0, metavar="REL", help="relative MIP gap to stop at (default 0)")
    sp.add_argument("--threads", type=_positive_int, default=threads,
                    help=f"CBC threads (at least 1; default {threads}); HiGHS uses its own default")
    cuts = sp.add_mutually_exclusive_group()
    cuts.add_argument("--no-cuts", action="store_true",
                      help="leave out the formulation's valid inequalities (" + ", ".join(CUT_FAMILIES)
                      + "), for ablation")
    cuts.add_argument("--cuts", type=_cut_families, default=None, metavar="FAMILY[,FAMILY]",
                      help="add only these valid inequalities (default: all), for ablation")
    sp.add_argument("--no-pool-classes", action="store_true",
                    help="solve identical node pools apart instead of as one class, for ablation")


def _instance_arg(sp: argparse.ArgumentParser) -> None:
    """The instance a command reads: a file, or a bundled example by name (``--example paper``; resolved by
    :func:`pdopt.cli.common.resolve_example`, which refuses both or neither)."""
    sp.add_argument("file", nargs="?", default=None, help="instance file (YAML or JSON)")
    sp.add_argument("--example", default=None, metavar="NAME",
                    help="a bundled example instead of a file (`pdopt examples` lists them)")


ESTIMATORS = ("roofline", "aiconfigurator")


def _estimator_flags(sp: argparse.ArgumentParser) -> None:
    """The settings of an estimator beyond the instance's ``shape_search`` (which gives the defaults)."""
    sp.add_argument("--aic-model", action="append", default=[], metavar="MODEL=NAME",
                    help="AIConfigurator: its name of a model (repeatable), e.g. "
                         "llama31_70b=meta-llama/Meta-Llama-3.1-70B")
    sp.add_argument("--system", action="append", default=[], metavar="GPU_TYPE=SYSTEM",
                    help="AIConfigurator: its system of a GPU type (repeatable), e.g. h100_80gb=h100_sxm")
    sp.add_argument("--backend", choices=("vllm", "sglang", "trtllm"), default=None,
                    help="AIConfigurator: the engine (default vllm)")
    sp.add_argument("--backend-version", default=None, help="AIConfigurator: the engine version of its database")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pdopt", description="Cheapest P/D disaggregated LLM serving fleet under SLOs.")
    p.add_argument("--version", action="version", version=f"pdopt {__version__}")
    p.add_argument("--debug", action="store_true", help="print the traceback of an internal error")
    sub = p.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="plan the cheapest fleet for an instance file")
    _instance_arg(plan)
    plan.add_argument("--format", choices=("table", "json", "csv"), default="table")
    _solver_flags(plan, None)
    plan.add_argument("--scale-demand", type=_multiplier, default=1.0, metavar="F",
                      help="multiply every demand by F (what if traffic grows 20%%? F = 1.2)")
    plan.add_argument("--maximize-scale", action="store_true",
                      help="fixed inventory: the largest uniform demand multiplier it serves, and its plan")
    plan.add_argument("--without", action="append", default=[], metavar="GPU_TYPE",
                      help="plan as if this GPU type were unavailable (repeatable): its pools and profiles left "
                           "out; exits 3 naming what is missing when no plan is left")
    plan.add_argument("--alternatives", type=_positive_int, default=None, metavar="K",
                      help="the K cheapest plans that differ in the (GPU type, shape) they use, ranked, with what "
                           "each changes against the cheapest (docs/alternatives.md)")
    plan.add_argument("--plot", default=None, metavar="FILE.png",
                      help="an instance with a horizon: write demand, capacity, GPUs and cost per period (a new "
                           "file)")
    plan.add_argument("--explain-mode", action=argparse.BooleanOptionalAction, default=None,
                      help="for models that may be served aggregated or disaggregated, also solve with all "
                           "aggregated and all disaggregated, and say per model what the chosen mode saves "
                           "(default: on for problems under 100 variables)")

    sub.add_parser("examples", help="the bundled example instances, by name (for --example NAME)")

    cap = sub.add_parser("capacity", aliases=["curves"],
                         help="per shape: capacity at the SLOs, the binding limit, the model used, its inputs")
    _instance_arg(cap)
    cap.add_argument("--format", choices=("table", "json", "csv"), default="table")

    val = sub.add_parser("validate", help="check an instance file and say what is wrong, field by field")
    _instance_arg(val)

    ver = sub.add_parser("verify", help="check a plan JSON against an instance, independently of the solver")
    ver.add_argument("file", help="instance file")
    ver.add_argument("--plan", required=True, help="plan JSON written by `pdopt plan --format json`")

    sim = sub.add_parser("simulate", help="simulate a plan and check its SLOs (discrete-event, no GPU)")
    _instance_arg(sim)
    sim.add_argument("--plan", default=None, help="plan JSON from `pdopt plan --format json` (default: plan first)")
    sim.add_argument("--requests", type=int, default=20000, metavar="N")
    sim.add_argument("--seed", type=_seed, default=0)
    sim.add_argument("--trace", default=None, metavar="FILE",
                     help="replay a trace: Azure CSV (TIMESTAMP,ContextTokens,GeneratedTokens) or Mooncake JSONL")
    sim.add_argument("--trace-rate", default="workload", metavar="workload|native|RPS",
                     help="rescale the trace to each model's planned rate (default), keep it, or set a rate")
    sim.add_argument("--lengths", choices=LENGTH_MODES, default=None,
                     help="request lengths: the workload's distribution or means (workload), the means (fixed), "
                          "exponential, the trace's own (trace; default with --trace, else workload), or the "
                          "trace's rescaled to the workload's means (trace_scaled)")
    sim.add_argument("--length-tolerance", type=float, default=0.2, metavar="FRACTION",
                     help="warn when a trace's mean input or output length differs from the workload's by more "
                          "(default 0.2)")
    sim.add_argument("--dispatch", choices=DISPATCH_CHOICES, default="auto",
                     help="prefill dispatch (default auto: random for mm1/gg1, pooled for ggc)")
    sim.add_argument("--decode-dispatch", choices=DISPATCH_CHOICES, default="auto",
                     help="decode dispatch (default auto: least_loaded for the paper decode model, random for "
                          "under_load)")
    sim.add_argument("--prefill-service", choices=SERVICE_DISTRIBUTIONS, default="auto",
                     help="prefill service factor (default auto: the capacity model's service SCV, lengths and "
                          "factor together)")
    sim.add_argument("--prefill-scv", type=float, default=1.0, metavar="SCV",
                     help="service-factor SCV for gamma/lognormal prefill service (default 1)")
    sim.add_argument("--arrivals", choices=ARRIVAL_MODES, default="auto",
                     help="generated arrivals (default auto: gamma renewal with the workload's arrival_scv under "
                          "gg1/ggc, else Poisson)")
    sim.add_argument("--scale-demand", type=_multiplier, default=None, metavar="F",
                     help="when planning first: multiply every demand by F")
    sim.add_argument("--tightness", action="store_true",
                     help="also simulate with one instance fewer in each (model, role) that has more than one")
    sim.add_argument("--requests-per-period", type=int, default=2000, metavar="N",
                     help="an instance with a horizon: requests simulated in each period (default 2000)")
    sim.add_argument("--trace-s-per-hour", type=float, default=None, metavar="S",
                     help="an instance with a horizon and --trace: trace seconds that make one hour (each period "
                          "replays its own seconds of the trace, as demand_trace maps them)")
    sim.add_argument("--static", action="store_true",
                     help="an instance with a horizon: simulate the static plan for the peak instead")
    sim.add_argument("--format", choices=("table", "json", "csv"), default="table")

    cmp_ = sub.add_parser("compare", help="the MILP plan against heuristic baselines (cost, feasibility, SLOs)")
    _instance_arg(cmp_)
    cmp_.add_argument("--simulate", type=int, default=0, metavar="N",
                      help="also simulate every plan with N requests and report SLO attainment")
    cmp_.add_argument("--seed", type=_seed, default=0)
    cmp_.add_argument("--fallbacks", action="store_true",
                      help="instead: for each GPU type, the plan without it, ranked by cost (what to do when a type "
                           "is not available)")
    _solver_flags(cmp_, None)
    cmp_.add_argument("--format", choices=("table", "json", "csv"), default="table")

    swp = sub.add_parser("sweep", help="the cheapest plan over a grid of what-ifs: demand, SLO targets, GPU "
                                       "availability, prices (docs/sweep.md)")
    _instance_arg(swp)
    swp.add_argument("--demand", default=None, metavar="VALUES",
                     help="demand multipliers: 0.5,1,2 or START:STOP:STEP")
    swp.add_argument("--ttft-target", default=None, metavar="SECONDS",
                     help="every workload's TTFT target, seconds: 0.5,1,2 or START:STOP:STEP")
    swp.add_argument("--tpot-target", default=None, metavar="MS",
                     help="every workload's TPOT target, milliseconds: 20,40 or START:STOP:STEP")
    swp.add_argument("--available", action="append", default=[], metavar="TYPE[+TYPE...]",
                     help="a set of GPU types that may be used ('all' for every type); repeat for each set")
    swp.add_argument("--price", action="append", default=[], metavar="GPU_TYPE=MULTIPLIERS",
                     help="multipliers of a GPU type's prices, e.g. a100_80gb=0.8,1 (repeatable, one axis each)")
    swp.add_argument("--jobs", type=int, default=1, metavar="N", help="solve N points at once (local processes)")
    swp.add_argument("--max-points", type=_positive_int, default=10_000, metavar="N",
                     help="refuse a grid of more points (default 10,000)")
    swp.add_argument("--out", default=None, metavar="DIR",
                     help="also write sweep.csv, sweep.json and the figures to this new folder")
    swp.add_argument("--format", choices=("table", "json", "csv"), default="table")
    _solver_flags(swp, None)

    fid = sub.add_parser("fidelity", help="the capacity model and the simulator against your measured runs")
    fid.add_argument("file", help="instance file")
    fid.add_argument("measurements", nargs="*",
                     help="vLLM bench serve result JSON files, or CSV files of runs or SLO throughputs")
    fid.add_argument("--estimate", dest="with_", choices=ESTIMATORS, default=None,
                     help="instead: estimate every measured prefill and decode shape of the instance with this "
                          "estimator and compare, per shape and point")
    fid.add_argument("--estimated", default=None, metavar="FILE",
                     help="instead: compare the estimated profiles of FILE (from `pdopt profile estimate`) with the "
                          "instance's measured ones of the same shape")
    _estimator_flags(fid)
    fid.add_argument("--model", default=None, help="the model measured (files that do not say)")
    fid.add_argument("--deployment", default=None, metavar="ROLE=GPUxN[:COUNT]+...",
                     help="what was measured, e.g. prefill=h200x8:3+decode=h200x8:4 (files that do not say)")
    fid.add_argument("--requests", type=int, default=20000, metavar="N", help="requests per simulation")
    fid.add_argument("--seed", type=_seed, default=0)
    fid.add_argument("--no-simulate", action="store_true", help="the capacity model only")
    fid.add_argument("--queue-model", choices=("mm1", "gg1", "ggc"), default=None,
                     help="predict with this prefill queue model instead of the workload's")
    fid.add_argument("--decode-model", choices=("paper", "under_load"), default=None,
                     help="predict with this decode model instead of the workload's")
    fid.add_argument("--plot", default=None, metavar="FILE.png",
                     help="write a plot of predicted against measured (a new file)")
    fid.add_argument("--format", choices=("table", "json", "csv"), default="table")

    for sp in (plan, cap, val, ver, sim, cmp_, fid, swp):
        sp.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                        help="also read files the instance names in DIR (by default only its own folder)")

    bench = sub.add_parser("bench", help="solve a set of instances; write tables, plots and the machine description")
    bench.add_argument("--set", default="smoke",
                       help="a set of instances/sets.yaml (smoke, ci, bench, scaling, tier_tiny, tier_small, "
                            "tier_medium, tier_large)")
    bench.add_argument("--out", default="bench-results", metavar="DIR", help="folder for the report (must be new)")
    _solver_flags(bench, 60.0, threads=2)
    bench.add_argument("--no-baselines", action="store_true", help="skip the heuristic baselines")

    gen = sub.add_parser("generate", help="write a synthetic instance of a scaling family (for benchmarks)")
    gen.add_argument("--family", choices=sorted(FAMILIES), default="fleet-S",
                     help="preset parameters; the flags below override them")
    gen.add_argument("--models", type=int)
    gen.add_argument("--gpu-types", type=int)
    gen.add_argument("--tp", default=None, metavar="1,2,4,8", help="tensor-parallel sizes")
    gen.add_argument("--pools", type=int)
    gen.add_argument("--nodes", default=None, metavar="MIN-MAX", help="nodes per pool, drawn uniformly")
    gen.add_argument("--domains", type=int)
    gen.add_argument("--demand-level", type=float, help="share of the inventory the cheapest plan should use")
    gen.add_argument("--seed", type=_seed)
    gen.add_argument("--spine-gbps", type=float, help="add a network: each domain joined to a spine at this Gbit/s")
    gen.add_argument("--output", default=None, metavar="FILE", help="write here (never overwrites); else stdout")

    prof = sub.add_parser("profile", help="benchmark profiles: import measurements into the instance format")
    prof_sub = prof.add_subparsers(dest="profile_command", required=True)
    imp = prof_sub.add_parser("import", help="read a pdopt CSV, vLLM bench JSON files or Splitwise perf_model.csv")
    imp.add_argument("files", nargs="+", help="input file(s); several only for vLLM bench JSON runs of one sweep")
    imp.add_argument("--model", default=None, help="model id (vLLM: required; Splitwise: its model name)")
    imp.add_argument("--gpu-type", default=None, help="GPU type id (vLLM: required; Splitwise: the id to write)")
    imp.add_argument("--gpus-per-instance", type=int, default=None, help="vLLM: GPUs of the benchmarked instance")
    imp.add_argument("--role", choices=("prefill", "decode", "aggregated"), default=None,
                     help="vLLM: which profile to build (aggregated: runs of one aggregated server at several "
                          "request rates, calibrated by the planner; needs --token-budget and --max-batch)")
    imp.add_argument("--variant", default="default",
                     help="vLLM: the profile's variant (engine settings of one shape; default 'default')")
    imp.add_argument("--tpot-from", choices=("tpot", "itl", "e2el"), default="tpot",
                     help="vLLM decode runs: TPOT (first token excluded) from mean_tpot_ms (default), mean_itl_ms, "
                          "or (mean_e2el_ms - mean_ttft_ms) / (output - 1) for a TPOT that counted the first token")
    imp.add_argument("--output-tokens", type=_positive_float, default=500.0, metavar="N",
                     help="Dynamo profiler decode data: the sweep's output length (default 500, the profiler's)")
    imp.add_argument("--hardware", default=None, help="Splitwise: hardware name (a100-80gb, h100-80gb, ...)")
    imp.add_argument("--tensor-parallel", type=int, default=None, help="Splitwise: TP size")
    imp.add_argument("--token-budget", type=_positive_int, default=None,
                     help="the aggregated profile's token budget per iteration (decode tokens included, as vLLM's "
                          "max_num_batched_tokens); Splitwise: also compose an aggregated profile; needs --max-batch")
    imp.add_argument("--max-batch", type=_positive_int, default=None,
                     help="the aggregated profile's most running requests (vLLM's max_num_seqs)")
    imp.add_argument("--monotone", choices=("refuse", "isotonic", "envelope"), default="refuse",
                     help="a decode TPOT curve that falls as the batch grows: refuse it (default), or fit the "
                          "closest non-decreasing curve (isotonic) or raise each point to the largest before it "
                          "(envelope); the points moved are printed and kept in the profile's source")
    imp.add_argument("--output", default=None, metavar="FILE", help="write YAML here (never overwrites); else stdout")

    fit = prof_sub.add_parser("fit", help="fit a G/G/1 prefill model (service SCV, overhead) to a TTFT sweep")
    fit.add_argument("files", nargs="+", help="vLLM bench serve JSON runs of a --request-rate sweep, or one CSV "
                                             "with columns request_rate_rps,ttft_mean_s")
    fit.add_argument("--input-tokens", type=_positive_float, required=True, help="mean input length of the sweep")
    fit.add_argument("--max-throughput", type=_positive_float, default=None, metavar="TOK_S",
                     help="benchmarked max prefill throughput (fitted too when not given)")
    fit.add_argument("--arrival-scv", type=float, default=1.0)
    fit.add_argument("--ttft-target", type=_positive_float, default=None, metavar="SECONDS",
                     help="also report the fitted capacity at this mean TTFT")

    est = prof_sub.add_parser("estimate", help="estimated profiles for shapes nobody has measured: a roofline from "
                                               "the architecture and GPU specs, or AIConfigurator")
    est.add_argument("instance", help="instance file (models with architecture, GPU types with spec)")
    est.add_argument("--with", dest="with_", choices=ESTIMATORS, required=True, help="the estimator")
    est.add_argument("--model", default=None, help="the model to estimate (default: every workload's)")
    est.add_argument("--gpu-type", default=None, help="the GPU type (default: every one with a node pool)")
    est.add_argument("--tp", default="1,2,4,8", metavar="1,2,4,8", help="tensor-parallel sizes (GPUs per instance)")
    est.add_argument("--ep", default="1", metavar="1,8", help="expert-parallel sizes (mixture-of-experts models)")
    est.add_argument("--role", action="append", choices=("prefill", "decode"), default=None,
                     help="the roles to estimate (repeatable; default both)")
    est.add_argument("--input-tokens", default=None, metavar="L1,L2,...",
                     help="prefill input lengths (default: powers of two covering the workload's lengths)")
    est.add_argument("--decode-input-tokens", type=_positive_float, default=None, metavar="N",
                     help="decode: the requests' input length (default the workload's)")
    est.add_argument("--output-tokens", type=_positive_float, default=None, metavar="N",
                     help="decode: the output length (default the workload's)")
    est.add_argument("--batches", default="1,2,4,8,16,32,64,128,256,512", metavar="B1,B2,...",
                     help="decode batches (those whose KV cache does not fit are left out)")
    est.add_argument("--output", default=None, metavar="FILE", help="write YAML here (never overwrites); else stdout")
    _estimator_flags(est)
    cal = prof_sub.add_parser("calibrate", help="correct estimated profiles by the measured shapes of the instance: "
                                                "one factor per (GPU type, role), with residuals")
    cal.add_argument("instance", help="instance file with the measured profiles")
    cal.add_argument("--estimated", required=True, metavar="FILE",
                     help="estimated profiles (from `pdopt profile estimate`), measured shapes among them")
    cal.add_argument("--output", default=None, metavar="FILE", help="write YAML here (never overwrites); else stdout")
    for sp in (est, cal):
        sp.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                        help="also read files the instance names in DIR")

    sub.add_parser("schema", help="print the JSON Schema of the instance format")
    exp = sub.add_parser("export", help="deployment objects for a plan (it must verify against its instance)")
    exp.add_argument("plan", help="plan JSON from `pdopt plan --format json`")
    exp.add_argument("--instance", required=True, metavar="FILE", help="the instance the plan was made for")
    exp.add_argument("--to", required=True, choices=("dynamo", "kserve", "llm-d", "sglang-router"),
                     help="the deployment format")
    exp.add_argument("--settings", default=None, metavar="FILE",
                     help="YAML: namespace, engine, image, connector, node_selector_label, models.<id>.uri, ... "
                          "(placeholders otherwise; docs/export.md)")
    exp.add_argument("--out", default=None, metavar="DIR",
                     help="write one YAML file per object into DIR (a new or empty folder); else print them")
    exp.add_argument("--dry-run", action="store_true",
                     help="say what would be deployed (objects, replicas, GPUs per node selector, connector)")
    exp.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                     help="also read files the instance names in DIR")
    rep = sub.add_parser("report", help="one self-contained HTML page for a plan: tables, cost, capacity curves, "
                                        "simulation, baselines, assumptions")
    rep.add_argument("plan", nargs="?", default=None,
                     help="plan JSON from `pdopt plan --format json` (default: plan the instance first)")
    rep.add_argument("--instance", required=True, metavar="FILE", help="the instance the plan was made for")
    rep.add_argument("--simulation", default=None, metavar="SIM.json",
                     help="JSON from `pdopt simulate --format json`: draw its TTFT and TPOT distributions")
    rep.add_argument("--out", required=True, metavar="REPORT.html", help="the page to write (a new file)")
    rep.add_argument("--no-baselines", action="store_true", help="leave out the heuristic baselines")
    _solver_flags(rep, None)  # when planning first
    rep.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                     help="also read files the instance names in DIR")
    return p

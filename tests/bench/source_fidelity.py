"""How well pdopt's profiles reproduce the numbers of the sources they were built from.

    PYTHONPATH=. python tests/bench/source_fidelity.py [--data DIR]

(or ``python -m tests.bench.source_fidelity``; ``--data`` is the shared data folder, by default ``../shared/data``
beside the checkout). Prints the Markdown tables of docs/capacity.md, "The profiles against their sources", in
about a second.

Every comparison puts a value pdopt computes, with pdopt's own functions (the Splitwise importer, the linear
interpolation of the prefill and decode curves, the composed iteration model), against the source's own value,
which this script computes independently: Splitwise's CSV read with the csv module, DistServe's fitted
coefficients evaluated here. The error is relative, e = pdopt / source - 1; each table gives, per configuration
and over all of them, the number of comparisons n, the median and the largest |e|, and the case of the largest.

Splitwise, ``splitwise-sim/perf_model.csv``: every (model, hardware, tensor_parallel) in the file, imported by
:func:`pdopt.io.importers.import_splitwise`. Rows repeated verbatim count once (as in the importer); a group's
value is the mean over its repeats.

* Prefill, at the measured prompt sizes L (rows of the importer's prefill batch bs and output size): the profile's
  X(L) against the source's L bs / (mean prompt_time / 1000) tok/s. The profile states X to 0.1 tok/s, so
  |e| <= 0.05 / X; against the source rounded so, e = 0.
* Prefill, leave one out: each interior L_i dropped, X(L_i) = X_{i-1} + (L_i - L_{i-1}) / (L_{i+1} - L_{i-1})
  (X_{i+1} - X_{i-1}) from the neighbours, against the source at L_i: what interpolating between measured
  lengths costs.
* Decode, at the batches the profile keeps: TPOT(B) against the mean token_time (to 0.001 ms). Leave one out:
  each interior measured batch held out and TPOT interpolated linearly from the neighbours; a batch the importer
  dropped (its TPOT below the previous batch's) is held out by the profile itself and named so.
* The composed iteration model (:func:`pdopt.perf.iteration.compose_iteration`, read from the importer's
  aggregated profile) predicting every distinct row: with t(P, Q, C, B) = a + b P + c Q + d C + e B, a row's
  prompt_time as the prefill-only iteration t(bs L, bs L^2, 0, 0) and its token_time as the decode-only iteration
  t(0, 0, bs (L + O / 2), bs) (O output tokens, the mean context over the generation L + O / 2).
* The prefill fit alone: the same rows' prompt_time by a_p + b P + c Q, the fixed cost the prefill fit found in
  place of the decode fit's a_d (the composition's one change to the prefill fit), with the coefficients
  :func:`compose_iteration` gives for the rows read here (checked equal to the importer's, to its rounding).
* The source's own scatter: each repeat's prompt_time (prefill groups) and token_time (decode groups) against
  its group's mean: the measurement noise beneath all of the above.

DistServe, ``distserve/profiler-a100-80g.{distserve,vllm}.json``, against the bundled instances built from it
(instances/library/opt66b-a100-distserve-tp3.yaml and -modes.yaml). Each profile names its file and model in its
``source``; the TP is its gpus_per_instance (pipeline parallelism 1). The coefficients give the truth anywhere:

* prefill of one prompt, T_p(L) = a + b L + c L^2 ms (``prefill``), throughput 1000 L / T_p(L) tok/s;
* a decode iteration of B requests of x context tokens each, T_d(B) = a + b B x + c B ms, with
  ``decoding_smallbs`` for B below ``decoding_large_small_bs_threshold`` and ``decoding_largebs`` from it;
  x = input + output / 2 tokens, the lengths the decode profile states.

Compared: the profiles' points (to their rounding); leave one out at interior points; between points, the whole
profile at every integer length and batch strictly between its points; and the aggregated profiles' iteration
model against the vLLM fit: a prefill-only iteration t(L, L^2, 0, 0) against T_p(L) for L = 1 .. token_budget and a
decode-only iteration t(0, 0, B x, B) against T_d(B) for B = 1 .. max_batch, x from the instance's workload.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdopt.instance import (
    AggregatedProfile,
    DecodePoint,
    DecodeProfile,
    Instance,
    IterationModel,
    PrefillPoint,
    PrefillProfile,
)
from pdopt.io import load_instance
from pdopt.io.importers import import_splitwise
from pdopt.io.importers.common import (
    SPLITWISE_DECODE_OUTPUT,
    SPLITWISE_DECODE_PROMPT,
    SPLITWISE_PREFILL_BATCH,
    SPLITWISE_PREFILL_OUTPUT,
    THROUGHPUT_DIGITS,
    TPOT_DIGITS,
)
from pdopt.perf.decode import tpot_at_batch
from pdopt.perf.iteration import DecodeTime, PrefillTime, compose_iteration
from pdopt.perf.prefill import interpolate_prefill_throughput

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
SPLITWISE = Path("splitwise-sim") / "perf_model.csv"
DISTSERVE_DIR = Path("distserve")
LIBRARY = ROOT / "instances" / "library"
DISTSERVE_INSTANCES = (LIBRARY / "opt66b-a100-distserve-tp3.yaml", LIBRARY / "opt66b-a100-distserve-modes.yaml")
AGGREGATED_ENGINE = (2048, 256)
"""(token_budget, max_batch) given to the importer for its aggregated profile: engine settings that do not enter
the composed iteration model."""
_PROVENANCE = re.compile(r"(profiler-[\w-]+\.(?:distserve|vllm)\.json)\b.*?(facebook/[\w.-]+?)[,:\s]")

Config = tuple[str, str, int]
"""A Splitwise configuration: (model, hardware, tensor_parallel)."""


@dataclass(frozen=True)
class Comparison:
    """pdopt's ``value`` against the source's ``truth`` for one ``case`` of one configuration (``group``);
    ``stated``: the source's value rounded as the profile states it, where the profile is that rounding."""

    group: str
    case: str
    value: float
    truth: float
    stated: float | None = None

    @property
    def error(self) -> float:
        return self.value / self.truth - 1.0

    @property
    def stated_error(self) -> float:
        """The error against the source rounded as stated (0 when the profile is exactly that)."""
        assert self.stated is not None
        return self.value / self.stated - 1.0


@dataclass(frozen=True)
class Table:
    key: str
    """A short name: ``splitwise_prefill``, ``distserve_decode_loo``, ..."""
    title: str
    comparisons: list[Comparison]


# ---------------------------------------------------------------------------------------------------- Splitwise


@dataclass(frozen=True)
class SourceRow:
    """One distinct row of perf_model.csv: times in ms."""

    line: int
    prompt: int
    batch: int
    tokens: int
    prompt_ms: float
    token_ms: float


def read_splitwise(path: Path) -> dict[Config, list[SourceRow]]:
    """The file's distinct rows (a row repeated verbatim counts once) by configuration, read with the csv
    module alone."""
    out: dict[Config, list[SourceRow]] = {}
    seen: set[tuple[str, ...]] = set()
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        for rec in reader:
            cells = tuple(rec.values())
            if cells in seen:
                continue
            seen.add(cells)
            key = (rec["model"], rec["hardware"], int(rec["tensor_parallel"]))
            out.setdefault(key, []).append(SourceRow(
                reader.line_num, int(rec["prompt_size"]), int(rec["batch_size"]), int(rec["token_size"]),
                float(rec["prompt_time"]), float(rec["token_time"])))
    return dict(sorted(out.items()))


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return sum(vals) / len(vals)


def prefill_groups(rows: list[SourceRow]) -> dict[int, list[SourceRow]]:
    """The rows the importer's prefill curve uses, by prompt size."""
    out: dict[int, list[SourceRow]] = {}
    for r in rows:
        if r.batch == SPLITWISE_PREFILL_BATCH and r.tokens == SPLITWISE_PREFILL_OUTPUT:
            out.setdefault(r.prompt, []).append(r)
    return dict(sorted(out.items()))


def decode_groups(rows: list[SourceRow]) -> dict[int, list[SourceRow]]:
    """The rows the importer's decode curve uses, by batch size."""
    out: dict[int, list[SourceRow]] = {}
    for r in rows:
        if r.prompt == SPLITWISE_DECODE_PROMPT and r.tokens == SPLITWISE_DECODE_OUTPUT:
            out.setdefault(r.batch, []).append(r)
    return dict(sorted(out.items()))


def source_throughput(group: list[SourceRow]) -> float:
    """L bs / mean prompt_time, tok/s."""
    return group[0].prompt * group[0].batch / (_mean(r.prompt_ms for r in group) / 1000.0)


def _leave_one_out_prefill(points: list[PrefillPoint]) -> Iterator[tuple[float, float]]:
    """(L_i, X(L_i) interpolated without point i) for every interior point i."""
    for i in range(1, len(points) - 1):
        x = interpolate_prefill_throughput(points[:i] + points[i + 1:], points[i].input_tokens)
        assert x is not None  # L_i lies between its neighbours
        yield points[i].input_tokens, x


def splitwise_tables(path: Path, configs: Sequence[Config] | None = None) -> list[Table]:
    """The nine Splitwise tables (module docstring) for ``configs`` (default: every configuration in the file)."""
    source = read_splitwise(path)
    names = ("prefill", "prefill_loo", "decode", "decode_loo", "prompt_time", "prompt_time_own", "token_time",
             "prefill_scatter", "decode_scatter")
    found: dict[str, list[Comparison]] = {n: [] for n in names}
    for key in configs if configs is not None else list(source):
        rows = source[key]
        group = f"{key[0]} {key[1]} TP{key[2]}"
        prefill, decode, aggregated = import_splitwise(path, *key, aggregated=AGGREGATED_ENGINE)
        pp = PrefillProfile.model_validate(prefill).max_throughput_by_input
        dp = DecodeProfile.model_validate(decode).tpot_by_batch
        it = AggregatedProfile.model_validate(aggregated).iteration
        own = _prefill_fit_alone(rows, it, group)
        pg, dg = prefill_groups(rows), decode_groups(rows)
        for length, g in pg.items():
            x = interpolate_prefill_throughput(pp, length)
            assert x is not None, f"{group}: L={length} outside its own profile"
            truth = source_throughput(g)
            found["prefill"].append(Comparison(group, f"L={length}", x, truth, round(truth, THROUGHPUT_DIGITS)))
        for held, x in _leave_one_out_prefill(pp):
            found["prefill_loo"].append(Comparison(group, f"L={held:g}", x, source_throughput(pg[int(held)])))
        kept = {p.batch for p in dp}
        for batch, g in dg.items():
            truth = _mean(r.token_ms for r in g)
            if batch in kept:
                found["decode"].append(Comparison(group, f"B={batch}", tpot_at_batch(dp, batch), truth,
                                                  round(truth, TPOT_DIGITS)))
            rest = [p for p in dp if p.batch != batch]
            if batch in (min(dg), max(dg)) or not rest[0].batch < batch < rest[-1].batch:
                continue  # not interior, or beyond the profile once held out: no interpolation
            note = "" if batch in kept else " (dropped by the importer)"
            found["decode_loo"].append(Comparison(group, f"B={batch}{note}", tpot_at_batch(rest, batch), truth))
        for r in rows:
            case = f"line {r.line} (L={r.prompt} bs={r.batch} O={r.tokens})"
            found["prompt_time"].append(Comparison(group, case, _prefill_iteration_ms(it, r), r.prompt_ms))
            found["prompt_time_own"].append(Comparison(group, case, _prefill_iteration_ms(own, r), r.prompt_ms))
            found["token_time"].append(Comparison(group, case, _decode_iteration_ms(it, r), r.token_ms))
        for length, g in pg.items():
            mean = _mean(r.prompt_ms for r in g)
            found["prefill_scatter"].extend(Comparison(group, f"L={length}, line {r.line}", r.prompt_ms, mean)
                                            for r in g)
        for batch, g in dg.items():
            mean = _mean(r.token_ms for r in g)
            found["decode_scatter"].extend(Comparison(group, f"B={batch}, line {r.line}", r.token_ms, mean)
                                           for r in g)
    titles = {
        "prefill": "prefill: the profile's max throughput at the measured prompt sizes against L bs / mean "
                   "prompt_time",
        "prefill_loo": "prefill, leave one out: each interior prompt size dropped and interpolated from its "
                       "neighbours",
        "decode": "decode: the profile's TPOT at the batches it keeps against the mean token_time",
        "decode_loo": "decode, leave one out: each interior measured batch held out and interpolated from its "
                      "neighbours",
        "prompt_time": "composed iteration model: prompt_time of every distinct row, as one prefill-only iteration",
        "prompt_time_own": "the same prefill fit with its own fixed cost a_p in place of the decode fit's a_d "
                           "(the composition's one change to it)",
        "token_time": "composed iteration model: token_time of every distinct row, as one decode-only iteration "
                      "at the mean context",
        "prefill_scatter": "the source's own scatter, prefill: each repeat's prompt_time against the mean of its "
                           "prompt size",
        "decode_scatter": "the source's own scatter, decode: each repeat's token_time against the mean of its batch",
    }
    return [Table(f"splitwise_{n}", f"Splitwise, {titles[n]}", found[n]) for n in names]


def _prefill_fit_alone(rows: list[SourceRow], it: IterationModel, group: str) -> IterationModel:
    """The prefill fit t = a_p + b P + c Q as :func:`compose_iteration` makes it from these rows, after checking
    that it composes the importer's iteration model (so that the rows are the importer's)."""
    comp = compose_iteration([PrefillTime(r.batch, r.prompt, r.prompt_ms) for r in rows],
                             [DecodeTime(r.batch, r.prompt, r.tokens, r.token_ms) for r in rows])
    mine = comp.iteration
    for name in ("overhead_ms", "per_prefill_token_ms", "prefill_quadratic_ms", "per_context_token_ms",
                 "per_decode_seq_ms"):
        a, b = getattr(mine, name), getattr(it, name)
        if abs(a - b) > 1e-4 * max(abs(a), 1.0):  # the importer states 4 decimals, or 6 significant digits
            raise AssertionError(f"{group}: {name} {a} from these rows, {b} from the importer")
    return mine.model_copy(update={"overhead_ms": comp.prefill_fixed_ms})


def _prefill_iteration_ms(it: IterationModel, r: SourceRow) -> float:
    """t(bs L, bs L^2, 0, 0): the row's whole prefill batch as one iteration."""
    return it.time_ms(r.batch * r.prompt, r.batch * r.prompt ** 2, 0.0, 0.0)


def _decode_iteration_ms(it: IterationModel, r: SourceRow) -> float:
    """t(0, 0, bs (L + O/2), bs): one decode iteration at the mean context over the generation."""
    return it.time_ms(0.0, 0.0, r.batch * (r.prompt + r.tokens / 2.0), r.batch)


# ---------------------------------------------------------------------------------------------------- DistServe


def distserve_entry(data: Path, source: str, tp: int) -> dict[str, Any]:
    """The coefficients a profile's ``source`` names (file and model), at tensor parallel ``tp``."""
    match = _PROVENANCE.search(source + " ")
    if match is None:
        raise ValueError(f"no DistServe file and model named in {source!r}")
    doc = json.loads((data / DISTSERVE_DIR / match.group(1)).read_text())
    entry: dict[str, Any] = doc[match.group(2)][str(tp)]
    return entry


def prefill_ms(entry: dict[str, Any], length: float) -> float:
    """T_p(L) = a + b L + c L^2 (ms), one prompt."""
    a, b, c = entry["prefill"]
    return float(a + b * length + c * length * length)


def decode_ms(entry: dict[str, Any], batch: float, context: float) -> float:
    """T_d(B) = a + b B x + c B (ms), small- or large-batch coefficients by DistServe's threshold."""
    small = batch < entry["decoding_large_small_bs_threshold"]
    a, b, c = entry["decoding_smallbs" if small else "decoding_largebs"]
    return float(a + b * batch * context + c * batch)


def _throughput(entry: dict[str, Any], length: float) -> float:
    return 1000.0 * length / prefill_ms(entry, length)


def _between(xs: Sequence[float]) -> list[int]:
    """Every integer strictly between the first and last of ``xs`` that is not one of them."""
    have = set(xs)
    return [n for n in range(int(xs[0]), int(xs[-1]) + 1) if n not in have]


def distserve_tables(data: Path, instances: Sequence[Path] = DISTSERVE_INSTANCES) -> list[Table]:
    """The DistServe tables (module docstring) for the bundled ``instances``."""
    names = ("prefill", "decode", "prefill_loo", "decode_loo", "prefill_between", "decode_between",
             "agg_prefill", "agg_decode")
    found: dict[str, list[Comparison]] = {n: [] for n in names}
    for path in instances:
        inst = load_instance(path)
        for prof in inst.profiles:
            group = f"{inst.name} TP{prof.gpus_per_instance}"
            if isinstance(prof, PrefillProfile):
                _distserve_prefill(data, prof, group, found)
            elif isinstance(prof, DecodeProfile):
                _distserve_decode(data, prof, group, found)
            else:
                _distserve_aggregated(data, inst, prof, group, found)
    titles = {
        "prefill": "prefill: the profiles' max throughput at their points against 1000 L / T_p(L)",
        "decode": "decode: the profiles' TPOT at their points against T_d(B)",
        "prefill_loo": "prefill, leave one out: each interior length dropped and interpolated from its neighbours",
        "decode_loo": "decode, leave one out: each interior batch dropped and interpolated from its neighbours",
        "prefill_between": "prefill, between points: the whole profile at every integer length between its points",
        "decode_between": "decode, between points: the whole profile at every integer batch between its points",
        "agg_prefill": "aggregated: the iteration model's prefill-only iteration of one prompt of L = 1 .. "
                       "token_budget tokens against the vLLM fit's T_p(L)",
        "agg_decode": "aggregated: the iteration model's decode-only iteration of B = 1 .. max_batch requests "
                      "against the vLLM fit's T_d(B), by DistServe's coefficient regime",
    }
    return [Table(f"distserve_{n}", f"DistServe, {titles[n]}", found[n]) for n in names]


def _distserve_prefill(data: Path, prof: PrefillProfile, group: str, found: dict[str, list[Comparison]]) -> None:
    entry = distserve_entry(data, prof.source, prof.gpus_per_instance)
    pts = prof.max_throughput_by_input
    for p in pts:
        x = interpolate_prefill_throughput(pts, p.input_tokens)
        assert x is not None
        truth = _throughput(entry, p.input_tokens)
        found["prefill"].append(Comparison(group, f"L={p.input_tokens:g}", x, truth,
                                           round(truth, THROUGHPUT_DIGITS)))
    for length, x in _leave_one_out_prefill(pts):
        found["prefill_loo"].append(Comparison(group, f"L={length:g}", x, _throughput(entry, length)))
    for length in _between([p.input_tokens for p in pts]):
        x = interpolate_prefill_throughput(pts, length)
        assert x is not None
        found["prefill_between"].append(Comparison(group, f"L={length}", x, _throughput(entry, length)))


def _distserve_decode(data: Path, prof: DecodeProfile, group: str, found: dict[str, list[Comparison]]) -> None:
    entry = distserve_entry(data, prof.source, prof.gpus_per_instance)
    if prof.input_tokens is None or prof.output_tokens is None:
        raise ValueError(f"{group}: the decode profile states no input and output lengths")
    context = prof.input_tokens + prof.output_tokens / 2.0
    pts: list[DecodePoint] = prof.tpot_by_batch
    for p in pts:
        truth = decode_ms(entry, p.batch, context)
        found["decode"].append(Comparison(group, f"B={p.batch}", tpot_at_batch(pts, p.batch), truth,
                                          round(truth, TPOT_DIGITS)))
    for i in range(1, len(pts) - 1):
        b = pts[i].batch
        found["decode_loo"].append(Comparison(group, f"B={b}", tpot_at_batch(pts[:i] + pts[i + 1:], b),
                                              decode_ms(entry, b, context)))
    for b in _between([p.batch for p in pts]):
        found["decode_between"].append(Comparison(group, f"B={b}", tpot_at_batch(pts, b),
                                                  decode_ms(entry, b, context)))


def _distserve_aggregated(data: Path, inst: Instance, prof: Any, group: str,
                          found: dict[str, list[Comparison]]) -> None:
    assert isinstance(prof, AggregatedProfile)
    it = prof.iteration
    entry = distserve_entry(data, it.source, prof.gpus_per_instance)
    work = inst.workloads[prof.model]
    context = work.input_tokens_mean + work.output_tokens_mean / 2.0
    for length in range(1, prof.token_budget + 1):
        found["agg_prefill"].append(Comparison(group, f"L={length}", it.time_ms(length, length ** 2, 0.0, 0.0),
                                               prefill_ms(entry, length)))
    threshold = entry["decoding_large_small_bs_threshold"]
    for b in range(1, prof.max_batch + 1):
        regime = f"B < {threshold}" if b < threshold else f"B >= {threshold}"
        found["agg_decode"].append(Comparison(f"{group}, {regime}", f"B={b}", it.time_ms(0.0, 0.0, b * context, b),
                                              decode_ms(entry, b, context)))


# ---------------------------------------------------------------------------------------------------- report


def pct(e: float, signed: bool = False) -> str:
    """A relative error in per cent, two significant digits."""
    if e == 0.0:
        return "0"
    return f"{100.0 * e:{'+' if signed else ''}.2g}%"


def _summary(label: str, comps: list[Comparison], full_name: bool) -> str:
    errs = [abs(c.error) for c in comps]
    worst = max(comps, key=lambda c: abs(c.error))
    name = f"{worst.group}, {worst.case}" if full_name else worst.case
    cells = [label, str(len(comps)), pct(statistics.median(errs)), pct(max(errs)), f"{name}: {pct(worst.error, True)}"]
    if all(c.stated is not None for c in comps):
        cells.append(pct(max(abs(c.stated_error) for c in comps)))
    return "| " + " | ".join(cells) + " |"


def render(table: Table) -> str:
    """One table: a row per configuration and one over all of them."""
    comps = table.comparisons
    head = ["configuration", "n", "median abs. error", "max abs. error", "worst case (signed error)"]
    if all(c.stated is not None for c in comps):
        head.append("max abs. error against the source rounded as stated")
    groups: dict[str, list[Comparison]] = {}
    for c in comps:
        groups.setdefault(c.group, []).append(c)
    lines = [f"**{table.title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [_summary(g, cs, False) for g, cs in groups.items()]
    if len(groups) > 1:
        lines.append(_summary("all", comps, True))
    return "\n".join(lines)


def report(data: Path = DATA) -> str:
    """Every table, as docs/capacity.md shows them."""
    tables = splitwise_tables(data / SPLITWISE) + distserve_tables(data)
    return "\n\n".join(render(t) for t in tables) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default: %(default)s)")
    args = ap.parse_args(argv)
    print(report(args.data), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

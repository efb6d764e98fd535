"""Reading instances from files: the document, the decode-curve CSVs and length traces it names, validated.

References resolve against the instance file's folder. Errors a user can make (a file that is not YAML, an
unknown key, a negative rate, a missing CSV) become an :class:`InputError` whose message names each field at
fault, one per line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdopt.errors import InputError
from pdopt.instance import Instance, validate_instance
from pdopt.io.demand_trace import length_bins, resolve_demand_traces
from pdopt.io.files import parse_yaml, read_json_object, read_text
from pdopt.io.traces import read_trace

if TYPE_CHECKING:
    from pdopt.estimate.search import SearchReport


def parse_document(text: str, source: str) -> Any:
    """Parse YAML (a superset of JSON) and return the document; InputError if it is not a mapping."""
    doc = parse_yaml(text, source)
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a mapping of fields at the top level, got {type(doc).__name__}")
    return doc


def _read_tpot_csv(path: Path, where: str) -> list[dict[str, Any]]:
    try:
        text = read_text(path, "decode curve CSV", kind="csv")
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None or not {"batch", "tpot_ms"} <= set(reader.fieldnames):
            raise InputError(f"{where}: {path} must have the columns batch,tpot_ms")
        rows: list[dict[str, Any]] = []
        for n, row in enumerate(reader, start=2):
            try:
                rows.append({"batch": int(row["batch"]), "tpot_ms": float(row["tpot_ms"])})
            except (TypeError, ValueError):
                raise InputError(f"{where}: {path} line {n}: batch must be an integer and tpot_ms a number") \
                    from None
    except csv.Error as exc:  # a field over the csv module's size limit, a stray quote
        raise InputError(f"{where}: {path}: not a readable CSV ({exc})") from None
    return rows


def confined_path(base: Path, ref: str, where: str, allowed: Sequence[Path] = ()) -> Path:
    """The file an instance names, resolved (symbolic links followed) against the instance's folder; InputError
    when it leaves that folder and every folder in ``allowed``.

    An instance is untrusted input (it is shared between teams and pasted from benchmarks): a path inside it must
    not make pdopt read ``/etc/passwd`` or ``../../secrets``. Profiles kept in a sibling folder are common, so the
    message names the opt-in.
    """
    try:
        target = (base / ref).resolve()
        roots = [base.resolve(), *(Path(a).resolve() for a in allowed)]
    except (ValueError, RuntimeError, OSError) as exc:  # a NUL byte in the path, a loop of symbolic links
        raise InputError(f"{where}: '{ref}' is not a path pdopt can follow ({exc})") from None
    if not any(target == r or r in target.parents for r in roots):
        raise InputError(f"{where}: '{ref}' leaves the instance's folder {roots[0]}; pdopt reads only files inside "
                         "it (allow another folder with --allow-path DIR, or allow_paths=[DIR] in Python)")
    return target


def _resolve_profile_csvs(doc: dict[str, Any], base: Path, allowed: Sequence[Path]) -> None:
    """Replace each decode curve's ``tpot_csv`` reference by the points it names, the path moving to
    ``tpot_csv_source`` (provenance that is never read again, so that a dump of the instance loads anywhere)."""
    profiles = doc.get("profiles")
    if not isinstance(profiles, list):
        return
    for i, prof in enumerate(profiles):
        if not isinstance(prof, dict):
            continue
        _load_curve_csv(prof, f"profiles[{i}].tpot_csv", base, allowed)
        if isinstance(prof.get("tpot_by_input"), list):
            for j, curve in enumerate(prof["tpot_by_input"]):
                if isinstance(curve, dict):
                    _load_curve_csv(curve, f"profiles[{i}].tpot_by_input[{j}].tpot_csv", base, allowed)


def _load_curve_csv(entry: dict[str, Any], where: str, base: Path, allowed: Sequence[Path]) -> None:
    """Fill ``tpot_by_batch`` from ``tpot_csv`` (a path relative to the instance file) when the entry names one.

    ``tpot_csv: null`` (as in a dump) names no file. A CSV together with inline points, or with a
    ``tpot_csv_source`` of its own, is refused: which of the two would hold is not for the loader to guess.
    """
    if entry.get("tpot_csv") is None:
        entry.pop("tpot_csv", None)
        return
    if "tpot_by_batch" in entry:
        raise InputError(f"{where}: give tpot_by_batch inline or tpot_csv, not both")
    if entry.get("tpot_csv_source") is not None:
        raise InputError(f"{where}: give tpot_csv or tpot_csv_source, not both (tpot_csv_source records the "
                         "tpot_csv the points were read from)")
    if not isinstance(entry["tpot_csv"], str):
        raise InputError(f"{where}: must be a path (string) relative to the instance file")
    entry["tpot_by_batch"] = _read_tpot_csv(confined_path(base, entry["tpot_csv"], where, allowed), where)
    entry["tpot_csv_source"] = entry.pop("tpot_csv")




def _resolve_length_traces(doc: dict[str, Any], base: Path, allowed: Sequence[Path]) -> None:
    """Replace ``input_length_distribution: {trace: FILE}`` by the trace's input lengths in equal-count bins.

    The requests' input lengths in equal-count bins (:func:`pdopt.io.demand_trace.length_bins`), so the
    distribution keeps the trace's exact mean.
    """
    workloads = doc.get("workloads")
    if not isinstance(workloads, dict):
        return
    for mid, w in workloads.items():
        if not isinstance(w, dict):
            continue
        _resolve_one(w, f"workloads.{mid}", base, allowed)
        periods = w.get("by_period")
        if isinstance(periods, dict):
            for name, override in periods.items():
                if isinstance(override, dict):
                    _resolve_one(override, f"workloads.{mid}.by_period.{name}", base, allowed)


def _resolve_one(w: dict[str, Any], at: str, base: Path, allowed: Sequence[Path]) -> None:
    """One workload's (or one period's) ``input_length_distribution: {trace: FILE}``, resolved in place."""
    dist = w.get("input_length_distribution")
    if not isinstance(dist, dict) or "trace" not in dist:
        return
    where = f"{at}.input_length_distribution.trace"
    if set(dist) != {"trace"} or not isinstance(dist["trace"], str):
        raise InputError(f"{where}: give only trace: PATH (relative to the instance file)")
    path = confined_path(base, dist["trace"], where, allowed)
    try:
        trace = read_trace(path)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    w["input_length_distribution"] = length_bins([float(x) for x in trace.input_tokens], dist["trace"])


def instance_from_dict(doc: dict[str, Any], base_dir: Path | None = None, source: str = "<instance>",
                       allow_paths: Sequence[str | Path] = (),
                       on_estimate: Callable[[SearchReport], None] | None = None,
                       estimate_budget: bool = False) -> Instance:
    """Validate a parsed document into an :class:`Instance`; CSV and trace paths resolve against ``base_dir``
    (the working folder when None) and must stay inside it or one of ``allow_paths``. The shapes a
    ``shape_search`` names are estimated and added as profiles (:func:`pdopt.estimate.search.expand_shapes`;
    ``on_estimate`` receives what the search did; ``estimate_budget`` applies its time budget, which makes the
    result depend on the clock: for planning only)."""
    doc = json.loads(json.dumps(doc))  # deep copy: the caller's data is never modified
    allowed = tuple(Path(a) for a in allow_paths)
    _resolve_profile_csvs(doc, base_dir or Path.cwd(), allowed)
    resolve_demand_traces(doc, base_dir or Path.cwd(), allowed, confined_path)
    _resolve_length_traces(doc, base_dir or Path.cwd(), allowed)
    instance = validate_instance(doc, source)
    if instance.shape_search is None:
        return instance
    from pdopt.estimate.search import expand_shapes

    return expand_shapes(instance, on_estimate, use_budget=estimate_budget)


def load_instance(path: str | Path, allow_paths: Sequence[str | Path] = (),
                  on_estimate: Callable[[SearchReport], None] | None = None,
                  estimate_budget: bool = False) -> Instance:
    """Read an instance from a YAML or JSON file; the files it names must lie in its folder or ``allow_paths``.
    A ``shape_search`` is estimated as :func:`instance_from_dict` says."""
    p = Path(path)
    return instance_from_dict(parse_document(read_text(p, "instance file"), str(p)), p.parent, str(p), allow_paths,
                              on_estimate, estimate_budget)


def load_json(path: str | Path, what: str) -> dict[str, Any]:
    """Read a JSON object (a plan) from a file."""
    return read_json_object(path, what)

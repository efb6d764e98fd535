"""The profiles against their sources (tests/bench/source_fidelity.py): at the measured points a profile is its
source rounded as it states (0.1 tok/s, 0.001 ms), so interpolating it there gives the source exactly; DistServe's
decode form is linear in the batch, so leaving a batch out costs only rounding; and the tables in
docs/capacity.md ("The profiles against their sources") are what the script prints now."""

import re
from pathlib import Path

import pytest

from pdopt.io.importers.common import THROUGHPUT_DIGITS, TPOT_DIGITS
from tests.bench.source_fidelity import (
    DATA,
    DISTSERVE_INSTANCES,
    SPLITWISE,
    Table,
    distserve_tables,
    main,
    report,
    splitwise_tables,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "capacity.md"
needs_data = pytest.mark.skipif(not (DATA / SPLITWISE).exists(), reason=f"{DATA} is not present")
SUBSET = [("llama2-70b", "a100-80gb", 2), ("bloom-176b", "h100-80gb", 8)]
"""TP2 has a decode batch the importer drops; BLOOM a different model and GPU."""


def _by_key(tables: list[Table]) -> dict[str, Table]:
    return {t.key: t for t in tables}


def _exact_at_points(table: Table, digits: int) -> None:
    """Against the source rounded to ``digits`` decimals the error is nil; against the unrounded source it is
    at most half a unit of that rounding."""
    assert table.comparisons
    half = 0.5 * 10.0 ** -digits
    for c in table.comparisons:
        assert c.stated == round(c.truth, digits)
        assert abs(c.stated_error) < 1e-9, (c.group, c.case)
        assert abs(c.value - c.truth) <= half * (1 + 1e-9), (c.group, c.case)


@needs_data
def test_splitwise_profiles_are_exact_at_the_measured_points() -> None:
    tables = _by_key(splitwise_tables(DATA / SPLITWISE, SUBSET))
    _exact_at_points(tables["splitwise_prefill"], THROUGHPUT_DIGITS)
    _exact_at_points(tables["splitwise_decode"], TPOT_DIGITS)
    assert len(tables["splitwise_prefill"].comparisons) == 2 * 7  # prompt sizes 128 .. 8192
    # the importer keeps TP2's decode batches 1 .. 32 (batch 64's TPOT is below batch 32's): 6 + 7 points
    assert len(tables["splitwise_decode"].comparisons) == 6 + 7
    # leave one out: the 5 interior prompt sizes of each; every interior batch, TP2's 32 being then the last
    assert len(tables["splitwise_prefill_loo"].comparisons) == 2 * 5
    assert [c.case for c in tables["splitwise_decode_loo"].comparisons][:4] == ["B=2", "B=4", "B=8", "B=16"]
    # every distinct row is predicted (105 rows less 10 verbatim repeats per configuration)
    assert len(tables["splitwise_prompt_time"].comparisons) == len(tables["splitwise_token_time"].comparisons) == 190


@needs_data
def test_distserve_profiles_are_their_coefficients() -> None:
    tables = _by_key(distserve_tables(DATA, DISTSERVE_INSTANCES[:1]))
    _exact_at_points(tables["distserve_prefill"], THROUGHPUT_DIGITS)
    _exact_at_points(tables["distserve_decode"], TPOT_DIGITS)
    for key in ("distserve_decode_loo", "distserve_decode_between"):  # linear in B: rounding only
        assert all(abs(c.error) < 1e-4 for c in tables[key].comparisons)
    # prefill throughput is concave in L: a chord lies below it, so interpolation understates it
    assert all(c.error < 0 for c in tables["distserve_prefill_between"].comparisons)
    assert not tables["distserve_agg_prefill"].comparisons  # the TP3 instance has no aggregated profiles


def _docs_block() -> str:
    match = re.search(r"<!-- source-fidelity:start -->\n(.*?)<!-- source-fidelity:end -->", DOCS.read_text(), re.S)
    assert match, "docs/capacity.md lost its <!-- source-fidelity:start --> / <!-- source-fidelity:end --> markers"
    return match.group(1)


@needs_data
def test_docs_tables_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    """Regenerate with ``PYTHONPATH=. .venv/bin/python tests/bench/source_fidelity.py``."""
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert printed == report()
    assert _docs_block() == printed, "docs/capacity.md is stale: paste the output of tests/bench/source_fidelity.py"

"""Shared fixtures: paths and the paper instance."""

from pathlib import Path

import pytest

from pdopt.instance import Instance
from pdopt.io import load_instance

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"
PAPER = INSTANCES / "paper" / "dsv31-h200-5mtpm.yaml"
EXAMPLE = INSTANCES / "examples" / "llama70b-bloom176b-a100-h100.yaml"
LIBRARY_INDEXES = frozenset({"sets.yaml", "known_answers.yaml", "examples.yaml"})
"""The library's own index files under instances/ (sets, known answers, examples by name): not instances."""


def instance_files() -> list[Path]:
    """Every bundled instance file, sorted (the library's index files left out)."""
    return sorted(p for p in INSTANCES.rglob("*.yaml") if p.name not in LIBRARY_INDEXES)


@pytest.fixture(scope="session")
def paper() -> Instance:
    return load_instance(PAPER)

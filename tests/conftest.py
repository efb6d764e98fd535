"""Shared fixtures: paths and the paper instance."""

from pathlib import Path

import pytest

from pdopt.instance import Instance
from pdopt.io import load_instance

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"
PAPER = INSTANCES / "paper" / "dsv31-h200-5mtpm.yaml"
EXAMPLE = INSTANCES / "examples" / "llama70b-bloom176b-a100-h100.yaml"


@pytest.fixture(scope="session")
def paper() -> Instance:
    return load_instance(PAPER)

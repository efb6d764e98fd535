"""Discrete-event simulation of plans: does a fleet really meet its SLOs under this traffic?

Names load on first use (PEP 562), so that the CLI can read :mod:`.options` without loading the simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"SimOptions": "pdopt.sim.options", "SimResult": "pdopt.sim.run", "simulate": "pdopt.sim.run",
            "tightness": "pdopt.sim.run", "Trace": "pdopt.io.traces", "arrival_scv": "pdopt.io.traces",
            "read_trace": "pdopt.io.traces"}

__all__ = ["SimOptions", "SimResult", "Trace", "arrival_scv", "read_trace", "simulate", "tightness"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pdopt.sim' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # the names for type checkers and editors; at run time __getattr__ loads them
    from pdopt.io.traces import Trace, arrival_scv, read_trace
    from pdopt.sim.options import SimOptions
    from pdopt.sim.run import SimResult, simulate, tightness

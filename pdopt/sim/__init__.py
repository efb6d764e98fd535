"""Discrete-event simulation of plans: does a fleet really meet its SLOs under this traffic?"""

from pdopt.sim.run import SimOptions, SimResult, simulate, tightness
from pdopt.sim.traces import Trace, arrival_scv, read_trace

__all__ = ["SimOptions", "SimResult", "Trace", "arrival_scv", "read_trace", "simulate", "tightness"]

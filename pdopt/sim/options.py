"""How to simulate, as plain data (the CLI builds it without loading the simulator)."""

from __future__ import annotations

from dataclasses import dataclass

from pdopt.errors import InputError

DISPATCH_POLICIES = ("auto", "random", "round_robin", "jsq", "pooled")
"""``auto``: what the model's capacity model assumes (:mod:`pdopt.sim.assumptions`)."""
SERVICE_DISTRIBUTIONS = ("auto", "deterministic", "exponential", "gamma", "lognormal")
LENGTH_MODES = ("workload", "fixed", "exponential", "trace", "trace_scaled")
ARRIVAL_MODES = ("auto", "poisson")


@dataclass(frozen=True)
class SimOptions:
    """How to simulate."""

    requests: int = 20000
    seed: int = 0
    prefill_dispatch: str = "auto"
    decode_dispatch: str = "auto"
    prefill_service: str = "auto"
    """``auto``: the total service SCV of each shape's capacity model, lengths and per-request factor together;
    otherwise the distribution of the per-request factor alone."""
    prefill_scv: float = 0.0
    """SCV of the prefill service factor for ``gamma`` and ``lognormal`` (exponential is 1, deterministic 0)."""
    arrivals: str = "auto"
    """``auto``: Poisson, or gamma renewal with the workload's ``arrival_scv`` under ``gg1``/``ggc``;
    ``poisson``: Poisson for every model."""
    lengths: str = "workload"
    """``workload``: each model's input_length_distribution where it has one, else its mean lengths; ``fixed``:
    the means; ``exponential``: exponential with the means; ``trace``: the trace's own; ``trace_scaled``: the
    trace's own, each model's rescaled so their means are the workload's."""
    length_tolerance: float = 0.2
    """A trace whose mean input or output length differs from a workload's by more than this fraction warns."""
    warmup_fraction: float = 0.1
    cooldown_fraction: float = 0.05
    trace_rate: str | float = "workload"
    """With a trace: ``workload`` rescales it to each model's planned rate, ``native`` keeps its times, a number
    rescales it to that many requests/s per model."""

    def validate(self) -> None:
        """Raise InputError naming the option at fault."""
        if self.requests < 1:
            raise InputError(f"requests: must be at least 1, got {self.requests}")
        for name, value in (("prefill_dispatch", self.prefill_dispatch), ("decode_dispatch", self.decode_dispatch)):
            if value not in DISPATCH_POLICIES:
                raise InputError(f"{name}: '{value}' is not one of {', '.join(DISPATCH_POLICIES)}")
        if self.prefill_service not in SERVICE_DISTRIBUTIONS:
            raise InputError(f"prefill_service: '{self.prefill_service}' is not one of "
                             f"{', '.join(SERVICE_DISTRIBUTIONS)}")
        if not 0 <= self.prefill_scv <= 1e4:  # NaN and infinities fail too
            raise InputError(f"prefill_scv: must be from 0 to 10000, got {self.prefill_scv}")
        if self.arrivals not in ARRIVAL_MODES:
            raise InputError(f"arrivals: '{self.arrivals}' is not one of {', '.join(ARRIVAL_MODES)}")
        if not 0 <= self.length_tolerance <= 100:
            raise InputError(f"length_tolerance: must be from 0 to 100, got {self.length_tolerance}")
        if self.lengths not in LENGTH_MODES:
            raise InputError(f"lengths: '{self.lengths}' is not one of {', '.join(LENGTH_MODES)}")
        if not (0 <= self.warmup_fraction < 1 and 0 <= self.cooldown_fraction < 1
                and self.warmup_fraction + self.cooldown_fraction < 0.9):
            raise InputError("warmup_fraction and cooldown_fraction must leave at least 10% of the requests")

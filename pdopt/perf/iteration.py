"""An aggregated engine's iteration-time model composed from separately measured prefill and decode times.

Splitwise (ISCA'24) measured, per (model, GPU, TP), the time of a whole prefill batch (``prompt_time``: ``bs``
prompts of L tokens) and of one decode iteration (``token_time``: a batch of ``bs`` requests with L-token prompts
generating O tokens). Neither is a mixed iteration; chunked prefill runs one. The composition:

1. Prefill, fitted by non-negative least squares over every measured (bs, L):
   t_p = a_p + b (bs L) + c (bs L^2)   (DistServe's prefill form: fixed cost, per token, per squared prompt).
2. Decode, likewise: t_d = a_d + e bs + d bs (L + O/2)   (per request in the batch; per context token, at the
   mean context of a request over its generation, L + O/2).
3. A mixed iteration passes through the weights once: its fixed cost is the decode iteration's a_d, and the
   prefill chunk adds its per-token and quadratic work: t = a_d + b P + c Q + d C + e B
   (:class:`pdopt.instance.IterationModel`). The prefill fit's own fixed cost a_p is not added (it is the same
   pass through the weights; when a_p > a_d a prefill-only iteration is under-stated by a_p - a_d, reported).

The fit's relative RMS errors are reported with the coefficients so that a user sees how well each form holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pdopt.instance import IterationModel


@dataclass(frozen=True)
class PrefillTime:
    """A measured prefill batch: ``batch`` prompts of ``prompt_tokens`` each took ``time_ms``."""

    batch: int
    prompt_tokens: float
    time_ms: float


@dataclass(frozen=True)
class DecodeTime:
    """A measured decode iteration: ``batch`` requests with ``prompt_tokens``-token prompts generating
    ``output_tokens`` tokens, ``time_ms`` per iteration (averaged over the generation)."""

    batch: int
    prompt_tokens: float
    output_tokens: float
    time_ms: float


@dataclass(frozen=True)
class ComposedIteration:
    """The composed model, the two fits' coefficients and their relative RMS errors."""

    iteration: IterationModel
    prefill_fixed_ms: float
    """a_p, not part of the composed model (the decode fixed cost a_d is)."""
    prefill_rms: float
    decode_rms: float


def _nnls(rows: list[list[float]], target: list[float]) -> tuple[list[float], float]:
    """Non-negative least squares on relative errors (each row divided by its target); the coefficients and the
    relative RMS error of the fit."""
    from scipy.optimize import nnls  # deferred: scipy loads only when a fit is asked for

    a = np.array(rows, dtype=float)
    y = np.array(target, dtype=float)
    coef, _ = nnls(a / y[:, None], np.ones_like(y))
    rel = a @ coef / y - 1.0
    return [float(c) for c in coef], float(math.sqrt(float(np.mean(rel * rel))))


def compose_iteration(prefill: Sequence[PrefillTime], decode: Sequence[DecodeTime],
                      source: str = "") -> ComposedIteration:
    """Fit both forms (module docstring) and compose the mixed iteration. Needs at least 3 prefill and 3
    decode measurements with positive times (ValueError otherwise)."""
    if len(prefill) < 3 or len(decode) < 3:
        raise ValueError(f"composing an iteration model needs at least 3 prefill and 3 decode measurements, got "
                         f"{len(prefill)} and {len(decode)}")
    if any(p.time_ms <= 0 for p in prefill) or any(d.time_ms <= 0 for d in decode):
        raise ValueError("every measured time must be positive")
    (a_p, b, c), rms_p = _nnls([[1.0, p.batch * p.prompt_tokens, p.batch * p.prompt_tokens ** 2] for p in prefill],
                               [p.time_ms for p in prefill])
    (a_d, e, d), rms_d = _nnls([[1.0, q.batch, q.batch * (q.prompt_tokens + q.output_tokens / 2.0)] for q in decode],
                               [q.time_ms for q in decode])
    note = (f"composed: decode fit t = {a_d:.4g} + {e:.4g} B + {d:.4g} C ms (rel. RMS {rms_d:.1%}); prefill fit "
            f"t = {a_p:.4g} + {b:.4g} P + {c:.4g} Q ms (rel. RMS {rms_p:.1%}); a mixed iteration pays the decode "
            f"fixed cost {a_d:.4g} ms once (the prefill fit's {a_p:.4g} ms is the same pass through the weights)")
    it = IterationModel(overhead_ms=a_d, per_prefill_token_ms=b, prefill_quadratic_ms=c, per_context_token_ms=d,
                        per_decode_seq_ms=e, source=f"{source}; {note}" if source else note)
    return ComposedIteration(it, a_p, rms_p, rms_d)

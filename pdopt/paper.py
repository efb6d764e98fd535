"""The paper's closed form (Li et al. 2026, arXiv 2603.04716): token-flow balance of prefill and decode.

Given one prefill and one decode shape's SLO throughput, the unrounded P and D counts (eqs. 1, 5, 6, 7). The
per-instance rules the paper sizes with are here too: the M/M/1 prefill rate at a TTFT target
(:func:`mm1_max_arrival_rate`, eq. 13) and the largest batch within the TPOT target
(:func:`max_batch_within_tpot`). pdopt's MILP reproduces these counts, rounded up, when one shape serves each
role; ``compare`` uses the rounded form as a baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdopt.instance import Instance
from pdopt.perf.capacity import capacity_table, max_batch_within_tpot, mm1_max_arrival_rate
from pdopt.perf.shapes import ShapeCapacity

__all__ = ["PaperPlan", "closed_form_for_model", "max_batch_within_tpot", "mm1_max_arrival_rate", "paper_closed_form"]


@dataclass(frozen=True)
class PaperPlan:
    """The paper's closed-form P/D sizing for one shape pair (eqs. 1, 5, 6, 7), unrounded."""

    total_throughput_tok_per_s: float
    request_rate_rps: float
    prefill_throughput_tok_per_s: float
    decode_throughput_tok_per_s: float
    n_prefill: float
    n_decode: float
    pd_ratio: float


def paper_closed_form(
    total_throughput_tok_per_s: float,
    input_tokens: float,
    output_tokens: float,
    prefill_throughput_tok_per_s: float,
    decode_throughput_tok_per_s: float,
) -> PaperPlan:
    """Token-flow balance of the paper.

    (1) N_req = TP_total / (L_in + L_out); (5) N_P = TP_total L_in / ((L_in + L_out) TP_P);
    (6) N_D = TP_total L_out / ((L_in + L_out) TP_D); (7) R_P/D = N_P / N_D = L_in TP_D / (L_out TP_P).
    """
    total_len = input_tokens + output_tokens
    n_p = total_throughput_tok_per_s * input_tokens / (total_len * prefill_throughput_tok_per_s)
    n_d = total_throughput_tok_per_s * output_tokens / (total_len * decode_throughput_tok_per_s)
    return PaperPlan(
        total_throughput_tok_per_s=total_throughput_tok_per_s,
        request_rate_rps=total_throughput_tok_per_s / total_len,
        prefill_throughput_tok_per_s=prefill_throughput_tok_per_s,
        decode_throughput_tok_per_s=decode_throughput_tok_per_s,
        n_prefill=n_p,
        n_decode=n_d,
        pd_ratio=input_tokens * decode_throughput_tok_per_s / (output_tokens * prefill_throughput_tok_per_s),
    )


def closed_form_for_model(instance: Instance, model: str, prefill: ShapeCapacity | None = None,
                          decode: ShapeCapacity | None = None, scale_demand: float = 1.0) -> PaperPlan:
    """The paper's unrounded P/D counts for one model and one prefill and one decode shape.

    Without explicit shapes the model must have exactly one usable shape per role (the paper's setting).
    """
    table = capacity_table(instance)
    chosen: dict[str, ShapeCapacity] = {}
    for role, given in (("prefill", prefill), ("decode", decode)):
        if given is not None:
            chosen[role] = given
            continue
        shapes = table.for_role(model, role)
        if len(shapes) != 1:
            raise ValueError(f"model '{model}' has {len(shapes)} usable {role} shapes; pass the one to use")
        chosen[role] = shapes[0]
    w = instance.workloads[model]
    total = w.demand_rps() * scale_demand * (w.input_tokens_mean + w.output_tokens_mean)
    return paper_closed_form(total, w.input_tokens_mean, w.output_tokens_mean,
                             chosen["prefill"].throughput_tok_per_s, chosen["decode"].throughput_tok_per_s)

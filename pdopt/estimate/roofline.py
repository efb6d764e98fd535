"""A roofline estimate of prefill throughput and TPOT(batch), from the architecture and the GPU's peak numbers.

For a first plan before any measurement: no database, only the model's architecture (``models.<m>.architecture``
with ``hidden_size``) and the GPU type's peaks (``gpu_types.<g>.spec``). One instance of G GPUs (tensor-parallel,
experts sharded over EP of them) runs each forward pass in

    T = max(F / (G eta_c P), B_mem / (G eta_m BW)) + T_comm + t_step

with P the dense peak FLOP/s per GPU (FP8 for 1-byte weights when the GPU has it), BW the HBM bandwidth, eta_c and
eta_m the stated shares of them an engine reaches (:class:`pdopt.instance.RooflineEfficiency`), and t_step a fixed
cost per pass. With N_act = N - N_e + N_e k / E the parameters a token goes through (N_e the routed experts'
parameters, k of E experts per token; N_act = N for a dense model), n layers, H query heads of dimension d:

- prefill of one request of L tokens (batch 1, as a maximum-throughput benchmark runs it):
  F = 2 N_act L + 2 n H d L^2 (linear layers, and causal attention over L^2 / 2 token pairs at 4 H d FLOPs
  each), B_mem = bytes of the weights the L tokens touch + L KV bytes written; max throughput = L / T;
- one decode step of B requests at mean context c = input + output / 2:
  F = B (2 N_act + 4 n H d c), B_mem = bytes of the weights the B tokens touch + B c KV bytes read;
  TPOT = T.

The weights a pass touches: all dense ones, and of each MoE layer's E experts the expected number any of the tokens
routes to, E (1 - (1 - k/E)^tokens) (uniform routing). T_comm: with G > 1, two ring all-reduces per layer of the
tokens' hidden states (2 bytes per element), each 2 (G - 1)/G x bytes / (eta_n link) + alpha; with EP > 1
an MoE layer's second all-reduce becomes a dispatch and a combine all-to-all of k (EP - 1)/EP of the tokens'
states, each + alpha. alpha is one collective's latency, whatever G: for the small messages of decode, NCCL's
low-latency protocols take a few microseconds per collective rather than one per ring step. The link is NVLink
(PCIe without it), or the inter-node network for an instance spanning nodes.

Decode batches whose KV cache (B (input + output) KV bytes) does not fit beside the weights in the instance's
memory are left out; a shape whose weights do not fit is a gap. The result is a profile like a benchmark's,
marked ``estimate: {estimator: roofline, version: <pdopt's>, inputs: ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pdopt import __version__
from pdopt.errors import InputError, format_validation_error
from pdopt.estimate.base import EstimateResult, Gap, ShapeRequest
from pdopt.estimate.gpu_specs import ResolvedSpec, resolve_spec
from pdopt.instance import (
    DecodeCurve,
    DecodePoint,
    DecodeProfile,
    Instance,
    ModelArchitecture,
    PrefillPoint,
    PrefillProfile,
    RooflineEfficiency,
)
from pdopt.instance.profiles import Estimate
from pdopt.perf.decode import kv_batch_bound

ACTIVATION_BYTES = 2.0
"""Bytes per element of the hidden states exchanged by collectives (BF16)."""


@dataclass(frozen=True)
class Roofline:
    """One (model, GPU type, layout): the architecture, the GPU's numbers and the efficiencies, and the times."""

    arch: ModelArchitecture
    kv_bytes_per_token: float
    spec: ResolvedSpec
    eff: RooflineEfficiency
    gpus: int
    ep: int = 1
    spans_nodes: bool = False

    @property
    def hidden(self) -> int:
        """The hidden size (checked present by :func:`roofline_for`)."""
        assert self.arch.hidden_size is not None
        return self.arch.hidden_size

    @property
    def heads(self) -> int:
        """Query heads: stated, or hidden size / head dim."""
        return self.arch.num_attention_heads or max(1, self.hidden // self.arch.head_dim)

    def weight_bytes(self, tokens: float) -> float:
        """Bytes of the weights one pass over ``tokens`` tokens reads: the dense part, and the experts routed to."""
        a = self.arch
        total = a.num_parameters_billion * 1e9 * a.bytes_per_parameter
        if not a.is_moe:
            return total
        assert a.num_experts is not None and a.experts_per_token is not None
        assert a.expert_parameters_billion is not None
        experts = a.expert_parameters_billion * 1e9 * a.bytes_per_parameter
        touched = 1.0 - float((1.0 - a.experts_per_token / a.num_experts) ** tokens)
        return total - experts + experts * touched

    def active_parameters(self) -> float:
        """Parameters one token goes through, N - N_e + N_e k / E."""
        a = self.arch
        if not a.is_moe:
            return a.num_parameters_billion * 1e9
        assert a.num_experts is not None and a.experts_per_token is not None
        assert a.expert_parameters_billion is not None
        return (a.num_parameters_billion - a.expert_parameters_billion
                + a.expert_parameters_billion * a.experts_per_token / a.num_experts) * 1e9

    def link_bytes_per_s(self) -> float:
        """The collectives' link: the inter-node network for an instance spanning nodes, else NVLink/PCIe."""
        link = self.spec.inter_node_bytes_per_s if self.spans_nodes else self.spec.intra_node_bytes_per_s
        if link is None:
            where = "inter_node_gb_per_s" if self.spans_nodes else "intra_node_gb_per_s"
            raise InputError(f"GPU {self.spec.name}: {where} unknown, needed for an instance of {self.gpus} GPUs; "
                             f"state gpu_types.<id>.spec.{where}")
        return link * self.eff.network_efficiency

    def comm_s(self, tokens: float) -> float:
        """Collective time of one pass over ``tokens`` tokens (zero on one GPU)."""
        g = self.gpus
        if g == 1:
            return 0.0
        alpha = self.eff.collective_latency_us * 1e-6
        layers = self.arch.num_layers
        state = tokens * self.hidden * ACTIVATION_BYTES
        link = self.link_bytes_per_s()
        allreduce = 2.0 * (g - 1) / g * state / link + alpha
        if self.ep > 1 and self.arch.is_moe:
            assert self.arch.experts_per_token is not None
            alltoall = self.arch.experts_per_token * (self.ep - 1) / self.ep * state / self.gpus / link
            return layers * (allreduce + 2.0 * (alltoall + alpha))
        return layers * 2.0 * allreduce

    def pass_s(self, flops: float, bytes_moved: float, tokens: float) -> float:
        """One forward pass: the slower of compute and memory, plus collectives and the fixed step cost."""
        compute = flops / (self.gpus * self.eff.compute_efficiency * self.spec.flops_for(self.arch.bytes_per_parameter))
        memory = bytes_moved / (self.gpus * self.eff.memory_efficiency * self.spec.hbm_bytes_per_s)
        return max(compute, memory) + self.comm_s(tokens) + self.eff.step_overhead_ms / 1e3

    def prefill_throughput(self, input_tokens: float) -> float:
        """Maximum prefill throughput of one instance at ``input_tokens`` (tokens/s, one request per pass)."""
        n_l, h, d = self.arch.num_layers, self.heads, self.arch.head_dim
        flops = 2.0 * self.active_parameters() * input_tokens + 2.0 * n_l * h * d * input_tokens ** 2
        moved = self.weight_bytes(input_tokens) + input_tokens * self.kv_bytes_per_token
        return input_tokens / self.pass_s(flops, moved, input_tokens)

    def tpot_ms(self, batch: int, context_tokens: float) -> float:
        """Time of one decode step of ``batch`` requests at mean context ``context_tokens``, ms."""
        n_l, h, d = self.arch.num_layers, self.heads, self.arch.head_dim
        flops = batch * (2.0 * self.active_parameters() + 4.0 * n_l * h * d * context_tokens)
        moved = self.weight_bytes(batch) + batch * context_tokens * self.kv_bytes_per_token
        return 1e3 * self.pass_s(flops, moved, batch)


def layout_problem(arch: ModelArchitecture, tp: int, ep: int) -> str | None:
    """Why an engine cannot shard the model this way (None when it can): tensor parallelism splits the query
    heads evenly, and the KV heads evenly or replicates them (TP a multiple of the KV heads), as vLLM and SGLang
    require; expert parallelism splits the experts evenly."""
    heads = arch.num_attention_heads or (arch.hidden_size // arch.head_dim if arch.hidden_size else None)
    if heads is not None and heads % tp:
        return f"TP {tp} does not divide the {heads} attention heads"
    if arch.num_kv_heads % tp and tp % arch.num_kv_heads:
        return f"TP {tp} neither divides nor is a multiple of the {arch.num_kv_heads} KV heads"
    if ep > 1 and arch.num_experts is not None and arch.num_experts % ep:
        return f"EP {ep} does not divide the {arch.num_experts} experts"
    return None


def roofline_for(instance: Instance, shape: ShapeRequest, eff: RooflineEfficiency) -> Roofline:
    """The roofline of one shape of an instance; InputError naming the field an estimate needs and lacks."""
    model = instance.models[shape.model]
    arch = model.architecture
    if arch is None:
        raise InputError(f"models.{shape.model}.architecture: needed to estimate (layers, heads, head_dim, "
                         "hidden_size, parameters)")
    if arch.hidden_size is None:
        raise InputError(f"models.{shape.model}.architecture.hidden_size: needed to estimate")
    if shape.ep > 1 and not arch.is_moe:
        raise InputError(f"shape {shape.label()}: EP {shape.ep} for a dense model (models.{shape.model}."
                         "architecture gives no experts)")
    if shape.tp % shape.ep:
        raise InputError(f"shape {shape.label()}: EP {shape.ep} does not divide TP {shape.tp}")
    spec = resolve_spec(shape.gpu_type, instance.gpu_types[shape.gpu_type])
    return Roofline(arch, model.kv_bytes_per_token_value, spec, eff, shape.tp, shape.ep, shape.spans_nodes)


def _estimate(shape: ShapeRequest, roof: Roofline, eff: RooflineEfficiency) -> Estimate:
    inputs: dict[str, str | float | int | bool] = {
        "gpu": roof.spec.name, "tp": shape.tp, "ep": shape.ep, "compute_efficiency": eff.compute_efficiency,
        "memory_efficiency": eff.memory_efficiency, "network_efficiency": eff.network_efficiency,
        "step_overhead_ms": eff.step_overhead_ms, "collective_latency_us": eff.collective_latency_us}
    return Estimate(estimator="roofline", version=__version__, inputs=inputs)  # the roofline's is pdopt's


def estimate_roofline(instance: Instance, shapes: Sequence[ShapeRequest],
                      eff: RooflineEfficiency | None = None) -> EstimateResult:
    """Prefill and decode profiles of every shape by the roofline above; a shape that does not fit is a gap."""
    eff = eff or RooflineEfficiency()
    usable = instance.options.kv_usable_fraction
    out = EstimateResult()
    for shape in shapes:
        roof = roofline_for(instance, shape, eff)
        problem = layout_problem(roof.arch, shape.tp, shape.ep)
        if problem is not None:
            out.gaps += [Gap(shape, role, problem) for role in shape.roles]
            continue
        weights_gb = instance.models[shape.model].weights_gb_value
        room_gb = shape.tp * roof.spec.memory_gb * usable
        if weights_gb >= room_gb:
            for role in shape.roles:
                out.gaps.append(Gap(shape, role, f"weights of {weights_gb:g} GB do not fit in {shape.tp} x "
                                                 f"{roof.spec.memory_gb:g} GB x {usable:g} usable"))
            continue
        common: dict[str, Any] = {"model": shape.model, "gpu_type": shape.gpu_type, "gpus_per_instance": shape.tp,
                  "variant": shape.variant, "spans_nodes": shape.spans_nodes, "estimate": _estimate(shape, roof, eff),
                  "source": f"roofline estimate ({roof.spec.source})"}
        before = len(out.profiles)
        try:
            if "prefill" in shape.roles:
                points = [PrefillPoint(input_tokens=n, max_throughput_tok_per_s=roof.prefill_throughput(n))
                          for n in shape.input_tokens]
                out.profiles.append(PrefillProfile(role="prefill", max_throughput_by_input=points, **common))
            if "decode" in shape.roles:
                decode = _decode(instance, shape, roof, common)
                if isinstance(decode, str):
                    out.gaps.append(Gap(shape, "decode", decode))
                else:
                    out.profiles.append(decode)
        except ValidationError as err:  # numbers no profile may hold (a TPOT below 1e-6 ms from absurd specs)
            del out.profiles[before:]  # the shape is estimated whole or not at all
            out.gaps += [Gap(shape, role, "the estimate is outside the instance format's ranges: "
                                          + "; ".join(format_validation_error(err))) for role in shape.roles]
    return out


def _decode(instance: Instance, shape: ShapeRequest, roof: Roofline,
            common: dict[str, Any]) -> DecodeProfile | str:
    """The decode profile: one curve at the shape's lengths, or, when its periods' input lengths differ, a 2-D
    table of curves at each (at the batches whose KV cache fits at the longest, by the planner's own bound,
    :func:`pdopt.perf.decode.kv_batch_bound`); the reason when too few fit."""
    lengths: dict[float, float] = {shape.decode_input_tokens: shape.output_tokens}
    for inp, out in shape.decode_lengths:
        lengths[inp] = max(out, lengths.get(inp, 0.0))  # the longer output for one input length: the slower
    per_request = max(inp + out for inp, out in lengths.items())
    bound = kv_batch_bound(instance, shape.model, shape.gpu_type, shape.tp, per_request)
    batches = [b for b in shape.batches if b <= bound]
    if len(batches) < 2:
        return (f"the KV cache holds fewer than 2 of the batches {list(shape.batches)} of requests of "
                f"{per_request:g} tokens beside the weights")
    if len(lengths) == 1:
        curve = [DecodePoint(batch=b, tpot_ms=roof.tpot_ms(b, shape.decode_input_tokens + shape.output_tokens / 2))
                 for b in batches]
        return DecodeProfile(role="decode", tpot_by_batch=curve, input_tokens=shape.decode_input_tokens,
                             output_tokens=shape.output_tokens, **common)
    table = [DecodeCurve(input_tokens=inp, tpot_by_batch=[DecodePoint(batch=b, tpot_ms=roof.tpot_ms(b, inp + out / 2))
                                                          for b in batches])
             for inp, out in sorted(lengths.items())]
    return DecodeProfile(role="decode", tpot_by_input=table, **common)

"""The instance format: what an operator states about models, traffic, SLOs, benchmarks and GPUs.

Every model is strict (unknown keys are errors, numbers are not parsed from strings), frozen, and carries its
unit in each field name. Identifiers match ``^[a-z][a-z0-9_]*$`` so that they stay legal inside solver row
names. Cross-references (a workload naming an unknown model, a profile naming an unknown GPU type, ...) are
checked once the whole instance is read, and every problem is reported with the path of the field at fault.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticSerializationError, to_jsonable_python

from pdopt.errors import InputError, format_validation_error
from pdopt.instance.base import SERVING_MODES, Identifier, ServingMode, StrictModel
from pdopt.instance.estimates import GpuSpec, ModelArchitecture, ShapeSearch, shape_search_problems
from pdopt.instance.horizon import Horizon, PeriodOverride
from pdopt.instance.profiles import AggregatedProfile, DecodeProfile, PrefillProfile, Profile
from pdopt.instance.purchase import Purchase, purchase_problems
from pdopt.instance.traffic import Demand, LengthDistribution, TpotSlo, TtftSlo


class GpuType(StrictModel):
    """A GPU type that can be rented or is owned."""

    memory_gb: PositiveFloat
    """HBM per GPU, GB (10^9 bytes)."""
    price_usd_per_gpu_hour: NonNegativeFloat
    """Price of one GPU for one hour, used when a node pool gives no node-hour price."""
    max_gpus: NonNegativeInt | None = None
    """Availability cap: at most this many GPUs of this type over all pools (``null``: no cap)."""
    nic_gbps_per_gpu: PositiveFloat | None = None
    """Network bandwidth per GPU for KV transfer, Gbit/s (needed when ``network.client_io_s`` is set)."""
    spec: GpuSpec | None = None
    """Peak numbers for estimated profiles (a catalog GPU and/or stated numbers); unused by measured ones."""
    description: str = ""


class NodePool(StrictModel):
    """A pool of identical nodes of one GPU type."""

    gpu_type: Identifier
    gpus_per_node: PositiveInt
    node_count: NonNegativeInt
    """How many nodes the pool holds (the inventory)."""
    price_usd_per_node_hour: NonNegativeFloat | None = None
    """Price of one node-hour."""
    billing: Literal["node_hour", "gpu_hour"] | None = None
    """``node_hour``: whole nodes are rented, a partly used node is paid in full; ``gpu_hour``: GPUs are paid one
    by one at the GPU type's price. Default: ``node_hour`` when the pool gives a node-hour price."""
    activation_cost_usd_per_hour: NonNegativeFloat = 0.0
    """Extra hourly cost of each node in use (host software, reserved capacity, ...)."""
    domain: Identifier = "default"
    """Failure/network domain (rack, zone) the pool's nodes are in."""
    description: str = ""
    purchase: Purchase | None = None
    """How the pool's units (nodes, or GPUs when billed per GPU-hour) may be bought over a horizon: reserved,
    on demand, spot (:mod:`pdopt.instance.purchase`). None: on demand at the pool's price."""

    @model_validator(mode="after")
    def _billing_needs_price(self) -> NodePool:
        if self.billing == "node_hour" and self.price_usd_per_node_hour is None:
            raise ValueError("billing node_hour needs price_usd_per_node_hour")
        return self

    @property
    def billed_per_node(self) -> bool:
        """True when whole nodes are billed."""
        if self.billing is not None:
            return self.billing == "node_hour"
        return self.price_usd_per_node_hour is not None


class Model(StrictModel):
    """A served model: its KV-cache size per token and its weight size, stated or derived. With an architecture,
    a stated ``kv_bytes_per_token`` takes precedence over the derived one (attention that caches something other
    than K and V per head, such as multi-head latent attention)."""

    kv_bytes_per_token: PositiveFloat | None = None
    weights_gb: PositiveFloat | None = None
    architecture: ModelArchitecture | None = None
    description: str = ""

    @model_validator(mode="after")
    def _stated_or_derived(self) -> Model:
        explicit = (self.kv_bytes_per_token is not None, self.weights_gb is not None)
        if self.architecture is None and not all(explicit):
            missing = [n for n, given in zip(("kv_bytes_per_token", "weights_gb"), explicit, strict=True) if not given]
            raise ValueError(f"give {' and '.join(missing)}, or an architecture to derive them from")
        if self.architecture is not None and self.weights_gb is not None:
            raise ValueError("give either weights_gb or an architecture (weights = parameters x bytes per "
                             "parameter), not both")
        return self

    @property
    def kv_bytes_per_token_value(self) -> float:
        """KV-cache bytes per token, stated or derived from the architecture."""
        if self.kv_bytes_per_token is not None:
            return self.kv_bytes_per_token
        arch = self.architecture
        assert arch is not None
        return 2.0 * arch.num_layers * arch.num_kv_heads * arch.head_dim * arch.kv_bytes_per_element

    @property
    def weights_gb_value(self) -> float:
        """Weight size in GB, stated or derived from the architecture."""
        if self.weights_gb is not None:
            return self.weights_gb
        arch = self.architecture
        assert arch is not None
        return arch.num_parameters_billion * arch.bytes_per_parameter


class Workload(StrictModel):
    """Traffic and SLOs of one model."""

    demand: Demand
    input_tokens_mean: PositiveFloat
    output_tokens_mean: PositiveFloat
    ttft: TtftSlo
    tpot: TpotSlo
    ttft_overhead_s: NonNegativeFloat = 0.0
    """Fixed time added to every TTFT: P->D KV transfer plus client I/O (the paper's T_overhead)."""
    input_length_distribution: LengthDistribution | None = None
    """The mix of input lengths: prefill service time then follows each length (and its SCV is derived)."""
    prefix_cache_hit_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Share of each prompt served from the prefix cache: prefill computes only the uncached (1 - h) part."""
    queue_model: Literal["mm1", "gg1", "ggc"] = "mm1"
    """Prefill queue: ``mm1`` (the paper's), ``gg1`` (general service and arrival variability, one queue per
    instance), ``ggc`` (one pooled queue in front of all instances of a shape; capacity grows with their number)."""
    service_scv: NonNegativeFloat | None = None
    """Squared coefficient of variation of prefill service times (``gg1``/``ggc``): 0 deterministic, 1 exponential.
    Default: derived from ``input_length_distribution`` when given, else 1."""
    arrival_scv: NonNegativeFloat = 1.0
    """Squared coefficient of variation of inter-arrival times (``gg1``/``ggc``): 1 for Poisson; a trace gives it."""
    decode_model: Literal["paper", "under_load"] = "paper"
    """``paper``: every request sees TPOT at the planned batch; ``under_load``: the running batch fluctuates
    (Poisson, as the number in service of an M/G/inf queue) and the TPOT statistic is taken over it."""
    spare_instances: dict[Literal["prefill", "decode", "aggregated"], NonNegativeInt] = Field(default_factory=dict)
    """N+k: the demand stays covered after losing any k instances of the role (k per role, default 0); a role
    the plan does not use needs no spares."""
    modes: list[ServingMode] | None = None
    """Serving modes the plan may use for this model: ``aggregated`` (prefill and decode in one engine),
    ``disaggregated`` (P/D pairs), or both, the traffic then split between them by the router. Default: every
    mode the model has profiles for."""
    by_period: dict[Identifier, PeriodOverride] = Field(default_factory=dict)
    """What this workload restates in a period of the instance's ``horizon`` (its demand, lengths, SLOs, arrival
    variability), by period name; a period left out has the workload's own values."""

    @model_validator(mode="after")
    def _modes_distinct(self) -> Workload:
        if self.modes is not None:
            if not self.modes:
                raise ValueError("modes: name at least one of aggregated, disaggregated (or leave it out)")
            if len(set(self.modes)) != len(self.modes):
                raise ValueError(f"modes: {self.modes} names a mode twice")
        return self

    @model_validator(mode="after")
    def _distribution_matches_mean(self) -> Workload:
        dist = self.input_length_distribution
        if dist is not None and abs(dist.mean - self.input_tokens_mean) > 0.01 * self.input_tokens_mean:
            raise ValueError(f"input_tokens_mean {self.input_tokens_mean:g} differs from the mean "
                             f"{dist.mean:.6g} of input_length_distribution by more than 1%")
        return self

    def demand_rps(self) -> float:
        """Requests per second: stated, or eq. (1) of the paper inverted, N = TP_total / (L_in + L_out)."""
        if self.demand.requests_per_s is not None:
            return self.demand.requests_per_s
        assert self.demand.tokens_per_min is not None
        return self.demand.tokens_per_min / 60.0 / (self.input_tokens_mean + self.output_tokens_mean)


class Link(StrictModel):
    """A network link between two domains or switches."""

    a: Identifier
    b: Identifier
    bandwidth_gbps: PositiveFloat
    latency_ms: NonNegativeFloat = 0.0


class Network(StrictModel):
    """Domains (the pools' ``domain`` names), switches and links: KV traffic between prefill and decode domains
    must fit the links on its route."""

    switches: list[Identifier] = Field(default_factory=list)
    links: list[Link] = Field(min_length=1)
    routing: Literal["shortest_path", "ecmp"] = "shortest_path"
    """``shortest_path``: each domain pair uses one shortest path (fewest hops, then lowest latency, then names);
    ``ecmp``: traffic splits evenly over all fewest-hop paths."""
    client_io_s: NonNegativeFloat | None = None
    """When set, a prefill shape's TTFT overhead is this plus its KV transfer time (KV bytes of the prompt over
    GPUs x nic_gbps_per_gpu), instead of the workload's ``ttft_overhead_s``."""
    kv_arrival_stalls_decode: bool = False
    """The user's assumption that a decode instance stalls while a prompt's KV cache arrives: its join cost per
    admitted request (docs/capacity.md, "Decode calibration under load") gains the KV receive time, KV bytes of
    the prompt over the decode instance's GPUs x nic_gbps_per_gpu."""


class Resilience(StrictModel):
    """Survive the loss of any one domain."""

    domain_loss_fraction: float = Field(gt=0.0, le=1.0)
    """After removing every instance in any one domain, the rest serves this fraction of each model's demand."""


class Limits(StrictModel):
    """Fleet-wide limits."""

    budget_usd_per_hour: NonNegativeFloat | None = None
    """The plan may cost at most this much per hour."""


class PlannerOptions(StrictModel):
    """Modelling choices that change capacities."""

    decode_batch_rule: Literal["whole", "fractional"] = "whole"
    """``whole``: the largest integer batch whose interpolated TPOT meets the target; ``fractional``: the
    batch at which the interpolated TPOT equals the target exactly."""
    pooled_gain_epsilon: float = Field(default=1e-3, gt=0.0, lt=1.0)
    """``ggc``: beyond the first pooled instance whose marginal gain is within this relative tolerance of the
    next, every further instance adds that same gain (the affine tail of the linearisation)."""
    pooled_max_steps: int = Field(default=32, ge=1, le=512)
    """``ggc``: at most this many exact binary increments before the affine tail."""
    kv_usable_fraction: float = Field(default=0.9, gt=0.0, le=1.0)
    """Share of GPU memory the engine may use for weights and KV cache (vLLM's gpu_memory_utilization)."""


class Instance(StrictModel):
    """A complete planning problem."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    description: str = ""
    gpu_types: dict[Identifier, GpuType] = Field(min_length=1)
    node_pools: dict[Identifier, NodePool] = Field(min_length=1)
    models: dict[Identifier, Model] = Field(min_length=1)
    workloads: dict[Identifier, Workload] = Field(min_length=1)
    """One workload per model, keyed by the model's id."""
    profiles: list[Profile] = Field(default_factory=list)
    """Measured (or estimated) profiles; at least one unless ``shape_search`` estimates them."""
    options: PlannerOptions = PlannerOptions()
    limits: Limits = Limits()
    network: Network | None = None
    resilience: Resilience | None = None
    generated_by: dict[str, str | int | float | list[int]] | None = None
    """For generated instances: the generator's family and parameters (so the instance can be regenerated)."""
    horizon: Horizon | None = None
    """The periods to plan (:mod:`pdopt.instance.horizon`); None: one period, the workloads as stated."""
    shape_search: ShapeSearch | None = None
    """Shapes to estimate and plan among (:mod:`pdopt.instance.estimates`); the readers of :mod:`pdopt.io`
    estimate them (:func:`pdopt.estimate.expand_shapes`) and the planner sees them as profiles."""

    @model_validator(mode="after")
    def _cross_references(self) -> Instance:
        problems: list[str] = []
        for pid, pool in self.node_pools.items():
            if pool.gpu_type not in self.gpu_types:
                problems.append(f"node_pools.{pid}.gpu_type: unknown GPU type '{pool.gpu_type}'")
        for mid in self.workloads:
            if mid not in self.models:
                problems.append(f"workloads.{mid}: no model '{mid}' in models")
        seen: dict[tuple[str, str, str, int, str], int] = {}
        for i, prof in enumerate(self.profiles):
            if prof.model not in self.models:
                problems.append(f"profiles[{i}].model: unknown model '{prof.model}'")
            if prof.gpu_type not in self.gpu_types:
                problems.append(f"profiles[{i}].gpu_type: unknown GPU type '{prof.gpu_type}'")
            if prof.key in seen:
                problems.append(f"profiles[{i}]: duplicates profiles[{seen[prof.key]}] (same model, role, "
                                "gpu_type, gpus_per_instance, variant)")
            seen.setdefault(prof.key, i)
        for mid, wl in self.workloads.items():
            if mid in self.models:
                problems.extend(self._mode_problems(mid, wl))
        problems.extend(self._packing_problems())
        problems.extend(self._network_problems())
        problems.extend(self._period_problems())
        problems.extend(shape_search_problems(self.shape_search, self.models, self.gpu_types, bool(self.profiles)))
        problems.extend(purchase_problems(self.node_pools, self.horizon.names if self.horizon is not None else []))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def serving_modes(self, model: str) -> tuple[ServingMode, ...]:
        """The modes a model may be served in: those its workload allows (all by default) that it has profiles
        for (aggregated: an aggregated profile; disaggregated: a prefill and a decode profile)."""
        roles = {p.role for p in self.profiles if p.model == model}
        have = {"aggregated": "aggregated" in roles, "disaggregated": {"prefill", "decode"} <= roles}
        allowed = self.workloads[model].modes or list(SERVING_MODES)
        return tuple(m for m in SERVING_MODES if m in allowed and have[m])

    def _mode_problems(self, mid: str, wl: Workload) -> list[str]:
        """A workload needs the profiles of at least one allowed mode, and of every mode it names."""
        roles = {p.role for p in self.profiles if p.model == mid}
        if self.shape_search is not None and mid in self.shape_search.models:
            roles |= set(self.shape_search.models[mid].roles)  # estimated when the instance is read
        named = wl.modes or []
        problems = []
        for mode in named:
            missing = ["aggregated"] if mode == "aggregated" else sorted({"prefill", "decode"} - roles)
            missing = [r for r in missing if r not in roles]
            if missing:
                problems.append(f"workloads.{mid}.modes: '{mode}' needs {' and '.join(missing)} profile(s) for "
                                f"model '{mid}'")
        if not named and "aggregated" not in roles:
            problems += [f"profiles: no {role} profile for model '{mid}' (workloads.{mid} needs one, or an "
                         "aggregated profile)" for role in ("prefill", "decode") if role not in roles]
        return problems

    def _network_problems(self) -> list[str]:
        """Links name known domains or switches; every pool's domain is on the network; the domains that hold
        pools are connected; transfer times need NIC bandwidths."""
        net = self.network
        if net is None:
            return []
        import networkx as nx

        domains = {p.domain for p in self.node_pools.values()}
        known = domains | set(net.switches)
        problems: list[str] = []
        graph = nx.Graph()
        graph.add_nodes_from(known)
        for i, link in enumerate(net.links):
            for end in ("a", "b"):
                if getattr(link, end) not in known:
                    problems.append(f"network.links[{i}].{end}: '{getattr(link, end)}' is neither a pool domain nor "
                                    f"a switch (known: {', '.join(sorted(known))})")
            graph.add_edge(link.a, link.b)
        if not problems:
            comps = [c & domains for c in nx.connected_components(graph) if c & domains]
            if len(comps) > 1:
                problems.append("network: pool domains are disconnected: " + " | ".join(
                    ", ".join(sorted(c)) for c in comps) + " (prefill and decode in different parts cannot talk)")
        if net.client_io_s is not None:
            for g in sorted({p.gpu_type for p in self.node_pools.values()}):
                if g in self.gpu_types and self.gpu_types[g].nic_gbps_per_gpu is None:
                    problems.append(f"gpu_types.{g}.nic_gbps_per_gpu: needed when network.client_io_s is set "
                                    "(the KV transfer time depends on it)")
        if net.kv_arrival_stalls_decode:
            for g in sorted({p.gpu_type for p in self.profiles if p.role == "decode"}):
                if g in self.gpu_types and self.gpu_types[g].nic_gbps_per_gpu is None:
                    problems.append(f"gpu_types.{g}.nic_gbps_per_gpu: needed when network.kv_arrival_stalls_decode "
                                    "is true (the KV receive time of a decode instance depends on it)")
        return problems

    def _packing_problems(self) -> list[str]:
        """Every profile must fit the nodes of at least one pool of its GPU type (when the type has pools)."""
        problems: list[str] = []
        for i, prof in enumerate(self.profiles):
            pools = [(pid, p) for pid, p in self.node_pools.items() if p.gpu_type == prof.gpu_type]
            if pools and not any(prof.fits_pool(p) for _, p in pools):
                sizes = ", ".join(f"{pid}: {p.gpus_per_node}" for pid, p in pools)
                hint = ("" if prof.spans_nodes else "; set spans_nodes: true if an instance may span whole nodes")
                problems.append(
                    f"profiles[{i}].gpus_per_instance: {prof.gpus_per_instance} GPUs fit no '{prof.gpu_type}' pool "
                    f"({sizes} GPUs per node){hint}")
        return problems

    def _period_problems(self) -> list[str]:
        """``by_period`` names periods of the horizon, and each period's workload is valid once restated."""
        problems = []
        names = set(self.horizon.names) if self.horizon is not None else set()
        for mid, wl in self.workloads.items():
            for period in wl.by_period:
                where = f"workloads.{mid}.by_period.{period}"
                if period not in names:
                    problems.append(f"{where}: no period '{period}' in horizon.periods"
                                    + ("" if self.horizon is not None else " (the instance has no horizon)"))
                    continue
                try:
                    Workload.model_validate(_restated(wl, period))
                except ValidationError as err:
                    problems += [f"{where}: {line}" for line in format_validation_error(err)]
        return problems

    @property
    def period_names(self) -> list[str]:
        """The horizon's periods in order; one unnamed period (``[""]``) without a horizon."""
        return self.horizon.names if self.horizon is not None else [""]

    def period_instance(self, period: str) -> Instance:
        """The single-period instance of one period: every workload with what it restates for that period, and
        no horizon. Without a horizon, the instance itself (``period`` must then be ``""``)."""
        if self.horizon is None:
            if period:
                raise InputError(f"period '{period}': the instance has no horizon")
            return self
        if period not in self.horizon.names:
            raise InputError(f"no period '{period}' in horizon.periods ({', '.join(self.horizon.names)})")
        doc = self.model_dump(mode="json", exclude={"horizon"})
        doc["name"] = f"{self.name}.{period}"
        doc["workloads"] = {mid: _restated(wl, period) for mid, wl in self.workloads.items()}
        return validate_instance(doc, f"{self.name}, period {period}")

    def replace(self, **changes: Any) -> Instance:
        """A copy with top-level fields changed (``instance.replace(limits={"budget_usd_per_hour": 500})``).

        ``model_copy(update=...)`` skips validation, so a negative demand would plan at cost 0. Here the instance
        is dumped, the changes (models, or plain dicts and lists as in a file) replace whole top-level fields, and
        the document is validated again as a loaded file is: every field constraint and cross-reference is
        checked, and a mistake is an :class:`~pdopt.errors.InputError` naming the field. No file is read, so a
        profile given here has its points inline (a ``tpot_csv`` is refused). The instance itself is unchanged.
        """
        return self._revalidated(changes, f"{self.name}.replace({', '.join(changes)})")

    def with_demand(self, model: str, *, rps: float | None = None,
                    tokens_per_min: float | None = None) -> Instance:
        """A copy in which one workload's demand is ``rps`` requests/s or ``tokens_per_min`` (input + output
        tokens), exactly one of the two: demand sweeps and what-if plans without editing files, validated as
        :meth:`replace` is (a zero, negative or non-finite demand is an InputError naming field and value)."""
        if model not in self.workloads:
            raise InputError(f"with_demand: no workload for model '{model}' "
                             f"(workloads: {', '.join(sorted(self.workloads))})")
        if (rps is None) == (tokens_per_min is None):
            raise InputError(f"with_demand: give exactly one of rps or tokens_per_min for model '{model}'")
        demand = {"requests_per_s": rps} if rps is not None else {"tokens_per_min": tokens_per_min}
        workloads = {mid: w.model_dump(mode="json") for mid, w in self.workloads.items()}
        workloads[model]["demand"] = demand
        return self._revalidated({"workloads": workloads}, f"{self.name}.with_demand('{model}')")

    def without_gpu_types(self, names: Sequence[str]) -> Instance:
        """A copy as if the GPU types ``names`` were unavailable: without them, their node pools and their
        profiles (a fallback plan: "any of A100, H100 or L40S, whichever is free"). InputError naming an unknown
        type; the copy is validated (a model left without a profile of some role is named)."""
        unknown = [g for g in names if g not in self.gpu_types]
        if unknown:
            raise InputError(f"--without {unknown[0]}: no GPU type '{unknown[0]}' in the instance "
                             f"({', '.join(self.gpu_types)})")
        gone = set(names)
        doc = self.model_dump(mode="json")
        doc["gpu_types"] = {g: t for g, t in doc["gpu_types"].items() if g not in gone}
        doc["node_pools"] = {p: n for p, n in doc["node_pools"].items() if n["gpu_type"] not in gone}
        doc["profiles"] = [p for p in doc["profiles"] if p["gpu_type"] not in gone]
        search = doc.get("shape_search")
        if search is not None:  # a search that names the types keeps the others
            for fam in search["models"].values():
                if fam.get("gpu_types") is not None:
                    fam["gpu_types"] = [g for g in fam["gpu_types"] if g not in gone]
            systems = search["aiconfigurator"]["systems"]
            search["aiconfigurator"]["systems"] = {g: v for g, v in systems.items() if g not in gone}
        doc["name"] = f"{self.name}.without-{'-'.join(sorted(gone))}"
        return validate_instance(doc, f"{self.name} without {', '.join(sorted(gone))}")

    def _revalidated(self, changes: dict[str, Any], source: str) -> Instance:
        """This instance's dump with ``changes`` over its top-level fields, validated as a loaded document."""
        doc = self.model_dump(mode="json")
        try:
            doc.update(to_jsonable_python(changes))  # keeps inf and nan, so that they are refused by name
        except PydanticSerializationError as exc:
            raise InputError(f"{source}: a change is not instance data ({exc})") from None
        return validate_instance(doc, source)

    def profile(self, model: str, role: str, gpu_type: str, gpus_per_instance: int,
                variant: str = "default") -> PrefillProfile | DecodeProfile | AggregatedProfile:
        """The profile with this key; KeyError if there is none."""
        for prof in self.profiles:
            if prof.key == (model, role, gpu_type, gpus_per_instance, variant):
                return prof
        raise KeyError((model, role, gpu_type, gpus_per_instance, variant))


def _restated(workload: Workload, period: str) -> dict[str, Any]:
    """A workload's document in one period: its fields, with what ``by_period`` restates for the period over
    them, and no ``by_period``."""
    doc = workload.model_dump(mode="json", exclude={"by_period"})
    override = workload.by_period.get(period)
    if override is not None:
        doc.update(override.model_dump(mode="json", exclude_none=True))
    return doc


def validate_instance(doc: dict[str, Any], source: str = "<instance>") -> Instance:
    """Validate a document that names no file still to read (:mod:`pdopt.io` reads those first).

    Loading a file and the copy methods :meth:`Instance.replace` and :meth:`Instance.with_demand` all end here,
    so a mistake reads the same however it was made: an InputError with one ``field.path: problem`` line each.
    """
    try:
        return Instance.model_validate(doc)
    except ValidationError as err:
        lines = format_validation_error(err)
        raise InputError(f"{source}: {len(lines)} problem(s)\n" + "\n".join(f"  {ln}" for ln in lines)) from None

"""The verifier's checks, registered once: the name a violation carries, what it means, and its family.

Every :class:`Violation` names one registered :class:`Check`; creating a violation with an unregistered name
raises, so the list below (and the table generated from it, :func:`checks_markdown`, in docs/verifier.md) is
complete by construction: a new kind of violation cannot be emitted before it is registered and documented, and
the corruption tests (tests/test_verifier_checks.py) are parametrised over this registry, so it cannot be
registered without a plan that triggers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Check:
    """One kind of violation: its snake_case ``name``, a one-sentence ``summary`` of when it fires, and the
    ``family`` of constraints it belongs to (one of :data:`FAMILIES`)."""

    name: str
    summary: str
    family: str


FAMILIES: Mapping[str, str] = MappingProxyType({
    "plan": "the plan file itself: fields, instance name, whole counts",
    "shapes": "placements against the instance's profiles and pools; per-instance capacity",
    "demand": "capacity against demand, with spares",
    "packing": "pools: GPUs, nodes and the placement of instances on nodes",
    "cost": "prices, billing, objective and budget",
    "inventory": "availability caps per GPU type",
    "summary": "the plan's own totals against its placements",
    "network": "KV-cache flows between domains and link bandwidth",
    "resilience": "surviving the loss of one failure domain",
    "horizon": "plans over a horizon: periods, instance starts, minimum uptime, ramps, purchase options and the "
               "horizon's cost",
})
"""Families in the order the verifier runs their checks (:data:`pdopt.verifier.runner.STEPS`), with what each
covers. ``bad_plan_field`` and ``summary_mismatch`` are also emitted by later steps, wherever a field is read."""

CHECKS: tuple[Check, ...] = (
    Check("bad_plan_field", "A field of the plan is missing, of the wrong type or not finite, or a count is not "
          "positive; checks that need it are skipped or run on what could be read.", "plan"),
    Check("instance_mismatch", "The plan's `instance` names another instance than the one it is checked "
          "against.", "plan"),
    Check("integrality", "A placement's `count` is not a whole number of instances.", "plan"),
    Check("unknown_shape", "A placement's (model, role, gpu_type, gpus_per_instance, variant) is no profile of "
          "the instance; it is counted as serving nothing.", "shapes"),
    Check("unusable_shape", "The shape exists but serves nothing at the SLOs (no workload, weights do not fit, "
          "lengths outside the benchmark, TTFT or TPOT target unreachable); it still costs GPUs.", "shapes"),
    Check("unknown_pool", "A placement or a `pools` entry names a node pool the instance does not have.",
          "shapes"),
    Check("pool_gpu_type", "A placement's `gpu_type` is not the GPU type of the pool it is placed in.", "shapes"),
    Check("capacity_mismatch", "A placement's per-instance `capacity_rps` differs from the recomputed one (for an "
          "aggregated shape, by more than 1e-3 relative: two implementations of one numerical analysis); for "
          "pooled (`ggc`) prefill, it exceeds the exact pooled capacity of its group divided by the group size.",
          "shapes"),
    Check("demand_cover", "For a model and role, recomputed capacity x count, less k spares x the largest usable "
          "per-instance capacity, falls short of the demand x `scale_demand` x `scale`; for a model that may be "
          "served both ways, aggregated plus the smaller of prefill and decode capacity (each net of its spares) "
          "falls short of it.", "demand"),
    Check("mode_split", "The req/s the plan routes to a model's aggregated instances (`models.<m>.aggregated_rps`) "
          "is outside [0, demand], exceeds their net capacity, or leaves the P/D pairs more than theirs.",
          "demand"),
    Check("mode_not_allowed", "A model has aggregated (or prefill/decode) placements although its workload's "
          "`modes` excludes that serving mode.", "demand"),
    Check("pool_gpu_capacity", "A pool's instances use more GPUs than its `node_count` x `gpus_per_node`.",
          "packing"),
    Check("node_packing", "A pool's instances, each inside one node (or on whole nodes of its own when its "
          "profile spans nodes), provably do not fit on its `node_count` nodes or on the plan's `nodes_used`; or "
          "an instance larger than a node may not span nodes.", "packing"),
    Check("node_packing_undecided", "The exact packing search hit its limit (`MAX_SEARCH_STATES` states or "
          "`MAX_PATTERNS` node patterns) without deciding; reported, never assumed to fit.", "packing"),
    Check("pool_node_limit", "The plan's `nodes_used` of a pool exceeds the pool's `node_count`.", "packing"),
    Check("cost_mismatch", "A placement's `cost_usd_per_hour` is not its share by GPUs of its pool's recomputed "
          "cost, or a `pools` entry's cost is not that cost.", "cost"),
    Check("objective_mismatch", "`objective_usd_per_hour` is not the sum of the recomputed pool costs (checked "
          "when every placement's pool and every pool's nodes in use are known).", "cost"),
    Check("budget", "The hourly cost (recomputed, else the plan's objective) exceeds "
          "`limits.budget_usd_per_hour`.", "cost"),
    Check("gpu_type_availability", "GPUs rented of a type (whole nodes in node-billed pools, instance GPUs in "
          "GPU-billed pools) exceed its `max_gpus`.", "inventory"),
    Check("summary_mismatch", "The plan's `models` (demand; instances and GPUs per role), `pools` entries (GPUs "
          "in use, node count, GPU type, domain) or `gpus_used` disagree with its placements or the instance.",
          "summary"),
    Check("kv_flow_total", "With a network over two or more domains, a model's `kv_flows` carry less than its "
          "demand.", "network"),
    Check("kv_flow_capacity", "A model's KV flows out of (into) a domain exceed the prefill (decode) capacity the "
          "plan places in that domain.", "network"),
    Check("link_bandwidth", "The KV traffic routed over a link (KV bytes per token x L_in per request) exceeds "
          "its bandwidth.", "network"),
    Check("domain_loss_cover", "Without the instances of one domain, a model's role serves less than "
          "`resilience.domain_loss_fraction` of its demand.", "resilience"),
    Check("horizon_periods", "A plan over a horizon does not list the instance's periods in order with their "
          "hours and a plan each (or the instance has no horizon).", "horizon"),
    Check("horizon_starts", "A period's `starts` is not the number of instances its counts add over the period "
          "before's.", "horizon"),
    Check("min_uptime", "A period holds fewer instances of a placement than were started less than "
          "`horizon.min_uptime_h` before it.", "horizon"),
    Check("ramp_capacity", "During a lead time, the fleets of a period and the one before (the larger count of "
          "each placement) do not fit a pool, exceed a GPU type's `max_gpus`, or exceed the budget.", "horizon"),
    Check("horizon_cost", "A period's `cost_usd` is not its hours x hourly cost, its `ramp_cost_usd` is below "
          "the ramp's least cost, or `total_cost_usd` / `static_peak_cost_usd` is not the recomputed sum.",
          "horizon"),
    Check("static_fleet", "The static plan's periods do not all hold the same placements.", "horizon"),
    Check("purchase_cover", "A pool with purchase options has no `purchase` entry, a period's `used` is not the "
          "units its plan rents (nodes in use, or GPUs when billed per GPU-hour), or reserved + on-demand + spot "
          "units fall short of it.", "horizon"),
    Check("purchase_limits", "A purchase count is not a whole number >= 0, reserved units exceed the pool's or "
          "`max_units` (or are bought without a reserved option), on-demand units are bought where none are "
          "sold, spot units exceed what the period offers, or top-ups exceed what the reserved layer leaves.",
          "horizon"),
    Check("purchase_cost", "A pool's purchase `cost_usd` or `list_rental_usd` differs from the recomputed "
          "reserved, on-demand and spot cost, or list-price rental.", "horizon"),
    Check("spot_loss_cover", "Losing a spot option's `loss_share` of a period's spot units (taking a role's "
          "densest instances in the pool first) would leave a model and role below `survive_fraction` of its "
          "demand.", "horizon"),
)
"""Every check the verifier can emit, by family in the order the verifier runs them."""

CHECKS_BY_NAME: Mapping[str, Check] = MappingProxyType({c.name: c for c in CHECKS})


@dataclass(frozen=True)
class Violation:
    """One broken constraint, named by a registered ``check`` and explained in the instance's terms."""

    check: str
    message: str

    def __post_init__(self) -> None:
        """Refuse an unregistered check name: every violation the verifier emits is listed and documented."""
        if self.check not in CHECKS_BY_NAME:
            raise ValueError(f"unregistered verifier check {self.check!r}: register it in "
                             "pdopt.verifier.registry.CHECKS (and regenerate docs/verifier.md)")

    @property
    def spec(self) -> Check:
        """The registered check this violation names."""
        return CHECKS_BY_NAME[self.check]

    def __str__(self) -> str:
        """``check: message``, as one line of :func:`format_violations`."""
        return f"{self.check}: {self.message}"


def format_violations(violations: list[Violation]) -> str:
    """One line per violation, grouped under a count, for people reading a terminal."""
    if not violations:
        return "no violations: the plan satisfies every checked constraint"
    lines = [f"{len(violations)} violation(s):"]
    lines.extend(f"  {v.check}: {v.message}" for v in violations)
    return "\n".join(lines)


def checks_markdown() -> str:
    """The registry as a Markdown table (check, family, when it fires), the text between the ``checks`` markers
    of docs/verifier.md; tests/test_verifier_checks.py fails when that page is stale."""
    lines = ["| Check | Family | Fires when |", "| --- | --- | --- |"]
    for c in CHECKS:
        if "|" in c.summary or "\n" in c.summary:
            raise ValueError(f"check {c.name}: a summary must be one table cell (no '|' or newline)")
        lines.append(f"| `{c.name}` | {c.family} | {c.summary} |")
    return "\n".join(lines) + "\n"

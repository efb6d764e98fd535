"""Terminal tables for plans and capacity tables (the JSON form lives in :meth:`pdopt.plan.Plan.to_dict`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pdopt.instance import ROLES, SHAPE_ROLES
from pdopt.perf.capacity import CapacityTable
from pdopt.plan import Plan
from pdopt.sim.run import SimResult

if TYPE_CHECKING:
    from pdopt.comparison.fidelity import PointResult
    from pdopt.optimize.alternatives import Alternatives
    from pdopt.optimize.horizon import HorizonPlan
    from pdopt.sim.horizon import HorizonSimResult


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned text columns separated by two spaces."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def format_plan(plan: Plan) -> str:
    """A plan as a terminal report: header, placements, per-model summary, skipped shapes, reason."""
    s = plan.solver
    gap = "-" if s.gap is None else f"{s.gap:.2%}"
    out = [f"instance {plan.instance}  formulation {plan.formulation}  status {plan.status.value}"
           + (f"  demand x{plan.scale_demand:g}" if plan.scale_demand != 1.0 else "")]
    if plan.objective_usd_per_hour is not None:
        out.append(f"cost {plan.objective_usd_per_hour:.2f} USD/hour  "
                   f"GPUs {', '.join(f'{g}: {n}' for g, n in sorted(plan.gpus_used.items()))}")
    extra = ""
    if s.root_lp_bound is not None:
        extra += f"  root LP bound {s.root_lp_bound:.2f}"
    if s.heuristic_usd_per_hour is not None:
        extra += f"  {(s.heuristic or 'greedy').replace('_', '-')} start {s.heuristic_usd_per_hour:.2f}"
    out.append(f"solver {s.name}  {s.runtime_s:.3f} s  gap {gap}{extra}")
    if plan.scale is not None:
        out.append(f"largest demand multiplier the inventory serves: {plan.scale:.6g}")
    if plan.placements:
        out += ["", "placements", table(
            ["model", "role", "gpu_type", "gpus/inst", "variant", "pool", "count", "req/s per inst", "USD/hour"],
            [[p.model, p.role, p.gpu_type, p.gpus_per_instance, p.variant + ("*" if p.estimated else ""), p.pool,
              p.count, p.capacity_rps, f"{p.cost_usd_per_hour:.2f}"] for p in plan.placements])]
        estimators = sorted({p.estimated for p in plan.placements if p.estimated})
        if estimators:
            out.append(f"* estimated, not measured ({', '.join(estimators)}): the capacity rests on an estimate")
    if plan.pools:
        out += ["", "pools", table(
            ["pool", "gpu_type", "domain", "nodes used", "of", "GPUs used", "packing", "USD/hour"],
            [[p, u.gpu_type, u.domain, u.nodes_used, u.node_count, u.gpus_used, u.packing,
              f"{u.cost_usd_per_hour:.2f}"] for p, u in plan.pools.items()])]
    agg = any(mp.aggregated is not None for mp in plan.models.values())
    if plan.cost_breakdown:
        cb = plan.cost_breakdown
        roles = SHAPE_ROLES if agg else ROLES
        out += ["", "cost by model and role (USD/hour)", table(
            ["model", *roles, "total"],
            [[m, *(f"{r.get(role, 0.0):.2f}" for role in roles), f"{cb.by_model[m]:.2f}"]
             for m, r in cb.by_model_role.items()])]
        out.append("by GPU type: " + ", ".join(f"{g} {c:.2f}" for g, c in cb.by_gpu_type.items()))
    if plan.models:
        mode_cols = ["mode", "aggregated", "aggregated req/s", "aggregated util"] if agg else []
        out += ["", "models", table(
            ["model", "demand req/s", *mode_cols, "prefill", "decode", "P/D", "prefill exact", "decode exact",
             "prefill util", "decode util"],
            [[m, mp.demand_rps,
              *([mp.mode, mp.aggregated.instances if mp.aggregated else 0, mp.aggregated_rps,
                 _pct(mp.aggregated.utilisation if mp.aggregated else None)] if agg else []),
              mp.prefill.instances, mp.decode.instances, mp.pd_ratio,
              mp.prefill.fractional_instances, mp.decode.fractional_instances,
              _pct(mp.prefill.utilisation), _pct(mp.decode.utilisation)] for m, mp in plan.models.items()])]
    if plan.mode_comparison:
        out += ["", "serving mode (the chosen plan against all aggregated and all disaggregated)"]
        out += [f"  {c.line(m)}" for m, c in plan.mode_comparison.items()]
    if plan.skipped_shapes:
        out += ["", "shapes skipped (cannot meet the SLO)"]
        out += [f"  {k.model} {k.role} {k.gpu_type} x{k.gpus_per_instance}: {k.reason}" for k in plan.skipped_shapes]
    if plan.reason:
        out += ["", "no plan:", *[f"  {line}" for line in plan.reason.splitlines()]]
    return "\n".join(out)


def format_alternatives(alts: Alternatives) -> str:
    """The ranked alternatives: cost, extra over the cheapest, what differs from it, then each one's placements."""
    from pdopt.optimize.alternatives import TIE_RULE

    if not alts.alternatives:
        return format_plan(alts.first)
    first = alts.alternatives[0]
    out = [f"instance {first.plan.instance}: the {len(alts.alternatives)} cheapest plans that differ in the "
           f"(GPU type, shape) they use", f"ranked {TIE_RULE}", ""]
    rows = []
    for a in alts.alternatives:
        extra = a.cost_usd_per_hour - first.cost_usd_per_hour
        pct = f" ({extra / first.cost_usd_per_hour:+.1%})" if first.cost_usd_per_hour > 0 else ""
        diff = [f"+{k.label()}" for k in a.added] + [f"-{k.label()}" for k in a.removed]
        rows.append([a.rank, f"{a.cost_usd_per_hour:.2f}", "-" if a.rank == 1 else f"{extra:+.2f}{pct}",
                     len(a.configuration), "; ".join(diff) or "-"])
    out.append(table(["rank", "USD/hour", "vs rank 1", "shapes", "differs from rank 1"], rows))
    for a in alts.alternatives:
        out += ["", f"rank {a.rank}: {a.cost_usd_per_hour:.2f} USD/hour", table(
            ["model", "role", "gpu_type", "gpus/inst", "pool", "count", "USD/hour"],
            [[p.model, p.role, p.gpu_type, p.gpus_per_instance, p.pool, p.count, f"{p.cost_usd_per_hour:.2f}"]
             for p in a.plan.placements])]
    if alts.exhausted:
        out += ["", f"only {len(alts.alternatives)} of the {alts.requested} asked for exist: every other "
                    "configuration has no plan or contains a cheaper one"]
    if alts.note:
        out += ["", "note: " + alts.note]
    return "\n".join(out)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def format_capacities(tab: CapacityTable) -> str:
    """Per-instance capacity of every shape at the SLO, with the formula used; skipped shapes with reasons."""
    rows = [[s.model, s.role, s.gpu_type, s.gpus_per_instance, s.capacity_rps, s.throughput_tok_per_s, s.binding,
             _detail(s.detail), s.formula + (f" (estimated: {s.estimated})" if s.estimated else "")]
            for s in tab.shapes]
    out = [table(["model", "role", "gpu_type", "gpus/inst", "req/s", "tok/s", "binding", "detail", "formula"], rows)]
    if tab.skipped:
        out += ["", "skipped"] + [f"  {k.model} {k.role} {k.gpu_type} x{k.gpus_per_instance}: {k.reason}"
                                  for k in tab.skipped]
    return "\n".join(out)


def _detail(detail: dict[str, float | str]) -> str:
    keys = {"batch": "B*", "mean_batch": "mean B", "tpot_ms": "TPOT ms", "batch_cap": "cap",
            "max_throughput_tok_per_s": "X tok/s", "utilisation_at_capacity": "rho",
            "decode_correction": "under load", "load_factor": "f", "join_cost_ms": "s ms",
            "fit_rms_rel_residual": "fit rms"}
    return " ".join(f"{label}={_fmt(detail[k])}" for k, label in keys.items() if k in detail)


STATS = ("mean", "p50", "p90", "p95", "p99")


def format_simulation(result: SimResult, tight: list[dict[str, Any]] | None = None) -> str:
    """Simulated TTFT/TPOT beside the capacity model's prediction, SLO verdicts, instance loads, tightness."""
    out = [f"instance {result.instance}  simulated {result.requests_simulated:,} requests in {result.wall_s:.2f} s"
           f"  seed {result.seed}  SLOs {'met' if result.slo_met() else 'NOT met'}"]
    if result.partial:
        out.append(f"PARTIAL: interrupted after {result.requests_completed:,} requests finished; the statistics cover "
                   "those only")
    for m, mm in result.models.items():
        slo = mm["slo"]
        pred = mm["predicted"]
        rows = []
        for label, key, scale in (("TTFT s", "ttft_s", 1.0), ("TPOT ms", "tpot_ms", 1.0)):
            rows.append([f"{label} simulated", *[mm[key][s] * scale for s in STATS], mm[key].get("ci99_half_width")])
            p = pred.get(key)
            rows.append([f"{label} predicted", *([p[s] for s in STATS] if p else ["overloaded"] + [None] * 4), None])
            if "aggregated" in pred:
                q = pred["aggregated"].get(key)
                rows.append([f"{label} predicted (aggregated)",
                             *([q[s] for s in STATS] if q else ["overloaded"] + [None] * 4), None])
        out += ["", f"model {m}: {mm['requests']:,} requests measured; TTFT {slo['ttft_statistic']} <= "
                f"{slo['ttft_target_s']:g} s {'met' if mm['ttft_slo_met'] else 'NOT met'}; TPOT "
                f"{slo['tpot_statistic']} <= {slo['tpot_target_ms']:g} ms {'met' if mm['tpot_slo_met'] else 'NOT met'}"
                f"; attainment TTFT {mm['attainment']['ttft']:.1%}, TPOT {mm['attainment']['tpot']:.1%}",
                table(["", *STATS, "mean 99% CI +-"], rows)]
        if "assumptions" in mm:
            out.append(describe_assumptions(mm["assumptions"]))
        if pred.get("overloaded"):
            out.append(f"  predicted: {pred['overloaded']}")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for inst in result.instances:
        groups.setdefault((inst["model"], inst["role"]), []).append(inst)
    out += ["", "instances", table(
        ["model", "role", "count", "utilisation min", "utilisation max", "mean batch", "batch cap (bound)"],
        [[m, r, len(g), min(i["utilisation"] for i in g), max(i["utilisation"] for i in g),
          sum(i.get("mean_batch", 0.0) for i in g) / len(g) if r in ("decode", "aggregated") else None,
          f"{g[0]['batch_cap']} ({g[0]['batch_cap_bound']})" if r == "decode" else None]
         for (m, r), g in groups.items()])]
    if tight is not None:
        out += ["", "tightness (one instance fewer)"]
        if not tight:
            out.append("  every (model, role) has a single instance")
        out += [f"  {t['model']} {t['role']} without one {t['removed']['gpu_type']} x"
                f"{t['removed']['gpus_per_instance']}: SLO {'still met (not tight)' if t['slo_met'] else 'missed'}"
                f" (TTFT {t['ttft_s']:.4g} s, TPOT {t['tpot_ms']:.4g} ms)" for t in tight]
    return "\n".join(out)


def describe_assumptions(a: dict[str, Any]) -> str:
    """One line saying under which assumptions a model was simulated (:mod:`pdopt.sim.assumptions`)."""
    services = []
    for shape, rule in a.get("prefill_service", {}).items():
        text = (f"{shape} {rule['distribution']} factor (SCV {rule['factor_scv']:.3g}) with lengths (SCV "
                f"{rule['lengths_scv']:.3g}): total SCV {rule['total_scv']:.3g}")
        if "capacity_model_scv" in rule:
            text += f" (capacity model {rule['capacity_model_scv']:.3g})"
        services.append(text)
    line = (f"  simulated as: {a['queue_model']} prefill, {a['decode_model']} decode; dispatch prefill "
            f"{a['prefill_dispatch']}, decode {a['decode_dispatch']}; arrivals {a['arrivals']}")
    return line + ("; prefill service " + "; ".join(services) if services else "")


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def _fid_rows(results: list[PointResult]) -> list[list[object]]:
    rows: list[list[object]] = []
    for i, r in enumerate(results, start=1):
        for row in r.rows:
            half = row.get("simulator_ci99_half_width")
            model = row["capacity_model"]
            rows.append([i, r.point.deployment.text, r.rate_rps, f"{row['metric']} {row['statistic']}",
                         row["measured"], model if model is not None else
                         ("overloaded" if "overloaded" in row else "-"),
                         _signed(row["capacity_model_error"]), row["simulator"], _signed(row["simulator_error"]),
                         half])
    return rows


def format_fidelity(results: list[PointResult]) -> str:
    """Each measured point beside the capacity model's and the simulator's predictions, then the median absolute
    error per route, metric and statistic."""
    from pdopt.comparison.fidelity import summary

    out = [table(["#", "deployment", "rate req/s", "metric", "measured", "capacity model", "error", "simulator",
                  "error", "sim 99% CI +-"], _fid_rows(results))]
    for r in results:
        for row in r.rows:
            if "tokens_per_min" in row:
                t = row["tokens_per_min"]
                sim = "-" if t["simulator"] is None else f"{t['simulator'] / 1e6:.3g}"
                out.append(f"  {r.point.deployment.text}: SLO throughput measured {t['measured'] / 1e6:.3g} M tok/min,"
                           f" capacity model {t['capacity_model'] / 1e6:.3g}, simulator {sim}")
            if "simulator_note" in row:
                out.append(f"  {r.point.deployment.text}: simulator: {row['simulator_note']}")
            if "overloaded" in row:
                out.append(f"  point at {r.rate_rps:g} req/s: {row['overloaded']}")
                break
    summ = summary(results)
    keys = sorted({k for route in summ.values() for k in route})
    out += ["", "median absolute error over the points",
            table(["metric", "points", "capacity model", "simulator"],
                  [[k, int(summ["capacity_model"][k]["points"] or 0),
                    _pct(summ["capacity_model"][k]["median_abs_error"]),
                    _pct(summ["simulator"][k]["median_abs_error"])] for k in keys])]
    return "\n".join(out)


def fidelity_csv(results: list[PointResult]) -> str:
    """The point table as CSV (one row per point, metric and statistic)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["point", "source", "model", "deployment", "rate_rps", "metric", "statistic", "measured",
                     "capacity_model", "capacity_model_error", "simulator", "simulator_error",
                     "simulator_ci99_half_width"])
    for i, r in enumerate(results, start=1):
        for row in r.rows:
            writer.writerow([i, r.point.source, r.point.model, r.point.deployment.text, r.rate_rps, row["metric"],
                             row["statistic"], row["measured"], row["capacity_model"], row["capacity_model_error"],
                             row["simulator"], row["simulator_error"], row.get("simulator_ci99_half_width")])
    return buf.getvalue()


def plot_fidelity(results: list[PointResult]) -> bytes:
    """PNG: predicted against measured, one panel per metric (TTFT, TPOT, SLO throughput; log axes where the values
    span more than a factor of 4), the diagonal and the +-10% band drawn; capacity model and simulator as two
    marker styles."""
    from matplotlib.ticker import FuncFormatter

    from pdopt.figures import png, pyplot

    plt = pyplot()

    panels = [("ttft_s", "TTFT (s)"), ("tpot_ms", "TPOT (ms)"), ("slo_throughput", "SLO throughput (req/s)")]
    used = [(k, label) for k, label in panels if any(row["metric"] == k for r in results for row in r.rows)]
    fig, axes = plt.subplots(1, len(used), figsize=(5.0 * len(used), 4.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], used, strict=True):
        rows = [row for r in results for row in r.rows if row["metric"] == key]
        values = [row["measured"] for row in rows]
        for route, marker, name in (("capacity_model", "o", "capacity model"), ("simulator", "x", "simulator")):
            pts = [(row["measured"], row[route]) for row in rows if row[route] is not None]
            values += [p for _, p in pts]
            if pts:
                ax.scatter([m for m, _ in pts], [p for _, p in pts], marker=marker, label=name, alpha=0.8)
        wide = max(values) / min(values) > 4.0
        lo, hi = min(values) / 1.3, max(values) * 1.3
        ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8, label="predicted = measured")
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.15,
                        label="within 10%")
        if wide:  # values spanning more than a factor of 4: log axes, every tick labelled as a plain number
            ax.set_xscale("log")
            ax.set_yscale("log")
            plain = FuncFormatter(lambda v, _: f"{v:g}")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(plain)
                axis.set_minor_formatter(plain)
                axis.set_tick_params(which="minor", labelsize=7)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel(f"measured {label}")
        ax.set_ylabel(f"predicted {label}")
        ax.legend(fontsize=8, loc="upper left")
        ax.set_title(label.split(" (")[0])
    fig.tight_layout()
    return png(fig, 110)


def format_horizon(plan: HorizonPlan) -> str:
    """A plan over a horizon as a terminal report: one line per period (hours, instances per role, starts, cost at
    list prices), each pool's purchases (reserved layer and per-period top-ups), the total, and the static plan for
    the peak with the saving."""
    out = [f"instance {plan.instance}  horizon of {len(plan.periods)} periods  status {plan.status.value}"]
    if not plan.has_plan:
        return "\n".join([*out, f"no plan: {plan.reason}"])
    rows = []
    for p in plan.periods:
        roles: dict[str, int] = {}
        for x in p.plan.placements:
            roles[f"{x.model} {x.role}"] = roles.get(f"{x.model} {x.role}", 0) + x.count
        row = [p.name, f"{p.hours:g}", ", ".join(f"{k} {v}" for k, v in sorted(roles.items())), p.starts,
               f"{p.plan.objective_usd_per_hour or 0.0:.2f}", f"{p.cost_usd:.2f}"]
        rows.append(row + ([f"{p.ramp_cost_usd:.2f}"] if plan.lead_time_min else []))
    at_list = "list " if plan.purchase else ""  # with purchase options, the periods' costs are at list prices
    head = ["period", "hours", "instances", "starts", f"{at_list}USD/hour", f"{at_list}USD"] + (
        ["ramp USD"] if plan.lead_time_min else [])
    out += ["", table(head, rows), ""]
    notes = [f"starts at {plan.start_cost_usd:g} USD each"] if plan.start_cost_usd else []
    if plan.lead_time_min:
        notes.append(f"instances start {plan.lead_time_min:g} min before the period they serve")
    for pp in plan.purchase:
        unit = "GPUs" if pp.unit == "gpu" else "nodes"
        spot = f", spot {pp.spot_usd_per_unit_hour:g}" if pp.spot_usd_per_unit_hour is not None else ""
        out += [f"pool {pp.pool}: reserved {pp.reserved} {unit} for the horizon (USD per unit-hour: reserved "
                f"{pp.reserved_usd_per_unit_hour:g}, on demand {pp.on_demand_usd_per_unit_hour:g}{spot})",
                table(["period", f"{unit} used", "reserved", "on demand", "spot"],
                      [[q.period, q.used, min(q.used, pp.reserved), q.on_demand, q.spot] for q in pp.periods]),
                f"bought for {pp.cost_usd:.2f} USD against {pp.list_rental_usd:.2f} at the list price", ""]
    out.append(f"total {plan.total_cost_usd or 0.0:.2f} USD over {sum(p.hours for p in plan.periods):g} hours"
               + (f" ({'; '.join(notes)})" if notes else ""))
    if plan.static_cost_usd is not None:
        out.append(f"static plan for the peak {plan.static_cost_usd:.2f} USD; planning per period saves "
                   f"{plan.saving_usd or 0.0:.2f} USD ({(plan.saving_usd or 0.0) / plan.static_cost_usd:.1%})")
    total = plan.total_cost_usd or 0.0
    for label, other in (("the static plan for the peak all reserved", plan.static_reserved_cost_usd),
                         ("the per-period plan without a reserved layer", plan.no_reserved_cost_usd)):
        if other is not None:
            share = f" ({(other - total) / other:.1%})" if other > 0 else ""
            out.append(f"{label} {other:.2f} USD; this plan saves {other - total:.2f} USD{share}")
    return "\n".join(out)


def format_horizon_simulation(result: HorizonSimResult) -> str:
    """A simulation over a horizon: one line per period and model (fleet, requests, the SLO statistics against
    their targets, attainment, the first tenth of the period, the verdict)."""
    out = [f"instance {result.instance}  simulated {result.requests_simulated:,} requests in {result.wall_s:.2f} s"
           f"  seed {result.seed}  traffic: {result.traffic}",
           f"SLOs {'met in every period' if result.slo_met() else 'NOT met in every period'}"
           + ("" if result.slo_met() else
              ("; no miss beyond its 99% confidence interval" if result.slo_not_refuted()
               else "; a miss beyond its 99% confidence interval")), ""]
    rows = []
    for p in result.periods:
        fleet = ", ".join(f"{k} {v}" for k, v in p["instances"].items() if v)
        for m, mm in p["models"].items():
            slo = mm["slo"]
            t, d = mm["ttft_s"][slo["ttft_statistic"]], mm["tpot_ms"][slo["tpot_statistic"]]
            verdict = "met" if mm["slo_met"] else ("within CI" if mm["slo_not_refuted"] else "NOT met")
            rows.append([p["name"], m, fleet, mm["requests"],
                         f"{slo['ttft_statistic']} {t:.3f} / {slo['ttft_target_s']:g}",
                         f"{slo['tpot_statistic']} {d:.1f} / {slo['tpot_target_ms']:g}",
                         f"{mm['attainment']['ttft']:.1%}", f"{mm['after_boundary']['ttft_s']:.3f}", verdict])
    out.append(table(["period", "model", "fleet", "requests", "TTFT s / SLO", "TPOT ms / SLO", "TTFT attained",
                      "TTFT first 10%", "SLO"], rows))
    return "\n".join(out)

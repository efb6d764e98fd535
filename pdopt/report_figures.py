"""The figures of the HTML report, drawn with matplotlib (Agg) into PNG bytes from the dicts of
:mod:`pdopt.report_curves`, so that each image shows exactly the numbers embedded beside it.

Every figure has a title, units on its axes, linear axes from zero (no quantity here spans decades), SLO lines
labelled with their statistic, and labels kept inside the image (``bbox_inches="tight"``). matplotlib is imported
inside the functions: only ``pdopt report`` draws (docs/architecture.md, "Starting fast").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SLO_STYLE: dict[str, Any] = {"color": "#c0392b", "linestyle": "--", "linewidth": 1.5}
CAP_STYLE: dict[str, Any] = {"color": "#c0392b", "marker": "x", "markersize": 9, "markeredgewidth": 2,
                             "linestyle": "none", "zorder": 4}
OP_STYLE: dict[str, Any] = {"color": "#111111", "marker": "o", "markersize": 8, "linestyle": "none", "zorder": 5}


def _figure(width: float, height: float, panels: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure of ``panels`` side by side on the Agg backend (no display needed; matplotlib loaded here only)."""
    from pdopt.figures import pyplot

    fig, axes = pyplot().subplots(1, panels, figsize=(width, height), squeeze=False)
    return fig, list(axes[0])


def _png(fig: Figure) -> bytes:
    """The figure as PNG bytes, its labels kept inside the image; the figure is closed."""
    from pdopt.figures import png

    return png(fig, 100, tight=True, metadata={"Software": None})  # no URL inside


def shape_label(d: dict[str, Any]) -> str:
    """``model role gpu_type x GPUs`` (and the variant when not the default): how the report names a shape."""
    variant = "" if d.get("variant", "default") == "default" else f" [{d['variant']}]"
    return f"{d['model']} {d['role']} {d['gpu_type']} x{d['gpus_per_instance']}{variant}"


def _hbars(ax: Axes, labels: list[str], values: list[float], fmt: str, color: str = "C0") -> None:
    """Horizontal bars from zero with each value written at its bar's end."""
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, values, color=color)
    ax.set_yticks(ys, labels)
    top = max(values, default=0.0) or 1.0
    for y, v in zip(ys, values, strict=True):
        ax.text(v + top * 0.01, y, fmt.format(v), va="center", fontsize=9)
    ax.set_xlim(0, top * 1.18)
    ax.grid(axis="x", alpha=0.3)


def fleet_figure(data: dict[str, Any]) -> bytes:
    """Instances per placement (one bar per model, role, shape and pool)."""
    rows = data["placements"]
    fig, (ax,) = _figure(8.0, 0.9 + 0.42 * len(rows))
    labels = [f"{shape_label(p)} @ {p['pool']}" for p in rows]
    _hbars(ax, labels, [float(p["count"]) for p in rows], "{:.0f}")
    ax.set_xlabel("instances (count)")
    ax.set_title("Instances per placement")
    return _png(fig)


def cost_figure(data: dict[str, Any]) -> bytes:
    """Hourly cost by model, by role and by GPU type: three panels on one USD/h scale."""
    axes_keys = (("by_model", "by model"), ("by_role", "by role"), ("by_gpu_type", "by GPU type"))
    n = max(len(data[k]) for k, _ in axes_keys)
    fig, axes = _figure(12.0, 1.2 + 0.45 * n, panels=3)
    top = max(v for k, _ in axes_keys for v in data[k].values())
    for ax, (key, title) in zip(axes, axes_keys, strict=True):
        _hbars(ax, list(data[key]), list(data[key].values()), "{:,.2f}")
        ax.set_xlim(0, top * 1.3)
        ax.set_xlabel("cost (USD/hour)")
        ax.set_title(title)
    fig.suptitle(f"Hourly cost of the plan: {data['total_usd_per_hour']:,.2f} USD/hour in total")
    fig.tight_layout()
    return _png(fig)


def prefill_figure(d: dict[str, Any]) -> bytes:
    """TTFT against the arrival rate to one prefill instance, the SLO line and the operating point."""
    fig, (ax,) = _figure(7.0, 4.2)
    stat = d["statistic"]
    c = d["curve"]
    pooled = f", pooled over {d['instances']}" if d["queue_model"] == "ggc" else ""
    ax.plot(c["rate_rps"], c["ttft_s"], color="C0", linewidth=2,
            label=f"{stat} TTFT ({d['queue_model']} model{pooled})")
    ax.axhline(d["slo_ttft_s"], **SLO_STYLE, label=f"SLO: {stat} TTFT <= {d['slo_ttft_s']:g} s")
    ax.axvline(d["service_rate_rps"], color="grey", linestyle=":", linewidth=1.2,
               label=f"service rate {d['service_rate_rps']:.3g} req/s (queue saturates)")
    cp = d["capacity_point"]
    if cp["ttft_s"] is not None:
        ax.plot([cp["rate_rps"]], [cp["ttft_s"]], **CAP_STYLE, label=f"capacity at the SLO: {cp['rate_rps']:.3g} req/s")
    op = d["operating_point"]
    if op["ttft_s"] is not None:
        ax.plot([op["rate_rps"]], [op["ttft_s"]], **OP_STYLE,
                label=f"planned: {op['rate_rps']:.3g} req/s, {op['ttft_s']:.3g} s ({d['instances']} instance(s))")
    ax.set_xlim(0, d["service_rate_rps"] * 1.05)
    ax.set_ylim(0, max([*c["ttft_s"], d["slo_ttft_s"]]) * 1.08)
    ax.set_xlabel("arrival rate per instance (requests/s)")
    ax.set_ylabel(f"{stat} TTFT (s)")
    ax.set_title(f"Prefill capacity: {shape_label(d)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def decode_figure(d: dict[str, Any]) -> bytes:
    """TPOT against the running batch (the profile's curve), the SLO line, the batch cap and the operating
    batch."""
    fig, (ax,) = _figure(7.0, 4.2)
    c = d["curve"]
    what = "profile's TPOT, corrected under load" if d["corrected_under_load"] else "measured TPOT (profile)"
    ax.plot(c["batch"], c["tpot_ms"], color="C1", linewidth=2, marker=".", label=what)
    stat = d["statistic"]
    if "under_load_curve" in d:
        u = d["under_load_curve"]
        ax.plot(u["mean_batch"], u["tpot_ms"], color="C2", linewidth=1.5,
                label=f"{stat} TPOT over 1 + Poisson(B) others (x = B)")
    ax.axhline(d["slo_tpot_ms"], **SLO_STYLE, label=f"SLO: {stat} TPOT <= {d['slo_tpot_ms']:g} ms")
    ax.axvline(d["batch_cap"], color="grey", linestyle=":", linewidth=1.2,
               label=f"batch cap {d['batch_cap']} ({d['batch_cap_bound']})")
    cp = d["capacity_point"]
    ax.plot([cp["batch"]], [cp["tpot_ms"]], **CAP_STYLE, label=f"capacity at the SLO: batch {cp['batch']:.3g}")
    op = d["operating_point"]
    over = ", saturated: beyond the cap" if op["saturated"] else ""
    ax.plot([op["batch"]], [op["tpot_ms"]], **OP_STYLE,
            label=f"planned: batch {op['batch']:.3g}, {op['tpot_ms']:.3g} ms ({d['instances']} instance(s){over})")
    ax.set_xlim(0, max(c["batch"][-1], d["batch_cap"]) * 1.05)
    ax.set_ylim(0, max([*c["tpot_ms"], d["slo_tpot_ms"]]) * 1.1)
    ax.set_xlabel("running batch (requests)")
    ax.set_ylabel("TPOT (ms per output token)")
    ax.set_title(f"Decode capacity: {shape_label(d)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def aggregated_figure(d: dict[str, Any]) -> bytes:
    """An aggregated instance's TTFT and TPOT statistics against its arrival rate, two panels."""
    fig, axes = _figure(11.0, 4.2, panels=2)
    c, op = d["curve"], d["operating_point"]
    for ax, key, slo, stat, unit, name in ((axes[0], "ttft_s", "slo_ttft_s", d["ttft_statistic"], "s", "TTFT"),
                                           (axes[1], "tpot_ms", "slo_tpot_ms", d["tpot_statistic"], "ms", "TPOT")):
        ax.plot(c["rate_rps"], c[key], color="C4", linewidth=2, marker=".", label=f"{stat} {name} (analysis)")
        ax.axhline(d[slo], **SLO_STYLE, label=f"SLO: {stat} {name} <= {d[slo]:g} {unit}")
        ax.axvline(d["capacity_rps"], color="grey", linestyle=":", label=f"capacity {d['capacity_rps']:.3g} req/s")
        if op[key] is not None:
            ax.plot([op["rate_rps"]], [op[key]], **OP_STYLE, label=f"planned: {op['rate_rps']:.3g} req/s")
        ax.set_xlim(0, max([*c["rate_rps"], d["capacity_rps"]]) * 1.05)
        ax.set_ylim(0, max([*c[key], d[slo]]) * 1.1)
        ax.set_xlabel("arrival rate per instance (requests/s)")
        ax.set_ylabel(f"{stat} {name} ({unit})")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"Aggregated capacity: {shape_label(d)} ({d['instances']} instance(s))")
    fig.tight_layout()
    return _png(fig)


PROBABILITY = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def simulation_figure(d: dict[str, Any]) -> bytes:
    """The simulated TTFT and TPOT distributions of one model as the points of their empirical CDF the simulation
    reports (p50, p90, p95, p99, and the share of requests within each SLO), the predicted percentiles beside
    them, the SLO as a vertical line; the mean marked on the axis."""
    fig, axes = _figure(11.0, 4.2, panels=2)
    for ax, key, pkey, slo, stat, unit, name in (
            (axes[0], "ttft_s", "predicted_ttft_s", "slo_ttft_s", d["ttft_statistic"], "s", "TTFT"),
            (axes[1], "tpot_ms", "predicted_tpot_ms", "slo_tpot_ms", d["tpot_statistic"], "ms", "TPOT")):
        sim = d[key]
        xs = [sim[k] for k in PROBABILITY]
        ax.plot(xs, list(PROBABILITY.values()), color="C0", marker="o", linestyle="none",
                label="simulated percentiles p50, p90, p95, p99")
        within = d["attainment"][key.split("_")[0]]
        ax.plot([d[slo]], [within], color="C0", marker="s", markersize=8, linestyle="none",
                label=f"simulated share within the SLO value: {within:.1%}")
        ax.axvline(sim["mean"], color="C0", linestyle=":", label=f"simulated mean {sim['mean']:.3g} {unit}")
        pred = d[pkey]
        if pred is not None:
            ax.plot([pred[k] for k in PROBABILITY], list(PROBABILITY.values()), color="C2", marker="^",
                    linestyle="none", label="predicted percentiles (capacity model)")
        ax.axvline(d[slo], **SLO_STYLE, label=f"SLO: {stat} {name} <= {d[slo]:g} {unit}")
        ax.set_xlim(0, max([*xs, d[slo], *([pred[k] for k in PROBABILITY] if pred else [])]) * 1.1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"{name} ({unit})")
        ax.set_ylabel("fraction of requests at or below")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Simulated {d['model']}: TTFT and TPOT distributions against the SLOs")
    fig.tight_layout()
    return _png(fig)


def baseline_figure(d: dict[str, Any]) -> bytes:
    """Hourly cost of this plan and of each baseline; baselines without a plan, or rejected by the verifier, are
    marked as such (no bar, or a hatched bar)."""
    rows = d["rows"]
    fig, (ax,) = _figure(9.0, 1.0 + 0.45 * len(rows))
    ys = list(range(len(rows)))[::-1]
    top = max((r["cost_usd_per_hour"] or 0.0 for r in rows), default=1.0) or 1.0
    for y, r in zip(ys, rows, strict=True):
        cost = r["cost_usd_per_hour"]
        if cost is None:
            ax.text(top * 0.01, y, "no plan (infeasible)", va="center", fontsize=9, color="#c0392b")
            continue
        color = "C2" if y == ys[0] else ("C0" if r["feasible"] else "#bbbbbb")
        ax.barh([y], [cost], color=color, hatch=None if r["feasible"] else "//", edgecolor="#666666")
        note = "" if r["feasible"] else f"  violates: {r['reason']}"
        ax.text(cost + top * 0.01, y, f"{cost:,.2f}{note}", va="center", fontsize=9)
    ax.axvline(d["plan_usd_per_hour"], color="C2", linestyle="--", linewidth=1)
    ax.set_yticks(ys, [r["name"] for r in rows])
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel("cost (USD/hour)")
    ax.set_title("This plan against heuristic baselines (same capacity model and inventory)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)

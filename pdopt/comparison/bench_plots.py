"""The figures of `pdopt bench`, each written with the data it draws (``<figure>.json`` beside ``<figure>.png``).

Every figure is drawn from a data dictionary built from the benchmark's rows, and the JSON holds that dictionary
plus how the axes came out (scale and limits, read back from the drawn axes), so that a reader (or a test) can
check a figure against ``results.csv`` without looking at pixels. The rules the figures follow:

- times are CPU seconds of the planning (``plan_cpu_s``: the benchmark's machine is shared, so wall time would
  also measure the neighbours);
- an axis is logarithmic only when its values span more than a decade, and its ticks are plain numbers;
- a relative gap within the solver's optimality tolerance (:data:`~pdopt.optimize.solver.OPTIMALITY_GAP`) is
  round-off between the plan and its bound, not a gap: it is written as "optimal", never drawn as a bar;
- the saving against the baselines is drawn on a linear axis that includes zero, and an instance without a
  feasible baseline (or without a plan) is named with the reason, not left out.

matplotlib is imported inside :func:`write_plots` only (``import pdopt`` stays fast).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from pdopt.io.files import dump_json, write_new
from pdopt.optimize.solver import OPTIMALITY_GAP

GAP_THRESHOLD = OPTIMALITY_GAP
"""A relative gap at most this (in absolute value) counts as proven optimal: the solver's own rule."""
LOG_SPAN = 10.0
"""An axis turns logarithmic when its largest value is more than this many times its smallest."""


def short_name(row: dict[str, Any]) -> str:
    """A label that fits beside a point: the file's stem, or ``fleet-L s0, 8 models`` for a generated entry (whose
    entry, ``generate:fleet-L:0:models=8``, is longer than a label should be)."""
    entry = str(row["instance"])
    if entry.startswith("generate:"):
        _, family, seed, *_ = (*entry.split(":"), "")
        return f"{family} s{seed}, {row['models']} models"
    return entry.rsplit("/", 1)[-1].removesuffix(".yaml")


def gap_shown(row: dict[str, Any]) -> str:
    """How a row's gap is shown: ``bar`` (an open gap), ``optimal`` (within :data:`GAP_THRESHOLD`, or proven
    without a bound printed), ``no bound`` (a plan the solver gave no bound for) or ``no plan``."""
    if row["cost_usd_per_hour"] is None:
        return "no plan"
    gap = row["gap"]
    if gap is None:
        return "optimal" if row["status"] == "optimal" else "no bound"
    return "optimal" if abs(gap) <= GAP_THRESHOLD else "bar"


def axis_scale(values: list[float]) -> str:
    """``log`` when the (positive) values span more than :data:`LOG_SPAN`, else ``linear``."""
    positive = [v for v in values if v is not None]
    if not positive or min(positive) <= 0 or max(positive) <= LOG_SPAN * min(positive):
        return "linear"
    return "log"


def solve_time_data(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The data of ``solve_time.png``: per instance its size, CPU seconds, status and how its gap is shown."""
    points = [{"label": i, "instance": r["instance"], "name": short_name(r), "variables": r["variables"],
               "plan_cpu_s": r["plan_cpu_s"], "status": r["status"], "gap": r["gap"], "gap_shown": gap_shown(r)}
              for i, r in enumerate(rows, start=1)]
    return {"x": "variables", "y": "plan_cpu_s", "gap_threshold": GAP_THRESHOLD, "points": points}


def cost_data(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The data of ``cost_vs_baselines.png``: per instance the MILP's cost, the best feasible baseline and the
    saving against it, or why there is no saving to show."""
    out = []
    for r in rows:
        if r["cost_usd_per_hour"] is None:
            why = f"no MILP plan ({r['status']})"
        elif r["baselines_run"] is None:
            why = "baselines not run"
        elif r["best_baseline_usd_per_hour"] is None:
            why = f"no feasible baseline (0 of {r['baselines_run']})"
        else:
            why = None
        out.append({"instance": r["instance"], "name": short_name(r),
                    "cost_usd_per_hour": r["cost_usd_per_hour"], "best_baseline": r["best_baseline"],
                    "best_baseline_usd_per_hour": r["best_baseline_usd_per_hour"], "saving_pct": r["saving_pct"],
                    "baselines_run": r["baselines_run"], "baselines_feasible": r["baselines_feasible"],
                    "not_shown": why})
    return {"x": "saving_pct", "rows": out}


def family_data(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The data of ``solve_time_by_family.png``: the generated instances by family, each instance a point, and
    per family and number of models the median over its seeds (the line: one seed's solve time says more about
    that instance than about its size); None when the rows hold no generated instance."""
    families: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["family"] is not None:
            shown = gap_shown(r)
            families.setdefault(r["family"], []).append(
                {"instance": r["instance"], "models": r["models"], "pools": r["pools"], "gpu_types": r["gpu_types"],
                 "variables": r["variables"], "plan_cpu_s": r["plan_cpu_s"], "status": r["status"], "gap": r["gap"],
                 "gap_shown": shown, "gap_pct": 100.0 * r["gap"] if shown == "bar" else None,
                 "time_limit_s": r["time_limit_s"]})
    if not families:
        return None
    lines: list[dict[str, Any]] = []
    for f in sorted(families, key=lambda f: min(q["variables"] for q in families[f])):
        points = sorted(families[f], key=lambda q: (q["models"], q["variables"]))
        medians = []
        for m in sorted({q["models"] for q in points}):
            same = [q for q in points if q["models"] == m]
            medians.append({"models": m, "instances": len(same),
                            "variables": statistics.median(q["variables"] for q in same),
                            "plan_cpu_s": statistics.median(q["plan_cpu_s"] for q in same),
                            "proven": sum(q["gap_shown"] == "optimal" for q in same)})
        lines.append({"family": f, "points": points, "medians": medians})
    return {"x": ["models", "variables"], "y": "plan_cpu_s", "gap_threshold": GAP_THRESHOLD, "lines": lines}


def _plain_ticks(ax: Any, which: str, scale: str) -> None:
    """Plain tick labels (1, 10, 1,000; 0.01) instead of powers of ten, and none at the minor ticks."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if float(v).is_integer() else f"{v:,g}"))
    if scale == "log":
        axis.set_minor_formatter(NullFormatter())


def _set_scale(ax: Any, which: str, values: list[float]) -> None:
    """Log when the values span more than a decade; linear from zero otherwise; plain ticks either way."""
    scale = axis_scale(values)
    if which == "x":
        ax.set_xscale(scale)
        if scale == "linear":
            ax.set_xlim(left=0, right=1.1 * max(values) if values and max(values) > 0 else 1)
    else:
        ax.set_yscale(scale)
        if scale == "linear":
            ax.set_ylim(bottom=0, top=1.1 * max(values) if values and max(values) > 0 else 1)
    _plain_ticks(ax, which, scale)


def _axes(ax: Any) -> dict[str, Any]:
    """How an axes came out: scales and limits, read back from matplotlib (what the reader sees)."""
    return {"xscale": ax.get_xscale(), "xlim": [float(v) for v in ax.get_xlim()], "yscale": ax.get_yscale(),
            "ylim": [float(v) for v in ax.get_ylim()]}


def _label_points(ax: Any, xy: list[tuple[float, float]], texts: list[str]) -> None:
    """Write each label just above and right of its point, moved up (with a thin leader) while it would cover a
    label already written: instances of the same size and time would otherwise print their numbers on top of
    each other."""
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits before converting to display coordinates
    to_pt = 72.0 / ax.figure.dpi
    placed: list[tuple[float, float, float]] = []  # (x, y, width) of written labels, in points
    for (x, y), text in zip(xy, texts, strict=True):
        px, py = (float(v) * to_pt for v in ax.transData.transform((x, y)))
        width, dy = 5.0 * len(text) + 2.0, 3.0
        while any(abs(px - qx) < max(width, qw) and abs(py + dy - qy) < 9.0 for qx, qy, qw in placed):
            dy += 9.0
        placed.append((px, py + dy, width))
        leader = {"arrowstyle": "-", "color": "grey", "linewidth": 0.5} if dy > 3.0 else None
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(3, dy), fontsize=8, arrowprops=leader)


STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "optimal": ("o", "tab:blue", "proven optimal"),
    "bar": ("^", "tab:orange", "plan, gap open (time limit)"),
    "no bound": ("^", "tab:orange", "plan, gap open (time limit)"),
    "no plan": ("x", "tab:red", "no plan (infeasible, or none found)"),
}
"""Marker, colour and legend text by how a row's gap is shown."""


def _draw_solve_time(plt: Any, data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    points = data["points"]
    fig, (ax, axg) = plt.subplots(1, 2, figsize=(11, max(3.8, 1.6 + 0.32 * len(points))),
                                  gridspec_kw={"width_ratios": [1.2, 1]})
    seen: set[str] = set()
    for p in points:
        marker, colour, text = STATUS_STYLE[p["gap_shown"]]
        ax.scatter(p["variables"], p["plan_cpu_s"], marker=marker, color=colour, zorder=3,
                   label=None if text in seen else text)
        seen.add(text)
    _set_scale(ax, "x", [float(p["variables"]) for p in points])
    _set_scale(ax, "y", [float(p["plan_cpu_s"]) for p in points])
    _label_points(ax, [(p["variables"], p["plan_cpu_s"]) for p in points], [str(p["label"]) for p in points])
    ax.set(xlabel="size of the MILP (variables)", ylabel="CPU seconds of the planning (solver included)",
           title="CPU time by size")
    ax.grid(True, which="major", alpha=0.3)
    if points:  # an interrupted run may have measured none
        ax.legend(fontsize=8, loc="upper left")
    # the gap, one row per instance (numbered as the points): a bar only for an open gap
    ys = list(range(len(points)))[::-1]
    open_rows = [(y, p) for y, p in zip(ys, points, strict=True) if p["gap_shown"] == "bar"]
    bars = axg.barh([y for y, _ in open_rows], [100.0 * p["gap"] for _, p in open_rows], color="tab:orange",
                    height=0.6)
    widths = [float(b.get_width()) for b in bars]
    top = max(widths, default=0.0)
    axg.set_xlim(0, 1.35 * top if top > 0 else 1.0)
    axg.set_ylim(-0.7, len(points) - 0.3)
    for y, p in zip(ys, points, strict=True):
        shown = p["gap_shown"]
        text = {"bar": f"{100.0 * (p['gap'] or 0.0):.3g}%", "optimal": "optimal", "no bound": "open, no bound",
                "no plan": p["status"]}[shown]
        x = 100.0 * p["gap"] if shown == "bar" else 0.0
        axg.annotate(text, (x, y), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8,
                     color=STATUS_STYLE[shown][1])
    axg.set_yticks(ys, [f"{p['label']}  {p['name'][:28]}" for p in points], fontsize=8)
    axg.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}%"))
    threshold = f"|gap| \u2264 {GAP_THRESHOLD:g} counts as optimal"
    if open_rows:
        axg.set(xlabel=f"relative gap at the end of the solve (%); {threshold}", title="gap left open")
    else:
        axg.set_xticks([])
        for side in ("top", "right", "bottom"):
            axg.spines[side].set_visible(False)
        proven = sum(p["gap_shown"] == "optimal" for p in points)
        axg.set_title(f"no open gap: {proven} of {len(points)} proven optimal\n({threshold})", fontsize=10)
    axg.tick_params(axis="y", length=0)
    fig.tight_layout()
    described = {"time": _axes(ax), "gap": _axes(axg),
                 "gap_bars": [{"instance": p["instance"], "gap_pct": w}
                              for (_, p), w in zip(open_rows, widths, strict=True)]}
    return fig, described


def _draw_cost(plt: Any, data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    rows = data["rows"]
    fig, ax = plt.subplots(figsize=(12, max(3.0, 1.4 + 0.34 * len(rows))))
    fig.subplots_adjust(left=0.2, right=0.52)  # the right side holds the costs behind each bar
    ys = list(range(len(rows)))[::-1]
    shown = [(y, r) for y, r in zip(ys, rows, strict=True) if r["not_shown"] is None]
    bars = ax.barh([y for y, _ in shown], [r["saving_pct"] for _, r in shown], height=0.6,
                   color=["tab:green" if r["saving_pct"] >= 0 else "tab:red" for _, r in shown])  # red: dearer
    widths = [float(b.get_width()) for b in bars]
    lo, hi = min([0.0, *widths]), max([0.0, *widths])
    ax.set_xlim(1.1 * lo, 1.3 * hi if hi > 0 else 1.0)  # room for the label at the longest bar's end
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.axvline(0, color="black", linewidth=0.8)
    for y, r in zip(ys, rows, strict=True):
        if r["not_shown"] is not None:
            ax.annotate(r["not_shown"], (0.0, y), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8,
                        color="tab:red")
            continue
        ax.annotate(f"{r['saving_pct']:.1f}%", (max(0.0, r["saving_pct"]), y), textcoords="offset points",
                    xytext=(3, 0), va="center", fontsize=8)
        infeasible = r["baselines_run"] - r["baselines_feasible"]
        text = (f"{r['cost_usd_per_hour']:,.2f} against {r['best_baseline_usd_per_hour']:,.2f} "
                f"({r['best_baseline']})")
        if infeasible:
            text += f"; {infeasible} of {r['baselines_run']} infeasible"
        ax.annotate(text, (1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8)
    ax.annotate("USD/h: the MILP against the best feasible baseline\n(and baselines without a plan that verifies)",
                (1.02, 1.0), xycoords="axes fraction", va="bottom", fontsize=8, color="dimgrey")
    ax.set_yticks(ys, [r["name"][:30] for r in rows], fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}%"))
    ax.set(xlabel="the MILP's saving (% of the best feasible baseline's cost)",
           title="the MILP's saving against the best baseline")
    described = {"saving": _axes(ax), "saving_bars": [{"instance": r["instance"], "saving_pct": w}
                                                      for (_, r), w in zip(shown, widths, strict=True)]}
    return fig, described


def _draw_families(plt: Any, data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex="col", height_ratios=[1.6, 1])
    points = [p for line in data["lines"] for p in line["points"]]
    # the time limit is drawn when a solve stopped at it (or came close), and then it is part of the y range
    limits = sorted({p["time_limit_s"] for p in points if p["time_limit_s"] and (
        p["gap_shown"] != "optimal" or p["plan_cpu_s"] >= 0.5 * p["time_limit_s"])})
    gaps = [p["gap_pct"] for p in points if p["gap_pct"] is not None]
    for col, x in enumerate(("models", "variables")):
        ax, axg = axes[0][col], axes[1][col]
        for i, line in enumerate(data["lines"]):
            colour = f"C{i}"
            ax.plot([m[x] for m in line["medians"]], [m["plan_cpu_s"] for m in line["medians"]], color=colour,
                    label=line["family"], zorder=2)
            for p in line["points"]:
                proven = p["gap_shown"] == "optimal"
                style = {"marker": "o" if proven else "^", "facecolor": colour if proven else "white",
                         "edgecolor": colour, "s": 22, "zorder": 3}
                ax.scatter(p[x], p["plan_cpu_s"], **style)
                if p["gap_shown"] in ("optimal", "bar"):  # a proven plan sits at 0: no round-off is drawn
                    axg.scatter(p[x], p["gap_pct"] or 0.0, **style)
        _set_scale(ax, "x", [float(p[x]) for p in points])
        if x == "models" and ax.get_xscale() == "linear":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _set_scale(ax, "y", [float(p["plan_cpu_s"]) for p in points] + [float(v) for v in limits])
        for limit in limits:
            ax.axhline(limit, color="grey", linestyle="--", linewidth=0.8)
        axg.set_ylim(0, 1.15 * max(gaps) if gaps else 1.0)
        axg.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}%"))
        for a in (ax, axg):
            a.grid(True, which="major", alpha=0.3)
    axes[0][0].set(ylabel="CPU seconds of the planning\n(solver included)")
    axes[1][0].set(xlabel="models", ylabel=f"gap left at the end\n(\u2264 {GAP_THRESHOLD:g}: optimal, drawn at 0)")
    axes[1][1].set(xlabel="size of the MILP (variables)")
    # one legend below the panels, where it covers no point
    handles = [Line2D([], [], color=f"C{i}", label=f"{line['family']} (median over seeds)")
               for i, line in enumerate(data["lines"])]
    handles += [Line2D([], [], marker="o", color="grey", linestyle="", label="an instance, proven optimal"),
                Line2D([], [], marker="^", color="grey", markerfacecolor="white", linestyle="",
                       label="an instance, gap open at the end")]
    handles += [Line2D([], [], color="grey", linestyle="--", linewidth=0.8, label=f"time limit {v:g} s (wall clock)")
                for v in limits]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("CPU time of the planning as the generated fleets grow (one line per family)")
    fig.tight_layout(rect=(0, 0.02 + 0.025 * ((len(handles) + 2) // 3), 1, 1))
    return fig, {"cpu_by_models": _axes(axes[0][0]), "cpu_by_variables": _axes(axes[0][1]),
                 "gap_by_models": _axes(axes[1][0]), "gap_by_variables": _axes(axes[1][1])}


def _write_png(fig: Any, path: Path) -> Path:
    """Render to PNG bytes, cropped to what is drawn (no label cut at the edge), and write a new file only."""
    from pdopt.figures import png

    return write_new(path, png(fig, 120, tight=True, pad_inches=0.15), "plot")


def write_plots(rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """``solve_time``, ``cost_vs_baselines`` and, when the rows hold generated instances, ``solve_time_by_family``:
    each a PNG and the JSON of its data and axes, written as new files in ``out``."""
    from pdopt.figures import pyplot

    plt = pyplot()
    figures: list[tuple[str, Any, dict[str, Any] | None]] = [
        ("solve_time", _draw_solve_time, solve_time_data(rows)),
        ("cost_vs_baselines", _draw_cost, cost_data(rows)),
        ("solve_time_by_family", _draw_families, family_data(rows)),
    ]
    files = []
    for name, draw, data in figures:
        if data is None:
            continue
        fig, described = draw(plt, data)
        try:
            files.append(_write_png(fig, out / f"{name}.png"))
        finally:
            plt.close(fig)
        files.append(write_new(out / f"{name}.json", dump_json({**data, "axes": described}), "plot data"))
    return files

"""The sweep's figures: cost against the demand multiplier, and cost against the TTFT target with the Pareto
frontier of each line circled (a point off the frontier is a looser target at no lower cost). Each is drawn only
when its axis takes two values or more; costs on a linear axis from zero; a point with no plan is marked on the x
axis, not left out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pdopt.comparison.sweep import is_axis


def _series(rows: Sequence[dict[str, Any]], x: str) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by the values of every axis other than ``x`` (a line each), labelled by those that vary."""
    others = [k for k in rows[0] if is_axis(k) and k != x]
    varied = [k for k in others if len({str(r[k]) for r in rows}) > 1]
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        label = ", ".join(_said(k, r[k]) for k in varied) or "cost"
        out.setdefault(label, []).append(r)
    return out


def _said(axis: str, value: Any) -> str:
    """An axis value as a reader says it: ``demand x1.5``, ``TTFT 0.5 s``, ``h100_80gb price x0.8``."""
    if axis == "demand":
        return f"demand x{value:g}"
    if axis == "ttft_target_s":
        return f"TTFT {value:g} s"
    if axis == "tpot_target_ms":
        return f"TPOT {value:g} ms"
    if axis == "available":
        return f"GPUs: {value}"
    return f"{axis.removeprefix('price:')} price x{value:g}"


def varied(rows: Sequence[dict[str, Any]], axis: str) -> bool:
    """True when ``axis`` takes two values or more in the rows."""
    return len({r[axis] for r in rows}) > 1


def cost_against(rows: Sequence[dict[str, Any]], axis: str, xlabel: str, pareto: bool = False) -> bytes:
    """PNG: cost (USD/hour) against ``axis``, a line per combination of the other axes; points with no plan as
    crosses on the x axis in the line's colour (and listed in its legend entry); with ``pareto``, the
    Pareto points (``pareto_ttft``) circled."""
    from pdopt.figures import png, pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = _series(rows, axis)
    for label, group in series.items():
        group = sorted(group, key=lambda r: r[axis])
        ok = [r for r in group if r["cost_usd_per_hour"] is not None]
        missing = [r for r in group if r["cost_usd_per_hour"] is None]
        shown = label if len(series) > 1 else "cheapest plan"
        if not ok:
            shown += ": no plan at any point"
        elif missing:
            shown += f": no plan at {', '.join(f'{r[axis]:g}' for r in missing)}"
        (line,) = ax.plot([r[axis] for r in ok], [r["cost_usd_per_hour"] for r in ok], marker="o", label=shown)
        if missing:  # where no plan exists: a cross on the x axis in the line's colour
            ax.scatter([r[axis] for r in missing], [0.0] * len(missing), marker="x", color=line.get_color(),
                       zorder=3, clip_on=False)
    if pareto:
        front = [r for r in rows if r["pareto_ttft"]]
        ax.scatter([r[axis] for r in front], [r["cost_usd_per_hour"] for r in front], s=90, facecolors="none",
                   edgecolors="black", zorder=3, label="Pareto frontier: the tightest target each cost buys")
    ax.set_ylim(bottom=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cost of the cheapest plan (USD/hour)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    ax.set_title(f"Cost of the cheapest plan against the {xlabel.split(' (')[0]}")
    return png(fig, 120, tight=True)

"""A picture of a plan over a horizon (``pdopt plan INSTANCE --plot FILE.png``): demand against planned capacity,
the fleet, and the cost, period by period, with the static plan for the peak beside each.

Three panels share the time axis (hours from the horizon's start; each period a step as long as its hours):

1. per model, the demand (req/s) and the capacity the plan places for it, per role: the prefill and decode
   capacities planned (sum of count x per-instance capacity), which the demand must stay under;
2. GPUs in use per period, the plan's and the static plan's;
3. the hourly cost per period, the plan's and the static plan's, each with its total over the horizon (ramps and
   starts included) in the legend;
4. with purchase options, the units each pool buys per period, stacked pool after pool: the reserved layer in use
   (the legend gives each pool's reserved count), then the spot and on-demand top-ups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pdopt.instance import Instance
    from pdopt.optimize.horizon import HorizonPlan, PeriodPlan

__all__ = ["plot_horizon"]


def _steps(hours: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """Step-function points: each value held over its period's hours."""
    xs, ys, t = [], [], 0.0
    for h, v in zip(hours, values, strict=True):
        xs += [t, t + h]
        ys += [v, v]
        t += h
    return xs, ys


def _capacity(period: PeriodPlan, model: str, role: str) -> float:
    return sum(p.count * p.capacity_rps for p in period.plan.placements if (p.model, p.role) == (model, role))


def _gpus(period: PeriodPlan) -> float:
    return float(sum(p.count * p.gpus_per_instance for p in period.plan.placements))


def plot_horizon(instance: Instance, plan: HorizonPlan) -> bytes:
    """PNG of the three panels (module docstring); ``instance`` gives each period's demand."""
    from pdopt.figures import png, pyplot

    plt = pyplot()

    hours = [p.hours for p in plan.periods]
    models = list(instance.workloads)
    panels = 4 if plan.purchase else 3
    fig, axes = plt.subplots(panels, 1, figsize=(10.0, 3.0 * panels), sharex=True)
    ax = axes[0]
    for i, m in enumerate(models):
        color = f"C{i}"
        demand = [instance.period_instance(p.name).workloads[m].demand_rps() for p in plan.periods]
        ax.plot(*_steps(hours, demand), color=color, linewidth=2.0, label=f"{m} demand")
        for role, style in (("prefill", "--"), ("decode", ":")):
            cap = [_capacity(p, m, role) for p in plan.periods]
            if any(cap):
                ax.plot(*_steps(hours, cap), color=color, linestyle=style, label=f"{m} {role} capacity")
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    ax.set_title("demand and planned capacity (capacity at or above demand in every period)")
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    ax = axes[1]
    ax.plot(*_steps(hours, [_gpus(p) for p in plan.periods]), color="C0", label="per period")
    if plan.static_peak:
        ax.plot(*_steps(hours, [_gpus(p) for p in plan.static_peak]), color="grey", linestyle="--",
                label="static plan for the peak")
    ax.set_ylabel("GPUs in use")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[2]
    at_list = " at list prices" if plan.purchase else ""
    ax.plot(*_steps(hours, [p.plan.objective_usd_per_hour or 0.0 for p in plan.periods]), color="C0",
            label=f"per period{at_list}: {plan.total_cost_usd or 0.0:,.2f} USD in all"
                  if not plan.purchase else f"per period{at_list} (the horizon as bought: "
                                            f"{plan.total_cost_usd or 0.0:,.2f} USD in all)")
    if plan.static_peak and plan.static_cost_usd is not None:
        ax.plot(*_steps(hours, [p.plan.objective_usd_per_hour or 0.0 for p in plan.static_peak]), color="grey",
                linestyle="--", label=f"static plan for the peak: {plan.static_cost_usd:,.2f} USD")
    ax.set_ylabel("USD per hour")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left")
    if plan.purchase:
        _purchase_panel(axes[3], plan, hours)
    axes[-1].set_xlabel("hours from the horizon's start")
    ticks = [0.0]
    for h in hours:
        ticks.append(ticks[-1] + h)
    if len(ticks) <= 25:
        axes[-1].set_xticks(ticks)
    fig.suptitle(f"{plan.instance}: {len(hours)} periods, {sum(hours):g} hours")
    fig.tight_layout()
    return png(fig, 110)


def _purchase_panel(ax: Any, plan: HorizonPlan, hours: list[float]) -> None:
    """Units bought per period, stacked per pool: reserved in use, spot, on demand (module docstring, panel 4)."""
    starts = [sum(hours[:i]) for i in range(len(hours))]
    bottom = [0.0] * len(hours)
    for i, pool in enumerate(plan.purchase):
        layers = (("reserved", [min(q.used, pool.reserved) for q in pool.periods], 1.0, None),
                  ("spot", [q.spot for q in pool.periods], 0.6, "//"),
                  ("on demand", [q.on_demand for q in pool.periods], 0.3, None))
        for name, values, alpha, hatch in layers:
            if not any(values):
                continue
            label = f"{pool.pool}: {name}" + (f" ({pool.reserved} for the horizon)" if name == "reserved" else "")
            ax.bar(starts, values, width=hours, bottom=bottom, align="edge", color=f"C{i}", alpha=alpha,
                   hatch=hatch, edgecolor="white", linewidth=0.5, label=label)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    unit = {q.unit for q in plan.purchase}
    ax.set_ylabel("GPUs bought" if unit == {"gpu"} else "nodes bought" if unit == {"node"} else "units bought")
    ax.set_ylim(0, max([*bottom, 1.0]) * 1.6)  # headroom for the legend above the bars
    ax.set_title("how the units are bought: the reserved layer in use, then the spot and on-demand top-ups")
    ax.legend(fontsize=8, loc="upper left", ncol=3)

"""``pdopt report``: one self-contained HTML page for a plan, to read or send without pdopt.

The page holds the plan table, the cost by model, role and GPU type, a capacity curve per shape the plan uses
with its SLO line and operating point, the simulated TTFT and TPOT distributions when a simulation is given, the
heuristic baselines' costs, and the assumptions the numbers rest on. Everything is inline: figures as
``data:image/png;base64`` images, CSS in a ``<style>`` element, no external URL, so the file opens offline and
nothing it shows can change after it was written. Beside each image, the numbers it plots are embedded as JSON
(``<script type="application/json" class="figure-data" data-figure="...">``), so that a reader (or a test) can
check a figure against the plan. A small inline script marks the ``<body>`` with how many figures loaded and how
many script errors occurred (``data-figures-loaded``, ``data-errors``), which a headless browser can read back.

The numbers come from :mod:`pdopt.report_curves`, the drawings from :mod:`pdopt.report_figures`.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pdopt import report_curves as rc

if TYPE_CHECKING:
    from pdopt.instance import Instance
    from pdopt.plan import Plan

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .92em; color: #444; max-width: 60em; }
.note { color: #555; font-size: .92em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 0 1.5em; }
"""

LOAD_CHECK = """
(function () {
  var errors = 0;
  window.onerror = function () { errors += 1; document.body && document.body.setAttribute("data-errors", errors); };
  window.addEventListener("load", function () {
    var imgs = document.images, loaded = 0;
    for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { loaded += 1; } }
    var blocks = document.querySelectorAll("script.figure-data");
    for (var j = 0; j < blocks.length; j++) { try { JSON.parse(blocks[j].textContent); } catch (e) { errors += 1; } }
    document.body.setAttribute("data-figures", imgs.length);
    document.body.setAttribute("data-figures-loaded", loaded);
    document.body.setAttribute("data-errors", errors);
  });
})();
"""
"""Counts the images that decoded (complete, naturalWidth > 0) and the script errors, including figure data that
does not parse, and writes both on ``<body>`` once the page has loaded."""


def _esc(value: object) -> str:
    """Text and attribute values escaped: model, pool and GPU names come from the user's files."""
    return html.escape(str(value), quote=True)


def _json_script(name: str, data: object) -> str:
    """The figure's numbers as JSON in a non-executed script element; ``<``, ``>`` and ``&`` are escaped as JSON
    unicode escapes, so no string from the instance (a model name) can close the element. An object carries the
    ``format_version`` of every JSON pdopt writes (:data:`pdopt.io.files.FORMAT_VERSION`)."""
    from pdopt.io.files import FORMAT_VERSION

    if isinstance(data, dict):
        data = {"format_version": FORMAT_VERSION, **data}
    text = json.dumps(data, sort_keys=True, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" class="figure-data" data-figure="{_esc(name)}">{text}</script>'


def _figure(name: str, png: bytes, data: object, caption: str) -> str:
    """An image with its caption and, beside it, the JSON of what it plots."""
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (f'<figure id="fig-{_esc(name)}"><img src="{src}" alt="{_esc(caption)}" data-figure="{_esc(name)}">'
            f"<figcaption>{_esc(caption)}</figcaption>{_json_script(name, data)}</figure>")


def _table(header: list[str], rows: list[list[object]], numeric: set[int] | None = None) -> str:
    """An HTML table, the columns in ``numeric`` right-aligned so that digits line up."""
    numeric = numeric or set()
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{_esc(c)}</td>' if i in numeric else f"<td>{_esc(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict(instance: Instance, plan: Plan) -> str:
    """What the independent verifier says of the plan (a plan file is input the report does not trust)."""
    from pdopt.verifier import verify

    found = verify(instance, plan.to_dict())
    if not found:
        return "The independent verifier finds the plan satisfies every constraint of the instance."
    checks = sorted({v.check for v in found})
    return f"The independent verifier finds {len(found)} violation(s): {', '.join(checks)}."


def _plan_section(instance: Instance, plan: Plan) -> str:
    """The plan as tables: what the reader acts on first (placements, then per model), with its status and cost."""
    rows = [[p.model, p.role, p.gpu_type, p.gpus_per_instance, p.pool, p.count, p.count * p.gpus_per_instance,
             f"{p.capacity_rps:.4g}", f"{p.cost_usd_per_hour:,.2f}", p.estimated or "measured"]
            for p in plan.placements]
    placements = _table(["model", "role", "GPU type", "GPUs per instance", "pool", "instances", "GPUs",
                         "capacity per instance (req/s)", "cost (USD/h)", "profile"], rows, {3, 5, 6, 7, 8})
    estimated = sorted({p.estimated for p in plan.placements if p.estimated})
    if estimated:
        placements += (f"<p><b>Estimated, not measured:</b> the placements marked {_esc(', '.join(estimated))} "
                       "rest on estimated profiles; their capacities are only as good as the estimate.</p>")
    models = _table(["model", "mode", "demand served (req/s)", "prefill instances", "decode instances",
                     "aggregated instances", "P:D ratio"],
                    [[m, mp.mode, f"{mp.demand_rps:g}", mp.prefill.instances, mp.decode.instances,
                      mp.aggregated.instances if mp.aggregated else 0,
                      "" if mp.pd_ratio is None else f"{mp.pd_ratio:.3g}"] for m, mp in plan.models.items()],
                    {2, 3, 4, 5, 6})
    gap = "" if plan.solver.gap is None else f", gap {plan.solver.gap:.2%}"
    return (f"<h2>Plan</h2><p>Status <b>{_esc(plan.status.value)}</b> ({_esc(plan.solver.name)}{_esc(gap)}); "
            f"cost <b>{plan.objective_usd_per_hour or 0.0:,.2f} USD/hour</b>; "
            f"GPUs used: {_esc(', '.join(f'{g} {n}' for g, n in sorted(plan.gpus_used.items())))}. "
            f"{_esc(_verdict(instance, plan))}</p>"
            f"{placements}{models}")


def _curves_section(curves: list[dict[str, Any]], draw: Callable[[str, dict[str, Any]], bytes]) -> str:
    """A figure per shape with a caption stating its operating point in words (for a reader who cannot see it)."""
    parts = ["<h2>Capacity curves of the shapes used</h2><p class=\"note\">Per shape (model, role, GPU type, GPUs "
             "per instance) the capacity model's latency against the load on one instance, the SLO as a dashed "
             "line, and the planned operating point: the demand split over the role's instances by capacity.</p>"]
    parts.append('<div class="grid">')
    for i, d in enumerate(curves):
        label = _label(d)
        op = d["operating_point"]
        if d["role"] == "prefill":
            ttft = "unbounded" if op["ttft_s"] is None else f"{op['ttft_s']:.3g} s"
            caption = (f"{label}: {d['statistic']} TTFT against the arrival rate to one instance; the plan runs "
                       f"{d['instances']} instance(s) at {op['rate_rps']:.3g} req/s each ({ttft}, SLO "
                       f"{d['slo_ttft_s']:g} s; capacity {d['capacity_rps']:.3g} req/s).")
        elif d["role"] == "decode":
            caption = (f"{label}: TPOT against the running batch; the plan runs {d['instances']} instance(s) at a "
                       f"batch of {op['batch']:.3g} ({op['tpot_ms']:.3g} ms, SLO {d['slo_tpot_ms']:g} ms; batch "
                       f"cap {d['batch_cap']}, {d['batch_cap_bound']}).")
        else:
            caption = (f"{label}: TTFT and TPOT against the arrival rate to one aggregated instance; the plan runs "
                       f"{d['instances']} instance(s) at {op['rate_rps']:.3g} req/s each.")
        parts.append(_figure(f"curve-{i}", draw(d["role"], d), d, caption))
    return "".join(parts) + "</div>"


def _label(d: dict[str, Any]) -> str:
    """A shape's name in captions (the figures' own, :func:`pdopt.report_figures.shape_label`)."""
    from pdopt.report_figures import shape_label

    return shape_label(d)


def _simulation_section(sims: list[dict[str, Any]]) -> str:
    """A figure per simulated model, after a note on what the simulation's JSON holds (percentiles, not samples),
    so that the drawn points are not read as a full distribution."""
    from pdopt.report_figures import simulation_figure

    parts = ["<h2>Simulation</h2><p class=\"note\">The simulation's JSON holds, per model and metric, the mean "
             "and the p50, p90, p95 and p99 over requests, and the share of requests within each SLO value: these "
             "are the points of the empirical CDF drawn (no other samples are kept).</p>"]
    for d in sims:
        n = f" ({d['requests']:,} requests{', interrupted run' if d['partial'] else ''})" if d["requests"] else ""
        caption = (f"{d['model']}{n}: simulated TTFT and TPOT percentiles as points of their empirical CDF, with the "
                   f"predicted percentiles and the SLO lines ({d['ttft_statistic']} TTFT <= {d['slo_ttft_s']:g} s, "
                   f"{d['tpot_statistic']} TPOT <= {d['slo_tpot_ms']:g} ms).")
        parts.append(_figure(f"simulation-{d['model']}", simulation_figure(d), d, caption))
    return "".join(parts)


def _baseline_section(data: dict[str, Any]) -> str:
    """The baselines as a figure and as a table (the table carries the reasons a baseline has no plan)."""
    from pdopt.report_figures import baseline_figure

    head = "<h2>Baselines</h2>"
    if data["skipped"]:
        return head + f"<p class=\"note\">Not compared: {_esc(data['skipped'])}.</p>"
    rows = [[r["name"], "" if r["cost_usd_per_hour"] is None else f"{r['cost_usd_per_hour']:,.2f}",
             "yes" if r["feasible"] else "no", r["reason"] or ""] for r in data["rows"]]
    caption = ("Hourly cost of this plan and of each heuristic baseline on the same capacity model and inventory; "
               "a baseline with no plan, or whose plan the verifier rejects, is marked infeasible.")
    return (head + _figure("baselines", baseline_figure(data), data, caption)
            + _table(["approach", "cost (USD/h)", "feasible", "why not"], rows, {1}))


def render(instance: Instance, plan: Plan, simulation: list[dict[str, Any]] | None = None,
           baselines: bool = True) -> str:
    """The HTML page of ``plan`` for ``instance`` (module docstring); ``simulation`` is
    :func:`pdopt.report_curves.simulation_data`'s output; ``baselines=False`` leaves the baselines out (they solve
    small problems of their own)."""
    from pdopt.report_figures import (
        aggregated_figure,
        cost_figure,
        decode_figure,
        fleet_figure,
        prefill_figure,
    )

    drawers = {"prefill": prefill_figure, "decode": decode_figure, "aggregated": aggregated_figure}
    fleet, cost = rc.fleet_data(plan), rc.cost_data(plan)
    sections = [
        _plan_section(instance, plan),
        "<h2>Fleet and cost</h2>",
        _figure("fleet", fleet_figure(fleet), fleet, "Instances of each placement (model, role, GPU type, GPUs per "
                "instance, node pool)."),
        _figure("cost", cost_figure(cost), cost, "Hourly cost of the plan split by model, by role and by GPU type; "
                "each panel sums to the plan's total."),
        _curves_section(rc.capacity_curves(instance, plan), lambda role, d: drawers[role](d)),
    ]
    if simulation is not None:
        sections.append(_simulation_section(simulation))
    if baselines:
        sections.append(_baseline_section(rc.baseline_data(instance, plan)))
    sections.append("<h2>Assumptions</h2>" + _table(["what", "value", "source"],
                                                     [list(r) for r in rc.assumptions(instance, plan)]))
    title = f"pdopt plan report: {instance.name}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{CSS}</style><script>{LOAD_CHECK}</script></head>\n<body data-figures-loaded=\"0\" "
            f"data-errors=\"0\"><h1>{_esc(title)}</h1>"
            f"<p class=\"note\">{_esc(_first_paragraph(instance.description))}</p>"
            + "\n".join(sections) + "\n</body></html>\n")


def _first_paragraph(text: str) -> str:
    """The instance description's first paragraph (what the instance is; the provenance follows it)."""
    return " ".join(text.strip().split("\n\n")[0].split())

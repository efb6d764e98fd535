"""``pdopt report``: the HTML page of a plan. Its figures' embedded numbers equal the plan's and pdopt's own
capacity functions'; every image is an inline PNG and nothing points outside the file; a headless Chromium
loads every figure without a script error; bad input exits 2 naming what is wrong; nothing is overwritten."""

import base64
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pdopt.cli import main
from pdopt.instance import AggregatedProfile, DecodeProfile, Instance, PrefillProfile
from pdopt.io import load_instance
from pdopt.optimize.pipeline import solve
from pdopt.perf.aggregated import aggregated_load, aggregated_overhead_s, tpot_statistic_ms, ttft_statistic_s
from pdopt.perf.aggregated_fit import planned_iteration
from pdopt.perf.decode import tpot_at_batch
from pdopt.perf.prefill import prefill_service, sojourn_factor
from pdopt.plan import Plan
from pdopt.sim import SimOptions, simulate
from tests.conftest import EXAMPLE, INSTANCES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
REQUIRE_CHROMIUM = os.environ.get("PDOPT_REQUIRE_CHROMIUM", "") == "1"


class _Page(HTMLParser):
    """Every image, every figure's JSON, and every URL the page names (src, href, CSS url())."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.data: dict[str, Any] = {}
        self.urls: list[str] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._block: str | None = None
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "img":
            self.images.append(a)
        for key in ("src", "href", "action", "poster", "srcset"):
            if key in a:
                self.urls.append(a[key])
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]*)", a.get("style", ""))
        if tag == "script" and "figure-data" in a.get("class", ""):
            self._block = a["data-figure"]
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._block, self._style = None, False

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self.data[self._block] = json.loads(data)
        if self._style:
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]*)", data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def example() -> Instance:
    return load_instance(EXAMPLE)


@pytest.fixture(scope="module")
def files(example: Instance, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A plan of the bundled example, its simulation, both as the CLI writes them, and the report of the two."""
    folder = tmp_path_factory.mktemp("report")
    plan = solve(example, explain_mode=False)
    sim = simulate(example, plan, SimOptions(requests=3000, seed=1)).to_dict()
    plan_path, sim_path, out = folder / "plan.json", folder / "sim.json", folder / "report.html"
    plan_path.write_text(json.dumps(plan.to_dict()))
    sim_path.write_text(json.dumps(sim))
    assert main(["report", str(plan_path), "--instance", str(EXAMPLE), "--simulation", str(sim_path),
                 "--out", str(out)]) == 0
    return {"plan": Plan.from_dict(json.loads(plan_path.read_text())), "sim": sim, "plan_path": plan_path,
            "sim_path": sim_path, "out": out, "html": out.read_text(), "folder": folder}


@pytest.fixture(scope="module")
def page(files: dict[str, Any]) -> _Page:
    return _parse(files["html"])


def _curves(page: _Page) -> list[dict[str, Any]]:
    return [d for name, d in page.data.items() if name.startswith("curve-")]


# (a) the figures' numbers are the plan's

def test_known_optimum(files: dict[str, Any]) -> None:
    assert files["plan"].objective_usd_per_hour == pytest.approx(172.04)


def test_fleet_counts_are_the_plans(page: _Page, files: dict[str, Any]) -> None:
    plan: Plan = files["plan"]
    got = [(p["model"], p["role"], p["gpu_type"], p["gpus_per_instance"], p["pool"], p["count"])
           for p in page.data["fleet"]["placements"]]
    assert got == [(p.model, p.role, p.gpu_type, p.gpus_per_instance, p.pool, p.count) for p in plan.placements]


def test_cost_axes_are_the_plans_and_sum_to_its_total(page: _Page, files: dict[str, Any]) -> None:
    plan: Plan = files["plan"]
    cost = page.data["cost"]
    assert cost["total_usd_per_hour"] == pytest.approx(172.04)
    for axis, expected in (("by_model", plan.cost_breakdown.by_model), ("by_role", plan.cost_breakdown.by_role),
                           ("by_gpu_type", plan.cost_breakdown.by_gpu_type)):
        assert cost[axis] == pytest.approx(expected, abs=1e-6)
        assert sum(cost[axis].values()) == pytest.approx(plan.objective_usd_per_hour, abs=1e-6)
    by_placement = {}
    for p in plan.placements:
        by_placement[p.gpu_type] = by_placement.get(p.gpu_type, 0.0) + p.cost_usd_per_hour
    assert cost["by_gpu_type"] == pytest.approx(by_placement)


def test_one_curve_per_shape_used(page: _Page, files: dict[str, Any]) -> None:
    plan: Plan = files["plan"]
    shapes = {(p.model, p.role, p.gpu_type, p.gpus_per_instance) for p in plan.placements}
    got = [(d["model"], d["role"], d["gpu_type"], d["gpus_per_instance"]) for d in _curves(page)]
    assert sorted(got) == sorted(shapes)
    for d in _curves(page):
        assert d["instances"] == sum(p.count for p in plan.placements
                                     if (p.model, p.role, p.gpu_type, p.gpus_per_instance)
                                     == (d["model"], d["role"], d["gpu_type"], d["gpus_per_instance"]))


def _planned_rate(plan: Plan, instance: Instance, d: dict[str, Any]) -> float:
    """The demand split over the role's instances by capacity (every model of the example is disaggregated)."""
    mine = [p for p in plan.placements if (p.model, p.role) == (d["model"], d["role"])]
    total = sum(p.capacity_rps * p.count for p in mine)
    cap = next(p.capacity_rps for p in mine if (p.gpu_type, p.gpus_per_instance) == (d["gpu_type"],
                                                                                      d["gpus_per_instance"]))
    return instance.workloads[d["model"]].demand_rps() * cap / total


def test_prefill_operating_points_are_the_capacity_models(page: _Page, files: dict[str, Any],
                                                          example: Instance) -> None:
    prefill = [d for d in _curves(page) if d["role"] == "prefill"]
    assert prefill
    for d in prefill:
        w = example.workloads[d["model"]]
        prof = example.profile(d["model"], "prefill", d["gpu_type"], d["gpus_per_instance"])
        assert isinstance(prof, PrefillProfile)
        service = prefill_service(prof, w)
        assert not isinstance(service, str)
        mu = 1.0 / service[0]
        rate = _planned_rate(files["plan"], example, d)
        op = d["operating_point"]
        assert op["rate_rps"] == pytest.approx(rate, rel=1e-12)
        assert op["ttft_s"] == pytest.approx(w.ttft_overhead_s + sojourn_factor(w.ttft.statistic) / (mu - rate),
                                             rel=1e-12)
        assert op["ttft_s"] < w.ttft.target_s
        assert d["slo_ttft_s"] == w.ttft.target_s and d["statistic"] == w.ttft.statistic
        assert d["capacity_point"]["ttft_s"] == pytest.approx(w.ttft.target_s, rel=1e-9)  # curve meets the SLO
        assert d["service_rate_rps"] == pytest.approx(mu)
        ts = d["curve"]["ttft_s"]
        assert ts == sorted(ts) and d["curve"]["rate_rps"][0] == 0.0


def test_decode_operating_points_are_the_capacity_models(page: _Page, files: dict[str, Any],
                                                         example: Instance) -> None:
    decode = [d for d in _curves(page) if d["role"] == "decode"]
    assert decode
    for d in decode:
        w = example.workloads[d["model"]]
        prof = example.profile(d["model"], "decode", d["gpu_type"], d["gpus_per_instance"])
        assert isinstance(prof, DecodeProfile)
        pts = prof.points_for(w.input_tokens_mean)
        assert not isinstance(pts, str)
        assert d["curve"] == {"batch": [float(p.batch) for p in pts], "tpot_ms": [p.tpot_ms for p in pts]}
        rate = _planned_rate(files["plan"], example, d)
        op = d["operating_point"]
        assert d["rate_per_instance_rps"] == pytest.approx(rate, rel=1e-12)
        assert op["tpot_ms"] == pytest.approx(tpot_at_batch(pts, op["batch"]), rel=1e-12)
        # Little's law: the batch emits the instance's share of the output tokens
        assert op["batch"] / (op["tpot_ms"] / 1000.0) == pytest.approx(rate * w.output_tokens_mean, rel=1e-9)
        assert op["tpot_ms"] <= w.tpot.target_ms
        assert d["slo_tpot_ms"] == w.tpot.target_ms
        cp = d["capacity_point"]
        assert cp["batch"] / (cp["tpot_ms"] / 1000.0) == pytest.approx(d["capacity_rps"] * w.output_tokens_mean)


# (b) inline images, no external URL

def test_every_figure_is_an_inline_png(page: _Page) -> None:
    assert len(page.images) == len(page.data) >= 12  # fleet, cost, 7 curves, 2 simulations, baselines
    assert {i["data-figure"] for i in page.images} == set(page.data)
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix):], validate=True).startswith(PNG_MAGIC)
        assert img["alt"]


def test_no_external_url(page: _Page, files: dict[str, Any]) -> None:
    assert page.urls
    for url in page.urls:
        assert url.startswith("data:"), url
        assert not re.match(r"\s*(https?:)?//", url), url
    assert not [t for t, a in page.tags if t in ("link", "iframe", "object", "embed")
                or (t == "script" and "src" in a)]
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", files["html"], re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", files["html"], re.I)
    assert "http://" not in files["html"] and "https://" not in files["html"]  # not even as text
    for img in page.images:
        assert b"http" not in base64.b64decode(img["src"].split(",", 1)[1])  # nor in the PNGs' metadata


# (c) a browser loads every figure

def _chromium_body(path: Path) -> dict[str, str]:
    if CHROMIUM is None:
        if REQUIRE_CHROMIUM:
            pytest.fail("chromium is not installed and PDOPT_REQUIRE_CHROMIUM=1")
        pytest.skip("chromium is not installed")
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", path.resolve().as_uri()], capture_output=True, text=True, timeout=120,
                         check=True)
    body = re.search(r"<body([^>]*)>", out.stdout)
    assert body, out.stdout[:500]
    return dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', body.group(1)))


def test_chromium_loads_every_figure(files: dict[str, Any], page: _Page) -> None:
    body = _chromium_body(files["out"])
    assert body["data-errors"] == "0"
    assert body["data-figures"] == body["data-figures-loaded"] == str(len(page.images))


def test_chromium_check_sees_a_broken_figure(files: dict[str, Any], tmp_path: Path) -> None:
    """The check can fail: one image made undecodable and one figure's JSON broken are both counted."""
    text = files["html"].replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1)
    text = re.sub(r'(data-figure="cost">)\{', r"\1{{", text, count=1)
    broken = tmp_path / "broken.html"
    broken.write_text(text)
    body = _chromium_body(broken)
    assert int(body["data-figures-loaded"]) == int(body["data-figures"]) - 1
    assert body["data-errors"] == "1"


# (d) bad input

def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_plan_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    code, err = _run(["report", str(bad), "--instance", str(EXAMPLE), "--out", str(tmp_path / "r.html")], capsys)
    assert code == 2
    assert str(bad) in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_plan_names_unknown_model(files: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(files["plan_path"].read_text())
    doc["placements"][0]["model"] = "gpt_unknown"
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps(doc))
    code, err = _run(["report", str(bad), "--instance", str(EXAMPLE), "--out", str(tmp_path / "r.html")], capsys)
    assert code == 2
    assert "gpt_unknown" in err and "placements[0]" in err and "Traceback" not in err


def test_simulation_with_a_bad_number(files: dict[str, Any], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(files["sim_path"].read_text())
    doc["models"]["llama2_70b"]["ttft_s"]["p90"] = "fast"
    bad = tmp_path / "sim.json"
    bad.write_text(json.dumps(doc))
    code, err = _run(["report", str(files["plan_path"]), "--instance", str(EXAMPLE), "--simulation", str(bad),
                      "--out", str(tmp_path / "r.html")], capsys)
    assert code == 2
    assert "models.llama2_70b.ttft_s.p90" in err and "'fast'" in err


def test_existing_out_is_not_overwritten(files: dict[str, Any], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    out.write_text("mine")
    code, err = _run(["report", str(files["plan_path"]), "--instance", str(EXAMPLE), "--out", str(out)], capsys)
    assert code == 2
    assert "exists" in err and out.read_text() == "mine"


# (e) the simulated distributions are the simulation's numbers

def test_simulated_distributions_are_the_simulations(page: _Page, files: dict[str, Any], example: Instance) -> None:
    sim = files["sim"]
    for m, w in example.workloads.items():
        d = page.data[f"simulation-{m}"]
        got = sim["models"][m]
        for key in ("ttft_s", "tpot_ms"):
            assert d[key] == {k: got[key][k] for k in ("mean", "p50", "p90", "p95", "p99")}
            assert d[f"predicted_{key}"] == {k: got["predicted"][key][k] for k in ("mean", "p50", "p90", "p95",
                                                                                   "p99")}
        assert d["attainment"] == {"ttft": got["attainment"]["ttft"], "tpot": got["attainment"]["tpot"]}
        assert (d["slo_ttft_s"], d["slo_tpot_ms"]) == (w.ttft.target_s, w.tpot.target_ms)
        assert (d["ttft_statistic"], d["tpot_statistic"]) == (w.ttft.statistic, w.tpot.statistic)


def test_baselines_marked(page: _Page) -> None:
    rows = page.data["baselines"]["rows"]
    assert rows[0]["cost_usd_per_hour"] == pytest.approx(172.04)
    assert all(r["cost_usd_per_hour"] >= 172.04 - 1e-9 for r in rows if r["feasible"])
    infeasible = [r for r in rows if not r["feasible"]]
    assert infeasible and all(r["reason"] for r in infeasible)


# planning first; aggregated instances

def test_instance_alone_with_aggregated_instances(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    inst = INSTANCES / "tiny" / "mixed-modes.yaml"
    assert main(["report", "--instance", str(inst), "--out", str(out), "--no-baselines"]) == 0
    page = _parse(out.read_text())
    agg = [d for d in _curves(page) if d["role"] == "aggregated"]
    assert agg
    instance = load_instance(inst)
    for d in agg:
        op = d["operating_point"]
        w = instance.workloads[d["model"]]
        prof = instance.profile(d["model"], "aggregated", d["gpu_type"], d["gpus_per_instance"])
        assert isinstance(prof, AggregatedProfile)
        load = aggregated_load(planned_iteration(instance, prof), prof.token_budget, w, op["rate_rps"],
                               aggregated_overhead_s(instance, w))
        assert load is not None
        assert op["ttft_s"] == pytest.approx(ttft_statistic_s(load, w.ttft.statistic), rel=1e-12)
        assert op["tpot_ms"] == pytest.approx(tpot_statistic_ms(load, w.tpot.statistic), rel=1e-12)
        assert op["ttft_s"] is not None and op["ttft_s"] <= d["slo_ttft_s"]
        assert op["tpot_ms"] is not None and op["tpot_ms"] <= d["slo_tpot_ms"] * (1 + 1e-9)
        assert math.isclose(op["rate_rps"], d["rate_per_instance_rps"])
    assert "baselines" not in page.data


# the other queue and decode models: the curve crosses the SLO at the planned capacity

@pytest.mark.parametrize(("queue_model", "decode_model"), [("gg1", "under_load"), ("ggc", "paper")])
def test_curves_meet_the_slo_at_capacity(example: Instance, queue_model: str, decode_model: str) -> None:
    from pdopt.perf.decode import poisson_batch_tpot_ms
    from pdopt.report_curves import capacity_curves

    workloads = {m: {**w.model_dump(mode="json"), "queue_model": queue_model, "arrival_scv": 1.5,
                     "service_scv": 0.5, "decode_model": decode_model} for m, w in example.workloads.items()}
    workloads["llama2_70b"]["tpot"]["statistic"] = "p90"
    instance = example.replace(workloads=workloads)
    plan = solve(instance, explain_mode=False)
    curves = capacity_curves(instance, plan)
    assert {d["role"] for d in curves} == {"prefill", "decode"}
    for d in curves:
        w = instance.workloads[d["model"]]
        if d["role"] == "prefill":
            assert d["queue_model"] == queue_model and d["service_scv"] == 0.5 and d["arrival_scv"] == 1.5
            assert d["capacity_point"]["ttft_s"] == pytest.approx(w.ttft.target_s, rel=1e-6)
            assert d["operating_point"]["ttft_s"] <= w.ttft.target_s * (1 + 1e-9)
            continue
        op = d["operating_point"]
        assert op["tpot_ms"] <= w.tpot.target_ms * (1 + 1e-9) and not op["saturated"]
        if decode_model == "under_load":  # the statistic over 1 + Poisson(B), B from Little's law on the mean
            prof = instance.profile(d["model"], "decode", d["gpu_type"], d["gpus_per_instance"])
            assert isinstance(prof, DecodeProfile)
            pts = prof.points_for(w.input_tokens_mean)
            assert not isinstance(pts, str)
            b, cap = op["batch"], d["batch_cap"]
            assert op["tpot_ms"] == pytest.approx(poisson_batch_tpot_ms(pts, b, cap, w.tpot.statistic))
            mean = poisson_batch_tpot_ms(pts, b, cap, "mean")
            assert b / (mean / 1000.0) == pytest.approx(d["rate_per_instance_rps"] * w.output_tokens_mean, rel=1e-6)
            assert "under_load_curve" in d

"""Deployment exports (pdopt/export/): validated against the upstream schemas pinned in ../shared/data/deploy-schemas
(read from there, never copied: their commits, sha256 and licences are in its PROVENANCE.md), replica and GPU
totals equal to the plan's, KV transfer never off in a disaggregated export, and a plan that does not verify
refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import pdopt
from pdopt.cli import main
from pdopt.errors import InputError
from pdopt.export import ExportSettings, export_plan

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT.parent / "shared" / "data" / "deploy-schemas"
EXAMPLE = ROOT / "instances" / "examples" / "llama70b-bloom176b-a100-h100.yaml"
MODES = ROOT / "instances" / "examples" / "llama70b-bloom176b-modes.yaml"
DYNAMO_V1BETA1 = ("dynamo/dynamographdeployment.v1beta1.schema.json",
                  "ebe2954b30346b08fff857d1f15fbc051275f238fcc8db2cab586e17834ddaa3")

pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason="../shared/data/deploy-schemas is not beside the project")


def _schema(entry: tuple[str, str]) -> dict[str, Any]:
    path = SCHEMAS / entry[0]
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry[1], f"{path} is not the pinned file (PROVENANCE.md)"
    doc: dict[str, Any] = json.loads(data)
    return doc


def _validate(obj: dict[str, Any], entry: tuple[str, str]) -> None:
    import jsonschema

    jsonschema.Draft202012Validator(_schema(entry)).validate(obj)


def _planned(plan: pdopt.Plan) -> dict[tuple[str, str, str], int]:
    """Instances the plan places per (model as Kubernetes names it, role, pool): what an export must deploy."""
    planned: dict[tuple[str, str, str], int] = {}
    for p in plan.placements:
        key = (p.model.replace("_", "-"), p.role, p.pool)
        planned[key] = planned.get(key, 0) + p.count
    return planned


def _plan_gpus(plan: pdopt.Plan) -> dict[str, int]:
    """GPUs the plan uses per pool (pools it leaves empty omitted): what an export's replicas must add up to."""
    return {pool: use.gpus_used for pool, use in plan.pools.items() if use.gpus_used}


def _export(path: Path, settings: ExportSettings | None = None) -> tuple[pdopt.Plan, Any]:
    inst = pdopt.load_instance(path)
    plan = pdopt.solve(inst)
    return plan, export_plan(inst, plan, "dynamo", settings)


def test_the_upstream_example_validates() -> None:
    """The schema as used here accepts the upstream v1beta1 example (a check of the check)."""
    example = yaml.safe_load((SCHEMAS / "examples" / "dynamo-v1beta1-vllm-disagg.yaml").read_text())
    _validate(example, DYNAMO_V1BETA1)
    with pytest.raises(Exception, match="is not one of"):
        _validate({**example, "spec": {**example["spec"], "backendFramework": "tgi"}}, DYNAMO_V1BETA1)


def test_the_mixed_example_exports_to_dynamo_and_validates() -> None:
    """llama70b-bloom176b-a100-h100.yaml (GPU types mixed within a role): one DynamoGraphDeployment per model,
    each valid against the v1beta1 schema; per model, role and pool the replicas equal the plan's counts, the
    GPU totals per pool equal the plan's, and every prefill/decode worker carries the KV connector."""
    plan, exp = _export(EXAMPLE)
    assert [o["metadata"]["name"] for o in exp.objects] == ["bloom-176b", "llama2-70b"]
    exported: dict[tuple[str, str, str], int] = {}
    gpus: dict[str, int] = {}
    for obj in exp.objects:
        _validate(obj, DYNAMO_V1BETA1)
        assert obj["apiVersion"] == "nvidia.com/v1beta1"
        model = obj["metadata"]["labels"]["pdopt.io/model"]
        for comp in obj["spec"]["components"]:
            if comp["type"] == "frontend":
                continue
            pod = comp["podTemplate"]["spec"]
            pool = pod["nodeSelector"]["pdopt.io/node-pool"]
            n = int(pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
            key = (model, comp["type"], pool)
            exported[key] = exported.get(key, 0) + comp["replicas"]
            gpus[pool] = gpus.get(pool, 0) + comp["replicas"] * n
            args = pod["containers"][0]["args"]
            assert args[args.index("--disaggregation-mode") + 1] == comp["type"]
            assert json.loads(args[args.index("--kv-transfer-config") + 1])["kv_connector"] == "NixlConnector"
            assert args[args.index("--tensor-parallel-size") + 1] == str(n)
    assert exported == _planned(plan)
    assert gpus == _plan_gpus(plan)


def test_aggregated_instances_are_workers_without_a_connector() -> None:
    """llama70b-bloom176b-modes.yaml: an aggregated placement is a ``worker`` with its token budget and batch cap
    and no KV connector; the objects validate."""
    plan, exp = _export(MODES)
    workers = [c for o in exp.objects for c in o["spec"]["components"] if c["type"] == "worker"]
    assert workers and any(p.role == "aggregated" for p in plan.placements)
    for obj in exp.objects:
        _validate(obj, DYNAMO_V1BETA1)
    for w in workers:
        args = w["podTemplate"]["spec"]["containers"][0]["args"]
        assert "--kv-transfer-config" not in args and "--disaggregation-mode" not in args
        assert "--max-num-batched-tokens" in args and "--max-num-seqs" in args


def test_settings_fill_the_placeholders_and_sglang_sets_its_transfer_backend() -> None:
    settings = ExportSettings.model_validate({
        "namespace": "llm", "engine": "sglang", "image": "nvcr.io/nvidia/ai-dynamo/sglang-runtime:0.9",
        "connector": "mooncake", "secret_name": "hf-token",
        "models": {"llama2_70b": {"uri": "hf://meta-llama/Llama-2-70b-hf"},
                   "bloom_176b": {"uri": "hf://bigscience/bloom"}}})
    _, exp = _export(EXAMPLE, settings)
    assert exp.placeholders == []
    for obj in exp.objects:
        _validate(obj, DYNAMO_V1BETA1)
        assert obj["spec"]["backendFramework"] == "sglang" and obj["metadata"]["namespace"] == "llm"
    decode = next(c for c in exp.objects[1]["spec"]["components"] if c["type"] == "decode")
    args = decode["podTemplate"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["--model-path", "meta-llama/Llama-2-70b-hf"]
    assert args[args.index("--disaggregation-transfer-backend") + 1] == "mooncake"
    with pytest.raises(InputError, match="'lmcache' is no SGLang disaggregation transfer backend"):
        _export(EXAMPLE, settings.model_copy(update={"connector": "lmcache"}))


def test_a_plan_that_does_not_verify_is_not_exported() -> None:
    inst = pdopt.load_instance(EXAMPLE)
    doc = pdopt.solve(inst).to_dict()
    doc["placements"][0]["count"] += 50  # more instances than the pool holds
    with pytest.raises(InputError, match="does not verify"):
        export_plan(inst, pdopt.Plan.from_dict(doc), "dynamo")


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = tmp_path / "plan.json"
    assert main(["plan", str(EXAMPLE), "--format", "json"]) == 0
    plan_file.write_text(capsys.readouterr().out)
    assert main(["export", str(plan_file), "--instance", str(EXAMPLE), "--to", "dynamo", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "DynamoGraphDeployment llama2-70b (nvidia.com/v1beta1)" in dry and "KV connector nixl" in dry
    assert "placeholders to replace" in dry
    out = tmp_path / "deploy"
    assert main(["export", str(plan_file), "--instance", str(EXAMPLE), "--to", "dynamo", "--out", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["dynamographdeployment-bloom-176b.yaml", "dynamographdeployment-llama2-70b.yaml"]
    for f in out.iterdir():
        _validate(yaml.safe_load(f.read_text()), DYNAMO_V1BETA1)
    capsys.readouterr()
    assert main(["export", str(plan_file), "--instance", str(EXAMPLE), "--to", "dynamo", "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    doc = json.loads(plan_file.read_text())
    doc["placements"][0]["count"] += 50
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(doc))
    assert main(["export", str(wrong), "--instance", str(EXAMPLE), "--to", "dynamo", "--dry-run"]) == 1
    assert "nothing exported" in capsys.readouterr().err
    bad = tmp_path / "settings.yaml"
    bad.write_text("namespace: Not_A_Name\nconnector: off\n")
    assert main(["export", str(plan_file), "--instance", str(EXAMPLE), "--to", "dynamo", "--settings",
                 str(bad)]) == 2
    err = capsys.readouterr().err
    assert "namespace" in err and "connector" in err


KSERVE_V1ALPHA2 = ("kserve/llminferenceservice.v1alpha2.schema.json",
                   "6d7e3151414701f95e416b010386673d8c719421993f75cfa8b2e06df0e2ed9f")


def test_the_upstream_kserve_example_validates() -> None:
    example = yaml.safe_load((SCHEMAS / "examples" / "kserve-v1alpha2-llmisvc-pd-qwen2-7b-gpu.yaml").read_text())
    _validate(example, KSERVE_V1ALPHA2)


def test_kserve_objects_per_pool_behind_one_router() -> None:
    """llama70b-bloom176b-a100-h100.yaml to KServe: per model, object i holds the i-th decode and prefill groups;
    the first owns the router, the others join its InferencePool (pool ref and the owner's selector labels);
    every object validates against the v1alpha2 schema; replicas per model, role and pool and GPUs per pool equal
    the plan's; prefill is NIXL producer and decode consumer."""
    inst = pdopt.load_instance(EXAMPLE)
    plan = pdopt.solve(inst)
    exp = export_plan(inst, plan, "kserve")
    exported: dict[tuple[str, str, str], int] = {}
    gpus: dict[str, int] = {}
    owners = {}
    for obj in exp.objects:
        _validate(obj, KSERVE_V1ALPHA2)
        spec, model = obj["spec"], obj["metadata"]["labels"]["pdopt.io/model"]
        if "gateway" in spec["router"]:
            owners[model] = obj["metadata"]["name"]
        else:
            assert spec["router"]["scheduler"]["pool"]["ref"]["name"] == f"{owners[model]}-inference-pool"
            assert spec["labels"]["app.kubernetes.io/name"] == owners[model]
            if spec["prefill"].get("replicas"):  # KServe names prefill pods after their own object otherwise
                assert spec["prefill"]["labels"]["app.kubernetes.io/name"] == owners[model]
        for role, work in (("decode", spec), ("prefill", spec.get("prefill", {}))):
            if not work.get("replicas"):
                continue
            tpl = work["template"]
            pool = tpl["nodeSelector"]["pdopt.io/node-pool"]
            n = int(tpl["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
            assert n == work["parallelism"]["tensor"]
            exported[(model, role, pool)] = exported.get((model, role, pool), 0) + work["replicas"]
            gpus[pool] = gpus.get(pool, 0) + work["replicas"] * n
            extra = next(e["value"] for e in tpl["containers"][0]["env"] if e["name"] == "VLLM_ADDITIONAL_ARGS")
            assert ('"kv_role":"kv_consumer"' if role == "decode" else '"kv_role":"kv_producer"') in extra
    assert exported == _planned(plan)
    assert gpus == _plan_gpus(plan)
    with pytest.raises(InputError, match="KServe's LLMInferenceService presets run vLLM"):
        export_plan(inst, plan, "kserve", ExportSettings(engine="sglang"))
    modes = pdopt.load_instance(MODES)
    for target in ("kserve", "llm-d"):  # a model served both ways: its aggregated pods would get prefill work
        with pytest.raises(InputError, match="served both aggregated and disaggregated"):
            export_plan(modes, pdopt.solve(modes), target)


def test_under_load_decode_gets_the_engines_batch_cap() -> None:
    """Under the under_load decode model (no SLO batch) a decode worker's --max-num-seqs is the engine's batch cap
    (pdopt.perf.decode.batch_cap): azure-conv-24h's first hour."""
    from pdopt.perf.decode import batch_cap

    day = pdopt.load_instance(ROOT / "instances" / "library" / "azure-conv-24h.yaml")
    inst = day.period_instance("h00")
    plan = pdopt.plan_horizon(day).periods[0].plan
    exp = export_plan(inst, plan, "dynamo")
    decode = [c for o in exp.objects for c in o["spec"]["components"] if c["type"] == "decode"]
    assert decode
    for comp in decode:
        args = comp["podTemplate"]["spec"]["containers"][0]["args"]
        gpus = int(args[args.index("--tensor-parallel-size") + 1])
        p = next(x for x in plan.placements if x.role == "decode" and x.gpus_per_instance == gpus)
        cap = batch_cap(inst, inst.profile(p.model, "decode", p.gpu_type, gpus, p.variant))
        assert isinstance(cap, tuple) and args[args.index("--max-num-seqs") + 1] == str(cap[0])


LLMD_SCHEMA = ("llm-d-modelservice/values.schema.json",
               "cf1c751fdc6fc294b65f69c1f1b07fba8cd593a2049e3981ff39b75d56221623")


def _merged(base: Any, over: Any) -> Any:
    """Helm's merge of a values file over the chart's defaults (maps merged key by key, anything else replaced)."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in over.items()}}
    return over


def test_llmd_values_per_group_and_one_pool_per_model() -> None:
    """llama70b-bloom176b-a100-h100.yaml to llm-d: one values file per worker group, each valid against the chart's
    values.schema.json (draft-07) alone and merged over the chart's values.yaml; decode releases carry the routing
    proxy connector nixlv2 and every disaggregated engine NixlConnector; one InferencePool per model selects the
    shared labels (its spec valid against the InferencePool schema KServe's CRD embeds); replicas per model, role
    and pool and GPUs per pool equal the plan's."""
    import jsonschema

    inst = pdopt.load_instance(EXAMPLE)
    plan = pdopt.solve(inst)
    exp = export_plan(inst, plan, "llm-d")
    values_schema = _schema(LLMD_SCHEMA)
    defaults = yaml.safe_load((SCHEMAS / "llm-d-modelservice" / "values.yaml").read_text())
    pool_schema = _schema(KSERVE_V1ALPHA2)["properties"]["spec"]["properties"]["router"]["properties"][
        "scheduler"]["properties"]["pool"]["properties"]["spec"]
    exported: dict[tuple[str, str, str], int] = {}
    gpus: dict[str, int] = {}
    pools = {}
    for kind, name, doc in exp.documents:
        if kind == "InferencePool":
            jsonschema.Draft202012Validator(pool_schema).validate(doc["spec"])
            pools[name] = doc["spec"]["selector"]["matchLabels"]
            continue
        assert kind == "HelmValues" and exp.file_name(kind, name) == f"values-{name}.yaml"
        jsonschema.Draft7Validator(values_schema).validate(doc)
        jsonschema.Draft7Validator(values_schema).validate(_merged(defaults, doc))
        model = doc["modelArtifacts"]["labels"]["llm-d.ai/model"]
        for role in ("prefill", "decode"):
            sec = doc[role]
            if not sec["create"]:
                continue
            pool = sec["nodeSelector"]["pdopt.io/node-pool"]
            exported[(model, role, pool)] = exported.get((model, role, pool), 0) + sec["replicas"]
            gpus[pool] = gpus.get(pool, 0) + sec["replicas"] * sec["parallelism"]["tensor"]
            args = sec["containers"][0]["args"]
            assert json.loads(args[args.index("--kv-transfer-config") + 1])["kv_connector"] == "NixlConnector"
            assert (doc["routing"].get("proxy", {}).get("connector") == "nixlv2") == (role == "decode")
    assert exported == _planned(plan)
    assert gpus == _plan_gpus(plan)
    assert pools == {m: {"llm-d.ai/inference-serving": "true", "llm-d.ai/model": m}
                     for m in ("bloom-176b", "llama2-70b")}
    names = [name for kind, name, _ in exp.documents if kind == "HelmValues"]
    assert len(names) == len(set(names))
    with pytest.raises(InputError, match="'mooncake' has no llm-d routing-proxy connector"):
        export_plan(inst, plan, "llm-d", ExportSettings(connector="mooncake"))


def test_the_upstream_llmd_example_validates() -> None:
    import jsonschema

    example = yaml.safe_load((SCHEMAS / "examples" / "llm-d-modelservice-values-pd.yaml").read_text())
    jsonschema.Draft7Validator(_schema(LLMD_SCHEMA)).validate(example)


SGLANG_SERVER_FLAGS: dict[str, Any] = {
    "--model-path": str, "--served-model-name": str, "--tp-size": int, "--max-running-requests": int,
    "--chunked-prefill-size": int, "--disaggregation-mode": ("prefill", "decode"),
    "--disaggregation-transfer-backend": ("mooncake", "nixl", "ascend", "fake", "mori", "mooncake_tcp"),
    "--disaggregation-bootstrap-port": int, "--host": str, "--port": int,
}
"""sglang 0.5.23 ``python -m sglang.launch_server`` flags used by the export, each with its type or choices, read
from the package's field definitions (``sglang/srt/arg_groups/fields/model.py`` 51-57, ``parallel.py`` 45-51,
``disagg.py`` 55-87, ``choices.py`` 122-129, ``schedule.py`` 31-55, ``serving.py`` 65-66, 168-171; sglang itself
needs torch, so its parser is not run here)."""


def _check_server(argv: list[str]) -> None:
    assert argv[:3] == ["python3", "-m", "sglang.launch_server"]
    rest = argv[3:]
    assert len(rest) % 2 == 0, rest
    for flag, value in zip(rest[::2], rest[1::2], strict=True):
        kind = SGLANG_SERVER_FLAGS[flag]
        if isinstance(kind, tuple):
            assert value in kind, (flag, value)
        else:
            kind(value)  # int flags parse as int


def test_sglang_router_commands_parse_with_sglangs_own_parser() -> None:
    """llama70b-bloom176b-a100-h100.yaml to sglang-router: one server per instance and, per model, a router whose
    command sglang-router 0.3.2's own argument parser reads back to the servers (each prefill with its bootstrap
    port); the servers' flags are sglang 0.5.23's; instances per pool equal the plan's."""
    from sglang_router.launch_router import parse_router_args

    inst = pdopt.load_instance(EXAMPLE)
    plan = pdopt.solve(inst)
    exp = export_plan(inst, plan, "sglang-router", ExportSettings(connector="nixl"))
    gpus: dict[str, int] = {}
    for _, _, doc in exp.documents:
        router = doc["router"]["command"]
        assert router[:3] == ["python3", "-m", "sglang_router.launch_router"]
        args = parse_router_args(router[3:])
        prefill = [s for s in doc["servers"] if s["role"] == "prefill"]
        decode = [s for s in doc["servers"] if s["role"] == "decode"]
        assert args.pd_disaggregation
        assert args.prefill_urls == [(f"http://{s['host']}:30000", 8998) for s in prefill]
        assert args.decode_urls == [f"http://{s['host']}:30000" for s in decode]
        for s in doc["servers"]:
            _check_server(s["command"])
            cmd = s["command"]
            assert cmd[cmd.index("--disaggregation-mode") + 1] == s["role"]
            assert cmd[cmd.index("--disaggregation-transfer-backend") + 1] == "nixl"
            pool = s["node_selector"]["pdopt.io/node-pool"]
            gpus[pool] = gpus.get(pool, 0) + int(cmd[cmd.index("--tp-size") + 1])
    assert gpus == _plan_gpus(plan)
    with pytest.raises(InputError, match="served both aggregated and disaggregated"):
        modes = pdopt.load_instance(MODES)
        export_plan(modes, pdopt.solve(modes), "sglang-router")


@pytest.mark.parametrize(("settings", "field"), [
    ({"node_selector_label": "bad label!!"}, "node_selector_label"),
    ({"gpu_resource": ""}, "gpu_resource"),
    ({"secret_name": "Bad_Name"}, "secret_name"),
    ({"models": {"llama2_70b": {"uri": ""}}}, "uri"),
    ({"image": "has space"}, "image"),
])
def test_settings_that_kubernetes_would_refuse_are_refused(settings: dict[str, Any], field: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        ExportSettings.model_validate(settings)

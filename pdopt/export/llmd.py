"""llm-d modelservice: Helm values for the ``llm-d-modelservice`` chart (llm-d-incubation/llm-d-modelservice at
3051935e, chart v0.4.12: ``charts/llm-d-modelservice/values.yaml`` and ``values.schema.json``), one release per
worker group, and per model the InferencePool that routes over them.

The chart's ``decode`` and ``prefill`` sections each hold one template, so each worker group (role and pool)
is one release: a decode release (``decode.create: true``, ``prefill.create: false``), a prefill release (the
reverse), or, for aggregated instances, a decode release whose engine has no KV connector. Every release stamps
the model's shared labels ``llm-d.ai/inference-serving: "true"`` and ``llm-d.ai/model: <model>`` on its pods
(``modelArtifacts.labels``) and one of its own, ``pdopt.io/release``, which keeps Deployment selectors disjoint.
At this chart version the chart creates no InferencePool, scheduler or HTTPRoute (removed upstream in "Remove
gaie (#145)"); the routing is one ``InferencePool`` per model (``inference.networking.k8s.io/v1``) selecting the
shared labels, so one scheduler (EPP, deployed with the Gateway API Inference Extension chart, configured for P/D)
sees every release's prefill and decode pods, which the chart labels ``llm-d.ai/role``.

Per release: ``parallelism.tensor`` = the shape's GPUs (the chart adds ``--tensor-parallel-size`` and the GPU
request, ``tensor x dataLocal``), ``replicas``, ``nodeSelector`` of the pool, a ``vllm`` container running
``modelCommand: vllmServe`` with the engine arguments (``--kv-transfer-config`` with ``kv_both`` for prefill and
decode, the decode batch cap), and ``routing.proxy.connector`` for the decode side's routing proxy (``nixlv2`` for
NIXL, ``lmcache``; the chart's default sidecar image accepts ``nixl``, ``nixlv2``, ``lmcache``). Mooncake and
SGLang are not exported to llm-d here.
"""

from __future__ import annotations

import json
from typing import Any

from pdopt.errors import InputError
from pdopt.export.engine import VLLM_CONNECTORS
from pdopt.export.groups import Group, dns_name, mixed_models
from pdopt.export.settings import ExportSettings

__all__ = ["INFERENCE_POOL_API", "PROXY_CONNECTORS", "llmd_documents"]

INFERENCE_POOL_API = "inference.networking.k8s.io/v1"
PROXY_CONNECTORS = {"nixl": "nixlv2", "lmcache": "lmcache"}
SERVICE_PORT = 8000
"""``routing.servicePort``: the routing proxy's port on decode pods, vLLM's on prefill pods (values.yaml)."""


def _release(model: str, group: Group, settings: ExportSettings) -> tuple[str, dict[str, Any]]:
    name = dns_name(model, group.role, group.pool, f"{group.gpus}g",
                    *([group.variant] if group.variant != "default" else []))
    m = settings.model(model)
    args: list[str] = []
    if group.max_batch is not None:
        args += ["--max-num-seqs", str(group.max_batch)]
    if group.token_budget is not None:
        args += ["--max-num-batched-tokens", str(group.token_budget)]
    env: list[dict[str, Any]] = []
    ports = [{"containerPort": 8200 if group.role != "prefill" else SERVICE_PORT, "protocol": "TCP"}]
    if group.disaggregated:
        args += ["--kv-transfer-config", json.dumps({"kv_connector": VLLM_CONNECTORS[settings.connector],
                                                     "kv_role": "kv_both"}, separators=(",", ":"))]
        env += [{"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "VLLM_NIXL_SIDE_CHANNEL_PORT", "value": "5600"}]
        ports.append({"containerPort": 5600, "protocol": "TCP"})
    container: dict[str, Any] = {"name": "vllm", "image": settings.image, "modelCommand": "vllmServe",
                                 "args": args, "ports": ports, "mountModelVolume": True}
    if env:
        container["env"] = env
    section = {"create": True, "replicas": group.replicas, "parallelism": {"tensor": group.gpus},
               "nodeSelector": {settings.node_selector_label: group.pool}, "containers": [container]}
    values: dict[str, Any] = {
        "modelArtifacts": {"name": settings.served_name(model), "uri": m.uri,
                           "labels": {"llm-d.ai/inference-serving": "true", "llm-d.ai/model": dns_name(model),
                                      "pdopt.io/release": name}},
        "routing": {"servicePort": SERVICE_PORT},
        "decode": section if group.role != "prefill" else {"create": False},
        "prefill": section if group.role == "prefill" else {"create": False},
    }
    if settings.secret_name:
        values["modelArtifacts"]["authSecretName"] = settings.secret_name
    if group.disaggregated and group.role == "decode":
        values["routing"]["proxy"] = {"connector": PROXY_CONNECTORS[settings.connector]}
    return name, values


def _pool(model: str, settings: ExportSettings) -> dict[str, Any]:
    name = dns_name(model)
    return {"apiVersion": INFERENCE_POOL_API, "kind": "InferencePool",
            "metadata": {"name": name, "namespace": settings.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "pdopt", "pdopt.io/model": name}},
            "spec": {"selector": {"matchLabels": {"llm-d.ai/inference-serving": "true", "llm-d.ai/model": name}},
                     "targetPorts": [{"number": SERVICE_PORT}],
                     "endpointPickerRef": {"name": f"{name}-epp", "kind": "Service", "port": {"number": 9002},
                                           "failureMode": "FailClose"}}}


def llmd_documents(groups: dict[str, list[Group]], settings: ExportSettings) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, name, document) for every release's values and every model's InferencePool."""
    if settings.engine != "vllm":
        raise InputError("settings.engine: the modelservice chart's vllmServe command runs vLLM; 'sglang' is not "
                         "exported to llm-d")
    if settings.connector not in PROXY_CONNECTORS:
        raise InputError(f"settings.connector: '{settings.connector}' has no llm-d routing-proxy connector "
                         f"({', '.join(PROXY_CONNECTORS)})")
    mixed = mixed_models(groups)
    if mixed:
        raise InputError(f"plan: model {mixed[0]} is served both aggregated and disaggregated; its aggregated "
                         "release would sit behind the P/D routing proxy without a KV connector (export it to "
                         "dynamo)")
    out: list[tuple[str, str, dict[str, Any]]] = []
    for model, mine in groups.items():
        out += [("HelmValues", *(_release(model, g, settings))) for g in mine]
        pool = _pool(model, settings)
        out.append(("InferencePool", pool["metadata"]["name"], pool))
    return out

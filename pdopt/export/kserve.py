"""KServe ``LLMInferenceService``, ``apiVersion: serving.kserve.io/v1alpha2`` (the CRD's storage version; v1alpha1
is also served), from kserve/kserve at aaac4e29 (``config/crd/full/llmisvc/serving.kserve.io_llminferenceservices
.yaml``, ``pkg/apis/serving/v1alpha2/llm_inference_service_types.go``, ``pkg/controller/v1alpha2/llmisvc/``).

An object holds one decode (main) workload (``spec.replicas``, ``spec.parallelism.tensor``, ``spec.template``) and
one prefill workload (``spec.prefill``): one template per role. So a model whose role is split over pools gets
several objects, behind one shared router, by this rule:

- object i of a model holds its i-th decode group and its i-th prefill group (in pool order); a role with fewer
  groups than objects is present with ``replicas: 0`` (an object with P/D presets but no pods of that role:
  a decode-only object keeps ``spec.prefill: {replicas: 0}`` so that its pods are labelled ``llm-d.ai/role:
  decode``, not ``both``, which the scheduler would also send prefill work to); aggregated groups get objects of
  their own, without ``spec.prefill`` (their pods are labelled ``both``: they take whole requests);
- object 0, ``<model>``, owns the router (``router: {scheduler: {}, route: {}, gateway: {}}``: it creates the
  EPP scheduler, the InferencePool ``<model>-inference-pool``, the HTTPRoute and the Gateway wiring); every other
  object joins that pool: its ``spec.labels`` set the three labels of the owner's pool selector
  (``app.kubernetes.io/name: <owner>``, ``app.kubernetes.io/part-of: llminferenceservice``,
  ``kserve.io/component: workload``; the upstream ``docs/samples/llmisvc/multi-gpu-vendor`` pattern), and
  ``router.scheduler.pool.ref`` names the owner's pool (so that its routing sidecar allowlists the owner's
  prefill pods); every object adds ``pdopt.io/group: <object>`` so that Deployment selectors stay disjoint.

Templates: a container ``main`` (merged over KServe's vLLM presets, which supply image, command and probes) with
the GPU requests and limits (KServe does not derive them from ``parallelism.tensor``), the pool's node selector,
and the KV transfer through ``VLLM_ADDITIONAL_ARGS`` (``--kv_transfer_config`` with ``NixlConnector``, role
``kv_consumer`` for decode and ``kv_producer`` for prefill) and ``VLLM_NIXL_SIDE_CHANNEL_HOST`` (the upstream
P/D sample, ``docs/samples/llmisvc/single-node-gpu/llm-inference-service-pd-qwen2-7b-gpu.yaml``). KServe's
routing sidecar speaks NIXL only (``--kv-connector=nixlv2`` in its decode preset), and its presets run vLLM: other
connectors and SGLang are refused.
"""

from __future__ import annotations

import json
from typing import Any

from pdopt.errors import InputError
from pdopt.export.groups import Group, dns_name, mixed_models
from pdopt.export.settings import ExportSettings

__all__ = ["API_VERSION", "kserve_objects"]

API_VERSION = "serving.kserve.io/v1alpha2"


def _template(group: Group, settings: ExportSettings) -> dict[str, Any]:
    gpus = str(group.gpus)
    env: list[dict[str, Any]] = []
    args = []
    if group.max_batch is not None:
        args += ["--max-num-seqs", str(group.max_batch)]
    if group.token_budget is not None:
        args += ["--max-num-batched-tokens", str(group.token_budget)]
    if group.disaggregated:
        role = "kv_consumer" if group.role == "decode" else "kv_producer"
        args += ["--kv_transfer_config", "'" + json.dumps({"kv_connector": "NixlConnector", "kv_role": role},
                                                         separators=(",", ":")) + "'"]
        env.append({"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    if args:
        env.append({"name": "VLLM_ADDITIONAL_ARGS", "value": " ".join(args)})
    container: dict[str, Any] = {"name": "main", "resources": {"limits": {settings.gpu_resource: gpus},
                                                               "requests": {settings.gpu_resource: gpus}}}
    if env:
        container["env"] = env
    if settings.secret_name:
        container["envFrom"] = [{"secretRef": {"name": settings.secret_name}}]
    return {"nodeSelector": {settings.node_selector_label: group.pool}, "containers": [container]}


def _workload(group: Group | None, settings: ExportSettings) -> dict[str, Any]:
    if group is None:
        return {"replicas": 0}
    return {"replicas": group.replicas, "parallelism": {"tensor": group.gpus}, "template": _template(group, settings)}


def _objects_of(model: str, groups: list[Group], settings: ExportSettings) -> list[dict[str, Any]]:
    decode = [g for g in groups if g.role == "decode"]
    prefill = [g for g in groups if g.role == "prefill"]
    aggregated = [g for g in groups if g.role == "aggregated"]
    slots: list[tuple[Group | None, Group | None]] = [
        (decode[i] if i < len(decode) else None, prefill[i] if i < len(prefill) else None)
        for i in range(max(len(decode), len(prefill)))]
    owner = dns_name(model)
    m = settings.model(model)
    out = []
    units: list[tuple[Group | None, Group | None, bool]] = [(d, p, True) for d, p in slots]
    units += [(a, None, False) for a in aggregated]
    for i, (main, pre, disaggregated) in enumerate(units):
        first = main if main is not None else pre
        assert first is not None  # every unit holds a group of one role at least
        name = owner if i == 0 else dns_name(model, first.pool, str(i))
        spec: dict[str, Any] = {"model": {"uri": m.uri, "name": settings.served_name(model)}}
        spec.update(_workload(main, settings))
        if disaggregated:
            spec["prefill"] = _workload(pre, settings)
        labels = {"pdopt.io/group": name}
        if i == 0:
            spec["router"] = {"scheduler": {}, "route": {}, "gateway": {}}
        else:
            labels.update({"app.kubernetes.io/name": owner, "app.kubernetes.io/part-of": "llminferenceservice",
                           "kserve.io/component": "workload"})
            spec["router"] = {"scheduler": {"pool": {"ref": {"name": f"{owner}-inference-pool"}}}}
        spec["labels"] = labels
        if disaggregated and pre is not None:
            # KServe labels prefill pods with their own object's name: an extra object's prefill pods join the
            # owner's pool only with the owner's selector labels here too
            spec["prefill"]["labels"] = {"pdopt.io/group": f"{name}-prefill", **{
                k: v for k, v in labels.items() if k != "pdopt.io/group"}}
        out.append({"apiVersion": API_VERSION, "kind": "LLMInferenceService",
                    "metadata": {"name": name, "namespace": settings.namespace,
                                 "labels": {"app.kubernetes.io/managed-by": "pdopt", "pdopt.io/model": owner}},
                    "spec": spec})
    return out


def kserve_objects(groups: dict[str, list[Group]], settings: ExportSettings) -> list[dict[str, Any]]:
    """The LLMInferenceService objects of every model (the module docstring gives the rule)."""
    if settings.engine != "vllm":
        raise InputError("settings.engine: KServe's LLMInferenceService presets run vLLM; 'sglang' is not exported "
                         "to KServe")
    if settings.connector != "nixl":
        raise InputError(f"settings.connector: KServe's routing sidecar speaks NIXL only (nixlv2); "
                         f"'{settings.connector}' is not exported to KServe")
    mixed = mixed_models(groups)
    if mixed:
        raise InputError(f"plan: model {mixed[0]} is served both aggregated and disaggregated; behind one KServe "
                         "scheduler its aggregated pods (role both) would also be sent prefill work without a KV "
                         "connector (export it to dynamo)")
    return [obj for model, mine in groups.items() for obj in _objects_of(model, mine, settings)]

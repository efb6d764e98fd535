"""NVIDIA Dynamo: one ``DynamoGraphDeployment`` per model, ``apiVersion: nvidia.com/v1beta1`` (the CRD's storage
version; ``v1alpha1`` with ``spec.services`` and ``subComponentType`` is served but deprecated), from the CRD of
ai-dynamo/dynamo at 2a6da14c (``deploy/operator/config/crd/bases/nvidia.com_dynamographdeployments.yaml``).

Layout: ``spec.backendFramework`` the engine; ``spec.components`` a list keyed by ``name``: one ``Frontend``
(``type: frontend``, the router; 1 replica) and one component per worker group, i.e. per role and pool (a role
with GPU types mixed across pools gets one component each), ``type`` ``prefill``, ``decode`` or ``worker``
(aggregated), ``replicas`` the group's instances, and a ``podTemplate`` whose one container ``main`` runs
``python3 -m dynamo.<engine>`` with the group's engine arguments, limits ``<gpu_resource>: <GPUs>``, on nodes
selected by ``<node_selector_label>: <pool>``. The CRD allows at most 25 components.
"""

from __future__ import annotations

from typing import Any

from pdopt.errors import InputError
from pdopt.export.engine import engine_args
from pdopt.export.groups import Group, dns_name
from pdopt.export.settings import ExportSettings

__all__ = ["API_VERSION", "MAX_COMPONENTS", "dynamo_objects"]

API_VERSION = "nvidia.com/v1beta1"
MAX_COMPONENTS = 25
_TYPE = {"prefill": "prefill", "decode": "decode", "aggregated": "worker"}


def _component_name(group: Group) -> str:
    """``<Role>-<pool>[-<gpus>g][-<variant>]``: unique per group within the model (CRD pattern, 63 characters)."""
    role = {"prefill": "Prefill", "decode": "Decode", "aggregated": "Worker"}[group.role]
    parts = [role, dns_name(group.pool), f"{group.gpus}g"] + ([dns_name(group.variant)]
                                                             if group.variant != "default" else [])
    return "-".join(parts)[:63].rstrip("-")


def _pod(group: Group, settings: ExportSettings) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main", "image": settings.image, "command": ["python3", "-m", f"dynamo.{settings.engine}"],
        "args": engine_args(group, settings, dynamo=True),
        "resources": {"limits": {settings.gpu_resource: str(group.gpus)},
                      "requests": {settings.gpu_resource: str(group.gpus)}}}
    if settings.secret_name:
        container["envFrom"] = [{"secretRef": {"name": settings.secret_name}}]
    return {"spec": {"containers": [container], "nodeSelector": {settings.node_selector_label: group.pool}}}


def dynamo_objects(groups: dict[str, list[Group]], settings: ExportSettings) -> list[dict[str, Any]]:
    """One DynamoGraphDeployment per model."""
    out = []
    for model, mine in groups.items():
        if len(mine) + 1 > MAX_COMPONENTS:
            raise InputError(f"plan: model {model} needs {len(mine) + 1} components, more than the "
                             f"{MAX_COMPONENTS} a DynamoGraphDeployment holds")
        frontend = {"name": "Frontend", "type": "frontend", "replicas": 1,
                    "podTemplate": {"spec": {"containers": [{
                        "name": "main", "image": settings.image,
                        "command": ["python3", "-m", "dynamo.frontend"]}]}}}
        components = [frontend] + [{"name": _component_name(g), "type": _TYPE[g.role], "replicas": g.replicas,
                                    "podTemplate": _pod(g, settings)} for g in mine]
        out.append({"apiVersion": API_VERSION, "kind": "DynamoGraphDeployment",
                    "metadata": {"name": dns_name(model), "namespace": settings.namespace,
                                 "labels": {"app.kubernetes.io/managed-by": "pdopt",
                                            "pdopt.io/model": dns_name(model)}},
                    "spec": {"backendFramework": settings.engine, "components": components}})
    return out

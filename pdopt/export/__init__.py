"""Deployments from a plan: the objects a cluster runs (``pdopt export``), and a dry run that says what they hold.

A plan is exported only when it verifies against its instance (:func:`pdopt.verify`): an object built from a
plan that does not hold would deploy the wrong fleet. Each target's module states its API version and layout;
what the plan cannot know comes from :class:`~pdopt.export.settings.ExportSettings` (placeholders otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pdopt.errors import InputError
from pdopt.export.dynamo import dynamo_objects
from pdopt.export.groups import Group, plan_groups
from pdopt.export.kserve import kserve_objects
from pdopt.export.llmd import llmd_documents
from pdopt.export.settings import PLACEHOLDER, ExportSettings
from pdopt.export.sglang_router import sglang_documents
from pdopt.instance import Instance
from pdopt.plan import Plan

__all__ = ["TARGETS", "Export", "ExportSettings", "export_plan"]

TARGETS = ("dynamo", "kserve", "llm-d", "sglang-router")
CHART = "llm-d-modelservice chart v0.4.12 values"
"""What a values document of the llm-d target is for (it has no apiVersion of its own)."""


@dataclass(frozen=True)
class Export:
    """The exported objects and what they hold."""

    target: str
    documents: list[tuple[str, str, dict[str, Any]]]
    """(kind, name, document): Kubernetes objects, or for llm-d also Helm values (kind ``HelmValues``)."""
    groups: dict[str, list[Group]]
    settings: ExportSettings
    placeholders: list[str] = field(default_factory=list)

    @property
    def objects(self) -> list[dict[str, Any]]:
        """The documents alone."""
        return [doc for _, _, doc in self.documents]

    @staticmethod
    def file_name(kind: str, name: str) -> str:
        """``<kind>-<name>.yaml``, ``values-<name>.yaml`` for Helm values."""
        if kind == "HelmValues":
            return f"values-{name}.yaml"
        return f"sglang-{name}.yaml" if kind == "SGLangDeployment" else f"{kind.lower()}-{name}.yaml"

    def summary(self) -> str:
        """The dry run: objects, their worker groups (replicas, GPUs each, node selector, connector), the totals
        per pool against the plan's, and the placeholders left."""
        s = self.settings
        engine = "sglang" if self.target == "sglang-router" else s.engine
        lines = [f"target {self.target}: {len(self.documents)} document(s), engine {engine}, namespace {s.namespace}"]
        for kind, name, doc in self.documents:
            api = doc.get("apiVersion", "sglang 0.5.23 servers, sglang-router 0.3.2" if kind == "SGLangDeployment"
                          else CHART)
            lines.append(f"  {kind} {name} ({api})")
        per_pool: dict[str, tuple[int, int]] = {}
        for model, groups in self.groups.items():
            for g in groups:
                connector = s.connector if g.disaggregated else "none (aggregated)"
                lines.append(f"    {model} {g.role}: {g.replicas} x {g.gpus} {g.gpu_type} GPU(s) on "
                             f"{s.node_selector_label}={g.pool}; KV connector {connector}"
                             + (f"; max batch {g.max_batch}" if g.max_batch is not None else ""))
                n, gpus = per_pool.get(g.pool, (0, 0))
                per_pool[g.pool] = (n + g.replicas, gpus + g.replicas * g.gpus)
        lines.append("  per pool: " + ", ".join(f"{p} {n} instance(s), {gpus} GPU(s)"
                                                for p, (n, gpus) in sorted(per_pool.items())))
        if self.placeholders:
            lines.append(f"  placeholders to replace ({PLACEHOLDER}...): " + ", ".join(self.placeholders))
        return "\n".join(lines)


def _placeholders(settings: ExportSettings, models: list[str]) -> list[str]:
    out = []
    if settings.image.startswith(PLACEHOLDER):
        out.append("image")
    out += [f"models.{m}.uri" for m in models if PLACEHOLDER in settings.model(m).uri]
    return out


def export_plan(instance: Instance, plan: Plan, target: str, settings: ExportSettings | None = None) -> Export:
    """The objects of ``target`` for a plan of ``instance``; InputError when the plan does not verify."""
    from pdopt.verifier import format_violations, verify

    if target not in TARGETS:
        raise InputError(f"--to: '{target}' is not one of {', '.join(TARGETS)}")
    settings = settings or ExportSettings()
    violations = verify(instance, plan.to_dict())
    if violations:
        raise InputError("plan: it does not verify against the instance, so it is not exported:\n"
                         + format_violations(violations))
    unknown = sorted(set(settings.models) - set(instance.workloads))
    if unknown:
        raise InputError(f"settings.models.{unknown[0]}: no model '{unknown[0]}' in the instance")
    groups = plan_groups(instance, plan)
    if target == "llm-d":
        documents = llmd_documents(groups, settings)
    elif target == "sglang-router":
        documents = sglang_documents(groups, settings)
    else:
        objects = dynamo_objects(groups, settings) if target == "dynamo" else kserve_objects(groups, settings)
        documents = [(o["kind"], o["metadata"]["name"], o) for o in objects]
    return Export(target, documents, groups, settings, _placeholders(settings, list(groups)))

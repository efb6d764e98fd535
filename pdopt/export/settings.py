"""What a deployment needs that a plan cannot know: images, model URIs, the namespace, the engine, the KV
connector, how nodes of a pool are selected. Read from a small YAML file (``pdopt export --settings FILE``);
every field has a default, and the defaults that must be replaced are placeholders that say so
(``REPLACE-...``), so an export without settings is complete and obviously not yet deployable."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pdopt.instance.base import StrictModel

__all__ = ["CONNECTORS", "ENGINES", "PLACEHOLDER", "ExportSettings", "ModelSettings"]

PLACEHOLDER = "REPLACE"
"""Every placeholder value starts with this word; the dry run lists the ones left."""

ENGINES = ("vllm", "sglang")
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
"""A Kubernetes label key or extended resource name: an optional DNS-subdomain prefix and ``/``, then a name of at
most 63 characters."""
CONNECTORS = ("nixl", "lmcache", "mooncake")


class ModelSettings(StrictModel):
    """One model's deployment facts."""

    uri: str = Field(default=f"hf://{PLACEHOLDER}-org/{PLACEHOLDER}-model", min_length=1, max_length=2048)
    """Where the weights come from (``hf://org/name``, ``pvc://...``, ``s3://...``)."""
    served_name: str | None = Field(default=None, min_length=1, max_length=512)
    """The OpenAI model name clients ask for (default: the URI's path)."""


class ExportSettings(StrictModel):
    """Deployment facts shared by every exported object."""

    namespace: str = Field(default="default", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    engine: Literal["vllm", "sglang"] = "vllm"
    image: str = Field(default=f"{PLACEHOLDER}-registry/{PLACEHOLDER}-image:tag", min_length=1, max_length=1024,
                       pattern=r"^\S+$")
    """The serving image (for Dynamo, its runtime image of the engine)."""
    connector: Literal["nixl", "lmcache", "mooncake"] = "nixl"
    """KV-cache transfer between prefill and decode instances; never off in a disaggregated export."""
    node_selector_label: str = Field(default="pdopt.io/node-pool", pattern=LABEL_KEY)
    """Each instance runs on nodes labelled ``<label>: <pool id>`` (label the nodes of each pool so)."""
    gpu_resource: str = Field(default="nvidia.com/gpu", pattern=LABEL_KEY)
    """The extended resource name of a GPU (Dynamo, KServe; the llm-d chart derives it from its accelerator
    type)."""
    secret_name: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    """A Secret with the model hub token (e.g. ``HF_TOKEN``), mounted as environment."""
    models: dict[str, ModelSettings] = Field(default_factory=dict)

    def model(self, model_id: str) -> ModelSettings:
        """The settings of a model (placeholders when the file names none)."""
        return self.models.get(model_id, ModelSettings())

    def served_name(self, model_id: str) -> str:
        """The name clients ask for."""
        m = self.model(model_id)
        if m.served_name:
            return m.served_name
        return m.uri.split("://", 1)[-1] if "://" in m.uri else m.uri

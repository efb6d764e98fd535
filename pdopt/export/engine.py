"""Engine command lines of a worker group: the model, the tensor-parallel size, the batch cap the plan was sized
for, and, for prefill and decode workers, the KV-transfer connector (never left off: a P/D deployment with KV
transfer silently off serves nothing, KServe #5987).

vLLM (``vllm serve`` / ``python3 -m dynamo.vllm``): ``--tensor-parallel-size``, ``--max-num-seqs``,
``--max-num-batched-tokens``, ``--kv-transfer-config '{"kv_connector": C, "kv_role": "kv_both"}'`` with C
``NixlConnector``, ``LMCacheConnectorV1`` or ``MooncakeConnector``; Dynamo's vLLM worker also takes
``--disaggregation-mode prefill|decode`` (the v1beta1 example of ai-dynamo/dynamo,
``examples/backends/vllm/deploy/disagg.yaml`` at 2a6da14c).
SGLang (``python3 -m sglang.launch_server`` / ``python3 -m dynamo.sglang``): ``--tp-size``, ``--max-running-requests``,
``--chunked-prefill-size``, ``--disaggregation-mode prefill|decode`` and ``--disaggregation-transfer-backend
nixl|mooncake`` (SGLang has no LMCache transfer backend: refused).
"""

from __future__ import annotations

import json

from pdopt.errors import InputError
from pdopt.export.groups import Group
from pdopt.export.settings import ExportSettings

__all__ = ["VLLM_CONNECTORS", "engine_args"]

VLLM_CONNECTORS = {"nixl": "NixlConnector", "lmcache": "LMCacheConnectorV1", "mooncake": "MooncakeConnector"}


def engine_args(group: Group, settings: ExportSettings, dynamo: bool = False) -> list[str]:
    """The engine arguments of one group's workers (without the program itself)."""
    model = settings.model(group.model)
    path = model.uri.split("://", 1)[-1] if model.uri.startswith("hf://") else model.uri
    if settings.engine == "vllm":
        args = ["--model", path, "--served-model-name", settings.served_name(group.model),
                "--tensor-parallel-size", str(group.gpus)]
        if group.max_batch is not None:
            args += ["--max-num-seqs", str(group.max_batch)]
        if group.token_budget is not None:
            args += ["--max-num-batched-tokens", str(group.token_budget)]
        if group.disaggregated:
            if dynamo:
                args += ["--disaggregation-mode", group.role]
            args += ["--kv-transfer-config", json.dumps(
                {"kv_connector": VLLM_CONNECTORS[settings.connector], "kv_role": "kv_both"}, separators=(",", ":"))]
        return args
    args = ["--model-path", path, "--served-model-name", settings.served_name(group.model), "--tp-size",
            str(group.gpus)]
    if group.max_batch is not None:
        args += ["--max-running-requests", str(group.max_batch)]
    if group.token_budget is not None:
        args += ["--chunked-prefill-size", str(group.token_budget)]
    if group.disaggregated:
        if settings.connector == "lmcache":
            raise InputError("settings.connector: 'lmcache' is no SGLang disaggregation transfer backend "
                             "(nixl or mooncake)")
        args += ["--disaggregation-mode", group.role, "--disaggregation-transfer-backend", settings.connector]
    return args

"""SGLang prefill/decode serving behind SGLang's router: per model, the command of each server and of the router.

Server (sglang 0.5.23, ``python -m sglang.launch_server``; flags defined in ``sglang/srt/arg_groups/fields/``:
``model.py`` ``--model-path``, ``parallel.py`` ``--tp-size``, ``disagg.py`` ``--disaggregation-mode
prefill|decode``, ``--disaggregation-transfer-backend mooncake|nixl|...``, ``--disaggregation-bootstrap-port``
(default 8998), ``schedule.py`` ``--max-running-requests``, ``--chunked-prefill-size``, ``serving.py``
``--served-model-name``, ``--host``, ``--port``): one server per instance, on a node of its pool, with the group's
tensor-parallel size, the decode batch cap and the KV transfer backend; a prefill server states its bootstrap port.
Router (sglang-router 0.3.2, ``python -m sglang_router.launch_router``, ``sglang_router/router_args.py``):
``--pd-disaggregation``, one ``--prefill URL BOOTSTRAP_PORT`` per prefill server (the port given: the router's
default for an omitted one is none), one ``--decode URL`` per decode server, ``--prefill-policy cache_aware``
and ``--decode-policy power_of_two``, ``--host``, ``--port``. A model served aggregated only gets
``--worker-urls``; a model served both ways is refused (the router takes one mode).

Host names are placeholders to replace: ``<model>-<role>-<pool>-<i>`` (a StatefulSet's pod names, for instance),
each server on port 30000; the document also says the node selector each server needs.
"""

from __future__ import annotations

from typing import Any

from pdopt.errors import InputError
from pdopt.export.engine import engine_args
from pdopt.export.groups import Group, dns_name
from pdopt.export.settings import ExportSettings

__all__ = ["BOOTSTRAP_PORT", "ROUTER_PORT", "SERVER_PORT", "sglang_documents"]

SERVER_PORT = 30000
ROUTER_PORT = 8000
BOOTSTRAP_PORT = 8998


def _servers(model: str, g: Group, settings: ExportSettings) -> list[dict[str, Any]]:
    out = []
    for i in range(g.replicas):
        host = dns_name(model, g.role, g.pool, str(i))
        argv = ["python3", "-m", "sglang.launch_server", *engine_args(g, settings), "--host", "0.0.0.0",
                "--port", str(SERVER_PORT)]
        if g.role == "prefill":
            argv += ["--disaggregation-bootstrap-port", str(BOOTSTRAP_PORT)]
        out.append({"host": host, "role": g.role, "gpus": g.gpus, "gpu_type": g.gpu_type,
                    "node_selector": {settings.node_selector_label: g.pool}, "command": argv})
    return out


def sglang_documents(groups: dict[str, list[Group]], settings: ExportSettings
                     ) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind ``SGLangDeployment``, model name, {servers, router}) per model."""
    settings = settings.model_copy(update={"engine": "sglang"})
    if settings.connector == "lmcache":
        raise InputError("settings.connector: 'lmcache' is no SGLang disaggregation transfer backend (nixl or "
                         "mooncake)")
    out = []
    for model, mine in groups.items():
        roles = {g.role for g in mine}
        if "aggregated" in roles and roles != {"aggregated"}:
            raise InputError(f"plan: model {model} is served both aggregated and disaggregated; the SGLang router "
                             "takes one mode (export it to dynamo, kserve or llm-d)")
        servers = [s for g in mine for s in _servers(model, g, settings)]
        router = ["python3", "-m", "sglang_router.launch_router"]
        if roles == {"aggregated"}:
            router += ["--worker-urls", *(f"http://{s['host']}:{SERVER_PORT}" for s in servers)]
        else:
            router.append("--pd-disaggregation")
            for s in servers:
                if s["role"] == "prefill":
                    router += ["--prefill", f"http://{s['host']}:{SERVER_PORT}", str(BOOTSTRAP_PORT)]
            for s in servers:
                if s["role"] == "decode":
                    router += ["--decode", f"http://{s['host']}:{SERVER_PORT}"]
            router += ["--prefill-policy", "cache_aware", "--decode-policy", "power_of_two"]
        router += ["--host", "0.0.0.0", "--port", str(ROUTER_PORT)]
        name = dns_name(model)
        out.append(("SGLangDeployment", name, {
            "model": settings.served_name(model), "transfer_backend": settings.connector,
            "servers": servers, "router": {"command": router}}))
    return out

"""Fields an instance states that the models it chose do not read: each a warning naming the model that would.

A user who measured a TTFT sweep or an arrival SCV expects the plan to use it; under the paper's M/M/1 it is
silently ignored. These warnings say so, and which ``queue_model`` would read the field. They do not make the
instance invalid: a file may carry data for several models and be planned under each in turn.
"""

from __future__ import annotations

from pdopt.instance.profiles import PrefillProfile
from pdopt.instance.schema import Instance


def unused_fields(instance: Instance) -> list[str]:
    """One sentence per field that is stated but not used by the chosen queue model."""
    out = []
    for m, w in instance.workloads.items():
        where = f"workloads.{m}"
        if w.queue_model == "mm1":
            if w.service_scv is not None:
                out.append(f"{where}.service_scv ({w.service_scv:g}) is not used by queue_model mm1, which assumes "
                           "exponential service (SCV 1); queue_model gg1 or ggc would use it")
            if "arrival_scv" in w.model_fields_set and w.arrival_scv != 1.0:
                out.append(f"{where}.arrival_scv ({w.arrival_scv:g}) is not used by queue_model mm1, which assumes "
                           "Poisson arrivals (SCV 1); queue_model gg1 or ggc would use it")
    for i, prof in enumerate(instance.profiles):
        if not isinstance(prof, PrefillProfile) or not prof.measured_ttft or prof.model not in instance.workloads:
            continue
        qm = instance.workloads[prof.model].queue_model
        if qm != "gg1":
            out.append(f"profiles[{i}] ({prof.model} prefill {prof.gpu_type} x{prof.gpus_per_instance}): "
                       f"measured_ttft is not used by queue_model {qm}; queue_model gg1 would calibrate the service "
                       "SCV and TTFT overhead to it")
    return out

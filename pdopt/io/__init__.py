"""The I/O layer: the only part of pdopt that reads or writes user files.

Instances (:mod:`.instances`, with the decode-curve CSVs and traces they name), request traces (:mod:`.traces`),
benchmark results (:mod:`.importers`, one module per format), the bundled library (:mod:`.library`), plans
(JSON objects) and outputs (:mod:`.files`: new files and folders only, never an overwrite). Two exceptions,
stated in docs/architecture.md: the solver layer lets CBC write its log to a private temporary folder, and
matplotlib renders plots to bytes that :func:`.files.write_new` writes.
"""

from pdopt.errors import InputError, format_validation_error
from pdopt.io.files import dump_json, dump_yaml, parse_yaml, read_json_object, read_text, write_new
from pdopt.io.instances import instance_from_dict, load_instance, load_json, parse_document

__all__ = ["InputError", "dump_json", "dump_yaml", "format_validation_error", "instance_from_dict", "load_instance",
           "load_json", "parse_document", "parse_yaml", "read_json_object", "read_text", "write_new"]

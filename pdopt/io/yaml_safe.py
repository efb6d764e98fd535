"""YAML as users write it, read safely: the numbers and words they mean, and no document that costs more to read
than its size.

PyYAML follows YAML 1.1, which misreads what people type in configuration files: ``5e6`` and ``1.0e6`` are
strings (its float pattern wants a sign in the exponent), ``yes``, ``no``, ``on`` and ``off`` are booleans (a pool
called ``on`` becomes the key ``True``), ``010`` is eight, ``2026-01-01`` a date. pdopt's resolver reads plain
scalars as YAML 1.2's core schema does: ``true``/``false`` only for booleans; integers in decimal (leading zeros
allowed, ``_`` as a separator), ``0x`` hexadecimal or ``0o`` octal; floats with or without a sign in the exponent,
``.inf`` and ``.nan`` (refused later by the schema); everything else is a string.

An instance is untrusted input, so reading it is bounded before anything is built (:func:`check_events`, on the
parser's event stream, which is produced without recursion): aliases (``*name``) are refused (a few hundred bytes
of nested aliases expand to gigabytes), nesting is at most :data:`MAX_DEPTH` levels, and a mapping that names a
key twice is refused with both lines (the last would silently win). The same rules hold with libyaml's C parser
and with PyYAML's Python parser (:data:`LOADERS`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode
from yaml.resolver import BaseResolver

MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences a document may have."""

MAX_EVENTS = 1_000_000
"""Parser events a document may have (fleet-L's 163 kB instance has about 60,000; a list of millions of items
would cost gigabytes to build before the schema refused it)."""

MAX_DIGITS = 400
"""Longest integer literal read (Python refuses to convert more than 4,300 digits; no field needs 400)."""


class Resolver(BaseResolver):
    """Plain scalars resolved as YAML 1.2's core schema does (see the module docstring)."""


Resolver.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                               list("tTfF"))
Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F][0-9a-fA-F_]*|0o[0-7][0-7_]*)$"), list("-+0123456789"))
Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                               ["~", "n", "N", ""])


class Constructor(SafeConstructor):
    """The safe constructor, with decimal integers and duplicate keys refused."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """``010`` is ten: decimal unless ``0x``/``0o`` says otherwise; ``_`` separates digits."""
        text = str(self.construct_scalar(node)).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        base = 16 if digits.startswith("0x") else 8 if digits.startswith("0o") else 10
        digits = digits[2:] if base != 10 else digits
        if len(digits) > MAX_DIGITS:
            raise ConstructorError(None, None, f"an integer of {len(digits)} digits is longer than any field needs",
                                   node.start_mark)
        try:
            return sign * int(digits, base)
        except ValueError:
            raise ConstructorError(None, None, f"'{text}' is not an integer", node.start_mark) from None

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        """A float, or a ConstructorError naming the text (a tag such as ``!!float abc`` forces the type)."""
        try:
            return float(super().construct_yaml_float(node))
        except (ValueError, IndexError):
            raise ConstructorError(None, None, f"'{self.construct_scalar(node)}' is not a number",
                                   node.start_mark) from None

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        """true or false only (``!!bool maybe`` is refused, not a KeyError)."""
        text = str(self.construct_scalar(node))
        if text.lower() not in ("true", "false"):
            raise ConstructorError(None, None, f"'{text}' is not true or false", node.start_mark)
        return text.lower() == "true"

    def construct_unsupported(self, node: yaml.Node) -> Any:
        """Binary data, sets, ordered maps and pairs have no place in an instance."""
        raise ConstructorError(None, None, f"the YAML type {node.tag} is not accepted", node.start_mark)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """A mapping whose keys are all different; a key given twice names both lines."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):  # an instance's keys are names; true/null/1 would alias "true"/"null"/"1"
                raise ConstructorError(None, None, f"the key {key!r} must be text (quote it)", key_node.start_mark)
            try:
                if key in seen:
                    raise ConstructorError(None, None, f"the key '{key}' is given twice, on lines {seen[key]} and "
                                                       f"{line} (pdopt does not guess which one you meant)",
                                           key_node.start_mark)
            except TypeError:
                raise ConstructorError(None, None, f"a mapping key must be a plain value, not {type(key).__name__}",
                                       key_node.start_mark) from None
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


Constructor.add_constructor("tag:yaml.org,2002:int", Constructor.construct_yaml_int)  # type: ignore[type-var]
Constructor.add_constructor("tag:yaml.org,2002:timestamp",  # a date stays the text the user wrote
                            Constructor.construct_yaml_str)  # type: ignore[type-var]
Constructor.add_constructor("tag:yaml.org,2002:float", Constructor.construct_yaml_float)  # type: ignore[type-var]
Constructor.add_constructor("tag:yaml.org,2002:bool", Constructor.construct_yaml_bool)  # type: ignore[type-var]
for _tag in ("binary", "set", "omap", "pairs"):
    Constructor.add_constructor(f"tag:yaml.org,2002:{_tag}", Constructor.construct_unsupported)  # type: ignore[type-var]


class PythonLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
                   Constructor, Resolver):
    """PyYAML's pure-Python parser with pdopt's resolver and constructor."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        Constructor.__init__(self)
        Resolver.__init__(self)


LOADERS: dict[str, type[Any]] = {"python": PythonLoader}
"""The loaders available here: ``c`` (libyaml, when PyYAML was built with it) and ``python``."""

if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class CLoader(CParser, Constructor, Resolver):
        """libyaml's parser with pdopt's resolver and constructor."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Constructor.__init__(self)
            Resolver.__init__(self)

    LOADERS["c"] = CLoader

DEFAULT_LOADER = "c" if "c" in LOADERS else "python"


class UnsafeDocumentError(yaml.YAMLError):
    """The document breaks a bound on reading it (an alias, too deep, too many events)."""


def check_events(text: str, loader: type[Any]) -> None:
    """Walk the parser's events once: no alias, nesting at most :data:`MAX_DEPTH`, at most :data:`MAX_EVENTS`."""
    depth = 0
    for n, event in enumerate(yaml.parse(text, Loader=loader), start=1):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark is not None else "?"
            raise UnsafeDocumentError(f"line {line}: YAML aliases (*{event.anchor}) are not accepted: write the "
                                      "value out (an alias can make a small file expand without bound)")
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark is not None else "?"
                raise UnsafeDocumentError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1
        if n > MAX_EVENTS:
            raise UnsafeDocumentError(f"more than {MAX_EVENTS:,} YAML events")


def load(text: str, loader: str = DEFAULT_LOADER) -> Any:
    """Parse one document after :func:`check_events`; YAMLError (with line) when it is not valid or not safe."""
    cls = LOADERS[loader]
    check_events(text, cls)
    return yaml.load(text, Loader=cls)

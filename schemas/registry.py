"""Loads every JSON Schema file in this package once and compiles it.

fastjsonschema turns each schema into generated Python code; compiling costs
milliseconds, so it happens once per process, at first import, and the hot path
only calls the compiled functions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import fastjsonschema
import jsonschema_rs

from schemas.patterns import ecma_document

SCHEMA_DIR = Path(__file__).resolve().parent
_SUFFIX = ".json"

Validator = Callable[..., Any]


# schemas/asyncapi.json describes the topics and refers to the schema files.
ASYNCAPI = "asyncapi.json"


def _discover() -> dict[str, dict[str, Any]]:
    """Name ("envelope.v1", "payloads/call.v1") -> parsed schema document."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.rglob(f"*{_SUFFIX}")):
        if path.name == ASYNCAPI:
            continue  # the topic catalogue, not an event schema
        name = path.relative_to(SCHEMA_DIR).as_posix()[: -len(_SUFFIX)]
        found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _compile(document: dict[str, Any]) -> Validator:
    # use_default=False: filling in "default" values would alter payloads,
    # which the contract promises to keep exactly as received.
    return fastjsonschema.compile(document, use_default=False)


_DOCUMENTS: Mapping[str, dict[str, Any]] = MappingProxyType(_discover())
_VALIDATORS: Mapping[str, Validator] = MappingProxyType(
    {name: _compile(doc) for name, doc in _DOCUMENTS.items()}
)


def _key(name: str) -> str:
    key = name.removesuffix(_SUFFIX)
    if key not in _DOCUMENTS:
        known = ", ".join(_DOCUMENTS)
        raise KeyError(f"no schema named {name!r}; known: {known}")
    return key


def schema_names() -> list[str]:
    """Names of every schema file, e.g. ["customer.v1", "payloads/call.v1", ...]."""
    return list(_DOCUMENTS)


def load_schema(name: str) -> dict[str, Any]:
    """The parsed schema document; a copy, so callers cannot alter the shared one."""
    return copy.deepcopy(_DOCUMENTS[_key(name)])


def is_valid_check(document: dict[str, Any]) -> Callable[[Any], bool]:
    """A yes/no check of `document` (a schema) compiled by jsonschema-rs: 4-5x faster
    than the fastjsonschema validator of the same document, but without the failure's
    field path and rule, so the hot path asks it first and the validator only about
    what it refuses (tests/unit/schemas check that both agree).  The patterns are
    rewritten to match as Python's re does (schemas.patterns), so both agree on them."""
    return jsonschema_rs.validator_for(ecma_document(document)).is_valid


def validator(name: str) -> Validator:
    """The compiled validator: returns the data or raises JsonSchemaValueException.

    It accepts `name_prefix=` to change the "data" root used in error paths.
    """
    return _VALIDATORS[_key(name)]

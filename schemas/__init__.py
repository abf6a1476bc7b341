"""The versioned JSON Schemas of cx-timeline's contract, loaded and compiled once.

The *.json files in this package are the documentation downstream teams read;
the validators below are those same files compiled with fastjsonschema.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fastjsonschema import JsonSchemaValueException

from schemas.registry import SCHEMA_DIR, Validator, load_schema, schema_names, validator

validate_envelope: Validator = validator("envelope.v1")
validate_customer: Validator = validator("customer.v1")
validate_timeline_entry: Validator = validator("timeline-entry.v1")
validate_deadletter: Validator = validator("deadletter.v1")

# Channel name -> payload validator; the keys are exactly the channels that
# have a payloads/<channel>.v1.json file.
PAYLOAD_VALIDATORS: Mapping[str, Validator] = MappingProxyType({
    name.removeprefix("payloads/").removesuffix(".v1"): validator(name)
    for name in schema_names()
    if name.startswith("payloads/")
})

__all__ = [
    "PAYLOAD_VALIDATORS",
    "SCHEMA_DIR",
    "JsonSchemaValueException",
    "Validator",
    "load_schema",
    "schema_names",
    "validate_customer",
    "validate_deadletter",
    "validate_envelope",
    "validate_timeline_entry",
    "validator",
]

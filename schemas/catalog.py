"""`cxt schemas`: the contract's JSON Schemas, each with the topics that carry it.

Which topic uses which schema is read from asyncapi.json (the topics' one
description), never kept in a second list here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from schemas import registry
from schemas.registry import SCHEMA_DIR, load_schema, schema_names

ASYNCAPI = SCHEMA_DIR / registry.ASYNCAPI


class UnknownSchema(LookupError):
    """No schema file has that name; the message lists the names there are."""


def names() -> list[str]:
    """Every schema file's name, e.g. "alert.v1", "payloads/call.v1"."""
    return list(schema_names())


def topics_by_schema() -> dict[str, list[str]]:
    """Schema name -> the topics (default names) whose messages refer to it."""
    doc = json.loads(ASYNCAPI.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for channel in doc["channels"].values():
        for message_ref in channel["messages"].values():
            message = _resolve(doc, message_ref["$ref"])
            for ref in refs(message["payload"]):
                name = _schema_name(ref)
                if name is not None and channel["address"] not in found.setdefault(name, []):
                    found[name].append(channel["address"])
    return found


def print_catalog(out: TextIO) -> None:
    used = topics_by_schema()
    width = max(len(name) for name in names())
    for name in names():
        print(f"{name:<{width}}  {_headline(load_schema(name))}", file=out)
        print(f"{'':<{width}}  topics: {', '.join(used.get(name, [])) or '(none)'}", file=out)
    print(f"\n`cxt schemas NAME` prints one; {ASYNCAPI.relative_to(SCHEMA_DIR.parent)} "
          "describes every topic (keys, examples).", file=out)


def print_schema(name: str, out: TextIO) -> None:
    key = name.removeprefix("./").removeprefix("schemas/").removesuffix(".json")
    if key not in names():
        raise UnknownSchema(f"no schema named {name!r}; choose one of: {', '.join(names())}")
    print(json.dumps(load_schema(key), indent=2, ensure_ascii=False), file=out)


def _headline(schema: dict[str, Any]) -> str:
    text = schema.get("title") or schema.get("description") or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def _schema_name(ref: str) -> str | None:
    """"./payloads/call.v1.json" -> "payloads/call.v1"; None for a reference inside the doc."""
    if ref.startswith("#"):
        return None
    path = (ASYNCAPI.parent / ref.split("#", 1)[0]).resolve()
    return path.relative_to(SCHEMA_DIR).with_suffix("").as_posix()


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` value in a JSON document (AsyncAPI, OpenAPI, JSON Schema)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


__all__ = ["ASYNCAPI", "UnknownSchema", "names", "print_catalog", "print_schema", "refs",
           "topics_by_schema"]

"""schemas/asyncapi.json describes exactly the topics of `Topics`, with valid examples.

No services: the document is checked against the settings (so it cannot drift
from them), against the schema files, and through `cxt schemas`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import fastjsonschema
import pytest

from kernel.settings import CHANNELS, TOPIC_NAMES, Topics
from schemas.catalog import ASYNCAPI, names, refs, topics_by_schema
from tests.support.helpers import REPO

DRAFT_07 = "application/schema+json;version=draft-07"
# The topics cx-timeline reads; it writes every other one.
READ = {*CHANNELS, "customers", "alert_actions", "identity_actions", "agents", "self_service"}


@cache
def _doc() -> dict[str, Any]:
    return json.loads(ASYNCAPI.read_text(encoding="utf-8"))


def _resolve(ref: str) -> Any:
    node: Any = _doc()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _messages(channel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {mid: _resolve(ref["$ref"]) for mid, ref in channel["messages"].items()}


def _load_file(uri: str) -> Any:
    return json.loads(Path(url2pathname(urlsplit(uri).path)).read_text(encoding="utf-8"))


def _compile(schema: dict[str, Any]) -> Any:
    # The file references are relative to asyncapi.json: give the message's schema that
    # document's location as its base and let the handler read the files.
    rooted = {"$id": ASYNCAPI.as_uri(), **schema}
    return fastjsonschema.compile(rooted, handlers={"file": _load_file}, use_default=False)


def test_document_is_asyncapi_3() -> None:
    doc = _doc()
    assert doc["asyncapi"].startswith("3.0.")
    assert doc["defaultContentType"] == "application/json"
    description = doc["info"]["description"]
    assert "receive" in description and "send" in description and "CXT_TOPIC_" in description


def test_channels_are_exactly_the_topics_of_the_settings() -> None:
    topics = Topics()
    channels = _doc()["channels"]
    # Channel ids are the names of `Topics`, so CXT_TOPIC_<ID> is each one's override.
    assert set(channels) == set(TOPIC_NAMES)
    for name, channel in channels.items():
        assert channel["address"] == getattr(topics, name)
        assert f"CXT_TOPIC_{name.upper()}" in channel["description"], name
    assert sorted(c["address"] for c in channels.values()) == sorted(topics.all)


def test_compacted_topics_are_marked() -> None:
    topics = Topics()
    for name, channel in _doc()["channels"].items():
        kafka = channel["bindings"]["kafka"]
        policy = kafka["topicConfiguration"]["cleanup.policy"]
        expected = "compact" if channel["address"] in topics.compacted else "delete"
        assert policy == [expected], name
        assert kafka["partitions"] == topics.partitions


def test_one_operation_per_channel_in_the_products_direction() -> None:
    doc = _doc()
    seen = set()
    for op_id, operation in doc["operations"].items():
        name = operation["channel"]["$ref"].removeprefix("#/channels/")
        seen.add(name)
        assert operation["action"] == ("receive" if name in READ else "send"), op_id
        own = {f"#/channels/{name}/messages/{mid}" for mid in doc["channels"][name]["messages"]}
        assert {m["$ref"] for m in operation["messages"]} == own, op_id
    assert seen == set(doc["channels"])
    assert len(doc["operations"]) == len(doc["channels"])


def test_every_reference_resolves() -> None:
    for ref in set(refs(_doc())):
        if ref.startswith("#/"):
            assert _resolve(ref) is not None, ref
        else:
            target = (ASYNCAPI.parent / ref).resolve()
            assert target.is_file(), f"{ref}: no file {target}"
            json.loads(target.read_text(encoding="utf-8"))


def test_every_schema_file_is_used_by_a_topic() -> None:
    assert set(topics_by_schema()) >= set(names())


@pytest.mark.parametrize("name", TOPIC_NAMES)
def test_messages_have_keys_and_valid_examples(name: str) -> None:
    channel = _doc()["channels"][name]
    topics = Topics()
    # A record without a value means something on a compacted topic, and on the three
    # output topics that announce an erasure with one.
    may_tombstone = channel["address"] in topics.compacted | {topics.timeline, topics.alerts,
                                                              topics.identity}
    for mid, message in _messages(channel).items():
        where = f"{name}/{mid}"
        assert "string" in message["bindings"]["kafka"]["key"]["type"], where
        assert message["payload"]["schemaFormat"] == DRAFT_07, where
        schema = message["payload"]["schema"]
        tombstone = schema.get("type") == "null"
        assert not tombstone or may_tombstone, f"{where}: tombstone on a topic without them"
        validate = _compile(schema)
        assert message["examples"], f"{where}: no example"
        for example in message["examples"]:
            assert example["name"] and example["summary"], where
            assert (example["payload"] is None) == tombstone, f"{where}/{example['name']}"
            try:
                validate(example["payload"])
            except fastjsonschema.JsonSchemaValueException as exc:
                pytest.fail(f"{where}/{example['name']}: {exc.message}")


def test_inbound_examples_are_accepted_by_the_pipeline() -> None:
    """The schemas are not all the worker checks (channel, timestamp, scale, customer)."""
    import orjson

    from schemas.validate import Rejection, check_interaction

    for channel in CHANNELS:
        for message in _messages(_doc()["channels"][channel]).values():
            for example in message["examples"]:
                checked = check_interaction(orjson.dumps(example["payload"]), channel,
                                            max_bytes=256 * 1024)
                assert not isinstance(checked, Rejection), (channel, checked)


def test_a_broken_example_is_caught() -> None:
    schema = _resolve("#/components/messages/surveyEvent")["payload"]["schema"]
    example = json.loads(json.dumps(
        _resolve("#/components/messages/surveyEvent")["examples"][0]["payload"]))
    del example["payload"]["score"]
    with pytest.raises(fastjsonschema.JsonSchemaValueException, match="score"):
        _compile(schema)(example)


# --------------------------------------------------------------------------- cxt schemas


def _cxt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxt", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_cxt_schemas_lists_every_schema_with_its_topics() -> None:
    result = _cxt("schemas")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in names():
        assert any(line.split()[:1] == [name] for line in lines), name
    assert "asyncapi" not in [line.split()[0] for line in lines if line.split()]
    listed = dict(zip(lines[0::2], lines[1::2], strict=False))
    assert any(head.startswith("alert.v1 ") and "Alert v1" in head and "cx.alerts.v1" in tail
               for head, tail in listed.items())
    assert any(head.startswith("envelope.v1 ") and all(Topics().inbound[c] in tail
                                                       for c in CHANNELS)
               for head, tail in listed.items())


@pytest.mark.parametrize("name", ["alert.v1", "alert.v1.json", "schemas/alert.v1.json"])
def test_cxt_schemas_prints_one(name: str) -> None:
    result = _cxt("schemas", name)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["$id"].endswith("/alert.v1.json")


def test_cxt_schemas_prints_a_payload_schema() -> None:
    result = _cxt("schemas", "payloads/call.v1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["title"] == "Call payload v1"


def test_cxt_schemas_unknown_name_exits_2_with_the_choices() -> None:
    result = _cxt("schemas", "alert.v2")
    assert result.returncode == 2
    assert "no schema named 'alert.v2'" in result.stderr
    assert "alert.v1" in result.stderr and "payloads/call.v1" in result.stderr
    assert "Traceback" not in result.stderr

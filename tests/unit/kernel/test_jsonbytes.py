"""kernel.jsonbytes: orjson's bytes, in an object of their own size."""

from __future__ import annotations

import tracemalloc

import orjson

from kernel import jsonbytes

VALUES = [{}, [], "", 0, None, {"text": "x" * 3000, "n": [1, 2.5, None, True]},
          {"name": "Zoë \u2019 \U0001f600", "nested": {"a": [{"b": "c"}] * 20}}]


def test_the_same_bytes_as_orjson() -> None:
    for value in VALUES:
        assert jsonbytes.dumps(value) == orjson.dumps(value)
        assert type(jsonbytes.dumps(value)) is bytes


def test_held_values_take_about_their_length() -> None:
    # orjson's own result holds several times its length (the reason for the module).
    value = {"text": "x" * 3000}
    size = len(orjson.dumps(value))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [jsonbytes.dumps(value) for _ in range(100)]
        per_value = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    assert per_value < size * 1.2

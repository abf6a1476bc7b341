"""schemas.patterns: every schema file's pattern, rewritten for jsonschema-rs (ECMA-262),
matches exactly the strings that fastjsonschema (Python's re) matches."""

from __future__ import annotations

import re
from typing import Any

import fastjsonschema
import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import load_schema, schema_names
from schemas.patterns import UnsupportedPattern, ecma_document, ecma_pattern
from tests.support.fuzz import fuzz
from tests.unit.schemas.test_fast_check import TRICKY


def _patterns(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found.add(value)
            elif key not in ("enum", "const", "default", "examples"):
                found |= _patterns(value)
    elif isinstance(node, list):
        for item in node:
            found |= _patterns(item)
    return found


PATTERNS = sorted(set().union(*(_patterns(load_schema(name)) for name in schema_names())))


def test_the_files_have_patterns_and_all_translate() -> None:
    assert len(PATTERNS) > 20
    for name in schema_names():
        jsonschema_rs.validator_for(ecma_document(load_schema(name)))  # compiles


def test_no_space_lies_beyond_the_translated_range() -> None:
    space = re.compile(r"\s")
    assert [code for code in range(0x3001, 0x110000) if space.match(chr(code))] == []


@st.composite
def candidates(draw: st.DrawFn, pattern: str) -> str:
    """A string the pattern matches (Python's reading), then maybe one tricky character in."""
    text = draw(st.from_regex(pattern.replace("$", r"\Z"), fullmatch=False))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(TRICKY)) + text[at:]
    return text


@pytest.mark.parametrize("pattern", PATTERNS)
@given(data=st.data())
@fuzz(60)
def test_both_engines_match_the_same_strings(pattern: str, data: st.DataObject) -> None:
    text = data.draw(candidates(pattern) | st.text(alphabet=TRICKY, max_size=20))
    reference = fastjsonschema.compile({"type": "string", "pattern": pattern})
    try:
        reference(text)
        expected = True
    except fastjsonschema.JsonSchemaValueException:
        expected = False
    translated = {"type": "string", "pattern": ecma_pattern(pattern)}
    assert jsonschema_rs.validator_for(translated).is_valid(text) == expected, (pattern, text)


@pytest.mark.parametrize("pattern", [r"\d+", r"^\w", r"\bx", r"[\S]", "[]a]", "a\\", "[a"])
def test_what_it_cannot_translate_fails_loudly(pattern: str) -> None:
    with pytest.raises(UnsupportedPattern):
        ecma_pattern(pattern)


def test_pattern_properties_fail_loudly() -> None:
    with pytest.raises(UnsupportedPattern):
        ecma_document({"patternProperties": {"^a": {"type": "string"}}})


def test_only_patterns_are_rewritten() -> None:
    document = {"properties": {"pattern": {"type": "string", "pattern": r"^\s$"}},
                "enum": [{"pattern": r"\s"}], "description": r"\s"}
    rewritten = ecma_document(document)
    assert rewritten["properties"]["pattern"]["pattern"].startswith("^[\\u0009-\\u000d")
    assert rewritten["enum"] == document["enum"] and rewritten["description"] == r"\s"
    assert document["properties"]["pattern"]["pattern"] == r"^\s$"  # the input is untouched
    assert ecma_pattern(r"^[^@\s]+\.x$") == "^[^@" + ecma_pattern(r"\s")[1:-1] + r"]+\.x$"

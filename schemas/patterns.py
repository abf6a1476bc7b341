"""The schema files' `pattern`s rewritten so that jsonschema-rs matches what fastjsonschema does.

The hot path asks jsonschema-rs (ECMA-262 regexes) and the refusals are worded by
fastjsonschema (Python's `re`, with `$` as the end of the string).  The two read `\\s`
differently: Python's includes U+001C-U+001F and U+0085, ECMA's does not, so
`[^@\\s]+` let jsonschema-rs accept an e-mail address with U+001C in it that the
contract's validator refuses.  Each pattern is therefore rewritten with Python's own
whitespace spelled out as a class.  Only the constructs the files use are translated;
any other class escape or `.` whose meaning differs between the two raises at import,
so a new pattern cannot silently disagree.
"""

from __future__ import annotations

import copy
import re
from typing import Any

# Python's `\s` for str patterns is str.isspace(); no character above U+3000 is a space
# (tests/unit/schemas/test_patterns.py checks the whole range).
_LAST_SPACE = 0x3000


def _ranges(codes: list[int]) -> str:
    """Code points as the inside of a character class: \\u0009-\\u000d\\u001c-..."""
    parts: list[str] = []
    start = prev = codes[0]
    for code in [*codes[1:], -1]:
        if code != prev + 1:
            parts.append(f"\\u{start:04x}" if start == prev else f"\\u{start:04x}-\\u{prev:04x}")
            start = code
        prev = code
    return "".join(parts)


_PY_SPACE = _ranges([code for code in range(_LAST_SPACE + 1) if re.fullmatch(r"\s", chr(code))])
# Escapes whose meaning differs between Python's re and ECMA-262 (Unicode vs ASCII
# classes, word boundaries) and that no schema file uses yet.
_REFUSED = frozenset("dDwWbBAZ")


class UnsupportedPattern(ValueError):
    """A schema pattern uses a construct this translation does not handle."""


def ecma_pattern(pattern: str) -> str:
    """`pattern` as an ECMA-262 regex that matches exactly the strings Python's re matches."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1: i + 2]
            out.append(_escape(escaped, in_class, pattern))
            i += 2
            continue
        if in_class:
            if char == "]" and out[-1] in ("[", "[^"):  # literal in Python, not in ECMA
                raise UnsupportedPattern(f"']' first in a character class in {pattern!r}")
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
            out.append(char)
        elif char == ".":
            out.append("[^\\n]")  # Python's `.` excludes only \n, ECMA's also \r, U+2028/9
        else:
            out.append(char)
        i += 1
    if in_class:
        raise UnsupportedPattern(f"unterminated character class in {pattern!r}")
    return "".join(out)


def _escape(escaped: str, in_class: bool, pattern: str) -> str:
    if escaped == "s":
        return _PY_SPACE if in_class else f"[{_PY_SPACE}]"
    if escaped == "S":
        if in_class:
            raise UnsupportedPattern(f"\\S inside a character class in {pattern!r}")
        return f"[^{_PY_SPACE}]"
    if escaped in _REFUSED or escaped == "":
        raise UnsupportedPattern(f"\\{escaped} in {pattern!r} means something else in ECMA-262")
    return "\\" + escaped


def ecma_document(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a schema document with every `pattern` rewritten by ecma_pattern."""
    copied = copy.deepcopy(document)
    _rewrite(copied)
    return copied


# Keywords whose values are data, not schemas: nothing in them is a pattern.
_DATA = frozenset({"enum", "const", "default", "examples", "description", "title"})


def _rewrite(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _DATA:
                continue
            if key == "properties" and isinstance(value, dict):
                for child in value.values():  # property names are not keywords
                    _rewrite(child)
            elif key == "pattern" and isinstance(value, str):
                node[key] = ecma_pattern(value)
            elif key == "patternProperties":
                raise UnsupportedPattern("patternProperties is not translated")
            else:
                _rewrite(value)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item)

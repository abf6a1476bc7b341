"""Checks shared by the files people edit (alert rules, agent context): a mistake
is named with its place and, for a misspelt key, the likely intended one."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


def reject_unknown(table: Mapping[str, Any], allowed: tuple[str, ...], where: str,
                   error: type[ValueError]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise error(f"{where}: unknown key {key!r} (allowed: {', '.join(allowed)}){hint}")


def string_list(value: Any, where: str, error: type[ValueError]) -> list[str]:
    """A non-empty list of non-empty texts, stripped; an empty list would make its
    condition match nothing: a silently dead rule."""
    if not isinstance(value, list) or not value:
        raise error(f"{where} must be a list of at least one text, like [\"a\", \"b\"]")
    cleaned = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise error(f"{where} must contain only non-empty texts (got {item!r})")
        cleaned.append(item.strip())
    return cleaned

"""The package checksum: SHA-256 over the RFC 8785 canonical JSON of `processes`."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

CHECKSUM_PREFIX = "sha256:"

# orjson with sorted keys writes the same bytes as RFC 8785 for documents made only of
# objects with ASCII keys, arrays, strings, integers within ±(2**53 - 1), booleans and null.
# Both escape only `"`, `\` and U+0000..U+001F, with the same short forms and lower-case
# \u00xx, and write every other character as UTF-8 (checked for every code point with
# orjson 3.13 and rfc8785 0.1.4). ASCII keys sort the same by code unit as by byte.
# Floats (ECMAScript number formatting), other key characters and any other type take the
# rfc8785 path. OPT_STRICT_INTEGER makes orjson raise on the integers that
# rfc8785 rejects, and orjson raises on lone surrogates, so errors come from rfc8785 too.
_ORJSON_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _plain_json(value: Any) -> bool:
    """Return True when the value holds only types whose orjson output is canonical."""
    stack = [value]
    pop = stack.pop
    extend = stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            extend(item.values())
        elif kind is list:
            extend(item)
        else:
            return False
    return True


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical JSON of a value; raise rfc8785's errors."""
    if _plain_json(value):
        try:
            return orjson.dumps(value, option=_ORJSON_CANONICAL)
        except orjson.JSONEncodeError:
            pass  # rfc8785 raises its own error for the same input below.
    return rfc8785.dumps(value)


def processes_checksum(processes: Any) -> str:
    """Return `sha256:<hex>` of the canonical JSON (RFC 8785) of a package's processes."""
    return CHECKSUM_PREFIX + hashlib.sha256(canonical_json(processes)).hexdigest()

"""JSON from outside (request bodies, the gateway's envelopes, registries, policies): bounded before any parser sees
it, then parsed strictly.

`check_json_bounds` checks size and nesting depth with a linear scan of the bytes; `parse_strict_json` does so
itself, then refuses duplicate keys, NaN/Infinity and invalid UTF-8. Every refusal is `InvalidInput`.
"""

from __future__ import annotations

import itertools
import json
import re

from ..errors import InvalidInput

__all__ = ["MAX_BODY_BYTES", "MAX_JSON_DEPTH", "check_json_bounds", "parse_strict_json"]

MAX_BODY_BYTES = 256 * 1024  # a transaction, typed data or a policy; far more than any of them needs
# JSON from outside (request bodies, gateway envelopes) is scanned for its nesting depth before any parser sees it:
# json.loads recurses in C once per level, and py_ecc (imported by eth-account) lifts the recursion limit to 100,000,
# so 70,000 nested "[" (140 KB) overflow the C stack and kill the process. No document here nests beyond a dozen.
MAX_JSON_DEPTH = 64

_JSON_ESCAPE = re.compile(rb"\\.", re.S)  # a backslash and the byte after it
_JSON_STRING = re.compile(rb'"[^"]*+"')  # a string, once no escaped quote is left in it
_JSON_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def check_json_bounds(data: bytes, *, max_bytes: int | None = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> None:
    """InvalidInput unless `data` is at most `max_bytes` long (None: any length) and nests arrays and objects at most
    `max_depth` deep. A scan of the bytes in linear time, without recursion, for before any JSON parser sees them.

    Depth counts ``[`` and ``{`` outside strings, as a parser meets them. Escapes (a backslash and the next byte) are
    dropped first: inside a string every backslash starts one, and outside a string a backslash is a syntax error at
    which every parser stops, so nothing after it is ever parsed. Then strings are dropped (no escaped quote is
    left in them). An unterminated string leaves its brackets counted: that over-counts only a document that does not
    parse anyway; a stray closing bracket under-counts only what follows it, where parsers stop too."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInput("JSON must be bytes")
    raw = bytes(data)
    if max_bytes is not None and len(raw) > max_bytes:
        raise InvalidInput(f"JSON document larger than {max_bytes} bytes")
    brackets = _JSON_STRING.sub(b"", _JSON_ESCAPE.sub(b"", raw)).translate(None, _JSON_NOT_BRACKET)
    if max(itertools.accumulate(map(_JSON_STEP.__getitem__, brackets)), default=0) > max_depth:
        raise InvalidInput(f"JSON nested deeper than {max_depth} levels")


def parse_strict_json(data: bytes, *, max_bytes: int | None = MAX_BODY_BYTES) -> object:
    """json.loads that refuses duplicate keys, NaN/Infinity and invalid UTF-8 (InvalidInput), after
    `check_json_bounds` (size and nesting depth, checked before the parser sees a byte)."""
    check_json_bounds(data, max_bytes=max_bytes)

    def no_dupes(pairs: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in pairs:
            if k in out:
                raise InvalidInput(f"duplicate JSON key {k[:40]!r}")
            out[k] = v
        return out

    def no_constants(name: str) -> object:
        raise InvalidInput(f"JSON constant {name} is not allowed")

    try:
        text = bytes(data).decode("utf-8")
        return json.loads(text, object_pairs_hook=no_dupes, parse_constant=no_constants)
    except InvalidInput:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, an integer of over 4,300 digits
        raise InvalidInput(f"body is not valid JSON: {type(e).__name__}") from None

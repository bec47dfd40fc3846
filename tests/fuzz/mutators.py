"""Mutation strategies the harnesses share, at three levels:

- bytes: bit flips, interesting bytes, truncation, insertion, deletion, splicing another seed in, duplication, an
  extreme integer written over a length or count field;
- JSON trees: a value replaced by a hostile one (huge or non-finite numbers, numbers Python cannot convert, wrong
  types, lone surrogates), spliced from elsewhere, nested deep; keys dropped, added or duplicated. `render` writes
  what `json.dumps` cannot (raw number tokens, duplicate keys, 70,000 levels);
- Python values: what an unpickled object's fields may hold (any type, bytearray, huge ints, NaN).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xC0, 0xFE, 0xFF)
INTERESTING_INTS = (0, 1, -1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
                    2**255, 2**256 - 1, 2**256, -(2**255), 10**77)
INTERESTING_STRINGS = ("", " ", "0", "-1", "0x", "0x" + "00" * 20, "0x" + "ff" * 32, "0x" + "g" * 40, "m", "m/0",
                       "m/0/07", "m/2147483648", "m/0'", "eip155:1", "eip155:8453", "solana:x", "9" * 80, "1e400",
                       "NaN", "\x00", "\ud800", "\u202e", "a" * 300, "[[[[", "{\"a\":", "\\", "null")
# number tokens json.dumps never writes: non-finite, out of float range, over Python's 4,300-digit int limit,
# and tokens strict JSON forbids (leading zeros, hex)
RAW_NUMBERS = ("1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "-0", "-0.0", "0.0", "1.5", "1E2",
               "9" * 40, "1" * 5000, "-" + "9" * 78, str(2**256), str(2**64), "00", "01", "0x10", "+1", ".5")
DEEP = (65, 100, 1_000, 70_000)  # just over MAX_JSON_DEPTH, more, and the reported C-stack overflow


@dataclass(frozen=True)
class Raw:
    """JSON text written as is."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object written from (key, value) pairs: keys may repeat."""

    items: tuple[tuple[str, Any], ...]


def render(obj: Any) -> str:
    """JSON text of `obj`, with `Raw` and `Pairs` written as they are."""
    if isinstance(obj, Raw):
        return obj.text
    if isinstance(obj, Pairs):
        return "{" + ",".join(json.dumps(k) + ":" + render(v) for k, v in obj.items) + "}"
    if isinstance(obj, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + render(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(render(v) for v in obj) + "]"
    return json.dumps(obj)


def nest(text: str, depth: int, obj: bool = False) -> str:
    return ('{"a":' * depth + text + "}" * depth) if obj else ("[" * depth + text + "]" * depth)


# bytes ------------------------------------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: Any, seeds: Sequence[bytes], max_ops: int = 4) -> bytes:
    """A seed with 1..max_ops random edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.integers(0, 8))
        n = len(data)
        pos = draw(st.integers(0, n))
        if op == 0 and n:  # flip bits
            data[min(pos, n - 1)] ^= draw(st.integers(1, 255))
        elif op == 1 and n:  # an interesting byte (0x00, 0xff, RLP / msgpack type boundaries)
            data[min(pos, n - 1)] = draw(st.sampled_from(INTERESTING_BYTES))
        elif op == 2:  # truncate
            del data[pos:]
        elif op == 3:  # insert random bytes
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == 4 and n:  # delete a range
            del data[pos:draw(st.integers(pos, min(n, pos + 32)))]
        elif op == 5:  # splice a chunk of another seed in, replacing or inserting
            other = draw(st.sampled_from(seeds))
            a = draw(st.integers(0, len(other)))
            chunk = other[a:draw(st.integers(a, min(len(other), a + 64)))]
            end = draw(st.integers(pos, n)) if draw(st.booleans()) else pos
            data[pos:end] = chunk
        elif op == 6 and n:  # duplicate a chunk
            end = draw(st.integers(pos, min(n, pos + 64)))
            data[end:end] = data[pos:end]
        elif op == 7:  # an extreme integer over a length / count field
            width = draw(st.sampled_from((1, 2, 4, 8)))
            top = 2 ** (8 * width) - 1
            value = draw(st.sampled_from((0, 1, top // 2, top // 2 + 1, top)) | st.integers(0, top))
            data[pos:pos + width] = value.to_bytes(width, draw(st.sampled_from(("big", "little"))))
        elif op == 8:  # append random bytes
            data += draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


def byte_inputs(seeds: Sequence[bytes], max_random: int = 200) -> st.SearchStrategy[bytes]:
    """Seeds as they are, mutated, and random bytes."""
    seeds = list(seeds)
    return st.one_of(st.sampled_from(seeds), mutated_bytes(seeds), mutated_bytes(seeds), st.binary(max_size=max_random))


# JSON -------------------------------------------------------------------------------------------------------


def json_leaves(strings: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.sampled_from(INTERESTING_INTS),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=24),
        st.sampled_from(INTERESTING_STRINGS + tuple(strings)),
        st.sampled_from(RAW_NUMBERS).map(Raw),
    )


def json_values(strings: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=10), st.sampled_from(tuple(strings) or ("a",)))
    return st.recursive(
        json_leaves(strings),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


def _positions(obj: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((obj, k))
            _positions(v, out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((obj, i))
            _positions(v, out)
    return out


@st.composite
def mutated_json(draw: Any, seeds: Sequence[Any], strings: Sequence[str] = ()) -> Any:
    """A seed document (dicts and lists) with 1..3 tree edits; may hold `Raw` and `Pairs`."""
    doc = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        slots = [(None, None), *_positions(doc, [])]
        container, key = draw(st.sampled_from(slots))
        current = doc if container is None else container[key]
        op = draw(st.integers(0, 7))
        if op == 7 and not isinstance(current, (dict, list)):  # a scalar becomes an extreme or malformed number
            new = draw(st.sampled_from(RAW_NUMBERS).map(Raw) | st.sampled_from(INTERESTING_INTS))
        elif op in (0, 1):  # a hostile value
            new = draw(json_values(strings))
        elif op == 2:  # splice a sub-value of a seed
            pool = [v for s in seeds for _, v in ((None, s), *((c, c[k]) for c, k in _positions(s, [])))]
            new = copy.deepcopy(draw(st.sampled_from(pool)))
        elif op == 3:  # nest it deep
            new = Raw(nest(render(current), draw(st.sampled_from(DEEP)), obj=draw(st.booleans())))
        elif op == 4 and container is not None:  # drop it
            del container[key]
            continue
        elif op == 5 and isinstance(current, dict):  # add a key
            current[draw(st.sampled_from(tuple(strings) or ("x",)) | st.text(max_size=8))] = draw(json_values(strings))
            continue
        elif op == 6 and isinstance(current, dict) and current:  # repeat a key with another value
            k = draw(st.sampled_from(sorted(current)))
            items = [*current.items(), (k, draw(json_values(strings)))]
            new = Pairs(tuple(items[i] for i in draw(st.permutations(range(len(items))))))
        else:
            new = draw(json_values(strings))
        if container is None:
            doc = new
        else:
            container[key] = new
    return doc


def json_inputs(seeds: Sequence[Any], strings: Sequence[str] = ()) -> st.SearchStrategy[bytes]:
    """JSON bytes: seed documents as they are, tree-mutated, byte-mutated, wrapped deep, and random JSON."""
    texts = [render(s).encode() for s in seeds]
    return st.one_of(
        st.sampled_from(texts),
        mutated_json(seeds, strings).map(lambda d: render(d).encode()),
        mutated_json(seeds, strings).map(lambda d: render(d).encode()),
        mutated_bytes(texts),
        st.builds(lambda t, d, o: nest(t.decode(), d, o).encode(), st.sampled_from(texts), st.sampled_from(DEEP),
                  st.booleans()),
        json_values(strings).map(lambda d: render(d).encode()),
    )


# Python values (unpickled fields) ---------------------------------------------------------------------------


def python_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.sampled_from(INTERESTING_INTS + (-(2**64), 2**4096)),
        st.floats(), st.text(max_size=16), st.sampled_from(INTERESTING_STRINGS), st.binary(max_size=64),
        st.binary(max_size=16).map(bytearray),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=8,
    )

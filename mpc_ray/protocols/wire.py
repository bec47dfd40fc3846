"""Canonical bytes for protocol messages.

Messages are frozen dataclasses whose fields are typed `int`, `bool`, `bytes`, `str`, `Point`, `list[...]` of
those, or another message dataclass. The encoding is msgpack of the field values in declaration order, with big
integers and points as typed extensions, so decoding needs the target type and validates every field against it:
garbage from a peer becomes a `WireError`, never a crash deep inside the math.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache
from typing import Any, TypeVar

import msgpack
from gmpy2 import mpz

from ..crypto.secp256k1 import IDENTITY_BYTES, Point

T = TypeVar("T")

_EXT_INT = 1
_EXT_POINT = 2
_MAX_INT_BYTES = 2048  # 16384-bit integers: far above any value of the protocol (N^2 at level 128 is 6144 bits)
_MAX_MESSAGE = 64 << 20


class WireError(ValueError):
    """Bytes that do not decode to the expected message type."""


def _int_to_ext(v: int) -> msgpack.ExtType:
    v = int(v)
    mag = abs(v)
    return msgpack.ExtType(_EXT_INT, (b"\x01" if v < 0 else b"\x00") + mag.to_bytes((mag.bit_length() + 7) // 8, "big"))


def _pack(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, type(mpz(0)))):
        return _int_to_ext(value)
    if isinstance(value, Point):
        return msgpack.ExtType(_EXT_POINT, value.to_bytes())
    if isinstance(value, (bytes, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_pack(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [_pack(getattr(value, f.name)) for f in dataclasses.fields(value)]
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(message: Any) -> bytes:
    data: bytes = msgpack.packb(_pack(message), use_bin_type=True)  # msgpack has no types: Any to mypy
    return data


@lru_cache(maxsize=None)
def _hints(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _unpack(raw: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(raw, bool):
            raise WireError(f"{path}: expected bool")
        return raw
    if tp is int:
        if not isinstance(raw, msgpack.ExtType) or raw.code != _EXT_INT:
            raise WireError(f"{path}: expected integer")
        data = raw.data
        if not data or data[0] not in (0, 1) or len(data) - 1 > _MAX_INT_BYTES:
            raise WireError(f"{path}: malformed integer")
        mag = int.from_bytes(data[1:], "big")
        if len(data) > 1 and data[1] == 0:
            raise WireError(f"{path}: non-canonical integer")
        if data[0] == 1 and mag == 0:
            raise WireError(f"{path}: negative zero")
        return -mag if data[0] == 1 else mag
    if tp is Point:
        if not isinstance(raw, msgpack.ExtType) or raw.code != _EXT_POINT or len(raw.data) != 33:
            raise WireError(f"{path}: expected point")
        try:
            return Point.from_bytes(raw.data, allow_identity=raw.data == IDENTITY_BYTES)
        except ValueError as exc:
            raise WireError(f"{path}: {exc}") from None
    if tp is bytes:
        if not isinstance(raw, bytes):
            raise WireError(f"{path}: expected bytes")
        return raw
    if tp is str:
        if not isinstance(raw, str):
            raise WireError(f"{path}: expected str")
        return raw
    if origin in (list, tuple):
        (item_tp, *_rest) = typing.get_args(tp)
        if not isinstance(raw, list):
            raise WireError(f"{path}: expected list")
        items = [_unpack(r, item_tp, f"{path}[{i}]") for i, r in enumerate(raw)]
        return items if origin is list else tuple(items)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a message class (a hint is never an instance)
        fields = _hints(tp)
        if not isinstance(raw, list) or len(raw) != len(fields):
            raise WireError(f"{path}: expected {tp.__name__} with {len(fields)} fields")
        return tp(**{name: _unpack(r, ftp, f"{path}.{name}") for (name, ftp), r in zip(fields, raw)})
    raise TypeError(f"unsupported field type {tp!r}")


def decode(data: bytes, cls: type[T]) -> T:
    """Decode bytes into an instance of `cls`, or raise WireError."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > _MAX_MESSAGE:
        raise WireError("message is not bytes or too large")
    try:
        raw = msgpack.unpackb(bytes(data), raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several types on garbage
        raise WireError(f"undecodable: {type(exc).__name__}") from None
    message: T = _unpack(raw, cls, cls.__name__)  # _unpack built a `cls` and checked every field against its hints
    return message

"""The vault's wire format: bounded, length-prefixed msgpack frames carrying holder calls, never pickle.

A frame is a 4-byte big-endian length and that many bytes (at most `MAX_FRAME`). A request is
``[id, method, args]``, a response ``[id, True, value]`` or ``[id, False, error]``. Values are msgpack's own nil, bool,
int (64-bit), float, str, bytes, array (list) and map (dict), plus four extension types, each the msgpack of an
array:

- ``BIGINT``: sign byte (0 or 1) and the big-endian magnitude, for integers beyond 64 bits (Paillier-sized values);
- ``TUPLE``: the items (a tuple stays a tuple: grants hash their items' party tuples);
- ``OBJECT``: a registered type's name and its fields (`TYPES`: each dataclass that crosses the boundary, validated
  against its field types, then built by its own constructor, which runs its own checks; a `SignedRequest` as its
  JSON, through pydantic's strict validation);
- ``ERROR``: an error of `mpc_ray.errors` by name with its constructor arguments (`sign_requests` answers some items
  with one), or an untyped internal error that names only the type of what failed.

Decoding refuses anything else with `InvalidInput`: an unknown method or type, arguments that do not match the
method's signature (`METHODS`, checked against `ShareHolder` by the tests), nesting deeper than `MAX_DEPTH`, a frame
over the limit or cut short. Nothing here logs or formats a value, so no secret can reach a message.
"""

from __future__ import annotations

import dataclasses
import enum
import socket
import struct
import typing
from dataclasses import dataclass
from functools import lru_cache
from types import NoneType, UnionType
from typing import Any

import msgpack
from gmpy2 import mpz
from pydantic import ValidationError

from .. import errors
from ..errors import InvalidInput, MpcError
from ..protocols.dkls23.sign import OnlineShare
from ..requests.grants import GrantItem, SessionGrant
from ..requests.signed import SignedRequest
from .envelope import SealedEnvelope
from .holder import BeginRequest, StepResult
from .identify import IdentifyReport, PresignFailed
from .identity import NodeIdentityPublic

__all__ = ["MAX_FRAME", "METHODS", "TYPES", "bind", "decode_request", "decode_response", "encode_error",
           "encode_ok", "encode_request", "pack", "recv_frame", "send_frame", "unpack"]

MAX_FRAME = 16 << 20  # one frame: a batch of presigning rounds at level 128 is well under this
MAX_DEPTH = 32  # nested extension values (tuples, objects): each is decoded by a nested unpack on the C stack
MAX_INT_BYTES = 2048  # 16384-bit integers, as protocols/wire.py
_HEADER = struct.Struct(">I")
_BIGINT, _TUPLE, _OBJECT, _ERROR = 1, 2, 3, 4
_I64_MIN, _U64_MAX = -(1 << 63), (1 << 64) - 1
_MPZ = type(mpz(0))


# -- registered types --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Type:
    name: str
    cls: type
    to_fields: typing.Callable[[Any], list]
    from_fields: typing.Callable[[list], Any]


def _dataclass_type(cls: type) -> _Type:
    names = [f.name for f in dataclasses.fields(cls)]

    def from_fields(values: list) -> Any:
        hints = _field_hints(cls)
        if len(values) != len(names):
            raise InvalidInput(f"{cls.__name__} has {len(names)} fields")
        for name, value in zip(names, values):
            check_type(value, hints[name], f"{cls.__name__}.{name}")
        return cls(**dict(zip(names, values)))  # its own __post_init__ checks run here

    return _Type(cls.__name__, cls, lambda obj: [getattr(obj, n) for n in names], from_fields)


def _signed_request_fields(values: list) -> SignedRequest:
    # its JSON, through the model's own strict validation (enums by value, bytes as base64), as the gateway reads one
    if len(values) != 1 or not isinstance(values[0], bytes):
        raise InvalidInput("a SignedRequest crosses as its JSON")
    try:
        return SignedRequest.model_validate_json(values[0])
    except ValidationError as exc:
        where = ".".join(str(x) for x in exc.errors()[0]["loc"]) or "request"
        raise InvalidInput(f"malformed signed request: {where}") from None


TYPES: dict[str, _Type] = {t.name: t for t in [
    *(_dataclass_type(c) for c in (BeginRequest, StepResult, SealedEnvelope, NodeIdentityPublic, GrantItem,
                                   SessionGrant, IdentifyReport, PresignFailed, OnlineShare)),
    _Type("SignedRequest", SignedRequest, lambda r: [r.model_dump_json().encode()], _signed_request_fields),
]}
_BY_CLASS = {t.cls: t for t in TYPES.values()}


@lru_cache(maxsize=None)
def _field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _error_classes() -> dict[str, type[MpcError]]:
    return {name: cls for name, cls in vars(errors).items()
            if isinstance(cls, type) and issubclass(cls, MpcError) and cls.__module__ == errors.__name__}


ERRORS = _error_classes()


# -- values ------------------------------------------------------------------------------------------------------


def _bigint(v: int) -> msgpack.ExtType:
    mag = abs(v)
    return msgpack.ExtType(_BIGINT, bytes([v < 0]) + mag.to_bytes((mag.bit_length() + 7) // 8, "big"))


def _ext(code: int, items: list) -> msgpack.ExtType:
    return msgpack.ExtType(code, msgpack.packb(items, default=_default, strict_types=True, use_bin_type=True))


def _error_items(exc: BaseException) -> list:
    """[name, constructor args] of an error of mpc_ray.errors, ["", type name] of anything else."""
    cls = type(exc)
    if ERRORS.get(cls.__name__) is cls:
        _, args, *_ = exc.__reduce__()  # their own pickling arguments: the fields Ray ships between processes
        if all(_plain_arg(a) for a in args):
            return [cls.__name__, list(args)]
    return ["", cls.__name__]


def _plain_arg(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain_arg(v) for v in value)
    return value is None or type(value) in (bool, int, str, bytes)


def _default(obj: Any) -> Any:
    """What msgpack cannot pack itself (with strict_types, tuples and subclasses come here too)."""
    t = type(obj)
    if t is tuple:
        return _ext(_TUPLE, list(obj))
    if t is int or t is _MPZ:  # out of msgpack's 64-bit range (an mpz in range becomes a plain int)
        v = int(obj)
        return v if _I64_MIN <= v <= _U64_MAX and t is _MPZ else _bigint(v)
    entry = _BY_CLASS.get(t)
    if entry is not None:
        return _ext(_OBJECT, [entry.name, *entry.to_fields(obj)])
    if isinstance(obj, BaseException):
        return _ext(_ERROR, _error_items(obj))
    if isinstance(obj, enum.Enum):  # a StrEnum or IntEnum value crosses as its value
        return obj.value
    if isinstance(obj, (bytearray, memoryview)):
        return bytes(obj)
    for base in (str, int, float, bytes, list, dict):  # other subclasses of the plain types
        if isinstance(obj, base):
            return base(obj)
    raise TypeError(f"the vault's wire format has no encoding for {t.__name__}")


def pack(value: Any) -> bytes:
    """The msgpack of `value` (TypeError for a type the format does not carry)."""
    return msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)


class _Unpacker:
    """One decode: extension values are unpacked recursively, `depth` bounds how deep."""

    def __init__(self, allow_errors: bool) -> None:
        self.allow_errors = allow_errors
        self.depth = 0

    def unpack(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True, ext_hook=self.ext)

    def ext(self, code: int, data: bytes) -> Any:
        if code == _BIGINT:
            if not data or data[0] not in (0, 1) or len(data) - 1 > MAX_INT_BYTES:
                raise InvalidInput("malformed integer")
            mag = int.from_bytes(data[1:], "big")
            return -mag if data[0] else mag
        if code not in (_TUPLE, _OBJECT, _ERROR):
            raise InvalidInput(f"unknown extension type {code}")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidInput(f"values nest deeper than {MAX_DEPTH}")
        try:
            items = self.unpack(data)
        finally:
            self.depth -= 1
        if not isinstance(items, list):
            raise InvalidInput("malformed extension value")
        if code == _TUPLE:
            return tuple(items)
        if code == _OBJECT:
            entry = TYPES.get(items[0]) if items and isinstance(items[0], str) else None
            if entry is None:
                raise InvalidInput("unknown type on the wire")
            return entry.from_fields(items[1:])
        if not self.allow_errors:
            raise InvalidInput("errors cross only in answers")
        return _error_from_items(items)


def _error_from_items(items: list) -> MpcError:
    if len(items) != 2 or not isinstance(items[0], str):
        raise InvalidInput("malformed error")
    name, args = items
    if name == "":  # whatever the holder raised beyond mpc_ray.errors: named, never described
        return MpcError(f"internal error in the vault ({args if isinstance(args, str) else 'unknown'})")
    cls = ERRORS.get(name)
    if cls is None or not isinstance(args, list) or not _plain_arg(args):
        raise InvalidInput("unknown error type on the wire")
    try:
        return cls(*args)
    except Exception:  # noqa: BLE001 - arguments that its constructor refuses
        raise InvalidInput(f"malformed {name}") from None


def unpack(data: bytes, *, allow_errors: bool = False) -> Any:
    """The value `pack` wrote; InvalidInput for anything else (errors only where `allow_errors`: answers)."""
    try:
        return _Unpacker(allow_errors).unpack(data)
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises several types on garbage, constructors their own
        raise InvalidInput(f"undecodable value ({type(exc).__name__})") from None


# -- types -------------------------------------------------------------------------------------------------------


def check_type(value: Any, tp: Any, path: str) -> None:
    """InvalidInput unless `value` is of type `tp` (the subset of typing the entry points use). Exact types: a bool
    is not an int, a list not a tuple."""
    if tp is Any:
        return
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is UnionType:
        for option in typing.get_args(tp):
            try:
                return check_type(value, option, path)
            except InvalidInput:
                continue
        raise InvalidInput(f"{path}: wrong type")
    if tp is None or tp is NoneType:
        ok = value is None
    elif origin in (list, tuple, dict):
        ok = type(value) is origin
        if ok:
            args = typing.get_args(tp)
            if origin is dict:
                for k, v in value.items():
                    check_type(k, args[0], f"{path} key")
                    check_type(v, args[1], f"{path}[]")
            elif origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                ok = len(value) == len(args)
                for i, (v, a) in enumerate(zip(value, args)):
                    check_type(v, a, f"{path}[{i}]")
            else:
                for i, v in enumerate(value):
                    check_type(v, args[0], f"{path}[{i}]")
    elif tp is MpcError:
        ok = isinstance(value, MpcError)
    elif tp in (list, tuple, dict, bool, int, float, str, bytes) or tp in _BY_CLASS:
        ok = type(value) is tp
    else:
        raise TypeError(f"no check for {tp!r}")
    if not ok:
        raise InvalidInput(f"{path}: wrong type")


# -- methods -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """An entry point's parameters ((name, type), in order), how many are required, and its answer's type."""

    params: tuple[tuple[str, Any], ...]
    required: int
    result: Any


def _m(*params: tuple[str, Any], required: int | None = None, result: Any = None) -> Method:
    return Method(params, len(params) if required is None else required, result)


_ID, _KEY = ("key_id", str), ("request", SignedRequest)
_VIEW = dict[str, Any]  # public views and results: plain values (their producers' own business)
METHODS: dict[str, Method] = {
    "ping": _m(result=int),
    "public_identity": _m(result=NodeIdentityPublic),
    "node_labels": _m(result=dict[str, str]),
    "has_aux": _m(result=bool),
    "key_views": _m(result=dict[str, _VIEW]),
    "consumed_ids": _m(result=list[bytes]),
    "presignature_count": _m(_ID, result=int),
    "key_epoch": _m(_ID, result=int),
    "lifecycle_public": _m(_ID, result=_VIEW),
    "set_directory": _m(("entries", list[NodeIdentityPublic]), ("coordinator", bytes | None), required=1),
    "begin": _m(("requests", list[BeginRequest]), ("grant", SessionGrant | None), required=1,
                result=list[StepResult]),
    "step": _m(("batches", list[tuple[bytes, list[SealedEnvelope]]]), result=list[StepResult]),
    "drop_sessions": _m(("sids", list[bytes])),
    "bootstrap_principals": _m(("registry", bytes)),
    "set_policy": _m(_KEY),
    "set_principals": _m(_KEY),
    # an ECDSA partial: CGGMP21's sigma_i, or a DKLs23 key's online share (u_i, w_i)
    "sign_request": _m(_KEY, ("presignature_id", bytes), result=tuple[int | OnlineShare, bytes]),
    "sign_requests": _m(("items", list[tuple[SignedRequest, bytes]]),
                        result=list[tuple[int | OnlineShare, bytes] | MpcError]),
    "frost_sign_request": _m(_KEY, ("nonce_id", bytes | list[bytes]), ("commitment_list", bytes | list[bytes]),
                             result=tuple[int, bytes] | list[tuple[int, bytes]]),
    "partial_sign": _m(_KEY, ("items", list[tuple[int, bytes]]), result=list[int] | list[OnlineShare]),
    "frost_sign": _m(_KEY, ("items", list[tuple[int, bytes, bytes]]), result=list[tuple[int, bytes]]),
    "frost_commit": _m(_ID, ("count", int), ("grant", SessionGrant | None), required=2,
                       result=list[tuple[bytes, bytes]]),
    "extend_directory": _m(_KEY, ("entries", list[NodeIdentityPublic])),
    "backup": _m(_KEY, ("passphrase", str), ("kdf", str), required=2, result=bytes),
    "restore": _m(_KEY, ("blob", bytes), ("passphrase", str), result=_VIEW),
    "lifecycle_confirm": _m(_ID, ("epoch", int), result=_VIEW),
    "lifecycle_commit": _m(_ID, ("epoch", int), ("digest", bytes), ("confirmations", dict[int, Any]),
                           result=_VIEW),
    "lifecycle_discard": _m(_ID, ("epoch", int), result=bool),
    "set_coordinator": _m(_KEY, ("verify_key", bytes)),
}


def bind(method: str, args: tuple, kwargs: dict) -> list:
    """The positional arguments of a call, keywords put in place (InvalidInput for an unknown method or a call that
    does not fit its parameters). Trailing optional arguments left out stay out: the holder's defaults apply."""
    spec = METHODS.get(method)
    if spec is None:
        raise InvalidInput(f"unknown vault method {method!r}")
    names = [n for n, _ in spec.params]
    values = dict(zip(names, args))
    if len(args) > len(names) or any(k not in names or k in values for k in kwargs):
        raise InvalidInput(f"{method} takes {names}")
    values.update(kwargs)
    given = [n in values for n in names]
    if not all(given[:max(spec.required, sum(given))]):  # a required one missing, or a gap before a later one
        raise InvalidInput(f"{method} takes {names}, the optional ones in order")
    return [values[n] for n in names if n in values]


def _check_args(method: str, args: Any) -> list:
    spec = METHODS.get(method) if isinstance(method, str) else None
    if spec is None:
        raise InvalidInput("unknown vault method")
    if not isinstance(args, list) or not spec.required <= len(args) <= len(spec.params):
        raise InvalidInput(f"{method} takes {spec.required} to {len(spec.params)} arguments")
    for value, (name, tp) in zip(args, spec.params):
        check_type(value, tp, f"{method}.{name}")
    return args


# -- messages ----------------------------------------------------------------------------------------------------


def encode_request(call_id: int, method: str, args: list) -> bytes:
    # the arguments are packed apart, so that a request whose arguments do not decode is still answered by its id
    return msgpack.packb([call_id, method, pack(args)], use_bin_type=True)


def decode_request(body: bytes) -> tuple[int, str, list]:
    """(id, method, arguments) of a request, each argument checked against the method's parameter types.
    InvalidInput otherwise; from the envelope on, it carries the request's id as `call_id` for the answer."""
    try:
        msg = msgpack.unpackb(body, raw=False, use_list=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several types on garbage
        raise InvalidInput(f"undecodable request ({type(exc).__name__})") from None
    if (not isinstance(msg, list) or len(msg) != 3 or type(msg[0]) is not int or not isinstance(msg[1], str)
            or not isinstance(msg[2], bytes)):
        raise InvalidInput("a request is [id, method, packed args]")
    call_id, method, args = msg
    try:
        return call_id, method, _check_args(method, unpack(args))
    except InvalidInput as exc:
        exc.call_id = call_id
        raise


def encode_ok(call_id: int, value: Any) -> bytes:
    return pack([call_id, True, value])


def encode_error(call_id: int, exc: BaseException) -> bytes:
    return pack([call_id, False, exc])


def decode_response(body: bytes, call_id: int, method: str) -> tuple[bool, Any]:
    """(True, the value) of the answer to request `call_id`, checked against the method's result type, or (False,
    the error it carries). An error may come with id 0: the vault refused the frame or the connection before it read
    an id. InvalidInput for anything else (the connection is then out of step)."""
    msg = unpack(body, allow_errors=True)
    if not isinstance(msg, list) or len(msg) != 3 or type(msg[1]) is not bool or msg[0] not in (call_id, 0):
        raise InvalidInput("the vault answered another request, or not in its format")
    if not msg[1]:
        if not isinstance(msg[2], MpcError):
            raise InvalidInput("malformed error answer")
        return False, msg[2]
    if msg[0] != call_id:
        raise InvalidInput("the vault answered another request")
    check_type(msg[2], METHODS[method].result, f"{method} answer")
    return True, msg[2]


# -- frames ------------------------------------------------------------------------------------------------------


def send_frame(sock: socket.socket, body: bytes, max_frame: int = MAX_FRAME) -> None:
    if len(body) > max_frame:
        raise InvalidInput(f"a vault frame is at most {max_frame} bytes")
    sock.sendall(_HEADER.pack(len(body)) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError(got)
        got += k
    return bytes(buf)


def recv_frame(sock: socket.socket, max_frame: int = MAX_FRAME, body_timeout_s: float | None = None) -> bytes | None:
    """The next frame's body; None when the peer closed between frames. InvalidInput for a length over `max_frame`
    (its body is never read) or a frame cut short (EOF inside it, or its body not there within `body_timeout_s`)."""
    try:
        header = _recv_exact(sock, _HEADER.size)
    except EOFError as eof:
        if eof.args[0] == 0:
            return None
        raise InvalidInput("truncated frame header") from None
    (length,) = _HEADER.unpack(header)
    if length > max_frame:
        raise InvalidInput(f"frame of {length} bytes is over the limit of {max_frame}")
    before = sock.gettimeout()
    if body_timeout_s is not None:
        sock.settimeout(body_timeout_s)
    try:
        return _recv_exact(sock, length)
    except (EOFError, TimeoutError):
        raise InvalidInput("truncated frame") from None
    finally:
        if body_timeout_s is not None:
            sock.settimeout(before)

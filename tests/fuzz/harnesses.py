"""One fuzz harness per decoder of hostile input: the inputs (valid examples built as the tests build them, then
mutated) and the call that decodes one, with the typed errors that decoder documents.

The property `check` enforces: the decoder accepts the input or refuses it with one of its documented errors
(`MpcError` subclasses; `WireError` for the wire codec, pydantic's `ValidationError` for
`SignedRequest.model_validate_json`), nothing else (a native panic, a BaseException, is a failure too), and within
`TIME_BOUND_S`. Where an accepted value has a documented property, the harness checks it as well: a relay's edit
never opens, a decoded message re-encodes to itself, a policy or registry survives its own serialisation (the
store), a batch's encoding is canonical, an intent's spends are non-negative and json-safe.

tests/fuzz/test_fuzz.py runs every harness briefly in the normal test run; benchmarks/fuzz.py runs each for a set
time. Seeds are built on first use (they import optional packages and sign).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pickle
import struct
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.signing
from hypothesis import strategies as st
from pydantic import ValidationError

import mpc_ray.node.policy  # noqa: F401 - eth-account's py_ecc lifts the recursion limit to 100,000, as on a node:
# a JSON parser without a depth bound then overflows the C stack (the process dies) instead of raising RecursionError
from mpc_ray.errors import InvalidInput, MpcError, ProtocolAbort

from .mutators import (
    DEEP,
    INTERESTING_INTS,
    INTERESTING_STRINGS,
    byte_inputs,
    json_inputs,
    mutated_bytes,
    python_values,
    render,
)

TIME_BOUND_S = 5.0  # per input; every decoder here answers in milliseconds
NOW = 1_700_000_000  # a Tuesday, 22:13 UTC (tests/node/test_policy.py)


@dataclass(frozen=True)
class Harness:
    name: str
    target: str  # the entry point, for the report
    inputs: Callable[[], st.SearchStrategy[Any]]
    decode: Callable[[Any], object]
    refusals: tuple[type[BaseException], ...]
    seeds: Callable[[], list[Any]]  # inputs that must be accepted (the harness explores from real examples)
    examples: int = 60  # in the normal test run


class UntypedError(AssertionError):
    """The decoder raised something it does not document."""


class TooSlow(AssertionError):
    """One input took longer than TIME_BOUND_S."""


def check(h: Harness, value: Any) -> bool:
    """Decode one input; True if accepted, False if refused with a documented error. UntypedError / TooSlow /
    AssertionError (an accepted value without its documented property) otherwise."""
    start = time.perf_counter()
    try:
        h.decode(value)
        accepted = True
    except h.refusals:
        accepted = False
    except (KeyboardInterrupt, SystemExit):
        raise
    except AssertionError:
        raise
    except BaseException as exc:  # noqa: BLE001 - anything else is the finding (pyo3's PanicException included)
        raise UntypedError(f"{h.name}: {type(exc).__module__}.{type(exc).__qualname__}: {str(exc)[:300]}") from exc
    elapsed = time.perf_counter() - start
    if elapsed > TIME_BOUND_S:
        raise TooSlow(f"{h.name}: one input took {elapsed:.1f} s")
    return accepted


HARNESSES: dict[str, Harness] = {}


def _register(h: Harness) -> Harness:
    HARNESSES[h.name] = h
    return h


# ------------------------------------------------------------------------------------------------------------
# shared seeds


def _signing_key(name: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(b"fuzz principal " + name.encode()).digest())


@functools.cache
def _registry():
    from mpc_ray.node.principals import Principal, PrincipalRegistry

    return PrincipalRegistry(
        principals=(Principal.from_signing_key("root", "admin", _signing_key("root")),
                    Principal.from_signing_key("root2", "admin", _signing_key("root2")),
                    Principal.from_signing_key("bot", "agent", _signing_key("bot")),
                    Principal.from_signing_key("ops", "operator", _signing_key("ops"))),
        admin_quorum=2, version=3)


@functools.cache
def _policies() -> tuple[Any, ...]:
    from mpc_ray.node.policy import AssetLimit, ContractCallRule, RateLimit, TimeWindow, TxType, native_asset
    from tests.support.policies import BOB, SOLANA, base_policy

    return (
        base_policy(),
        base_policy(recipient_allowlist=None, derivation_paths=("m/0/3", "m"), version=7,
                    time_windows=(TimeWindow(days=(0, 1), start="08:00", end="18:30"),),
                    not_before=NOW - 10.5, not_after=NOW + 86_400.0, compromised_holders=1,
                    contract_calls=(ContractCallRule(contract=BOB, selectors=("0xdeadbeef",)),)),
        base_policy(key_id="s1", allowed_chains=(SOLANA,), allowed_tx_types=(TxType.SOLANA_TRANSFER,),
                    recipient_allowlist=None, recipient_denylist=(),
                    asset_limits=(AssetLimit(asset=native_asset(SOLANA), per_tx=200_000),),
                    rate_limits=(RateLimit(window_s=3600, max_requests=100),), any_derivation_path=True),
    )


@functools.cache
def _requests() -> tuple[Any, ...]:
    from mpc_ray.node.principals import cosign, sign_request
    from mpc_ray.node.raw_batch import encode_raw_batch
    from tests.support.policies import BASE, eip3009, usdc_transfer

    def req(who: str, **kw: Any) -> Any:
        return sign_request(_signing_key(who), principal_id=who, now=NOW, **kw)

    admin = req("root", kind="set_principals", format="json", body=_registry().to_bytes())
    return (
        req("bot", kind="sign", format="evm_tx", body=usdc_transfer(), key_id="k1", chain=BASE),
        req("bot", kind="sign", format="eip712", body=json.dumps(eip3009()).encode(), key_id="k1", chain=BASE,
            derivation_path="m/0/3"),
        req("ops", kind="sign", format="raw_batch", body=encode_raw_batch([b"\x01" * 32, b"hello"], b""),
            key_id="t1"),
        req("root", kind="set_policy", format="json", body=_policies()[0].to_bytes(), key_id="k1"),
        cosign(admin, "root2", _signing_key("root2")),
    )


# ------------------------------------------------------------------------------------------------------------
# sealed envelopes (node/envelope.py open_envelope)

_PROTO = "frost.dkg"
_SID = b"fuzz-session"
_DROP = "<field removed>"  # an unpickled object may lack a field altogether
# X25519 points of small order (and p-1, p, p+1): libsodium refuses the shared secret of each
_SMALL_ORDER = tuple(bytes.fromhex(h) for h in (
    "00" * 32, "01" + "00" * 31,
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ec" + "ff" * 30 + "7f", "ed" + "ff" * 30 + "7f", "ee" + "ff" * 30 + "7f",
))
_ENVELOPE_FIELDS = ("sid", "round", "sender", "recipient", "protocol", "body", "signature", "ephemeral")


@functools.cache
def _committee() -> tuple[dict[int, Any], dict[int, Any]]:
    from mpc_ray.node.identity import NodeIdentity

    ids = {i: NodeIdentity.generate(i) for i in (1, 2, 3)}
    return ids, {i: ident.public() for i, ident in ids.items()}


@dataclass(frozen=True)
class EnvelopeCase:
    kind: str  # broadcast, direct, session_broadcast, session_direct
    payload: bytes
    edits: tuple[tuple[str, Any], ...]  # field -> value (_DROP: the field is missing)
    resign: bool  # the sender signs the edited fields (a malicious sender) rather than a relay editing them
    announce: bool  # in a session: the sender's round-1 broadcast was opened first


def _envelope_field_values(name: str) -> st.SearchStrategy[Any]:
    ints = st.sampled_from((0, 1, 2, 3, 4, 2**32 - 1, 2**32, -1)) | st.integers()
    typed = {
        "sid": st.binary(max_size=40) | st.sampled_from((b"", _SID, b"s" * 1024, b"s" * 1025)),
        "round": ints, "sender": ints, "recipient": ints,
        "protocol": st.sampled_from((_PROTO, "frost.sign", "", "a" * 64, "a" * 65, "-x", "\u00e9", _PROTO + "\n"))
        | st.text(max_size=10),
        "body": st.binary(max_size=128),
        "signature": st.binary(min_size=64, max_size=64) | st.binary(max_size=70),
        "ephemeral": st.sampled_from(_SMALL_ORDER + (b"", b"\x09" * 31)) | st.binary(min_size=32, max_size=32),
    }[name]
    return st.one_of(typed, typed, python_values(), st.just(_DROP))


@st.composite
def _envelope_cases(draw: Any) -> EnvelopeCase:
    edits = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(_ENVELOPE_FIELDS))
        edits.append((name, draw(_envelope_field_values(name))))
    return EnvelopeCase(
        kind=draw(st.sampled_from(("broadcast", "direct", "session_broadcast", "session_direct"))),
        payload=draw(st.binary(max_size=64)),
        edits=tuple(edits),
        resign=draw(st.booleans()),
        announce=draw(st.booleans()),
    )


def _open_envelope(case: EnvelopeCase) -> object:
    from mpc_ray.node.envelope import SealedEnvelope, SessionKeys, _signed_bytes, open_envelope, seal
    from mpc_ray.protocols.base import Envelope

    ids, directory = _committee()
    me, sender = ids[2], ids[1]
    in_session = case.kind.startswith("session")
    mine, theirs = (SessionKeys(), SessionKeys()) if in_session else (None, None)

    def open_(sealed: Any, at: Any = me, session: Any = mine) -> Envelope:
        return open_envelope(sealed, me=at, directory=directory, expected_protocol=_PROTO, session=session)

    if in_session:  # the honest round-1 exchange of session keys (ours reaches the sender; theirs us, if announced)
        open_(seal(me, Envelope(_SID, 1, 2, None, b"hello"), _PROTO, None, mine), at=sender, session=theirs)
        if case.announce:
            open_(seal(sender, Envelope(_SID, 1, 1, None, b"hello"), _PROTO, None, theirs))
    direct = case.kind.endswith("direct")
    env = Envelope(_SID, 1 if case.kind == "session_broadcast" else 2, 1, 2 if direct else None, case.payload)
    base = seal(sender, env, _PROTO, directory[2] if direct else None, theirs)
    fields = {f: getattr(base, f) for f in _ENVELOPE_FIELDS}
    for name, value in case.edits:
        if value == _DROP:
            fields.pop(name, None)
        else:
            fields[name] = value
    if case.resign:
        try:
            fields["signature"] = sender.sign(_signed_bytes(*(fields[f] for f in _ENVELOPE_FIELDS if f != "signature")))
        except (KeyError, TypeError, ValueError, AttributeError, struct.error, OverflowError, MpcError):
            pass  # fields no sender could sign: the relay's edit stands
    sealed = object.__new__(SealedEnvelope)  # as unpickling builds it: no __init__, any field values
    sealed.__dict__.update(fields)
    opened = open_(sealed)
    if not case.resign:  # a relay cannot make anything open but what the sender signed
        assert fields["signature"] == base.signature and sealed.signed_bytes() == base.signed_bytes(), \
            "an envelope edited by the relay opened"
    assert (opened.sid, opened.round, opened.sender) == (fields["sid"], fields["round"], fields["sender"])
    assert opened.recipient == (None if fields["recipient"] == 0 else 2)
    return opened


def _envelope_seeds() -> list[EnvelopeCase]:
    return [EnvelopeCase(kind, b"payload", (), resign, True) for kind in
            ("broadcast", "direct", "session_broadcast", "session_direct") for resign in (False, True)]


_register(Harness("envelope", "node.envelope.open_envelope", _envelope_cases, _open_envelope, (ProtocolAbort,),
                  _envelope_seeds, examples=150))


# ------------------------------------------------------------------------------------------------------------
# protocol wire codec (protocols/wire.py decode) into every message type of every protocol's rounds

_PROTOCOL_MODULES = (
    "mpc_ray.protocols.ecdsa.keygen", "mpc_ray.protocols.ecdsa.aux_info", "mpc_ray.protocols.ecdsa.presign",
    "mpc_ray.protocols.ecdsa.sign", "mpc_ray.protocols.ecdsa.refresh", "mpc_ray.protocols.ecdsa.identify",
    "mpc_ray.protocols.frost.dkg", "mpc_ray.protocols.frost.sign_party", "mpc_ray.protocols.reshare",
)


@functools.cache
def _message_types() -> tuple[type, ...]:
    import importlib

    from mpc_ray.protocols.base import RoundParty

    for module in _PROTOCOL_MODULES:
        importlib.import_module(module)
    found: dict[str, type] = {}
    stack = list(RoundParty.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        for pair in getattr(cls, "ROUNDS", ()):
            for tp in pair:
                if tp is not None:
                    found[f"{tp.__module__}.{tp.__qualname__}"] = tp
    return tuple(found[k] for k in sorted(found))


_VALUES: dict[Any, st.SearchStrategy[Any]] = {}


def _values_of(tp: Any) -> st.SearchStrategy[Any]:
    """Well-typed values of a wire field type (what an honest party could send, extremes included)."""
    if tp in _VALUES:
        return _VALUES[tp]
    from mpc_ray.crypto.secp256k1 import Q, Point
    from mpc_ray.protocols.wire import _hints

    origin = typing.get_origin(tp)
    if tp is bool:
        s = st.booleans()
    elif tp is int:
        s = st.one_of(st.integers(-(2**70), 2**70), st.integers(0, 2**4096), st.sampled_from(INTERESTING_INTS))
    elif tp is Point:
        s = st.one_of(st.integers(1, Q - 1).map(Point.base_mul), st.just(Point.identity()))
    elif tp is bytes:
        s = st.binary(max_size=48)
    elif tp is str:
        s = st.text(max_size=12)
    elif origin in (list, tuple):
        item = typing.get_args(tp)[0]
        s = st.lists(st.deferred(lambda: _values_of(item)), max_size=3)
        if origin is tuple:
            s = s.map(tuple)
    elif dataclasses.is_dataclass(tp):
        names = [n for n, _ in _hints(tp)]
        s = st.builds(lambda *vals: tp(**dict(zip(names, vals))),
                      *[st.deferred(lambda ft=ft: _values_of(ft)) for _, ft in _hints(tp)])
    else:
        raise TypeError(f"no strategy for wire type {tp!r}")
    _VALUES[tp] = s
    return s


def _ext_values() -> st.SearchStrategy[msgpack.ExtType]:
    from mpc_ray.crypto.secp256k1 import Point

    g = Point.generator().to_bytes()
    return st.one_of(
        st.builds(msgpack.ExtType, st.sampled_from((0, 1, 2, 3, 127)), st.binary(max_size=40)),
        st.sampled_from((
            msgpack.ExtType(1, b""), msgpack.ExtType(1, b"\x00\x00\x01"), msgpack.ExtType(1, b"\x01"),
            msgpack.ExtType(1, b"\x01\x00"), msgpack.ExtType(1, b"\x02\x05"),
            msgpack.ExtType(1, b"\x00" + b"\xff" * 2048),
            msgpack.ExtType(1, b"\x00" + b"\xff" * 2049), msgpack.ExtType(2, b"\x00" * 33),
            msgpack.ExtType(2, b"\x02" + b"\xff" * 32), msgpack.ExtType(2, bytes([g[0] ^ 1]) + g[1:]),
            msgpack.ExtType(2, b"\x04" + g[1:] * 2), msgpack.ExtType(2, g[:32]), msgpack.ExtType(2, g),
        )),
    )


def _msgpack_leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8),
        st.binary(max_size=40), _ext_values(), _ext_values(),
        st.dictionaries(st.integers(0, 3) | st.text(max_size=3), st.none(), min_size=1, max_size=2),
        st.lists(st.none(), max_size=2),
    )


def _tree_positions(tree: Any, out: list[tuple[list, int]]) -> list[tuple[list, int]]:
    if isinstance(tree, list):
        for i, v in enumerate(tree):
            out.append((tree, i))
            _tree_positions(v, out)
    return out


@st.composite
def _msgpack_mutated(draw: Any, data: bytes) -> bytes:
    """`data` (msgpack) with 1..3 edits of its tree: a value replaced, dropped, duplicated or added."""
    tree = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
    for _ in range(draw(st.integers(1, 3))):
        slots = _tree_positions(tree, [])
        op = draw(st.integers(0, 3))
        if not slots or op == 0:
            new = draw(_msgpack_leaves())
            if slots:
                lst, i = draw(st.sampled_from(slots))
                lst[i] = new
            else:
                tree = new
        elif op == 1:
            lst, i = draw(st.sampled_from(slots))
            del lst[i]
        elif op == 2:
            lst, i = draw(st.sampled_from(slots))
            lst.insert(i, lst[i])
        else:
            lst, i = draw(st.sampled_from(slots))
            if isinstance(lst[i], list):
                lst[i].append(draw(_msgpack_leaves()))
            else:
                lst[i] = [lst[i]]
    return msgpack.packb(tree, use_bin_type=True)


@st.composite
def _wire_cases(draw: Any) -> tuple[type, bytes]:
    from mpc_ray.protocols.wire import encode

    types = _message_types()
    tp = draw(st.sampled_from(types))
    source = tp if draw(st.integers(0, 4)) else draw(st.sampled_from(types))  # sometimes another type's bytes
    data = encode(draw(_values_of(source)))
    how = draw(st.integers(0, 5))
    if how in (1, 2):
        data = draw(_msgpack_mutated(data))
    elif how == 3:
        data = draw(mutated_bytes([data]))
    elif how == 4:
        data = b"\x91" * draw(st.sampled_from(DEEP)) + data  # nested one-element arrays
    elif how == 5:
        data = draw(st.sampled_from((b"", b"\xc1", b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff",
                                     b"\xc6\xff\xff\xff\xff", b"\xc9\xff\xff\xff\xff\x01", b"\x90" * 3,
                                     # msgpack's own timestamp extension (-1): valid, and of a length it refuses
                                     b"\xd6\xff\x00\x00\x00\x00", b"\xc7\x05\xff\x00\x00\x00\x00\x00",
                                     b"\x92\xd6\xff\x00\x00\x00\x00\xc0")) | st.binary())
    return tp, data


def _decode_wire(case: tuple[type, bytes]) -> object:
    from mpc_ray.protocols.wire import decode, encode

    tp, data = case
    msg = decode(data, tp)
    assert decode(encode(msg), tp) == msg, "a decoded message does not re-encode to itself"
    return msg


def _sample_of(tp: Any) -> Any:
    """One well-typed value of a wire field type, built deterministically (a seed)."""
    from mpc_ray.crypto.secp256k1 import Point
    from mpc_ray.protocols.wire import _hints

    origin = typing.get_origin(tp)
    if tp is bool:
        return True
    if tp is int:
        return 2**300 + 17
    if tp is Point:
        return Point.base_mul(3)
    if tp is bytes:
        return b"\x01\x02\x03"
    if tp is str:
        return "s"
    if origin in (list, tuple):
        items = [_sample_of(typing.get_args(tp)[0])] * 2
        return items if origin is list else tuple(items)
    return tp(**{name: _sample_of(ft) for name, ft in _hints(tp)})


def _wire_seeds() -> list[tuple[type, bytes]]:
    from mpc_ray.protocols.wire import encode

    return [(tp, encode(_sample_of(tp))) for tp in _message_types()]


def _wire_refusals() -> tuple[type[BaseException], ...]:
    from mpc_ray.protocols.wire import WireError

    return (WireError,)


_register(Harness("wire", "protocols.wire.decode", _wire_cases, _decode_wire, _wire_refusals(), _wire_seeds,
                  examples=200))


# ------------------------------------------------------------------------------------------------------------
# SignedRequest: unpickled (__reduce__ -> _request_from_wire) and from JSON (model_validate_json)

_REQUEST_STRINGS = ("sign", "create_key", "set_policy", "set_principals", "evm_tx", "eip712", "eip191",
                    "raw_digest", "raw_batch", "solana_tx", "btc_psbt", "json", "bot", "root", "root2", "ops", "k1",
                    "eip155:8453", "principal_id", "kind", "key_id", "chain", "format", "body", "nonce", "expiry",
                    "signatures", "derivation_path", "AAAA", "A" * 43 + "=", "////", "m/0/3")


def _request_field_values(name: str) -> st.SearchStrategy[Any]:
    from mpc_ray.node.principals import MAX_BODY_BYTES, RequestFormat, RequestKind

    sig = st.tuples(st.sampled_from(("bot", "root", "root2", "Bot", "")), st.binary(min_size=63, max_size=65))
    return {
        "principal_id": st.sampled_from(("bot", "root", "Root", "b" * 64, "b" * 65, "-a", "a\n")),
        "kind": st.sampled_from(tuple(RequestKind)) | st.sampled_from(("sign", "SIGN", "")),
        "format": st.sampled_from(tuple(RequestFormat)) | st.sampled_from(("evm_tx", "xml")),
        "key_id": st.sampled_from(("", "k1", "k" * 64, "k" * 65, "../k", "k1\x00")),
        "chain": st.sampled_from(("", "eip155:8453", "eip155:", "EIP155:1", "solana:" + "a" * 33)),
        "body": st.binary(max_size=64) | st.just(b"\x00" * (MAX_BODY_BYTES + 1)) | st.binary().map(bytearray),
        "nonce": st.binary(min_size=31, max_size=33),
        "expiry": st.sampled_from(INTERESTING_INTS + (True, 1.0, float("nan"))),
        "signatures": st.lists(sig, max_size=3).map(tuple) | st.lists(sig, min_size=33, max_size=33).map(tuple)
        | st.lists(st.lists(st.binary(max_size=4), max_size=3), max_size=2),
        "derivation_path": st.sampled_from(("m", "m/0/07", "m/0'", "m/2147483647", "m/2147483648", "m/4294967295",
                                            "m/" + "/".join(["1"] * 256), "m/" + "/".join(["1"] * 300), "m/",
                                            "m/0//1", "m/\u0661")),
    }.get(name, python_values())


@st.composite
def _request_dicts(draw: Any) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(python_values())  # not even a dict
    fields = dict(draw(st.sampled_from(_requests())).__dict__)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(fields) + ["extra", "signing_bytes"]))
        op = draw(st.integers(0, 4))
        if op == 0:
            fields.pop(name, None)
        elif op == 1:
            fields[name] = draw(python_values())
        else:
            fields[name] = draw(_request_field_values(name))
    return fields


def _after_request(req: Any) -> None:
    req.signing_bytes()
    req.digest()
    repr(req)
    assert pickle.loads(pickle.dumps(req)) == req, "a valid request does not survive pickling"


def _request_from_dict(fields: Any) -> object:
    from mpc_ray.node.principals import _request_from_wire

    req = _request_from_wire(fields)
    _after_request(req)
    return req


_register(Harness("request_pickle", "node.principals._request_from_wire (SignedRequest.__reduce__)",
                  _request_dicts, _request_from_dict, (InvalidInput,),
                  lambda: [dict(r.__dict__) for r in _requests()], examples=200))


def _request_json_docs() -> list[Any]:
    return [json.loads(r.model_dump_json()) for r in _requests()]


def _request_from_json(data: bytes) -> object:
    from mpc_ray.node.principals import SignedRequest

    req = SignedRequest.model_validate_json(data)
    _after_request(req)
    return req


_register(Harness("request_json", "SignedRequest.model_validate_json",
                  lambda: json_inputs(_request_json_docs(), _REQUEST_STRINGS), _request_from_json, (ValidationError,),
                  lambda: [r.model_dump_json().encode() for r in _requests()], examples=200))


# ------------------------------------------------------------------------------------------------------------
# sign-request bodies per format (node/policy.py intent_from_request and the decoders behind it)


@dataclass(frozen=True)
class BodyCase:
    format: str
    body: bytes
    chain: str


@functools.cache
def _engine() -> Any:
    """A permissive engine: every type, any asset; evaluates what the decoders accept (nothing recorded)."""
    from mpc_ray.node.bitcoin_policy import BTC_MAINNET
    from mpc_ray.node.policy import Policy, PolicyEngine, SpendState, TxType
    from tests.support.policies import ALICE, BASE, EVE, SOLANA

    policy = Policy(key_id="k1", principal_id="bot", allowed_chains=(BASE, SOLANA, BTC_MAINNET),
                    allowed_tx_types=tuple(TxType), recipient_denylist=(EVE,), allow_unlisted_assets=True,
                    recipient_allowlist=(ALICE,))
    return PolicyEngine(policy, SpendState(), threshold=2, parties=3)


def _decode_body(case: BodyCase) -> object:
    """The decoder itself (`_intent_from_request`), so that the public catch-all cannot hide what it raises. The one
    documented exception: solders' native panic, which `intent_from_request` must then refuse as InvalidInput."""
    from mpc_ray.node.policy import TxType, _intent_from_request, intent_from_request
    from mpc_ray.node.principals import MAX_BODY_BYTES, RequestFormat, RequestKind, SignedRequest

    req = SignedRequest(principal_id="bot", kind=RequestKind.SIGN, key_id="k1", chain=case.chain,
                        format=RequestFormat(case.format), body=case.body[:MAX_BODY_BYTES], nonce=bytes(32),
                        expiry=NOW)
    try:
        intent = _intent_from_request(req)
    except MpcError:
        raise
    except BaseException as exc:
        if case.format != "solana_tx" or type(exc).__name__ != "PanicException":
            raise
        try:  # documented: the entry point turns the panic into the request's refusal
            intent_from_request(req)
        except InvalidInput:
            raise
        raise AssertionError("intent_from_request let a native panic through") from None
    json.dumps(intent.to_json_dict())
    assert all(isinstance(a, str) and type(v) is int and v > 0 for a, v in intent.spends), intent.spends
    assert type(intent.amount) is int and intent.amount >= 0, intent.amount
    if intent.type not in (TxType.SOLANA_TRANSFER, TxType.BTC_TRANSFER):
        assert len(intent.digest) == 32, "an ECDSA intent's digest is 32 bytes"
    if case.chain and intent.chain is not None:
        assert intent.chain == case.chain, "the decoded chain differs from the signed one"
    _engine().evaluate(intent, NOW)
    return intent


def _body_cases(fmt: str | tuple[str, ...], bodies: st.SearchStrategy[bytes], chains: tuple[str, ...]) -> Any:
    formats = (fmt,) if isinstance(fmt, str) else fmt
    return st.builds(BodyCase, st.sampled_from(formats), bodies, st.sampled_from(chains))


# EVM transactions


@functools.cache
def _evm_seeds() -> tuple[bytes, ...]:
    from tests.support.policies import ALICE, BOB, EVE, USDC, eip1559, erc20_call, unsigned_bytes

    txs = [
        {"chainId": 1, "nonce": 0, "gasPrice": 2 * 10**9, "gas": 21_000, "to": BOB, "value": 5 * 10**17},
        {"type": 1, "chainId": 1, "nonce": 1, "gasPrice": 10**9, "gas": 30_000, "to": BOB, "value": 3,
         "accessList": [{"address": USDC, "storageKeys": ["0x" + "01" * 32]}]},
        eip1559(to=BOB, value=12_345, chain=1),
        eip1559(data=erc20_call("a9059cbb", ALICE, 7)),
        eip1559(data=erc20_call("095ea7b3", EVE, 2**256 - 1)),
        eip1559(to=BOB, data=bytes.fromhex("deadbeef") + b"\x00" * 32, value=9),
        eip1559(to=None, data=bytes.fromhex("6080604052")),
    ]
    return tuple(unsigned_bytes(tx) for tx in txs)


_RLP_ITEMS = st.one_of(
    st.binary(max_size=40),
    st.sampled_from((b"", b"\x00", b"\x00\x01", b"\x7f", b"\x80", b"\xff" * 32, (2**256).to_bytes(33, "big"),
                     b"\x01" * 20, b"\x01" * 21, b"\x01" * 19)),
    st.lists(st.binary(max_size=4), max_size=3),
)


@st.composite
def _rlp_mutated(draw: Any) -> bytes:
    """A seed transaction with 1..3 of its RLP items replaced, dropped, added or duplicated (re-encoded: the
    mutation reaches the field decoders, not only the RLP parser)."""
    import rlp

    raw = draw(st.sampled_from(_evm_seeds()))
    typed = raw[0] < 0xC0
    items = rlp.decode(raw[1:] if typed else raw)

    def positions(lst: list, out: list) -> list:
        for i, v in enumerate(lst):
            out.append((lst, i))
            if isinstance(v, list):
                positions(v, out)
        return out

    for _ in range(draw(st.integers(1, 3))):
        slots = positions(items, [])
        op = draw(st.integers(0, 3))
        if not slots:
            items.append(draw(_RLP_ITEMS))
            continue
        lst, i = draw(st.sampled_from(slots))
        if op == 0:
            del lst[i]
        elif op == 1:
            lst.insert(i, lst[i])
        else:
            lst[i] = draw(_RLP_ITEMS)
    prefix = raw[:1] if typed else b""
    if draw(st.integers(0, 5)) == 0:
        prefix = draw(st.sampled_from((b"", b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\x7f")))
    return prefix + rlp.encode(items)


def _evm_bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(byte_inputs(_evm_seeds()), _rlp_mutated(), _rlp_mutated())


_EVM_CHAINS = ("", "eip155:8453", "eip155:1", "eip155:0", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp")

_register(Harness("body_evm_tx", "intent_from_request: evm_tx", lambda: _body_cases("evm_tx", _evm_bodies(),
                                                                                       _EVM_CHAINS),
                  _decode_body, (MpcError,),
                  lambda: [BodyCase("evm_tx", b, "") for b in _evm_seeds()], examples=300))


# EIP-712 typed data

_EIP712_STRINGS = (
    "types", "domain", "message", "primaryType", "name", "type", "chainId", "verifyingContract", "salt", "version",
    "from", "to", "value", "validAfter", "validBefore", "nonce", "wallet", "contents", "EIP712Domain", "Person",
    "Person[]", "Person[2]", "Mail", "Mail[]", "TransferWithAuthorization", "ReceiveWithAuthorization", "Permit",
    "uint256", "uint8", "uint0", "uint257", "int256", "int8", "address", "bool", "bytes", "bytes1", "bytes32",
    "bytes33", "string", "string[]", "uint256[2]", "uint256[]", "uint256[" + str(2**256 - 1) + "]", "uint256[][]",
    "0x" + "a1" * 20, "0x" + "00" * 32, "0x" + "ff" * 33, "0x1",
)


@functools.cache
def _eip712_docs() -> tuple[Any, ...]:
    from tests.support.policies import ALICE, BOB, USDC, eip3009

    transfer = eip3009()
    receive = json.loads(json.dumps(transfer).replace("TransferWithAuthorization", "ReceiveWithAuthorization"))
    domain_types = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
    mail = {  # the EIP-712 example, with arrays, bytes and a small int
        "types": {
            "EIP712Domain": domain_types,
            "Person": [{"name": "name", "type": "string"}, {"name": "wallets", "type": "address[]"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person[]"},
                     {"name": "contents", "type": "string"}, {"name": "data", "type": "bytes"},
                     {"name": "n", "type": "int8"}, {"name": "flags", "type": "bool[2]"}],
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 8453, "verifyingContract": BOB},
        "message": {"from": {"name": "Cow", "wallets": [ALICE]}, "to": [{"name": "Bob", "wallets": [BOB, ALICE]}],
                    "contents": "Hello, Bob!", "data": "0x0102", "n": -5, "flags": [True, False]},
    }
    permit = {
        "types": {"EIP712Domain": domain_types,
                  "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                             {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                             {"name": "deadline", "type": "uint256"}]},
        "primaryType": "Permit",
        "domain": {"name": "USD Coin", "version": "2", "chainId": 8453, "verifyingContract": USDC},
        "message": {"owner": ALICE, "spender": BOB, "value": str(2**256 - 1), "nonce": 0, "deadline": NOW},
    }
    minimal = {"types": {"EIP712Domain": []}, "primaryType": "EIP712Domain", "domain": {}, "message": {}}
    return transfer, receive, mail, permit, minimal


_register(Harness("body_eip712", "intent_from_request: eip712",
                  lambda: _body_cases("eip712", json_inputs(_eip712_docs(), _EIP712_STRINGS),
                                      ("", "eip155:8453", "eip155:1")),
                  _decode_body, (MpcError,),
                  lambda: [BodyCase("eip712", render(d).encode(), "") for d in _eip712_docs()[:4]], examples=200))


# EIP-191 personal messages, raw digests and the formats a sign request cannot carry

_register(Harness("body_opaque", "intent_from_request: eip191, raw_digest (and unsignable formats)",
                  lambda: _body_cases(("eip191", "raw_digest", "eip191", "raw_digest", "json", "raw_batch"),
                                      st.binary(max_size=80) | st.binary(min_size=32, max_size=32),
                                      ("", "eip155:8453")),
                  _decode_body, (MpcError,),
                  lambda: [BodyCase("eip191", b"hello", "eip155:8453"), BodyCase("raw_digest", b"\x07" * 32, "")],
                  examples=100))


# Solana messages

_SOLANA = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"


@functools.cache
def _solana_world() -> dict[str, Any]:
    from solders import system_program
    from solders.compute_budget import ID as CB_ID
    from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
    from solders.hash import Hash
    from solders.instruction import CompiledInstruction
    from solders.message import Message, MessageV0, to_bytes_versioned
    from solders.pubkey import Pubkey
    from solders.system_program import TransferParams, transfer

    payer, dest, other = (Pubkey.from_bytes(hashlib.sha256(n).digest()) for n in (b"payer", b"dest", b"other"))
    blockhash = Hash.from_bytes(hashlib.sha256(b"blockhash").digest())
    ixs = [set_compute_unit_limit(1_000), set_compute_unit_price(2_000_000),
           transfer(TransferParams(from_pubkey=payer, to_pubkey=dest, lamports=123_456))]
    seeds = (
        bytes(Message.new_with_blockhash(ixs, payer, blockhash)),
        bytes(Message.new_with_blockhash(ixs[2:], payer, blockhash)),
        bytes(to_bytes_versioned(MessageV0.try_compile(payer, ixs[2:], [], blockhash))),
        bytes(Message.new_with_compiled_instructions(  # a transfer listing one account: solders panics on it
            1, 0, 1, [payer, system_program.ID], blockhash,
            [CompiledInstruction(1, struct.pack("<IQ", 2, 5), bytes([0]))])),
    )
    return {"keys": (payer, dest, system_program.ID, CB_ID, other), "blockhash": blockhash, "seeds": seeds,
            "other": other}


def _solana_data() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.integers(0, 2**64 - 1).map(lambda v: struct.pack("<IQ", 2, v)),  # a transfer
        st.builds(lambda t, rest: struct.pack("<I", t) + rest, st.integers(0, 13), st.binary(max_size=40)),
        st.integers(0, 2**32 - 1).map(lambda v: b"\x02" + struct.pack("<I", v)),  # compute unit limit
        st.integers(0, 2**64 - 1).map(lambda v: b"\x03" + struct.pack("<Q", v)),  # compute unit price
        st.binary(max_size=12),
    )


@st.composite
def _solana_built(draw: Any) -> bytes:
    """A message put together from parts: any header, keys (repeats allowed), instructions naming any index,
    transfer / compute-budget / other data, legacy or v0 (with or without lookup tables)."""
    from solders.instruction import CompiledInstruction
    from solders.message import (
        Message,
        MessageAddressTableLookup,
        MessageHeader,
        MessageV0,
        to_bytes_versioned,
    )

    world = _solana_world()
    keys = draw(st.lists(st.sampled_from(world["keys"]), max_size=5))
    header = (draw(st.integers(0, 3)), draw(st.integers(0, 2)), draw(st.integers(0, 3)))
    ixs = draw(st.lists(st.builds(CompiledInstruction, st.integers(0, 7), _solana_data(),
                                  st.lists(st.integers(0, 7), max_size=4).map(bytes)), max_size=4))
    try:
        if draw(st.booleans()):
            return bytes(Message.new_with_compiled_instructions(*header, keys, world["blockhash"], ixs))
        lookups = draw(st.lists(st.builds(MessageAddressTableLookup, st.just(world["other"]),
                                          st.binary(max_size=3), st.binary(max_size=3)), max_size=1))
        return bytes(to_bytes_versioned(MessageV0(MessageHeader(*header), keys, world["blockhash"], ixs, lookups)))
    except Exception:  # noqa: BLE001 - parts solders will not even put together
        return draw(st.sampled_from(world["seeds"]))


_register(Harness("body_solana_tx", "intent_from_request: solana_tx",
                  lambda: _body_cases("solana_tx", st.one_of(byte_inputs(_solana_world()["seeds"]), _solana_built(),
                                                             _solana_built()),
                                      ("", _SOLANA, "eip155:8453")),
                  _decode_body, (MpcError,),
                  lambda: [BodyCase("solana_tx", b, _SOLANA) for b in _solana_world()["seeds"][:3]], examples=250))


# Bitcoin PSBTs


@functools.cache
def _btc_world() -> dict[str, Any]:
    from embit.script import Script

    own = Script(b"\x51\x20" + hashlib.sha256(b"fuzz own output key").digest())
    scripts = (
        own,
        Script(b"\x51\x20" + hashlib.sha256(b"friend").digest()),  # P2TR
        Script(b"\x00\x14" + bytes(range(20))),  # P2WPKH
        Script(b"\x76\xa9\x14" + b"\x11" * 20 + b"\x88\xac"),  # P2PKH
        Script(b"\xa9\x14" + b"\x22" * 20 + b"\x87"),  # P2SH
        Script(b"\x6a\x04abcd"),  # OP_RETURN
        Script(b"\x52\x20" + b"\x00" * 32),  # witness v2
        Script(b""),
    )
    seeds = (_psbt(own, (60_000,), ((scripts[2], 50_000),)),
             _psbt(own, (40_000, 30_000, 20_000), ((scripts[1], 25_000), (scripts[2], 10_000))),
             _psbt(own, (10_000,), ((scripts[3], 8_000),), sighash=1))
    return {"own": own, "scripts": scripts, "seeds": seeds}


def _psbt(spk: Any, amounts: tuple[int, ...], pays: tuple[tuple[Any, int], ...], fee: int = 1_000,
          sighash: int | None = None) -> bytes:
    """tests/support/policies.py psbt_bytes, with every input's sighash type set to `sighash`."""
    from tests.support.policies import psbt_bytes

    def edit(psbt: Any) -> None:
        for inp in psbt.inputs:
            inp.sighash_type = sighash

    return psbt_bytes(spk, amounts, pays, fee, edit=edit)


_BTC_AMOUNTS = st.sampled_from((0, 1, 546, 60_000, 21_000_000 * 10**8, 21_000_000 * 10**8 + 1, 2**63 - 1,
                                2**64 - 1)) | st.integers(0, 10**6)


@st.composite
def _psbt_built(draw: Any) -> bytes:
    """A PSBT put together from parts: inputs whose witness_utxo is missing, foreign or disagreeing, any sighash
    type, script-path or finalised fields, a previous transaction; outputs to every kind of script, any amount."""
    from embit.psbt import PSBT
    from embit.script import Script, Witness
    from embit.transaction import Transaction, TransactionInput, TransactionOutput

    world = _btc_world()
    own, scripts = world["own"], world["scripts"]
    try:
        amounts = draw(st.lists(_BTC_AMOUNTS, min_size=1, max_size=3))
        vin = [TransactionInput(hashlib.sha256(b"prev %d" % i).digest(), draw(st.integers(0, 2)))
               for i in range(len(amounts))]
        vout = [TransactionOutput(v, s) for s, v in
                draw(st.lists(st.tuples(st.sampled_from(scripts), _BTC_AMOUNTS), max_size=3))]
        psbt = PSBT(Transaction(vin=vin, vout=vout))
        for inp, a in zip(psbt.inputs, amounts):
            inp.witness_utxo = TransactionOutput(a, own)
            what = draw(st.integers(0, 9))
            if what == 0:
                inp.witness_utxo = None
            elif what == 1:
                inp.witness_utxo = TransactionOutput(a, draw(st.sampled_from(scripts)))
            elif what == 2:
                inp.sighash_type = draw(st.sampled_from((0, 1, 2, 3, 0x81, 0x83, 0xFF, 2**32 - 1)))
            elif what == 3:
                inp.taproot_merkle_root = draw(st.binary(min_size=32, max_size=32))
            elif what == 4:
                inp.final_scriptwitness = Witness([b"\x01" * 64])
            elif what == 5:
                inp.non_witness_utxo = Transaction(vin=[TransactionInput(b"\x33" * 32, 0)],
                                                   vout=[TransactionOutput(a, own)] * draw(st.integers(0, 2)))
            elif what == 6:
                inp.redeem_script = Script(b"\x00\x14" + b"\x44" * 20)
        return psbt.serialize()
    except Exception:  # noqa: BLE001 - parts embit will not serialise (amounts over 64 bits, ...)
        return draw(st.sampled_from(world["seeds"]))


_BTC_CHAINS = ("bip122:000000000019d6689c085ae165831e93", "bip122:00000000da84f2bafbbc53dee25a72ae",
               "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", "", "eip155:8453")

_register(Harness("body_btc_psbt", "intent_from_request: btc_psbt",
                  lambda: _body_cases("btc_psbt", st.one_of(byte_inputs(_btc_world()["seeds"]), _psbt_built(),
                                                            _psbt_built()), _BTC_CHAINS),
                  _decode_body, (MpcError,),
                  lambda: [BodyCase("btc_psbt", b, _BTC_CHAINS[0]) for b in _btc_world()["seeds"]], examples=200))


# ------------------------------------------------------------------------------------------------------------
# raw_batch bodies (node/raw_batch.py decode_raw_batch)


@functools.cache
def _batch_seeds() -> tuple[bytes, ...]:
    from mpc_ray.node.raw_batch import encode_raw_batch

    return (encode_raw_batch([b"\x01" * 32]), encode_raw_batch([b"\x01" * 32], b""),
            encode_raw_batch([b"a", b"", b"\x02" * 70], b"\x03" * 32))


@st.composite
def _batch_built(draw: Any) -> bytes:
    from mpc_ray.node.raw_batch import MAX_MESSAGE_BYTES, MAX_MESSAGES

    version = draw(st.sampled_from((1, 1, 0, 2, 255)))
    tweak_len = draw(st.sampled_from((0xFF, 0, 32, 1, 31, 33, 254)))
    tweak = b"" if tweak_len == 0xFF and draw(st.booleans()) else draw(st.binary(max_size=40))
    messages = draw(st.lists(st.binary(max_size=40), max_size=4))
    count = draw(st.sampled_from((len(messages),) * 3 + (0, 1, MAX_MESSAGES, MAX_MESSAGES + 1, 2**32 - 1)))
    parts = []
    for m in messages:
        size = len(m) if draw(st.integers(0, 3)) else draw(st.sampled_from(
            (0, len(m) + 1, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 1, 2**32 - 1)))
        parts.append(struct.pack(">I", size) + m)
    return bytes([version, tweak_len]) + tweak + struct.pack(">I", count) + b"".join(parts)


def _decode_batch(body: bytes) -> object:
    from mpc_ray.node.raw_batch import decode_raw_batch, encode_raw_batch

    batch = decode_raw_batch(body)
    assert encode_raw_batch(list(batch.messages), batch.tap_tweak) == body, "a non-canonical batch was accepted"
    return batch


_register(Harness("raw_batch", "node.raw_batch.decode_raw_batch",
                  lambda: st.one_of(byte_inputs(_batch_seeds()), _batch_built(), _batch_built()), _decode_batch,
                  (InvalidInput,), lambda: list(_batch_seeds()), examples=200))


# ------------------------------------------------------------------------------------------------------------
# policies, principal registries, strict JSON (node/policy.py, node/principals.py)

_POLICY_STRINGS = (
    "key_id", "principal_id", "allowed_chains", "allowed_tx_types", "recipient_allowlist", "recipient_denylist",
    "contract_calls", "asset_limits", "allow_unlisted_assets", "rate_limits", "time_windows", "not_before",
    "not_after", "compromised_holders", "derivation_paths", "any_derivation_path", "version", "asset", "per_tx",
    "windows", "window_s", "max_amount", "max_requests", "days", "start", "end", "contract", "selectors",
    "eip155:8453/native", "eip155:8453/erc20:0x" + "a1" * 20, "eip155:8453/erc20:0x", "native_transfer",
    "raw_digest", "typed_data", "24:00", "23:59", "00:00", "24:01", "0xdeadbeef", "0xDEADBEEF", "m/0/3",
)


def _decode_policy(data: bytes | str) -> object:
    from mpc_ray.node.policy import Policy, PolicyEngine, SpendState

    policy = Policy.from_bytes(data)
    assert Policy.from_bytes(policy.to_bytes()) == policy, "a policy does not survive the store (to_bytes)"
    policy.validate_for_key(2, 3)  # PolicyConfigError (InvalidInput) where its caps cannot hold
    engine = PolicyEngine(policy, SpendState(), threshold=2, parties=3)
    for intent in _sample_intents():
        engine.evaluate(intent, NOW)
    return policy


@functools.cache
def _sample_intents() -> tuple[Any, ...]:
    from mpc_ray.node.policy import decode_evm_transaction, decode_solana_message

    return (decode_evm_transaction(_evm_seeds()[3]), decode_evm_transaction(_evm_seeds()[5]),
            decode_solana_message(_solana_world()["seeds"][0], _SOLANA))


def _policy_inputs() -> st.SearchStrategy[bytes | str]:
    docs = [json.loads(p.to_bytes()) for p in _policies()]
    raw = json_inputs(docs, _POLICY_STRINGS)
    # the documented str form too, lone surrogates included (bytes that are not UTF-8 read with surrogateescape)
    return st.one_of(raw, raw.map(lambda b: b.decode("utf-8", "surrogateescape")))


_register(Harness("policy", "node.policy.Policy.from_bytes", _policy_inputs, _decode_policy, (InvalidInput,),
                  lambda: [p.to_bytes() for p in _policies()], examples=200))


def _decode_registry(data: bytes) -> object:
    from mpc_ray.node.principals import PrincipalRegistry

    registry = PrincipalRegistry.from_bytes(data)
    assert PrincipalRegistry.from_bytes(registry.to_bytes()) == registry, "a registry does not survive the store"
    return registry


def _registry_docs() -> list[Any]:
    from mpc_ray.node.principals import PrincipalRegistry

    small = PrincipalRegistry(principals=_registry().principals[:1])
    return [json.loads(_registry().to_bytes()), json.loads(small.to_bytes())]


_register(Harness("registry", "node.principals.PrincipalRegistry.from_bytes",
                  lambda: json_inputs(_registry_docs(), ("principals", "admin_quorum", "version", "id", "role",
                                                         "verify_key", "admin", "agent", "operator", "00" * 32,
                                                         "ff" * 32, "root", "bot")),
                  _decode_registry, (InvalidInput,), lambda: [render(d).encode() for d in _registry_docs()],
                  examples=150))


def _decode_strict_json(data: bytes) -> object:
    from mpc_ray.node.principals import parse_strict_json

    value = parse_strict_json(data)
    assert value == json.loads(data.decode("utf-8")), "the strict parser read another value than json.loads"
    return value


def _strict_json_docs() -> list[Any]:
    return [*_request_json_docs(), *(json.loads(p.to_bytes()) for p in _policies()), *_eip712_docs(),
            {"a": ["[[[", {"b": "\\"}]}, [1, -0.0, 1e300, "\u00e9\ud83d\ude00"]]


_register(Harness("strict_json", "node.principals.parse_strict_json",
                  lambda: st.one_of(json_inputs(_strict_json_docs(), INTERESTING_STRINGS), st.binary(max_size=64)),
                  _decode_strict_json, (InvalidInput,), lambda: [render(d).encode() for d in _strict_json_docs()],
                  examples=200))


# ------------------------------------------------------------------------------------------------------------
# backups (node/backup.py open_backup, with the passphrase known: blobs mutated, and payloads sealed anew)

PASSPHRASE = "fuzz passphrase, not secret"
_MAX_FUZZ_OPS = 2
_MAX_FUZZ_MEM = 1 << 20


@dataclass(frozen=True)
class BackupCase:
    blob: bytes


@functools.lru_cache(maxsize=256)
def _backup_key(salt: bytes, ops: int, mem: int) -> bytes:
    from mpc_ray.node.backup import _key

    return _key(PASSPHRASE.encode(), salt, ops, mem)


def _seal_backup(header: bytes, plain: bytes) -> bytes:
    """`header || SecretBox(plain)` under the key the header's salt and costs derive from the passphrase."""
    import nacl.secret

    from mpc_ray.node.backup import _HEADER, MAGIC, _SALT

    ops, mem = _HEADER.unpack(header[len(MAGIC):len(MAGIC) + _HEADER.size])
    salt = header[len(MAGIC) + _HEADER.size:len(MAGIC) + _HEADER.size + _SALT]
    return header + bytes(nacl.secret.SecretBox(_backup_key(salt, ops, mem)).encrypt(plain))


@functools.cache
def _backup_world() -> dict[str, Any]:
    from mpc_ray.node.backup import _HEADER, KDF_LIMITS, MAGIC, BackupPayload, _Entry
    from mpc_ray.node.identity import NodeIdentity
    from mpc_ray.protocols.wire import encode

    ops, mem = KDF_LIMITS["min"]  # the KDF at its cheapest: thousands of backups a second
    header = MAGIC + _HEADER.pack(ops, mem) + hashlib.sha256(b"salt").digest()[:16]
    epoch = json.dumps({"epoch": 2, "scheme": "ecdsa-secp256k1", "digest": "00" * 32, "member": True}).encode()
    entries = [_Entry("identity", NodeIdentity.generate(1).to_secret_bytes()), _Entry("epoch-k1", epoch),
               _Entry("principals", _registry().to_bytes()), _Entry("policy.k1.bot", _policies()[0].to_bytes()),
               _Entry("key-k1", b"\x93\x01\x02\x03")]
    payload = BackupPayload(header, 1, entries, [bytes(32), b"\x01" * 32], [b"\x02" * 32])
    plain = encode(payload)
    return {"header": header, "payload": payload, "plain": plain, "blob": _seal_backup(header, plain),
            "epoch": json.loads(epoch)}


def _clamp_costs(blob: bytes) -> bytes:
    """Lower KDF costs that a mutation left in the allowed range but above what a fuzz run can afford. The range is
    bounded by design (argon2id "sensitive": 1 GiB, seconds): that cost is the documented price of any backup,
    so here it would only slow the search down."""
    from mpc_ray.node.backup import _HEADER, _MAX_MEM, _MAX_OPS, KDF_LIMITS, MAGIC

    at = len(MAGIC)
    if len(blob) < at + _HEADER.size or not blob.startswith(MAGIC):
        return blob
    ops, mem = _HEADER.unpack(blob[at:at + _HEADER.size])
    if ops <= _MAX_OPS and mem <= _MAX_MEM and (ops > _MAX_FUZZ_OPS or mem > _MAX_FUZZ_MEM):
        return blob[:at] + _HEADER.pack(*KDF_LIMITS["min"]) + blob[at + _HEADER.size:]
    return blob


_BACKUP_NAMES = ("identity", "epoch-k1", "epoch-k2", "epoch-", "principals", "policy.k1.bot", "policy.",
                 "presig-k1." + "ab" * 32, "key-k1", "")


@st.composite
def _backup_cases(draw: Any) -> BackupCase:
    from mpc_ray.node.backup import _HEADER, MAGIC, BackupPayload, _Entry
    from mpc_ray.protocols.wire import encode

    world = _backup_world()
    how = draw(st.integers(0, 4))
    if how == 0:  # the blob itself damaged
        return BackupCase(_clamp_costs(draw(mutated_bytes([world["blob"]]))))
    header = world["header"]
    if draw(st.integers(0, 5)) == 0:  # another header, sealed consistently (or not: payload.header disagrees)
        ops, mem = draw(st.integers(1, _MAX_FUZZ_OPS)), draw(st.integers(8192, _MAX_FUZZ_MEM))
        header = MAGIC + _HEADER.pack(ops, mem) + draw(st.binary(min_size=16, max_size=16))
    if how == 1:  # the payload's bytes damaged, then sealed under the passphrase
        plain = draw(mutated_bytes([world["plain"]]))
    elif how == 2:  # its msgpack tree edited
        plain = draw(_msgpack_mutated(world["plain"]))
    else:  # entries of any name and content (what restore reads first: epochs, registry, policies)
        docs = [world["epoch"], json.loads(_registry().to_bytes()), json.loads(_policies()[0].to_bytes())]
        data = st.one_of(json_inputs(docs, ("epoch", "version", "scheme", "member")), st.binary(max_size=40))
        entries = draw(st.lists(st.builds(_Entry, st.sampled_from(_BACKUP_NAMES) | st.text(max_size=12), data),
                                max_size=4))
        payload = BackupPayload(header if draw(st.integers(0, 9)) else world["header"],
                                draw(st.sampled_from((1, 0, 2, -1, 2**64))), entries,
                                draw(st.lists(st.binary(max_size=33), max_size=3)),
                                draw(st.lists(st.binary(max_size=33), max_size=3)))
        plain = encode(payload)
    return BackupCase(_seal_backup(header, plain))


def _open_backup(case: BackupCase) -> object:
    from mpc_ray.node.backup import _admin_version, _epochs, open_backup

    payload = open_backup(case.blob, PASSPHRASE)
    entries = {e.name: e.data for e in payload.entries}
    _epochs(entries)  # what HolderBackup.restore reads from the entries before it compares anything
    for name, data in entries.items():
        _admin_version(name, data)
    return payload


_register(Harness("backup", "node.backup.open_backup (+ the entries restore reads first)", _backup_cases,
                  _open_backup, (MpcError,), lambda: [BackupCase(_backup_world()["blob"])], examples=150))


# ------------------------------------------------------------------------------------------------------------
# gateway bodies (requests/http.py): the sign envelope a gateway parses, and the answers a remote client parses


def _envelope_docs() -> list[Any]:
    return [{"request": json.loads(r.model_dump_json())} for r in _requests()]


def _parse_sign_envelope(data: bytes) -> object:
    from mpc_ray.requests.http import SignEnvelope

    envelope = SignEnvelope.parse(data)
    again = SignEnvelope.parse(envelope.model_dump_json().encode())
    assert again == envelope, "a parsed envelope does not survive its own serialisation (the remote client's)"
    return envelope


_register(Harness("gateway_sign_envelope", "requests.http.SignEnvelope.parse",
                  lambda: json_inputs(_envelope_docs(), ("request", *_REQUEST_STRINGS)), _parse_sign_envelope,
                  (InvalidInput,), lambda: [render(d).encode() for d in _envelope_docs()], examples=200))


@dataclass(frozen=True)
class AnswerCase:
    expect: str  # "key" (GET /v1/keys/<id>) or "signature" (POST /v1/sign)
    status: int
    body: bytes


@functools.cache
def _answer_docs() -> dict[str, list[Any]]:
    from mpc_ray.crypto.secp256k1 import Point
    from mpc_ray.requests.http import KeyOut, SignatureOut, error_response
    from mpc_ray.types import KeyInfo, Signature

    pub = Point.base_mul(7).to_bytes()
    keys = [KeyOut.of(KeyInfo(key_id="k1", scheme="ecdsa-secp256k1", public_key=pub, threshold=2, parties=3,
                              chain_code=b"\x05" * 32)),
            KeyOut.of(KeyInfo(key_id="t1", scheme="schnorr-bip340", public_key=pub[1:], threshold=1, parties=1))]
    sigs = [SignatureOut.of(Signature.ecdsa(5, 7, 1)),
            SignatureOut.of(Signature("schnorr-bip340", b"\x01" * 128)),
            SignatureOut.of(Signature("eddsa-ed25519", b"\x02" * 64))]
    errors = [error_response(e)[1] for e in (InvalidInput("unknown key k9"), ProtocolAbort(2, "pi_enc.range_z1"))]
    dump = lambda models: [json.loads(m.model_dump_json()) for m in models]  # noqa: E731
    return {"key": dump(keys), "signature": dump(sigs), "error": dump(errors)}


_STATUSES = (200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 409, 413, 418, 500, 502, 503, 504, 599)


def _answer_cases() -> st.SearchStrategy[AnswerCase]:
    docs = _answer_docs()
    strings = ("error", "message", "rule", "culprit", "check", "key_id", "scheme", "public_key", "threshold",
               "parties", "chain_code", "signature", "recovery_id", "ecdsa-secp256k1", "schnorr-bip340",
               "eddsa-ed25519", "PolicyDenied", "InvalidInput", "ProtocolAbort", "00" * 64, "ff" * 33)
    bodies = json_inputs(docs["key"] + docs["signature"] + docs["error"], strings)
    return st.builds(AnswerCase, st.sampled_from(("key", "signature")), st.sampled_from(_STATUSES),
                     st.one_of(bodies, st.binary(max_size=32)))


def _read_answer(case: AnswerCase) -> object:
    import httpx

    from mpc_ray.client.remote import RemoteSigner
    from mpc_ray.requests.http import KeyOut, SignatureOut

    payload = RemoteSigner._answer(httpx.Response(case.status, content=case.body))
    if case.expect == "key":
        return RemoteSigner._parse(KeyOut, payload).to_key_info()
    return RemoteSigner._parse(SignatureOut, payload).to_signature()


def _answer_seeds() -> list[AnswerCase]:
    docs = _answer_docs()
    return [AnswerCase(kind, 200, render(d).encode()) for kind in ("key", "signature") for d in docs[kind]]


_register(Harness("gateway_answers", "client.remote: a gateway's answers (KeyOut, SignatureOut, ErrorBody)",
                  _answer_cases, _read_answer, (MpcError,), _answer_seeds, examples=150))


__all__ = ["HARNESSES", "TIME_BOUND_S", "Harness", "TooSlow", "UntypedError", "check"]

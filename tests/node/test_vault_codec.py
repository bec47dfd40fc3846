"""The vault's wire format (node/vault_codec.py): every type that crosses round-trips exactly, the method table is
the holder's, and whatever does not fit is refused with InvalidInput."""

from __future__ import annotations

import inspect
import socket
import struct
import threading

import msgpack
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc_ray import errors
from mpc_ray.errors import InvalidInput, MpcError, PolicyDenied, ProtocolAbort
from mpc_ray.node import vault_codec as vc
from mpc_ray.node.actor import ENTRY_POINTS
from mpc_ray.node.envelope import SealedEnvelope
from mpc_ray.node.holder import BeginRequest, ShareHolder, StepResult
from mpc_ray.node.identify import IdentifyReport, PresignFailed
from mpc_ray.protocols.dkls23.sign import OnlineShare
from mpc_ray.node.identity import NodeIdentityPublic
from mpc_ray.node.principals import RequestKind
from mpc_ray.requests.grants import GrantItem, SessionGrant
from tests.support.authz import TestPrincipals

PRINCIPALS = TestPrincipals()
REQUESTS = [PRINCIPALS.raw("k1", [b"\x01" * 32]), PRINCIPALS.approval(RequestKind.CREATE_KEY, key_id="k1", threshold=2)]


def _identity(party: int) -> NodeIdentityPublic:
    return NodeIdentityPublic(party, bytes(nacl.signing.SigningKey.generate().verify_key),
                              bytes(nacl.signing.SigningKey.generate().verify_key.to_curve25519_public_key()))


IDENTITIES = [_identity(i) for i in (1, 2, 3)]

ints = st.one_of(st.integers(-(2**70), 2**70), st.integers(-(2**8000), 2**8000))
scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(allow_nan=False), st.text(max_size=20),
                    st.binary(max_size=40))
keys = st.one_of(st.text(max_size=8), st.integers(-5, 2**80), st.binary(max_size=8))
envelopes = st.builds(SealedEnvelope, st.binary(min_size=1, max_size=16), st.integers(0, 9), st.integers(1, 9),
                      st.integers(0, 9), st.just("ecdsa.presign"), st.binary(max_size=64), st.binary(max_size=64),
                      st.binary(max_size=32))
grant_items = st.builds(GrantItem, st.text(min_size=1, max_size=8), st.binary(min_size=1, max_size=8),
                        st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple), st.binary(max_size=16))
objects = st.one_of(
    envelopes,
    grant_items,
    st.builds(SessionGrant, st.lists(grant_items, max_size=3).map(tuple), st.integers(0, 2**40), st.binary(max_size=64)),
    st.builds(IdentifyReport, st.one_of(st.none(), st.integers(1, 9)), st.text(max_size=10), st.text(max_size=10)),
    st.builds(PresignFailed, st.text(max_size=10)),
    st.builds(OnlineShare, st.integers(0, 2**256), st.integers(0, 2**256)),  # a DKLs23 key's online answer
    st.sampled_from(IDENTITIES),
    st.sampled_from(REQUESTS),
    st.builds(PolicyDenied, st.text(max_size=10), st.text(max_size=10)),
    st.builds(ProtocolAbort, st.integers(1, 9), st.text(max_size=10), st.text(max_size=10),
              st.one_of(st.none(), st.integers(1, 9))),
    st.builds(errors.AlreadyConsumed, st.binary(max_size=32)),
    st.builds(errors.LifecycleIncomplete, st.text(max_size=5), st.integers(0, 9), st.lists(st.integers(1, 9))),
)
values = st.recursive(
    st.one_of(scalars, objects),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
        st.builds(BeginRequest, st.text(min_size=1, max_size=8), st.binary(min_size=1, max_size=8),
                  st.lists(st.integers(1, 9), max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        st.builds(StepResult, st.binary(min_size=1, max_size=8), st.lists(envelopes, max_size=2), st.booleans(),
                  inner),
    ),
    max_leaves=20,
)


def _same(a, b) -> bool:
    """Equal, with the same types all the way down (a tuple is not a list, True is not 1); errors by type and
    fields."""
    if isinstance(a, BaseException):
        return type(a) is type(b) and str(a) == str(b) and vars(a) == vars(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, (BeginRequest, StepResult)):
        return all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return a == b


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_value_round_trips_with_its_types(value):
    assert _same(value, vc.unpack(vc.pack(value), allow_errors=True))


def test_every_registered_type_and_error_is_covered():
    """The strategies above build each registered type; a type added to the registry must be added there too."""
    assert set(vc.TYPES) == {"BeginRequest", "StepResult", "SealedEnvelope", "NodeIdentityPublic", "GrantItem",
                             "SessionGrant", "IdentifyReport", "PresignFailed", "SignedRequest", "OnlineShare"}
    for name, cls in vc.ERRORS.items():  # each error of mpc_ray.errors crosses as itself
        exc = cls(*_error_args(cls))
        back = vc.unpack(vc.pack([exc]), allow_errors=True)[0]
        assert _same(exc, back), name


def _error_args(cls):
    try:
        signature = inspect.signature(cls)
    except ValueError:  # the builtin Exception constructor: a message
        return ["a message"]
    params = [p for p in signature.parameters.values()
              if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    sample = {"culprit": 2, "party": 3, "epoch": 4, "parties": [1, 2], "reporter": 1, "id": b"\x07" * 32}
    return [sample.get(p.name, f"{p.name}-value") for p in params] or ["a message"]


def test_method_table_is_the_holders_entry_points():
    assert set(vc.METHODS) == set(ENTRY_POINTS)
    for name, spec in vc.METHODS.items():
        # Ray adds `_ray_trace_ctx` to an actor class's methods once an earlier test turned tracing on in this process
        params = [p for p in inspect.signature(getattr(ShareHolder, name)).parameters.values()
                  if p.name not in ("self", "_ray_trace_ctx")]
        assert [n for n, _ in spec.params] == [p.name for p in params], name
        assert spec.required == sum(p.default is inspect.Parameter.empty for p in params), name


def test_bind_puts_keywords_in_place_and_refuses_what_python_would():
    request = REQUESTS[0]
    assert vc.bind("backup", (request, "pw"), {"kdf": "min"}) == [request, "pw", "min"]
    assert vc.bind("begin", ([],), {}) == [[]]
    for args, kwargs in [((), {}), ((request,), {"kdf": "min"}), ((request, "pw"), {"passphrase": "x"}),
                         ((request, "pw", "min", 4), {}), ((request, "pw"), {"nope": 1})]:
        with pytest.raises(InvalidInput):
            vc.bind("backup", args, kwargs)
    with pytest.raises(InvalidInput, match="unknown vault method"):
        vc.bind("key", ("k1",), {})  # ShareHolder.key hands out a share: no entry point


def _request(method, args) -> bytes:
    return msgpack.packb([7, method, vc.pack(args)], use_bin_type=True)


@pytest.mark.parametrize("method,args,where", [
    ("key", ["k1"], "unknown vault method"),
    ("__init__", [], "unknown vault method"),
    ("presignature_count", [5], "presignature_count.key_id"),
    ("presignature_count", [], "arguments"),
    ("presignature_count", ["a", "b"], "arguments"),
    ("sign_request", [{"principal_id": "x"}, b"p" * 32], "sign_request.request"),
    ("partial_sign", [REQUESTS[0], [[0, b"p" * 32]]], "partial_sign.items[0]"),  # a list where a tuple goes
    ("partial_sign", [REQUESTS[0], [(True, b"p" * 32)]], "partial_sign.items[0][0]"),  # a bool is not an int
    ("begin", [[BeginRequest("presign", b"s", [1], {})], IDENTITIES[0]], "begin.grant"),
    ("set_directory", [[IDENTITIES[0], "x"]], "set_directory.entries[1]"),
])
def test_arguments_of_the_wrong_type_are_refused(method, args, where):
    with pytest.raises(InvalidInput, match=where.replace("[", r"\[").replace("]", r"\]")) as info:
        vc.decode_request(_request(method, args))
    assert info.value.call_id == 7  # answered by the request's own id


def test_well_typed_requests_decode():
    grant = PRINCIPALS.grant([BeginRequest("presign", b"s", [1, 2], {"key_id": "k1"})])
    for method, args in [("ping", []), ("begin", [[BeginRequest("presign", b"s", [1, 2], {"key_id": "k1"})], grant]),
                         ("sign_requests", [[(REQUESTS[0], b"p" * 32)]]), ("set_directory", [IDENTITIES, None]),
                         ("lifecycle_commit", ["k1", 2, b"d" * 32, {1: b"c", 2: b"c"}])]:
        call_id, got_method, got = vc.decode_request(vc.encode_request(3, method, args))
        assert (call_id, got_method) == (3, method) and _same(got, args)


@pytest.mark.parametrize("body,match", [
    (b"\xc1", "undecodable request"),
    (msgpack.packb([1, "ping"]), "a request is"),
    (msgpack.packb(["1", "ping", vc.pack([])]), "a request is"),
    (msgpack.packb([1, "ping", []]), "a request is"),  # the arguments are packed apart
    (_request("ping", [msgpack.ExtType(9, b"")]), "unknown extension"),
    (msgpack.packb([1, "ping", msgpack.packb([msgpack.ExtType(3, msgpack.packb(["ShareHolder", 1, "/"]))])]),
     "unknown type"),
    (msgpack.packb([1, "ping", msgpack.packb([msgpack.ExtType(4, msgpack.packb(["InvalidInput", ["x"]]))])]),
     "errors cross only in answers"),
    (msgpack.packb([1, "ping", msgpack.packb([msgpack.ExtType(1, b"\x00" + b"\xff" * 2049)])]), "malformed integer"),
    (msgpack.packb([1, "ping", msgpack.packb([msgpack.ExtType(3, msgpack.packb(["SealedEnvelope", b"s"]))])]),
     "SealedEnvelope has 8 fields"),
    (msgpack.packb([1, "ping", msgpack.packb([msgpack.ExtType(3, msgpack.packb(["SignedRequest", b"{}"]))])]),
     "malformed signed request"),
    (msgpack.packb([1, "ping", msgpack.packb([msgpack.ExtType(3, msgpack.packb(
        ["NodeIdentityPublic", 1, b"\x00" * 32, b"\x00" * 31]))])]), "box_key"),
])
def test_malformed_requests_are_refused(body, match):
    with pytest.raises(InvalidInput, match=match):
        vc.decode_request(body)


def test_nesting_is_bounded():
    deep = ()
    for _ in range(vc.MAX_DEPTH + 5):
        deep = (deep,)
    with pytest.raises(InvalidInput, match="nest deeper"):
        vc.unpack(vc.pack(deep))
    arrays = b"\x91" * 100_000 + b"\xc0"  # plain arrays 100,000 deep: msgpack's own bound refuses them
    with pytest.raises(InvalidInput):
        vc.unpack(arrays)


def test_answers_carry_typed_errors_and_checked_values():
    abort = ProtocolAbort(2, "presign.pi_enc.range_z1", "bad proof", 3)
    ok, err = vc.decode_response(vc.encode_error(5, abort), 5, "step")
    assert not ok and _same(abort, err) and (err.culprit, err.check, err.reporter) == (2, abort.check, 3)
    ok, value = vc.decode_response(vc.encode_ok(5, [(1, b"r"), PolicyDenied("policy.cap", "over")]), 5,
                                   "sign_requests")
    assert ok and value[0] == (1, b"r") and isinstance(value[1], PolicyDenied) and value[1].rule == "policy.cap"
    ok, err = vc.decode_response(vc.encode_error(0, InvalidInput("frame too large")), 5, "ping")
    assert not ok and isinstance(err, InvalidInput)  # a refusal before the vault read an id
    ok, err = vc.decode_response(vc.pack([5, False, msgpack.ExtType(4, vc.pack(["", "KeyError"]))]), 5, "ping")
    assert not ok and type(err) is MpcError and "KeyError" in str(err)
    with pytest.raises(InvalidInput, match="another request"):
        vc.decode_response(vc.encode_ok(4, 1), 5, "ping")
    with pytest.raises(InvalidInput, match="ping answer"):
        vc.decode_response(vc.encode_ok(5, "1"), 5, "ping")
    with pytest.raises(InvalidInput, match="unknown error type"):
        vc.decode_response(vc.pack([5, False, msgpack.ExtType(4, vc.pack(["SystemExit", []]))]), 5, "ping")


def test_unencodable_values_are_refused():
    for value in (object(), {1, 2}, ShareHolder, lambda: 0):
        with pytest.raises(TypeError):
            vc.pack(value)


def test_frames_are_bounded_and_whole():
    a, b = socket.socketpair()
    with a, b:
        vc.send_frame(a, b"hello")
        assert vc.recv_frame(b) == b"hello"
        with pytest.raises(InvalidInput, match="at most"):
            vc.send_frame(a, b"x" * 11, max_frame=10)
        a.sendall(struct.pack(">I", 11) + b"x" * 11)
        with pytest.raises(InvalidInput, match="over the limit"):
            vc.recv_frame(b, max_frame=10)
        b.recv(11)
        a.sendall(struct.pack(">I", 10) + b"x" * 4)  # a body that never comes
        with pytest.raises(InvalidInput, match="truncated frame"):
            vc.recv_frame(b, body_timeout_s=0.2)
        a.sendall(struct.pack(">I", 10)[:2])
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(InvalidInput, match="truncated frame header"):
            vc.recv_frame(b)
    c, d = socket.socketpair()
    with c, d:
        threading.Thread(target=c.close).start()
        assert vc.recv_frame(d) is None  # closed between frames

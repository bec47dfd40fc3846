"""Node identity keys and sealed envelopes: round trips, tampering, confidentiality, replay."""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace

import nacl.exceptions
import nacl.public
import nacl.signing
import pytest

from mpc_ray.errors import InvalidInput, ProtocolAbort
from mpc_ray.node.envelope import BROADCAST, SealedEnvelope, open_envelope, seal
from mpc_ray.node.identity import NodeIdentity, NodeIdentityPublic
from mpc_ray.protocols.base import Envelope
from mpc_ray.protocols.frost.dkg import DkgParty
from mpc_ray.sim.router import run_parties

PROTO = "frost.dkg"
SID = b"session-1"


@pytest.fixture(scope="module")
def ids() -> dict[int, NodeIdentity]:
    return {i: NodeIdentity.generate(i) for i in (1, 2, 3)}


@pytest.fixture(scope="module")
def directory(ids: dict[int, NodeIdentity]) -> dict[int, NodeIdentityPublic]:
    return {i: ident.public() for i, ident in ids.items()}


def _broadcast(ids: dict[int, NodeIdentity], payload: bytes = b"hello all") -> SealedEnvelope:
    return seal(ids[1], Envelope(SID, 1, 1, None, payload), PROTO, None)


def _direct(
    ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic], payload: bytes = b"secret share for 2"
) -> SealedEnvelope:
    return seal(ids[1], Envelope(SID, 2, 1, 2, payload), PROTO, directory[2])


def _open(sealed: SealedEnvelope, me: NodeIdentity, directory: dict[int, NodeIdentityPublic]) -> Envelope:
    return open_envelope(sealed, me=me, directory=directory, expected_protocol=PROTO)


def _abort(sealed: SealedEnvelope, me: NodeIdentity, directory: dict[int, NodeIdentityPublic]) -> ProtocolAbort:
    with pytest.raises(ProtocolAbort) as info:
        _open(sealed, me, directory)
    return info.value


def _flip(data: bytes, i: int = 0) -> bytes:
    b = bytearray(data)
    b[i] ^= 0x01
    return bytes(b)


# identity ---------------------------------------------------------------------------------------------------


def test_identity_public_and_signature(ids: dict[int, NodeIdentity]) -> None:
    ident = ids[1]
    pub = ident.public()
    assert pub.party == 1 and len(pub.verify_key) == 32 and len(pub.box_key) == 32
    sig = ident.sign(b"data")
    assert len(sig) == 64
    nacl.signing.VerifyKey(pub.verify_key).verify(b"data", sig)  # a standard Ed25519 signature
    assert pub.verify(b"data", sig) and not pub.verify(b"datA", sig) and not pub.verify(b"data", _flip(sig))


def test_identity_secret_round_trip_and_validation(ids: dict[int, NodeIdentity]) -> None:
    blob = ids[2].to_secret_bytes()
    again = NodeIdentity.from_secret_bytes(2, blob)
    assert again.public() == ids[2].public()
    assert ids[2].public().verify(b"x", again.sign(b"x"))
    for bad in (b"", blob[:-1], b"\x09" + blob[1:], "text"):
        with pytest.raises(InvalidInput):
            NodeIdentity.from_secret_bytes(2, bad)  # type: ignore[arg-type]
    for party in (0, -1, True, "1"):
        with pytest.raises(InvalidInput):
            NodeIdentity.generate(party)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        NodeIdentityPublic(1, b"\x00" * 31, ids[1].public().box_key)


def test_identity_redacted_and_not_picklable(ids: dict[int, NodeIdentity]) -> None:
    ident = ids[1]
    blob = ident.to_secret_bytes()
    text = repr(ident) + str(ident)
    assert "redacted" in text
    for part in (blob[1:33], blob[33:]):
        assert part.hex() not in text and part.hex()[:16] not in text
    with pytest.raises(TypeError):
        pickle.dumps(ident)
    assert copy.deepcopy(ident) is ident  # never duplicated by accident
    pub = pickle.loads(pickle.dumps(ident.public()))  # the public half travels freely
    assert pub == ident.public()


# envelopes: round trips -------------------------------------------------------------------------------------


def test_broadcast_round_trip(ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]) -> None:
    sealed = _broadcast(ids)
    assert sealed.recipient == BROADCAST and sealed.is_broadcast and sealed.body == b"hello all"
    for me in (ids[2], ids[3]):
        assert _open(sealed, me, directory) == Envelope(SID, 1, 1, None, b"hello all")
    # survives pickling (Ray's object store) unchanged
    assert _open(pickle.loads(pickle.dumps(sealed)), ids[2], directory).payload == b"hello all"


def test_direct_round_trip_and_confidential(
    ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]
) -> None:
    payload = b"secret share for 2" * 3
    sealed = _direct(ids, directory, payload)
    assert sealed.recipient == 2 and not sealed.is_broadcast
    assert payload not in sealed.body and b"secret share" not in sealed.body
    assert b"secret share" not in repr(sealed).encode()
    assert _open(sealed, ids[2], directory) == Envelope(SID, 2, 1, 2, payload)
    # two seals of the same message use fresh nonces
    assert _direct(ids, directory, payload).body != sealed.body


def test_direct_cannot_be_opened_by_third_party_or_coordinator(
    ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]
) -> None:
    sealed = _direct(ids, directory)
    # party 3 is refused by address ...
    err = _abort(sealed, ids[3], directory)
    assert (err.check, err.culprit) == ("envelope.misaddressed", 1)
    # ... and cannot decrypt with its own keys even when bypassing the address check
    with pytest.raises(nacl.exceptions.CryptoError):
        ids[3].decrypt_from(directory[1], sealed.body)
    # the coordinator knows only public keys: a key pair of its own does not open the box either
    coordinator = nacl.public.PrivateKey.generate()
    for pub in directory.values():
        with pytest.raises(nacl.exceptions.CryptoError):
            nacl.public.Box(coordinator, nacl.public.PublicKey(pub.box_key)).decrypt(sealed.body)
    # redirecting the envelope to party 3 breaks the signature
    err = _abort(replace(sealed, recipient=3), ids[3], directory)
    assert (err.check, err.culprit) == ("envelope.signature", 1)


# envelopes: tampering ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["broadcast", "direct"])
def test_tampered_field_rejected(
    kind: str, ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]
) -> None:
    sealed = _broadcast(ids) if kind == "broadcast" else _direct(ids, directory)
    me = ids[2]
    cases: dict[str, SealedEnvelope] = {
        "sid": replace(sealed, sid=_flip(sealed.sid)),
        "round": replace(sealed, round=sealed.round + 1),
        "recipient": replace(sealed, recipient=2 if sealed.recipient == BROADCAST else BROADCAST),
        "protocol": replace(sealed, protocol="frost.sign"),
        "body_first": replace(sealed, body=_flip(sealed.body, 0)),
        "body_last": replace(sealed, body=_flip(sealed.body, len(sealed.body) - 1)),
        "body_truncated": replace(sealed, body=sealed.body[:-1]),
        "signature": replace(sealed, signature=_flip(sealed.signature, 5)),
    }
    for field, bad in cases.items():
        err = _abort(bad, me, directory)
        assert (err.check, err.culprit, err.reporter) == ("envelope.signature", 1, 2), field
        assert "secret share" not in str(err)
    # claiming another committee member as sender: its key does not verify, and it gets named
    err = _abort(replace(sealed, sender=3), me, directory)
    assert (err.check, err.culprit) == ("envelope.signature", 3)
    # claiming a party outside the committee
    err = _abort(replace(sealed, sender=7), me, directory)
    assert (err.check, err.culprit) == ("envelope.unknown_sender", 7)


def test_replay_with_other_sid_or_round_rejected(
    ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]
) -> None:
    for sealed in (_broadcast(ids), _direct(ids, directory)):
        for bad in (
            replace(sealed, sid=b"session-2"),
            replace(sealed, round=sealed.round + 1),
            replace(sealed, round=sealed.round - 1),
        ):
            err = _abort(bad, ids[2], directory)
            assert (err.check, err.culprit) == ("envelope.signature", 1)


def test_wrong_protocol_is_named(ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]) -> None:
    # validly signed for another protocol: cross-protocol replay is refused by tag
    sealed = seal(ids[1], Envelope(SID, 1, 1, None, b"x"), "frost.sign", None)
    with pytest.raises(ProtocolAbort) as info:
        open_envelope(sealed, me=ids[2], directory=directory, expected_protocol=PROTO)
    assert (info.value.check, info.value.culprit) == ("envelope.protocol", 1)


def test_ciphertext_resigned_by_another_party_does_not_decrypt(
    ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]
) -> None:
    sealed = _direct(ids, directory)
    # party 3 lifts 1's ciphertext and signs it as its own message to 2: the Box is from 1's key, so it fails
    lifted = replace(sealed, sender=3)
    lifted = replace(lifted, signature=ids[3].sign(lifted.signed_bytes()))
    err = _abort(lifted, ids[2], directory)
    assert (err.check, err.culprit) == ("envelope.decrypt", 3)
    # a sender that signs garbage as its ciphertext is named too
    garbage = replace(sealed, body=b"\x00" * 80)
    garbage = replace(garbage, signature=ids[1].sign(garbage.signed_bytes()))
    err = _abort(garbage, ids[2], directory)
    assert (err.check, err.culprit) == ("envelope.decrypt", 1)


def test_ciphertext_bound_to_header(ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]) -> None:
    # even the true sender re-signing its own ciphertext under another round does not make it decrypt
    sealed = _direct(ids, directory)
    moved = replace(sealed, round=5)
    moved = replace(moved, signature=ids[1].sign(moved.signed_bytes()))
    err = _abort(moved, ids[2], directory)
    assert (err.check, err.culprit) == ("envelope.decrypt", 1)


def test_malformed_fields(ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]) -> None:
    sealed = _broadcast(ids)
    for bad in (
        replace(sealed, body="text"),  # type: ignore[arg-type]
        replace(sealed, sid=b""),
        replace(sealed, round=-1),
        replace(sealed, signature=b"short"),
        replace(sealed, protocol="Bad Tag!"),
    ):
        err = _abort(bad, ids[2], directory)
        assert (err.check, err.culprit) == ("envelope.malformed", 1)
    err = _abort(replace(sealed, sender="1"), ids[2], directory)  # type: ignore[arg-type]
    assert (err.check, err.culprit) == ("envelope.malformed", 0)


def test_seal_refuses_mistakes(ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]) -> None:
    with pytest.raises(InvalidInput):  # sealing someone else's message
        seal(ids[1], Envelope(SID, 1, 2, None, b"x"), PROTO, None)
    with pytest.raises(InvalidInput):  # a direct message must never go out in clear
        seal(ids[1], Envelope(SID, 1, 1, 2, b"x"), PROTO, None)
    with pytest.raises(InvalidInput):  # encrypted to the wrong party
        seal(ids[1], Envelope(SID, 1, 1, 2, b"x"), PROTO, directory[3])
    with pytest.raises(InvalidInput):  # broadcasts are not encrypted
        seal(ids[1], Envelope(SID, 1, 1, None, b"x"), PROTO, directory[2])
    for tag in ("", "has space", "x" * 65):
        with pytest.raises(InvalidInput):
            seal(ids[1], Envelope(SID, 1, 1, None, b"x"), tag, None)


def test_protocol_runs_through_sealed_envelopes(
    ids: dict[int, NodeIdentity], directory: dict[int, NodeIdentityPublic]
) -> None:
    """A FROST DKG where every message is sealed by its sender and opened by its receiver, as on Ray."""
    sid = b"dkg-sealed"

    def relay(env: Envelope) -> Envelope:
        pub = None if env.recipient is None else directory[env.recipient]
        sealed = seal(ids[env.sender], env, PROTO, pub)
        if env.recipient is not None:
            assert env.payload not in sealed.body
        # the router delivers a broadcast to every other party: open it as one of them
        me = ids[env.recipient] if env.recipient is not None else ids[1 if env.sender != 1 else 2]
        return _open(sealed, me, directory)

    parties = {i: DkgParty("eddsa-ed25519", sid, i, [1, 2, 3], 2) for i in (1, 2, 3)}
    outputs = run_parties(parties, tamper=relay)
    keys = {out.public_key_bytes() for out in outputs.values()}  # type: ignore[attr-defined]
    assert len(keys) == 1

"""Forward secrecy of the key lifecycle (node/envelope.py, "Forward secrecy").

The attack: the relay records every sealed envelope of a refresh; later the attacker breaks into party 1's node
once and takes everything there (node secret, store, identity keys, the new share). Under long-term box keys the
recorded direct messages open and give back party 1's share of the old epoch,
x1_old = x1_new - f_1(1) - sum_j f_j(1) (f_1 from party 1's own messages to the others); one more old share and the
key falls. Under per-session ephemeral keys, erased when the session ends, nothing on the node opens them.
"""

from __future__ import annotations

import pickle

import coincurve
import nacl.bindings
import nacl.exceptions
import pytest

from mpc_ray.coordinator.sessions import SessionSpec
from mpc_ray.crypto.frost_suites import get_suite
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.crypto.vss import lagrange_coefficient
from mpc_ray.errors import InvalidInput, ProtocolAbort
from mpc_ray.node import sessions as sessions_module
from mpc_ray.node.envelope import BROADCAST, SealedEnvelope, SessionKeys, open_envelope, seal
from mpc_ray.node.identity import NodeIdentity, NodeIdentityPublic, SessionKey
from mpc_ray.protocols import reshare
from mpc_ray.protocols.base import Envelope
from mpc_ray.protocols.ecdsa import aux_info, refresh
from mpc_ray.protocols.wire import decode
from tests.support.committee import DIGEST, Committee, FixturePrimes

HEADER_DIGEST = 32  # envelope.py prefixes every direct plaintext with a digest of the header


# a committee whose relay records everything -------------------------------------------------------------------
class RecordingCommittee(Committee):
    """`Committee`, plus what a coordinator sees: every sealed envelope any holder hands out, in `sealed`."""

    def __init__(self, root, parties=(1, 2, 3)) -> None:
        super().__init__(root, parties)
        self.sealed: list[SealedEnvelope] = []

    def run(self, protocol, parties, params, count=1):
        holders = self.holders
        self.holders = {**holders, **{p: _RecordingHolder(holders[p], self.sealed) for p in parties}}
        try:
            return super().run(protocol, parties, params, count)
        finally:
            self.holders = holders


class _RecordingHolder:
    def __init__(self, h, recorded) -> None:
        self._h, self._recorded = h, recorded

    def begin(self, requests, grant=None):
        out = self._h.begin(requests, grant)
        self._recorded.extend(e for r in out for e in r.envelopes)
        return out

    def step(self, batches):
        out = self._h.step(batches)
        self._recorded.extend(e for r in out for e in r.envelopes)
        return out


class KeyCapture:
    """Wraps `SessionKeys` in holder.py: keeps every session key made and (TEST ONLY) a copy of its secret, so a
    control can show the attack code works when the key is known."""

    def __init__(self) -> None:
        self.made: list[SessionKeys] = []
        self.secret_of: dict[bytes, bytes] = {}  # session public key -> secret

    def __call__(self) -> SessionKeys:
        keys = SessionKeys()
        self.made.append(keys)
        self.secret_of[keys.public] = keys._own._secret  # type: ignore[attr-defined]
        return keys


@pytest.fixture()
def capture(monkeypatch) -> KeyCapture:
    cap = KeyCapture()
    monkeypatch.setattr(sessions_module, "SessionKeys", cap)
    return cap


@pytest.fixture(scope="module")
def ecdsa(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aux_info, "generate_keypair", FixturePrimes())
        c = RecordingCommittee(tmp_path_factory.mktemp("fs-ecdsa"))
        c.run("aux", [1, 2, 3], {"level": "112"})
        out = c.run("keygen", [1, 2, 3], {"key_id": "k1", "threshold": 2})
        c.public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
        yield c


@pytest.fixture(scope="module")
def frost(tmp_path_factory):
    c = RecordingCommittee(tmp_path_factory.mktemp("fs-frost"))
    out = c.run("frost-dkg", [1, 2, 3], {"key_id": "f1", "scheme": "eddsa-ed25519", "threshold": 2})
    c.public = next(iter(out.values()))[1]["public_package"]
    return c


# the attacker ---------------------------------------------------------------------------------------------------
def break_in(c: Committee, party: int) -> tuple[NodeIdentity, list[bytes]]:
    """Everything on the node after the fact: its identity (from the store, opened with the node secret) and
    every entry of its store, decrypted."""
    store = c.holders[party].store
    identity = NodeIdentity.from_secret_bytes(party, store.get("identity"))
    return identity, [store.get(n) for n in store.names("")]


def try_open(env: SealedEnvelope, identity: NodeIdentity, directory: dict[int, NodeIdentityPublic],
             x25519_secrets: list[bytes], publics: list[bytes]) -> bytes | None:
    """The payload of a recorded direct message to or from `identity`'s party, if any key the attacker has opens
    it: the identity's box key against the peer's (the static scheme), or any X25519 secret against any public
    key seen (session keys announced in the transcript, identity keys)."""
    peer = env.recipient if env.sender == identity.party else env.sender
    try:
        return identity.decrypt_from(directory[peer], env.body)[HEADER_DIGEST:]
    except nacl.exceptions.CryptoError:
        pass
    nonce, ct = env.body[:24], env.body[24:]
    for sk in x25519_secrets:
        for pk in publics:
            try:
                shared = nacl.bindings.crypto_box_beforenm(pk, sk)
                return nacl.bindings.crypto_box_open_easy_afternm(ct, nonce, shared)[HEADER_DIGEST:]
            except (nacl.exceptions.CryptoError, nacl.exceptions.RuntimeError):
                continue
    return None


def attacker_keys(c: Committee, party: int, transcript: list[SealedEnvelope], extra: list[bytes] = ()):
    identity, entries = break_in(c, party)
    x25519 = [identity.to_secret_bytes()[1 + 32:], *extra]  # version || Ed25519 seed || X25519 secret
    publics = [e.ephemeral for e in transcript if e.ephemeral]
    publics += [d.box_key for d in c.holders[party].directory.values()]
    return identity, entries, x25519, publics


def party_directs(transcript: list[SealedEnvelope], protocol: str, party: int) -> list[SealedEnvelope]:
    return [e for e in transcript
            if e.protocol == protocol and e.recipient != BROADCAST and party in (e.sender, e.recipient)]


def recover_old_refresh_share(c, transcript, party, x_new, threshold, extra=()) -> int | None:
    """x_party(old) from a recorded ECDSA refresh and the new share, or None when the messages do not open."""
    identity, _, x25519, publics = attacker_keys(c, party, transcript, list(extra))
    to_me, from_me = {}, {}
    for env in party_directs(transcript, "refresh", party):
        plain = try_open(env, identity, c.holders[party].directory, x25519, publics)
        if plain is None:
            return None
        msg = decode(plain, refresh.Direct)
        (to_me.__setitem__(env.sender, msg.share) if env.recipient == party
         else from_me.__setitem__(env.recipient, msg.share))
    # f_party has f(0) = 0 and degree t - 1: t points give f_party(party)
    points = {0: 0, **dict(sorted(from_me.items())[: threshold - 1])}
    own = sum(v * lagrange_coefficient(k, list(points), party) for k, v in points.items()) % Q
    return (x_new - own - sum(to_me.values())) % Q


def recover_old_frost_share(c, transcript, party, dealers, threshold, group, extra=()) -> int | None:
    """x_party(old) from a recorded FROST refresh (a resharing): party's own sub-shares g(k) give g(0) =
    lambda_party x_party."""
    identity, _, x25519, publics = attacker_keys(c, party, transcript, list(extra))
    dealt = {}
    for env in party_directs(transcript, "reshare", party):
        if env.sender != party:
            continue
        plain = try_open(env, identity, c.holders[party].directory, x25519, publics)
        if plain is None:
            return None
        dealt[env.recipient] = group.deserialize_scalar(decode(plain, reshare.SubShare).share)
    points = dict(sorted(dealt.items())[:threshold])
    w = sum(v * lagrange_coefficient(k, list(points), order=group.order) for k, v in points.items()) % group.order
    lam = reshare.dealer_weight(group, party, dealers)
    return w * pow(lam, -1, group.order) % group.order


def verify(public_key: Point, sig) -> None:
    assert coincurve.PublicKey(public_key.to_bytes()).verify(sig.der(), DIGEST, hasher=None)


# the attack, before (static keys) and after (session keys) -------------------------------------------------------
def test_recorded_ecdsa_refresh_does_not_open_after_a_break_in(ecdsa, capture, monkeypatch):
    c = ecdsa
    # before: the old scheme (long-term box keys) - the same attack gets the old share back
    with monkeypatch.context() as m:
        m.setattr(sessions_module, "FORWARD_SECURE", frozenset())
        old_x = c.holders[1].key("k1").x
        c.sealed.clear()
        c.lifecycle.refresh("k1", "ecdsa-secp256k1", [1, 2, 3])
        assert all(not e.ephemeral for e in c.sealed)
        x_new = c.holders[1].key("k1").x
        assert recover_old_refresh_share(c, list(c.sealed), 1, x_new, 2) == old_x

    # after: session keys
    old_x = c.holders[1].key("k1").x
    c.sealed.clear()
    result = c.lifecycle.refresh("k1", "ecdsa-secp256k1", [1, 2, 3])
    transcript = list(c.sealed)
    x_new = c.holders[1].key("k1").x
    assert result.epoch == c.holders[1].key_epoch("k1") and x_new != old_x
    verify(c.public_key, c.sign("k1", c.public_key, [1, 3]))  # the refresh works

    round1 = [e for e in transcript if e.round == 1]
    assert {e.sender for e in round1 if len(e.ephemeral) == 32} == {1, 2, 3}
    directs = party_directs(transcript, "refresh", 1)
    assert len(directs) == 4  # to and from each of two peers
    # nothing left on party 1's node opens a single one of them: not the identity, not anything in the store
    identity, entries, x25519, publics = attacker_keys(c, 1, transcript)
    for env in directs:
        assert try_open(env, identity, c.holders[1].directory, x25519, publics) is None
    assert recover_old_refresh_share(c, transcript, 1, x_new, 2) is None
    blob = b"".join(entries)
    for secret in capture.secret_of.values():
        assert secret not in blob  # no session key was ever stored
    # the session keys are gone from memory too: every one erased, no session left open
    assert len(capture.made) == 3 and all(k.erased for k in capture.made)
    assert not any(h.sessions for h in c.holders.values())
    # control: with party 1's session key (what the erasure took away) the same attack does give the old share
    mine = [e.ephemeral for e in round1 if e.sender == 1]
    assert recover_old_refresh_share(c, transcript, 1, x_new, 2, extra=[capture.secret_of[mine[0]]]) == old_x


def test_recorded_frost_refresh_and_dkg_do_not_open_after_a_break_in(frost, capture, monkeypatch):
    c = frost
    group = get_suite("eddsa-ed25519").group
    dkg = list(c.sealed)
    with monkeypatch.context() as m:  # before: long-term box keys
        m.setattr(sessions_module, "FORWARD_SECURE", frozenset())
        old = c.holders[1].frost_signer.key_package("f1").signing_share
        c.sealed.clear()
        r = c.lifecycle.refresh("f1", "eddsa-ed25519", [1, 2, 3], old_public=c.public, threshold=2)
        c.public = r.public
        assert recover_old_frost_share(c, list(c.sealed), 1, [1, 2, 3], 2, group) == old
    old = c.holders[1].frost_signer.key_package("f1").signing_share
    c.sealed.clear()
    r = c.lifecycle.refresh("f1", "eddsa-ed25519", [1, 2, 3], old_public=c.public, threshold=2)
    c.public = r.public
    transcript = list(c.sealed)
    assert c.holders[1].frost_signer.key_package("f1").signing_share != old
    c.frost_sign("f1", r.public, [1, 2], b"after refresh")
    assert recover_old_frost_share(c, transcript, 1, [1, 2, 3], 2, group) is None
    # the key generation's shares (which every later epoch descends from) do not open either
    identity, _, x25519, publics = attacker_keys(c, 1, dkg + transcript)
    dkg_directs = party_directs(dkg, "frost-dkg", 1)
    assert dkg_directs and all(try_open(e, identity, c.holders[1].directory, x25519, publics) is None
                               for e in dkg_directs)
    assert all(k.erased for k in capture.made) and not any(h.sessions for h in c.holders.values())
    mine = next(e.ephemeral for e in transcript if e.round == 1 and e.sender == 1)
    assert recover_old_frost_share(c, transcript, 1, [1, 2, 3], 2, group,
                                   extra=[capture.secret_of[mine]]) == old  # control


# erasure of sessions the coordinator abandoned -------------------------------------------------------------------
def _begin_twice(c: Committee, party: int, abandoned: list[bytes]):
    """Make `party` begin a second, abandoned copy of every session it is asked to begin (same params)."""
    h = c.holders[party]
    real = h.begin

    def begin(requests, grant=None):  # refresh sessions: admin-approved, no coordinator grant
        import dataclasses

        for req in requests:
            extra = dataclasses.replace(req, sid=req.sid + b"/abandoned")
            real([extra])
            abandoned.append(extra.sid)
        return real(requests, grant)

    h.begin = begin  # instance attribute: undone in `finally` by the caller
    return h


def test_commit_erases_an_abandoned_session_of_the_key(frost, capture):
    c = frost
    abandoned: list[bytes] = []
    h = _begin_twice(c, 1, abandoned)
    try:
        r = c.lifecycle.refresh("f1", "eddsa-ed25519", [1, 2, 3], old_public=c.public, threshold=2)
    finally:
        del h.begin
    c.public = r.public
    assert len(abandoned) == 1 and len(capture.made) == 4
    assert abandoned[0] not in h.sessions and all(k.erased for k in capture.made)


def test_discard_erases_the_sessions_of_a_failed_run(frost, capture):
    c = frost
    abandoned: list[bytes] = []
    h = _begin_twice(c, 1, abandoned)
    h3 = c.holders[3]
    real_step = h3.step

    def step(batches):  # party 3 stops answering after round 1: the run fails, the coordinator discards
        raise ConnectionError("party 3 is gone")

    h3.step = step
    epoch = c.holders[1].key_epoch("f1")
    try:
        with pytest.raises(ConnectionError):
            c.lifecycle.refresh("f1", "eddsa-ed25519", [1, 2, 3], old_public=c.public, threshold=2)
    finally:
        del h.begin
        del h3.step
    assert real_step is not None and c.holders[1].key_epoch("f1") == epoch
    assert len(capture.made) == 4 and all(k.erased for k in capture.made)
    assert not any(h.sessions for h in c.holders.values())
    assert all(c.holders[p].lifecycle.pending("f1") is None for p in (1, 2, 3))


def test_erased_before_commit(ecdsa, capture):
    """A holder erases its session key when its session ends, i.e. before the pending epoch is even confirmed."""
    c = ecdsa
    epoch = c.holders[1].key_epoch("k1") + 1
    c.lifecycle.run(SessionSpec("refresh", [1, 2, 3], {"key_id": "k1", "epoch": epoch}))
    assert all(c.holders[p].lifecycle.pending("k1") is not None for p in (1, 2, 3))
    assert len(capture.made) == 3 and all(k.erased for k in capture.made)
    for p in (1, 2, 3):
        c.holders[p].lifecycle_discard("k1", epoch)


# the envelope checks of forward-secure sessions --------------------------------------------------------------
SID = b"fs-session"
PROTO = "refresh"


@pytest.fixture(scope="module")
def ids() -> dict[int, NodeIdentity]:
    return {i: NodeIdentity.generate(i) for i in (1, 2, 3)}


@pytest.fixture(scope="module")
def directory(ids) -> dict[int, NodeIdentityPublic]:
    return {i: ident.public() for i, ident in ids.items()}


def _exchange(ids, directory) -> dict[int, SessionKeys]:
    """Round 1: every party announces its session key; everyone opens everyone's announcement."""
    keys = {i: SessionKeys() for i in ids}
    ann = {i: seal(ids[i], Envelope(SID, 1, i, None, b"round 1"), PROTO, None, keys[i]) for i in ids}
    for i in ids:
        for j in ids:
            if i != j:
                open_envelope(ann[j], me=ids[i], directory=directory, expected_protocol=PROTO, session=keys[i])
    return keys


def _abort(sealed, me, directory, session) -> ProtocolAbort:
    with pytest.raises(ProtocolAbort) as info:
        open_envelope(sealed, me=me, directory=directory, expected_protocol=PROTO, session=session)
    return info.value


def test_direct_messages_go_between_session_keys(ids, directory):
    keys = _exchange(ids, directory)
    sealed = seal(ids[1], Envelope(SID, 3, 1, 2, b"f_1(2)"), PROTO, directory[2], keys[1])
    assert not sealed.ephemeral
    got = open_envelope(sealed, me=ids[2], directory=directory, expected_protocol=PROTO, session=keys[2])
    assert got.payload == b"f_1(2)"
    # neither identity opens it, in either direction of the static box
    for a, b in ((1, 2), (2, 1)):
        with pytest.raises(nacl.exceptions.CryptoError):
            ids[a].decrypt_from(directory[b], sealed.body)
    # once erased, not even the two session keys' owners can
    keys[2].erase()
    with pytest.raises(InvalidInput):
        open_envelope(sealed, me=ids[2], directory=directory, expected_protocol=PROTO, session=keys[2])


def test_round1_broadcast_must_announce_a_usable_key(ids, directory):
    mine = SessionKeys()
    silent = seal(ids[1], Envelope(SID, 1, 1, None, b"r1"), PROTO, None)  # sealed as if not forward-secure
    err = _abort(silent, ids[2], directory, mine)
    assert (err.check, err.culprit, err.reporter) == ("envelope.ephemeral", 1, 2)
    for bad_point in (b"\x00" * 32, (1).to_bytes(32, "little")):  # small order: the shared secret is all zero
        signed = _resign(ids[1], silent, ephemeral=bad_point)
        err = _abort(signed, ids[2], directory, SessionKeys())
        assert (err.check, err.culprit) == ("envelope.ephemeral", 1)


def test_a_second_different_key_is_refused(ids, directory):
    mine = SessionKeys()
    first = seal(ids[1], Envelope(SID, 1, 1, None, b"r1"), PROTO, None, SessionKeys())
    open_envelope(first, me=ids[2], directory=directory, expected_protocol=PROTO, session=mine)
    open_envelope(first, me=ids[2], directory=directory, expected_protocol=PROTO, session=mine)  # same: fine
    second = seal(ids[1], Envelope(SID, 1, 1, None, b"r1"), PROTO, None, SessionKeys())
    err = _abort(second, ids[2], directory, mine)
    assert (err.check, err.culprit) == ("envelope.ephemeral", 1)


def test_a_key_where_none_belongs_is_refused(ids, directory):
    keys = _exchange(ids, directory)
    later = _resign(ids[1], seal(ids[1], Envelope(SID, 2, 1, None, b"r2"), PROTO, None, keys[1]),
                    ephemeral=keys[1].public)
    err = _abort(later, ids[2], directory, keys[2])
    assert (err.check, err.culprit) == ("envelope.ephemeral", 1)
    # and none in a session without forward secrecy
    r1 = seal(ids[1], Envelope(SID, 1, 1, None, b"r1"), PROTO, None, SessionKeys())
    err = _abort(r1, ids[2], directory, None)
    assert (err.check, err.culprit) == ("envelope.ephemeral", 1)


def test_relay_cannot_substitute_its_own_session_key(ids, directory):
    r1 = seal(ids[1], Envelope(SID, 1, 1, None, b"r1"), PROTO, None, SessionKeys())
    relay_key = SessionKeys()
    for bad in (SealedEnvelope(r1.sid, r1.round, r1.sender, r1.recipient, r1.protocol, r1.body, r1.signature,
                               relay_key.public),
                SealedEnvelope(r1.sid, r1.round, r1.sender, r1.recipient, r1.protocol, r1.body, r1.signature, b"")):
        err = _abort(bad, ids[2], directory, SessionKeys())
        assert (err.check, err.culprit) == ("envelope.signature", 1)
    bad = SealedEnvelope(r1.sid, r1.round, r1.sender, r1.recipient, r1.protocol, r1.body, r1.signature, b"\x01" * 31)
    assert _abort(bad, ids[2], directory, SessionKeys()).check == "envelope.malformed"


def test_no_downgrade_to_identity_keys(ids, directory):
    keys = _exchange(ids, directory)
    static = seal(ids[1], Envelope(SID, 3, 1, 2, b"f_1(2)"), PROTO, directory[2])  # long-term keys
    err = _abort(static, ids[2], directory, keys[2])
    assert (err.check, err.culprit) == ("envelope.decrypt", 1)


def test_direct_message_before_the_senders_key(ids, directory):
    keys = _exchange({1: ids[1], 2: ids[2]}, {1: directory[1], 2: directory[2]})
    # party 3 never announced a key to party 2, so it cannot have sealed for party 2's session key
    err = _abort(seal(ids[3], Envelope(SID, 3, 3, 2, b"x"), PROTO, directory[2]), ids[2], directory, keys[2])
    assert (err.check, err.culprit) == ("envelope.ephemeral", 3)
    with pytest.raises(InvalidInput):  # and a sender refuses a direct message before the recipient's key
        seal(ids[2], Envelope(SID, 3, 2, 3, b"x"), PROTO, directory[3], keys[2])


def test_session_keys_stay_in_memory_and_out_of_reprs():
    k = SessionKey()
    secret = k._secret  # type: ignore[attr-defined]
    assert secret.hex() not in repr(k) and secret.hex() not in repr(SessionKeys())
    for obj in (k, SessionKeys()):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    k.erase()
    assert k.erased and "erased" in repr(k)
    with pytest.raises(InvalidInput):
        k.encrypt_to(SessionKey().public, b"x")


def _resign(identity: NodeIdentity, sealed: SealedEnvelope, *, ephemeral: bytes) -> SealedEnvelope:
    """A validly signed envelope with another `ephemeral`: what a misbehaving sender (not the relay) can send."""
    from mpc_ray.node.envelope import _signed_bytes

    sig = identity.sign(_signed_bytes(sealed.sid, sealed.round, sealed.sender, sealed.recipient, sealed.protocol,
                                      sealed.body, ephemeral))
    return SealedEnvelope(sealed.sid, sealed.round, sealed.sender, sealed.recipient, sealed.protocol, sealed.body,
                          sig, ephemeral)

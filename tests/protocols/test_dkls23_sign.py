"""DKLs23 threshold signing (Protocol 3.6): presignature rounds, the online round and the combiner, on keys of the
existing Feldman DKG. Every signature is checked with coincurve and python-ecdsa; every tamper test feeds one bad
value (or plays a cheating signer) and expects the named check with the culprit."""

from __future__ import annotations

import dataclasses
import pickle
import secrets

import coincurve
import ecdsa
import pytest
from ecdsa.util import sigdecode_string

from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.crypto.vss import lagrange_coefficient
from mpc_ray.errors import InvalidInput, ProtocolAbort
from mpc_ray.protocols.base import Envelope, Outbox
from mpc_ray.protocols.common import hash_commit
from mpc_ray.protocols.dkls23.rvole import RVOLEResponse
from mpc_ray.protocols.dkls23.setup import DKLs23Setup
from mpc_ray.protocols.dkls23.sign import (
    DKLs23PresignParty,
    DKLs23SignParty,
    MulRequest,
    MulResponse,
    NonceCommitment,
    NonceReveal,
    OnlineShare,
    Opening,
    combine,
    partial_sign,
    rerandomize_for,
)
from mpc_ray.protocols.wire import decode, encode
from mpc_ray.sim import run_keygen, run_parties

PARTIES = (1, 2, 3)


def _sid(tag: str) -> bytes:
    return f"dkls23-{tag}:".encode() + secrets.token_bytes(8)


def _committee(parties=PARTIES):
    sid = _sid("setup")
    return run_parties({p: DKLs23Setup(sid, p, parties) for p in parties})


@pytest.fixture(scope="module")
def key23():
    return run_keygen(PARTIES, 2)


@pytest.fixture(scope="module")
def key33():
    return run_keygen(PARTIES, 3)


@pytest.fixture(scope="module")
def committee():
    return _committee()


def _presign(keys, setups, signers, tamper=None, sid=None, cls=None):
    sid = sid or _sid("presign")
    cls = cls or {}
    parties = {p: cls.get(p, DKLs23PresignParty)(sid, keys[p], setups[p], signers) for p in signers}
    return run_parties(parties, tamper)


def _sign(keys, shares, digest, tweak=None, tamper=None):
    pk = next(iter(keys.values())).public_key
    sid = _sid("online")
    return run_parties({p: DKLs23SignParty(sid, s, pk, digest, tweak) for p, s in shares.items()}, tamper)


def _verify_both(public_key: Point, digest: bytes, sig) -> None:
    raw = sig.to_bytes()
    der = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(raw))
    assert coincurve.PublicKey(public_key.to_bytes()).verify(der, digest, hasher=None)
    vk = ecdsa.VerifyingKey.from_string(public_key.to_bytes(), curve=ecdsa.SECP256k1)
    assert vk.verify_digest(raw, digest, sigdecode=sigdecode_string)
    # the recovery id recovers the key (what EVM wallets use)
    rec = coincurve.PublicKey.from_signature_and_message(raw + bytes([sig.recovery_id]), digest, hasher=None)
    assert rec.format() == public_key.to_bytes()


def _where(sender, recipient, rnd):
    return lambda env: (env.sender, env.recipient, env.round) == (sender, recipient, rnd)


def _rewrite(match, tp, change):
    def tamper(env: Envelope):
        if match(env):
            return dataclasses.replace(env, payload=encode(change(decode(env.payload, tp))))
        return env

    return tamper


def _aborts(fn, check, culprit, reporter):
    with pytest.raises(ProtocolAbort) as info:
        fn()
    assert (info.value.check, info.value.culprit, info.value.reporter) == (check, culprit, reporter), info.value


# --- honest runs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signers", [(1, 2), (1, 3), (2, 3), (1, 2, 3)])
def test_two_of_three_signs_and_verifies(key23, committee, signers):
    digest = secrets.token_bytes(32)
    shares = _presign(key23, committee, signers)
    assert len({s.public.R for s in shares.values()}) == 1
    sigs = _sign(key23, shares, digest)
    assert len(set(sigs.values())) == 1
    _verify_both(key23[1].public_key, digest, sigs[signers[0]])


def test_three_of_three_signs_and_verifies(key33, committee):
    digest = secrets.token_bytes(32)
    sigs = _sign(key33, _presign(key33, committee, PARTIES), digest)
    _verify_both(key33[1].public_key, digest, sigs[1])


def test_presignature_holds_r_phi_and_sk_phi(key23, committee):
    # sum u_i = r phi and sum v_i = sk phi with R = r G: (sum u) pk == (sum v) R
    shares = _presign(key23, committee, (1, 3))
    parts = [s.take() for s in shares.values()]
    u, v = sum(p[1] for p in parts) % Q, sum(p[2] for p in parts) % Q
    assert key23[1].public_key * u == shares[1].public.R * v
    sk = sum(lagrange_coefficient(p, (1, 3)) * key23[p].x for p in (1, 3)) % Q
    assert v == sk * sum(p[0] for p in parts) % Q


def test_child_key_signature_rerandomised(key23, committee):
    digest, tweak = secrets.token_bytes(32), secrets.randbelow(Q)
    shares = _presign(key23, committee, (2, 3))
    R = shares[2].public.R
    sig = _sign(key23, shares, digest, tweak)[2]
    child = key23[1].public_key + Point.base_mul(tweak)
    _verify_both(child, digest, sig)
    assert sig.r != R.x() % Q  # the signature's nonce is rho R, not the pooled R


def test_master_signature_not_reusable_for_a_child(key23, committee):
    # the plain presignature would let (r, s) on m* + r t pass for m* under pk + t G; re-randomisation uses rho R
    shares = _presign(key23, committee, (1, 2))
    pk, digest = key23[1].public_key, secrets.token_bytes(32)
    rr = rerandomize_for(shares[1].public, pk, 0, digest)
    assert rr.R == shares[1].public.R * rr.rho and rr.public_key == pk
    assert rerandomize_for(shares[1].public, pk, 0, secrets.token_bytes(32)).R != rr.R


# --- presigning under a cheating signer ----------------------------------------------------------------------------


def test_wrong_nonce_commitment_opening(key23, committee):
    bad = lambda m: Opening(dataclasses.replace(m.reveal, R=m.reveal.R + Point.generator()), m.pk)  # noqa: E731
    tamper = _rewrite(_where(3, None, 2), Opening, bad)  # the broadcast: both peers see it, party 1 reports first
    _aborts(lambda: _presign(key23, committee, PARTIES, tamper), "dkls23.sign.commitment", 3, 1)


@pytest.mark.parametrize("field,check", [("gamma_u", "dkls23.sign.gamma_u"), ("gamma_v", "dkls23.sign.gamma_v")])
def test_tampered_gamma_refused(key23, committee, field, check):
    bad = lambda m: dataclasses.replace(m, **{field: getattr(m, field) + Point.generator()})  # noqa: E731
    _aborts(lambda: _presign(key23, committee, (1, 2), _rewrite(_where(2, 1, 2), MulResponse, bad)), check, 2, 1)


@pytest.mark.parametrize("bad", ["psi_range", "identity"])
def test_malformed_round2_refused(key23, committee, bad):
    change = {
        "psi_range": lambda m: dataclasses.replace(m, psi=m.psi + Q),
        "identity": lambda m: dataclasses.replace(m, gamma_u=Point.identity()),
    }[bad]
    _aborts(lambda: _presign(key23, committee, (1, 3), _rewrite(_where(3, 1, 2), MulResponse, change)),
            "dkls23.sign.shape", 3, 1)


def test_bad_multiplication_response_refused(key23, committee):
    def change(m: MulResponse):
        tau = m.response.tau
        return dataclasses.replace(m, response=RVOLEResponse(tau[:-1] + bytes([tau[-1] ^ 1]), m.response.eta,
                                                             m.response.mu))

    _aborts(lambda: _presign(key23, committee, PARTIES, _rewrite(_where(2, 3, 2), MulResponse, change)),
            "dkls23.rvole.check", 2, 3)


class _OtherNonceInMultiplication(DKLs23PresignParty):
    """Commits to R_i = r_i G, then multiplies with r_i + 1: the outputs are inconsistent with R_i."""

    def round2(self, inbox):
        self._r = (self._r + 1) % Q
        return super().round2(inbox)


class _OtherKeyInMultiplication(DKLs23PresignParty):
    """Multiplies with sk_i + 1 but reveals pk_i = sk_i G."""

    def round2(self, inbox):
        honest, self._sk = self._sk, (self._sk + 1) % Q
        out = super().round2(inbox)
        self._sk = honest
        return Outbox(broadcast=Opening(out.broadcast.reveal, Point.base_mul(honest)), direct=out.direct)


class _ShiftedKey(DKLs23PresignParty):
    """Uses sk_i + 1 consistently (multiplication and pk_i): only the sum check can see it."""

    def round2(self, inbox):
        self._sk = (self._sk + 1) % Q
        return super().round2(inbox)


def test_multiplication_with_another_nonce_caught(key23, committee):
    _aborts(lambda: _presign(key23, committee, PARTIES, cls={2: _OtherNonceInMultiplication}),
            "dkls23.sign.gamma_u", 2, 1)


def test_multiplication_with_another_key_share_caught(key23, committee):
    _aborts(lambda: _presign(key23, committee, PARTIES, cls={3: _OtherKeyInMultiplication}),
            "dkls23.sign.gamma_v", 3, 1)


def test_wrong_key_share_caught_by_the_sum(key23, key33, committee):
    # two signers: the honest reporter names the other; three: nobody can be named (zeta_j hides each pk_j)
    _aborts(lambda: _presign(key23, committee, (1, 2), cls={2: _ShiftedKey}), "dkls23.sign.public_key", 2, 1)
    _aborts(lambda: _presign(key33, committee, PARTIES, cls={3: _ShiftedKey}), "dkls23.sign.public_key", 0, 1)


class _CancellingNonce(DKLs23PresignParty):
    """Commits to R_2 = -R_1 so that R is the identity. `victim` is a test-only oracle: with the commitments a real
    signer cannot see r_1 first, which is why the check can only fire with probability 2^-256."""

    victim: DKLs23PresignParty

    def round1(self):
        out = super().round1()
        self._r = (Q - type(self).victim._r) % Q
        self._reveal = NonceReveal(Point.base_mul(self._r), self._reveal.u)
        return Outbox(NonceCommitment(hash_commit("dkls23/sign", self.sid, self.party, self._reveal)), out.direct)


def test_nonce_sum_identity_refused(key23, committee):
    sid = _sid("identity")
    honest = DKLs23PresignParty(sid, key23[1], committee[1], (1, 2))
    _CancellingNonce.victim = honest
    parties = {1: honest, 2: _CancellingNonce(sid, key23[2], committee[2], (1, 2))}
    _aborts(lambda: run_parties(parties), "dkls23.sign.nonce_identity", 0, 1)


def test_cheating_bob_caught_by_the_kos_check(key23):
    setups = _committee()  # a failed KOS check retires the pair's setup: use a fresh committee

    def change(m: MulRequest):
        ext = m.request.extension
        bad = dataclasses.replace(ext, t_tilde=bytes([ext.t_tilde[0] ^ 1]) + ext.t_tilde[1:])
        return MulRequest(dataclasses.replace(m.request, extension=bad))

    _aborts(lambda: _presign(key23, setups, PARTIES, _rewrite(_where(3, 1, 1), MulRequest, change)),
            "dkls23.ote.kos_check", 3, 1)
    # retired: the next session with that pair is refused before any OT output is used
    _aborts(lambda: _presign(key23, setups, (1, 3)), "dkls23.ote.retired", 3, 1)


# --- replays and session ids ---------------------------------------------------------------------------------------


def _recorded(key, setups, signers):
    seen: list[Envelope] = []

    def record(env):
        seen.append(env)
        return env

    _presign(key, setups, signers, record)
    return seen


def _replay(old: list[Envelope], sender, recipient, rnd):
    """Put the payload that `sender` sent in the recorded session in place of this session's (recipient None: the
    broadcast)."""
    match = _where(sender, recipient, rnd)
    payload = next(e.payload for e in old if match(e))
    return lambda env: dataclasses.replace(env, payload=payload) if match(env) else env


def test_replayed_multiplication_request_refused(key23):
    setups = _committee()
    old = _recorded(key23, setups, (1, 2))
    _aborts(lambda: _presign(key23, setups, (1, 2), _replay(old, 2, 1, 1)), "dkls23.ote.kos_check", 2, 1)


def test_replayed_opening_refused(key23, committee):
    old = _recorded(key23, committee, (2, 3))
    _aborts(lambda: _presign(key23, committee, (2, 3), _replay(old, 3, None, 2)),
            "dkls23.sign.commitment", 3, 2)


def test_replayed_multiplication_response_refused(key23, committee):
    old = _recorded(key23, committee, (1, 3))
    _aborts(lambda: _presign(key23, committee, (1, 3), _replay(old, 1, 3, 2)), "dkls23.rvole.check", 1, 3)


def test_envelope_of_another_session_refused(key23, committee):
    other = _sid("other")
    tamper = lambda e: dataclasses.replace(e, sid=other) if _where(2, 1, 1)(e) else e  # noqa: E731
    _aborts(lambda: _presign(key23, committee, (1, 2), tamper), "dkls23.sign.wrong_session", 2, 1)


def test_session_id_never_reused_with_a_setup(key23, committee):
    sid = _sid("once")
    _presign(key23, committee, (1, 2), sid=sid)
    with pytest.raises(InvalidInput, match="already used"):
        _presign(key23, committee, (1, 2), sid=sid)


# --- the online round ----------------------------------------------------------------------------------------------


def _bump_w(env: Envelope):
    if (env.sender, env.round) == (2, 1):
        m = decode(env.payload, OnlineShare)
        return dataclasses.replace(env, payload=encode(OnlineShare(m.u, (m.w + 1) % Q)))
    return env


def test_bad_online_share(key23, key33, committee):
    digest = secrets.token_bytes(32)
    # two signers: the honest one names the other
    _aborts(lambda: _sign(key23, _presign(key23, committee, (1, 2)), digest, tamper=_bump_w),
            "dkls23.sign.verify", 2, 1)
    # three signers: DKLs23 has no identifiable abort for the online round
    _aborts(lambda: _sign(key33, _presign(key33, committee, PARTIES), digest, tamper=_bump_w),
            "dkls23.sign.verify", 0, 1)


def test_online_share_out_of_range_named(key23, committee):
    shares = _presign(key23, committee, (1, 3))
    pk, digest = key23[1].public_key, secrets.token_bytes(32)
    child = rerandomize_for(shares[1].public, pk, 0, digest)
    partials = {p: partial_sign(s, digest, child) for p, s in shares.items()}
    _aborts(lambda: combine(shares[1].public, pk, digest, {**partials, 3: OnlineShare(Q, 1)}),
            "dkls23.sign.share_range", 3, None)
    _aborts(lambda: combine(shares[1].public, pk, digest, {1: partials[1]}), "dkls23.sign.missing_share", 3, None)
    sig = combine(shares[1].public, pk, digest, partials)
    _verify_both(pk, digest, sig)


def test_online_share_of_another_presignature_refused(key23, committee):
    digest, pk = secrets.token_bytes(32), key23[1].public_key
    a, b = _presign(key23, committee, (2, 3)), _presign(key23, committee, (2, 3))
    share_b = partial_sign(b[3], digest, rerandomize_for(b[3].public, pk, 0, digest))
    child = rerandomize_for(a[2].public, pk, 0, digest)
    mine = partial_sign(a[2], digest, child)
    _aborts(lambda: combine(a[2].public, pk, digest, {2: mine, 3: share_b}, child, reporter=2),
            "dkls23.sign.verify", 3, 2)


# --- secrets and inputs --------------------------------------------------------------------------------------------


def test_secrets_redacted_single_use_and_not_picklable(key23, committee):
    sid = _sid("secrets")
    party = DKLs23PresignParty(sid, key23[1], committee[1], (1, 2))
    shares = _presign(key23, committee, (1, 2))
    online = DKLs23SignParty(_sid("o"), shares[2], key23[1].public_key, bytes(32))
    for obj in (party, shares[1], online):
        assert "redacted" in repr(obj)
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    shares[1].take()
    with pytest.raises(InvalidInput):
        shares[1].take()


def test_inputs_checked(key23, key33, committee):
    with pytest.raises(InvalidInput):  # below the threshold
        DKLs23PresignParty(_sid("x"), key33[1], committee[1], (1, 2))
    with pytest.raises(InvalidInput):  # another party's setup
        DKLs23PresignParty(_sid("x"), key23[1], committee[2], (1, 2))
    with pytest.raises(InvalidInput):  # a signer outside the key
        DKLs23PresignParty(_sid("x"), key23[1], committee[1], (1, 4))
    shares = _presign(key23, committee, (1, 2))
    with pytest.raises(InvalidInput):
        partial_sign(shares[1], bytes(32), None)
    assert not shares[1].used  # refused before the share was consumed

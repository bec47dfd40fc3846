"""Threshold ECDSA end to end in one process, and identifiable abort for every check of the protocols.

Level 112 with TEST ONLY fixture primes keeps this fast; a level-128 run is in the slow set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools

import coincurve
import pytest

from mpc_ray import sim
from mpc_ray.crypto.params import LEVEL_112, LEVEL_128
from mpc_ray.crypto.secp256k1 import Q, Point, sum_points
from mpc_ray.errors import ProtocolAbort, TestPrimeRefused
from mpc_ray.protocols.ecdsa import aux_info as aux_mod
from mpc_ray.protocols.ecdsa import keygen as keygen_mod
from mpc_ray.protocols.ecdsa import presign as presign_mod
from mpc_ray.protocols.ecdsa.presign import PresignatureUsed
from mpc_ray.protocols.ecdsa.sign import combine, partial_sign, rerandomize_for
from mpc_ray.protocols.wire import decode, encode
from mpc_ray.sim.router import run_parties
from tests.support.ecdsa import replace_payload, tamper_message, with_field
from tests.support.primes import fixture_paillier_key

DIGEST = hashlib.sha256(b"transfer 5 USDC").digest()


def fixture_keys(level: str, ids) -> dict:
    return {i: fixture_paillier_key(level, i) for i in ids}


@pytest.fixture(scope="module")
def aux5():
    """Aux info for parties 1..5 at level 112, made once for the module."""
    return sim.aux_info(5, "112", paillier_keys=fixture_keys("112", range(1, 6)))


@pytest.fixture(scope="module")
def key23(aux5):
    return sim.keygen(parties=3, threshold=2, aux={i: aux5[i] for i in (1, 2, 3)})


def assert_abort(excinfo, culprit: int, check: str) -> None:
    err = excinfo.value
    assert err.culprit == culprit, f"blamed {err.culprit} ({err.check}) instead of {culprit}"
    assert err.check == check, err.check


def verify_with_coincurve(public_key: bytes, digest: bytes, sig) -> None:
    assert coincurve.PublicKey(public_key).verify(sig.der(), digest, hasher=None)
    assert sig.s <= Q // 2
    recovered = coincurve.PublicKey.from_signature_and_message(
        sig.to_bytes() + bytes([sig.recovery_id]), digest, hasher=None
    )
    assert recovered.format() == public_key


# --- happy paths -----------------------------------------------------------------------------------------
def test_2_of_3_every_signer_set_and_eth_account(key23):
    from eth_account import Account
    from eth_keys import keys as eth_keys

    address = eth_keys.PublicKey(coincurve.PublicKey(key23.public_key).format(compressed=False)[1:]).to_checksum_address()
    for signers in itertools.combinations([1, 2, 3], 2):
        sig = key23.sign(DIGEST, signers=list(signers))
        verify_with_coincurve(key23.public_key, DIGEST, sig)
        assert Account._recover_hash(DIGEST, vrs=(sig.recovery_id, sig.r, sig.s)) == address
        assert len(sig.to_bytes()) == 64 and sig.der()[0] == 0x30


def test_3_of_5(aux5):
    key = sim.keygen(parties=5, threshold=3, aux=aux5)
    for signers in ([1, 2, 3], [2, 4, 5]):
        verify_with_coincurve(key.public_key, DIGEST, key.sign(DIGEST, signers=signers))


def test_public_key_is_sum_of_commitments():
    captured = {}

    def spy(env):
        if env.round == 2 and env.recipient is None:
            from mpc_ray.protocols.wire import decode

            captured[env.sender] = decode(env.payload, keygen_mod.Decommitment).reveal.coefficients
        return env

    shares = sim.run_keygen([1, 2, 3], 2, tamper=spy)
    expected = sum_points(c[0] for c in captured.values())
    for s in shares.values():
        assert s.public_key == expected
        assert s.public_shares[s.party] == Point.base_mul(s.x)
    assert "redacted" in repr(shares[1]) and str(shares[1].x) not in repr(shares[1])


def test_presignature_is_single_use(key23):
    presigs = key23.presign([1, 2])
    sig = key23.sign_with(presigs, DIGEST)
    verify_with_coincurve(key23.public_key, DIGEST, sig)
    with pytest.raises(PresignatureUsed):
        partial_sign(presigs[1], DIGEST, rerandomize_for(presigs[1].public, key23.public_point, 0, DIGEST))
    assert "redacted" in repr(presigs[1])


def test_test_keys_refused_without_opt_in():
    with pytest.raises(TestPrimeRefused):
        aux_mod.AuxInfoParty(b"sid", 1, [1, 2], LEVEL_112, fixture_paillier_key("112", 0))


@pytest.mark.slow
def test_level_128_end_to_end():
    aux = sim.aux_info(3, "128", paillier_keys=fixture_keys("128", range(1, 4)))
    key = sim.keygen(parties=3, threshold=2, aux=aux)
    verify_with_coincurve(key.public_key, DIGEST, key.sign(DIGEST, signers=[2, 3]))


# --- aux-info: every check names the culprit --------------------------------------------------------------
def run_aux(tamper=None, machines=None, level=LEVEL_112):
    sid = b"aux-test"
    keys = fixture_keys("112", range(6, 9))
    parties = [1, 2, 3]
    m = {i: aux_mod.AuxInfoParty(sid, i, parties, level, keys[i + 5], allow_test_keys=True) for i in parties}
    m.update(machines or {})
    return run_parties(m, tamper)


def test_aux_short_modulus_rejected():
    # party 2 commits honestly to a 2048-bit modulus in a level-128 committee
    with pytest.raises(ProtocolAbort) as e:
        sid = b"aux-test"
        m = {i: aux_mod.AuxInfoParty(sid, i, [1, 2, 3], LEVEL_128, fixture_paillier_key("128", i), allow_test_keys=True)
             for i in (1, 3)}
        m[2] = aux_mod.AuxInfoParty(sid, 2, [1, 2, 3], LEVEL_112, fixture_paillier_key("112", 2), allow_test_keys=True)
        run_parties(m)
    assert_abort(e, 2, "aux.short_modulus")


def test_aux_long_modulus_rejected(monkeypatch):
    # party 1 commits honestly to a 2048-bit modulus; the committee's cap is lowered to 1.5x the 1024-bit minimum
    monkeypatch.setattr(aux_mod, "MAX_MODULUS_FACTOR", 1.5)
    low = dataclasses.replace(LEVEL_112, modulus_bits=1023)
    sid = b"aux-test"
    m = {i: aux_mod.AuxInfoParty(sid, i, [1, 2], low, fixture_paillier_key("112", i), allow_test_keys=True) for i in (1, 2)}
    with pytest.raises(ProtocolAbort) as e:
        run_parties(m)
    assert_abort(e, 2, "aux.long_modulus")


def test_aux_wrong_echo():
    with pytest.raises(ProtocolAbort) as e:
        run_aux(tamper_message(2, 3, aux_mod.Decommitment, lambda m: with_field(m, "echo", b"\x00" * 32)))
    assert_abort(e, 3, "aux.echo")


def test_aux_bad_decommitment():
    with pytest.raises(ProtocolAbort) as e:
        run_aux(tamper_message(2, 2, aux_mod.Decommitment, lambda m: with_field(m, "reveal.rho", b"\x01" * 32)))
    assert_abort(e, 2, "aux.decommitment")


class _BadPrmParty(aux_mod.AuxInfoParty):
    """Commits honestly to ring-Pedersen parameters whose s is not in <t>, with a proof made for a wrong lambda."""

    def round1(self):
        out = super().round1()
        rp = self._rp.params
        bad = aux_mod.RingPedersenParams(rp.n, rp.s * 4 % rp.n, rp.t)  # s' = s * 2^2: not t^lambda for this lambda
        self._rp = aux_mod.RingPedersenSecret(bad, self._rp.lam, self._paillier)
        prm = aux_mod.pi_prm.prove(aux_mod.proof_transcript(f"{aux_mod.TAG}/pi_prm", self.sid, self.party),
                                   secret=self._rp, level=self.level)
        self._reveal = aux_mod.Reveal(aux_mod.AuxPublic(int(bad.n), int(bad.s), int(bad.t)), prm,
                                      self._reveal.rho, self._reveal.u)
        out.broadcast = aux_mod.Commitment(aux_mod.hash_commit(aux_mod.TAG, self.sid, self.party, self._reveal))
        return out


def test_aux_bad_ring_pedersen_proof():
    m = {3: _BadPrmParty(b"aux-test", 3, [1, 2, 3], LEVEL_112, fixture_paillier_key("112", 8), allow_test_keys=True)}
    with pytest.raises(ProtocolAbort) as e:
        run_aux(machines=m)
    assert e.value.culprit == 3 and e.value.check.startswith("aux.pi_prm.")


def test_aux_duplicate_modulus():
    m = {3: aux_mod.AuxInfoParty(b"aux-test", 3, [1, 2, 3], LEVEL_112, fixture_paillier_key("112", 7), allow_test_keys=True)}
    with pytest.raises(ProtocolAbort) as e:
        run_aux(machines=m)  # party 3 reuses party 2's modulus (fixture key 7)
    assert_abort(e, 3, "aux.duplicate_modulus")


@pytest.mark.parametrize(
    "field,value,check",
    [
        ("proof.w", 0, "aux.pi_mod.unit_w"),
        ("proof.x", [], "aux.pi_mod.length"),
    ],
)
def test_aux_bad_pi_mod(field, value, check):
    with pytest.raises(ProtocolAbort) as e:
        run_aux(tamper_message(3, 2, aux_mod.ModProof, lambda m: with_field(m, field, value)))
    assert e.value.culprit == 2 and e.value.check.startswith("aux.pi_mod.")


def test_aux_bad_pi_fac():
    with pytest.raises(ProtocolAbort) as e:
        run_aux(tamper_message(3, 3, aux_mod.FacProof, lambda m: with_field(m, "proof.z1", m.proof.z1 + 1), recipient=1))
    assert e.value.culprit == 3 and e.value.check.startswith("aux.pi_fac.")


def test_aux_replayed_pi_mod_from_another_session():
    # party 2 keeps its modulus across two aux runs; its pi_mod from run A is replayed into run B
    captured = {}

    def capture(env):
        if env.round == 3 and env.sender == 2 and env.recipient is None:
            captured["payload"] = env.payload
        return env

    run_aux(capture)
    sid_b = b"aux-test-B"
    keys = fixture_keys("112", range(6, 9))
    m = {i: aux_mod.AuxInfoParty(sid_b, i, [1, 2, 3], LEVEL_112, keys[i + 5], allow_test_keys=True) for i in (1, 2, 3)}

    def replay(env):
        if env.round == 3 and env.sender == 2 and env.recipient is None:
            return dataclasses.replace(env, payload=captured["payload"])
        return env

    with pytest.raises(ProtocolAbort) as e:
        run_parties(m, replay)
    assert e.value.culprit == 2 and e.value.check.startswith("aux.pi_mod.")


def test_aux_garbage_bytes():
    with pytest.raises(ProtocolAbort) as e:
        run_aux(replace_payload(2, 1, b"\xde\xad\xbe\xef"))
    assert_abort(e, 1, "aux.round2.decode")


# --- keygen ---------------------------------------------------------------------------------------------
def test_keygen_bad_share():
    with pytest.raises(ProtocolAbort) as e:
        sim.run_keygen([1, 2, 3], 2, tamper_message(2, 3, keygen_mod.Share, lambda m: keygen_mod.Share((m.value + 1) % Q), recipient=1))
    assert_abort(e, 3, "keygen.share")


def test_keygen_wrong_echo():
    with pytest.raises(ProtocolAbort) as e:
        sim.run_keygen([1, 2, 3], 2, tamper_message(2, 2, keygen_mod.Decommitment, lambda m: with_field(m, "echo", b"\x07" * 32)))
    assert_abort(e, 2, "keygen.echo")


def test_keygen_bad_decommitment():
    def change(m):
        coeffs = list(m.reveal.coefficients)
        coeffs[0] = coeffs[0] + Point.generator()
        return with_field(m, "reveal.coefficients", coeffs)

    with pytest.raises(ProtocolAbort) as e:
        sim.run_keygen([1, 2, 3], 2, tamper_message(2, 1, keygen_mod.Decommitment, change))
    assert_abort(e, 1, "keygen.decommitment")


class _WrongDegreeParty(keygen_mod.KeygenParty):
    """Commits honestly to a polynomial of the wrong degree (Trail of Bits 2024: commitment count != t)."""

    def round1(self):
        self.threshold += 1
        out = super().round1()
        self.threshold -= 1
        return out


def test_keygen_commitment_count():
    sid = b"keygen-test"
    m = {i: keygen_mod.KeygenParty(sid, i, [1, 2, 3], 2) for i in (1, 2)}
    m[3] = _WrongDegreeParty(sid, 3, [1, 2, 3], 2)
    with pytest.raises(ProtocolAbort) as e:
        run_parties(m)
    assert_abort(e, 3, "keygen.commitment_count")


def test_keygen_bad_schnorr_proof():
    with pytest.raises(ProtocolAbort) as e:
        sim.run_keygen([1, 2, 3], 2, tamper_message(3, 2, keygen_mod.KnowledgeProof, lambda m: with_field(m, "proof.z", (m.proof.z + 1) % Q)))
    assert_abort(e, 2, "keygen.schnorr.equation")


def test_keygen_garbage():
    with pytest.raises(ProtocolAbort) as e:
        sim.run_keygen([1, 2, 3], 2, replace_payload(3, 3, b"not msgpack at all \xff"))
    assert_abort(e, 3, "keygen.round3.decode")


# --- presign ------------------------------------------------------------------------------------------
def presign_with(key, tamper, signers=(1, 2, 3)):
    return key.presign(list(signers), tamper=tamper)


@pytest.fixture(scope="module")
def key33(aux5):
    """3-of-3 over parties 1..3 so every presign has two peers to blame between."""
    return sim.keygen(parties=3, threshold=3, aux={i: aux5[i] for i in (1, 2, 3)})


@pytest.mark.parametrize(
    "round_no,msg_type,field,value,check",
    [
        (1, presign_mod.Round1, "K", 0, "presign.ciphertext_K"),
        (1, presign_mod.Round1, "G", 1 << 5000, "presign.ciphertext_G"),
        (1, presign_mod.EncProof, "proof.z1", 1 << 900, "presign.pi_enc.range_z1"),
        (2, presign_mod.Round2, "echo", b"\x00" * 32, "presign.echo"),
        (2, presign_mod.Round2Direct, "psi.z1", 1 << 900, "presign.pi_aff_g.range_z1"),
        (2, presign_mod.Round2Direct, "psi_hat.z2", 1 << 2000, "presign.pi_aff_g.range_z2"),
        (2, presign_mod.Round2Direct, "F", 0, "presign.ciphertext_F"),
        (2, presign_mod.Round2Direct, "D", 0, "presign.ciphertext_D"),
        (3, presign_mod.Round3, "echo", b"\x01" * 32, "presign.echo"),
        (3, presign_mod.Round3, "delta", Q, "presign.delta_range"),
        (3, presign_mod.LogProof, "proof.z1", 1 << 900, "presign.pi_log_star.range_z1"),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v else None,
)
def test_presign_tampering_names_culprit(key33, round_no, msg_type, field, value, check):
    with pytest.raises(ProtocolAbort) as e:
        presign_with(key33, tamper_message(round_no, 2, msg_type, lambda m: with_field(m, field, value)))
    assert_abort(e, 2, check)


def test_presign_wrong_gamma_point(key33):
    tamper = tamper_message(2, 3, presign_mod.Round2, lambda m: with_field(m, "Gamma", m.Gamma + Point.generator()))
    with pytest.raises(ProtocolAbort) as e:
        presign_with(key33, tamper)
    assert e.value.culprit == 3 and e.value.check.startswith("presign.pi_aff_g.")


def test_presign_garbage(key33):
    with pytest.raises(ProtocolAbort) as e:
        presign_with(key33, replace_payload(2, 3, b"\x93\x01"))
    assert_abort(e, 3, "presign.round2.decode")


def test_presign_message_from_another_session(key33):
    with pytest.raises(ProtocolAbort) as e:
        presign_with(key33, lambda env: dataclasses.replace(env, sid=b"other") if env.sender == 3 and env.round == 2 else env)
    assert_abort(e, 3, "presign.wrong_session")


# --- signing: a bad partial is named ---------------------------------------------------------------------
def test_bad_partial_signature_named(key23):
    presigs = key23.presign([1, 3])
    public = presigs[1].public
    master = rerandomize_for(public, key23.public_point, 0, DIGEST)  # every signature is re-randomised
    partials = {i: partial_sign(p, DIGEST, master) for i, p in presigs.items()}
    partials[3] = (partials[3] + 1) % Q
    with pytest.raises(ProtocolAbort) as e:
        combine(public, key23.public_point, DIGEST, partials)
    assert_abort(e, 3, "sign.partial_signature")
    with pytest.raises(ProtocolAbort) as e:
        combine(public, key23.public_point, DIGEST, {1: partials[1], 3: "junk"})
    assert_abort(e, 3, "sign.partial_range")


# --- identification: wrong delta_i or S_i with every proof valid ---------------------------------------------
def test_delta_zero_attack_names_culprit(key33):
    """Party 3 (broadcasting last) sets delta_3 so that delta = 0; all its proofs stay valid. Identification
    proves every other delta_j correct and names party 3."""
    deltas = {}

    def tamper(env):
        if env.round == 3 and env.recipient is None:
            msg = decode(env.payload, presign_mod.Round3)
            deltas[env.sender] = msg.delta
            if env.sender == 3:
                zeroing = (-(deltas[1] + deltas[2])) % Q
                return dataclasses.replace(env, payload=encode(with_field(msg, "delta", zeroing)))
        return env

    with pytest.raises(ProtocolAbort) as e:
        key33.presign([1, 2, 3], tamper=tamper)
    assert_abort(e, 3, "presign.identify.pi_dec.equation_mod_q")


@pytest.mark.parametrize("culprit", [1, 2])
def test_wrong_delta_names_culprit(key33, culprit):
    tamper = tamper_message(3, culprit, presign_mod.Round3, lambda m: with_field(m, "delta", (m.delta + 1) % Q))
    with pytest.raises(ProtocolAbort) as e:
        key33.presign([1, 2, 3], tamper=tamper)
    assert_abort(e, culprit, "presign.identify.pi_dec.equation_mod_q")


def test_wrong_chi_point_names_culprit(key33):
    tamper = tamper_message(3, 2, presign_mod.Round3, lambda m: with_field(m, "S", m.S + Point.generator()))
    with pytest.raises(ProtocolAbort) as e:
        key33.presign([1, 2, 3], tamper=tamper)
    assert_abort(e, 2, "presign.identify.chi_point")


class _ShortSeedParty(keygen_mod.KeygenParty):
    """Commits honestly to a 3-byte rho: must be named, not crash the XOR of the seeds."""

    def round1(self):
        out = super().round1()
        self._reveal = dataclasses.replace(self._reveal, rho=b"abc")
        out.broadcast = keygen_mod.Commitment(keygen_mod.hash_commit(keygen_mod.TAG, self.sid, self.party, self._reveal))
        return out


def test_keygen_short_seed():
    sid = b"keygen-test"
    m = {i: keygen_mod.KeygenParty(sid, i, [1, 2, 3], 2) for i in (1, 3)}
    m[2] = _ShortSeedParty(sid, 2, [1, 2, 3], 2)
    with pytest.raises(ProtocolAbort) as e:
        run_parties(m)
    assert_abort(e, 2, "keygen.seed_length")

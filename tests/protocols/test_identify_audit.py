"""Identification after a failed presigning, against the two audited attacks and every new check.

1. Pi-dec over y + k N0: a party that broadcast a wrong delta forges its Pi-dec for that delta. It is named by the
   bound on z1 (crypto/zk/pi_dec.py).
2. Lies about MtA messages between others: identification uses a third party's ciphertexts only with their sender's
   signature, so a liar cannot make one honest party blame another; EVERY honest party names the liar.

Each party's verdict is collected on its own (`run_each`), not only the first error as `run_parties` raises it.
Level 112 with TEST ONLY fixture primes.
"""

from __future__ import annotations

import copy
import dataclasses
import secrets

import pytest
from gmpy2 import mpz

from mpc_ray import sim
from mpc_ray.crypto.secp256k1 import Q
from mpc_ray.crypto.zk import paillier_proofs, pi_dec
from mpc_ray.errors import ProtocolAbort
from mpc_ray.protocols.base import Envelope
from mpc_ray.protocols.ecdsa import identify as identify_mod
from mpc_ray.protocols.ecdsa import presign as presign_mod
from mpc_ray.protocols.ecdsa.identify import IdentifyParty, plaintext_bound
from mpc_ray.protocols.ecdsa.presign import PresignInconsistent, PresignParty
from mpc_ray.protocols.wire import decode, encode
from mpc_ray.sim.router import run_parties
from tests.support.ecdsa import tamper_message, with_field
from tests.support.primes import fixture_paillier_key


@pytest.fixture(scope="module")
def aux3():
    return sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})


@pytest.fixture(scope="module")
def key33(aux3):
    return sim.keygen(parties=3, threshold=3, aux=aux3)


@pytest.fixture(scope="module")
def key23(aux3):
    return sim.keygen(parties=3, threshold=2, aux=aux3)


def machines_for(key, signers, classes=None) -> dict[int, PresignParty]:
    sid = b"presign-test:" + secrets.token_bytes(16)
    classes = classes or {}
    return {i: classes.get(i, PresignParty)(sid, key.shares[i], key.aux[i], signers, attestor=key.attestors[i])
            for i in signers}


def wrong_delta(culprit: int):
    """Presigning round 3: `culprit` broadcasts delta_i + 1 (every proof of it stays valid)."""
    return tamper_message(3, culprit, presign_mod.Round3, lambda m: with_field(m, "delta", (m.delta + 1) % Q))


def failed_presign(key, signers, tamper) -> dict[int, PresignParty]:
    machines = machines_for(key, signers)
    with pytest.raises(PresignInconsistent):
        run_parties(machines, tamper)
    return machines


@pytest.fixture(scope="module")
def honest33(key33) -> dict[int, PresignParty]:
    """A presigning that succeeded; identification on (copies of) it must name nobody, unless a test cheats."""
    machines = machines_for(key33, (1, 2, 3))
    run_parties(machines)
    return machines


def fresh(machines: dict[int, PresignParty]) -> dict[int, PresignParty]:
    """Copies of finished presigning machines for one identification run: identification wipes its machine by
    rebinding attributes, and tests change the message tables, so a shallow copy with copied tables suffices
    (points wrap C objects that do not deep-copy)."""
    out = {}
    for i, m in machines.items():
        c = copy.copy(m)
        for name in ("_sent", "_received", "_r3", "_mta_rand"):
            setattr(c, name, dict(getattr(m, name)))
        out[i] = c
    return out


def run_each(parties, tamper=None) -> dict[int, object]:
    """Run a one-round protocol (identification) and return each party's own verdict: its output or its abort."""
    envs: list[Envelope] = [e for m in parties.values() for e in m.start()]
    if tamper is not None:
        envs = [t for t in (tamper(e) for e in envs) if t is not None]
    verdicts: dict[int, object] = {}
    for i, m in parties.items():
        try:
            m.receive([e for e in envs if e.sender != i and e.recipient in (None, i)])
            verdicts[i] = m.output
        except ProtocolAbort as exc:
            verdicts[i] = exc
    return verdicts


def identify(machines, attackers=None, tamper=None) -> dict[int, object]:
    attackers = attackers or {}
    return run_each({i: attackers.get(i, IdentifyParty)(m) for i, m in machines.items()}, tamper)


def assert_all_name(verdicts, culprit: int, check: str | None = None, prefix: str | None = None) -> None:
    """Every party other than the culprit named the culprit (with `check`, or a check starting with `prefix`)."""
    for i, v in verdicts.items():
        if i == culprit:
            continue
        assert isinstance(v, ProtocolAbort), f"party {i} named nobody"
        assert v.culprit == culprit, f"party {i} blamed {v.culprit} ({v.check}) instead of {culprit}"
        assert v.reporter == i
        if check is not None:
            assert v.check == check, (i, v.check)
        if prefix is not None:
            assert v.check.startswith(prefix), (i, v.check)


# --- completeness -------------------------------------------------------------------------------------------
def test_honest_identification_names_nobody(honest33):
    """Every proof of every honest party verifies, the bounded pi_dec included (the honest plaintext fits B)."""
    assert identify(fresh(honest33)) == {1: None, 2: None, 3: None}


def test_two_signers_wrong_delta_named(key23):
    """Two signers: no third-party pairs, nothing to re-prove; the cheater is still named by both views."""
    verdicts = identify(failed_presign(key23, (1, 3), wrong_delta(3)))
    assert_all_name(verdicts, 3, "presign.identify.pi_dec.equation_mod_q")


def test_plaintext_bound_fits_both_levels():
    from mpc_ray.crypto.params import LEVEL_112, LEVEL_128

    for lv in (LEVEL_112, LEVEL_128):
        for t in (2, 3, 16, 1000):
            B = plaintext_bound(lv, t)
            assert 4 * ((B << lv.eps) + Q * B) < 1 << (lv.modulus_bits - 1)  # every accepted N0 is >= 2^(bits-1)
            assert Q * Q + 3 * (t - 1) * (1 << lv.ell_prime) <= B


# --- attack 1: Pi-dec for a wrong delta, forged over y + k N0 -------------------------------------------------
class ForgingDec(IdentifyParty):
    """Broadcast delta_i + 1 in presigning; now prove it: run the honest prover on y' = y + k N0 = delta_i + 1 mod q.
    Every equation of the paper's Pi-dec holds for y' (tests/crypto/test_zk_enc_log_dec.py)."""

    def _prove_dec(self, what, verifier, C, y, rho):
        if what != "delta":
            return super()._prove_dec(what, verifier, C, y, rho)
        sk = self.p.aux.paillier
        n0 = int(sk.public.n)
        k = (1 * pow(n0, -1, Q)) % Q  # y + k N0 = y + 1 mod q
        y_forged = mpz(y + k * n0)
        st = paillier_proofs.prover_setup("pi_dec", sk.public, self.p.aux.rp(verifier).params, self.p.level, None,
                                          rho)
        nonces, r, S, A, T = paillier_proofs.first_message(st, y_forged, abs(y_forged) << self.p.level.eps, None)
        gamma = int(nonces.alpha % Q)
        e = pi_dec._challenge(self._tr("pi_dec/delta", self.party, verifier), st, self.bound, mpz(C),
                              int(y_forged % Q), S, T, A, gamma)
        z1, w, z2 = paillier_proofs.responses(st, nonces, r, y_forged, rho, e, None)
        return pi_dec.Proof(int(S), int(T), int(A), gamma, int(z1), int(z2), int(w))


def test_forged_pi_dec_for_wrong_delta_named_by_range(key33):
    verdicts = identify(failed_presign(key33, (1, 2, 3), wrong_delta(3)), {3: ForgingDec})
    assert_all_name(verdicts, 3, "presign.identify.pi_dec.range_z1")


def test_wrong_delta_without_forgery_named(key33):
    verdicts = identify(failed_presign(key33, (1, 2, 3), wrong_delta(2)))
    assert_all_name(verdicts, 2, "presign.identify.pi_dec.equation_mod_q")


# --- attack 2: lies about MtA messages ------------------------------------------------------------------------
def test_liar_about_d_3_to_1_named_by_every_honest_party(key33):
    """Party 3 broadcast a wrong delta and, in identification, says it sent D' != D_{3->1} (everything it proves
    about that pair uses D'). Party 1 names 3 (its delta); party 2, which before the fix rebuilt Enc_1(delta_1) from
    3's word and named honest party 1, takes D_{3->1} from 1's list under 3's signature and names 3 too."""
    machines = failed_presign(key33, (1, 2, 3), wrong_delta(3))
    liar = machines[3]
    pk1 = liar.aux.paillier_pk(1)
    liar._sent[1] = dataclasses.replace(liar._sent[1], D=int(pk1.add(liar._sent[1].D, pk1.encrypt(1)[0])))
    verdicts = identify(machines)
    assert_all_name(verdicts, 3)
    assert verdicts[1].check == "presign.identify.pi_dec.equation_mod_q"
    assert verdicts[2].check.startswith("presign.identify.pi_aff_g.")


def change_claims(sender: int, change):
    return tamper_message(1, sender, identify_mod.Claims, change, recipient=None)


def change_proofs(sender: int, recipient: int, change):
    return tamper_message(1, sender, identify_mod.Proofs, change, recipient=recipient)


def other_ciphertext(machines, owner: int, c: int) -> int:
    pk = machines[1].aux.paillier_pk(owner)
    return int(pk.add(c, pk.encrypt(5)[0]))


def test_liar_presenting_unsigned_message_named_by_every_honest_party(honest33):
    """Party 3 presents, as received from 1, a D that 1 never signed: every honest party names 3."""
    machines = fresh(honest33)

    def change(claims):
        received = [dataclasses.replace(m, D=other_ciphertext(machines, 3, m.D)) if m.frm == 1 else m
                    for m in claims.received]
        return dataclasses.replace(claims, received=received)

    assert_all_name(identify(machines, tamper=change_claims(3, change)), 3, "presign.identify.mta_signature")


def test_message_signed_for_another_recipient_refused(honest33):
    """Party 3 presents 1's genuinely signed message to 2 as its own from 1: the signature binds the recipient."""
    machines = fresh(honest33)
    to_2 = machines[1]._sent[2]

    def change(claims):
        received = [identify_mod.Received(1, to_2.D, to_2.F, to_2.D_hat, to_2.F_hat, to_2.signature)
                    if m.frm == 1 else m for m in claims.received]
        return dataclasses.replace(claims, received=received)

    verdicts = identify(machines, tamper=change_claims(3, change))
    assert_all_name(verdicts, 3)
    # 2 sees 1's message to 2 presented as a message to 3: the ciphertext D is under 2's key, not 3's
    assert {v.check for i, v in verdicts.items() if i != 3} <= {"presign.identify.mta_signature",
                                                                "presign.identify.ciphertext_D"}


@pytest.mark.parametrize(
    "change,check",
    [
        (lambda c: dataclasses.replace(c, received=c.received[:1]), "received_list"),
        (lambda c: dataclasses.replace(c, received=[c.received[0], c.received[0]]), "received_list"),
        (lambda c: with_field(c, "received", [dataclasses.replace(c.received[0], D=0)] + c.received[1:]),
         "ciphertext_D"),
        (lambda c: with_field(c, "received", [dataclasses.replace(c.received[0], F_hat=1 << 9000)] + c.received[1:]),
         "ciphertext_F"),
        (lambda c: with_field(c, "received", [dataclasses.replace(c.received[0], signature=b"\x00" * 64)]
                              + c.received[1:]), "mta_signature"),
        (lambda c: with_field(c, "received", [dataclasses.replace(c.received[0], signature=b"")] + c.received[1:]),
         "mta_signature"),
        (lambda c: with_field(c, "chi", Q), "chi_range"),
        (lambda c: with_field(c, "chi", (c.chi + 1) % Q), "chi_point"),
        (lambda c: with_field(c, "H", 0), "ciphertext_H"),
    ],
    ids=["missing", "duplicate", "D", "F_hat", "signature", "empty_signature", "chi_range", "chi_point", "H"],
)
def test_broadcast_checks_named_by_every_honest_party(honest33, change, check):
    verdicts = identify(fresh(honest33), tamper=change_claims(3, change))
    assert_all_name(verdicts, 3, f"presign.identify.{check}")


@pytest.mark.parametrize(
    "change,check",
    [
        (lambda p: with_field(p, "mta", []), "presign.identify.mta_proof_list"),
        (lambda p: with_field(p, "mta", [p.mta[0], p.mta[0]]), "presign.identify.mta_proof_list"),
        (lambda p: with_field(p, "mta", [with_field(p.mta[0], "to", 1)]), "presign.identify.mta_proof_list"),
        (lambda p: with_field(p, "mta", [with_field(p.mta[0], "psi.z1", p.mta[0].psi.z1 + 1)]),
         "presign.identify.pi_aff_g."),
        (lambda p: with_field(p, "mta", [with_field(p.mta[0], "psi_hat.z2", 1 << 2000)]),
         "presign.identify.pi_aff_g.range_z2"),
        (lambda p: with_field(p, "dec_chi.z1", p.dec_chi.z1 + Q), "presign.identify.pi_dec."),
        (lambda p: with_field(p, "psi_mul_star.z1", p.psi_mul_star.z1 + 1), "presign.identify.pi_mul_star."),
    ],
    ids=["no_pairs", "twice", "wrong_pair", "aff_gamma", "aff_x_range", "dec_chi", "mul_star"],
)
def test_direct_checks_named_by_their_recipient(honest33, change, check):
    """Party 3's proofs to party 1 (pair 3 -> 2 re-proven on 1's parameters) are bad; 1 names 3, 2 names nobody."""
    verdicts = identify(fresh(honest33), tamper=change_proofs(3, 1, change))
    assert isinstance(verdicts[1], ProtocolAbort) and verdicts[1].culprit == 3
    assert verdicts[1].check.startswith(check), verdicts[1].check
    assert verdicts[2] is None


def test_colluding_pair_named(honest33):
    """Parties 2 and 3 collude: 3 sends 2 an inconsistent MtA pair (D_{3->2} shifted by Enc_2(1), signed by 3), 2
    accepts it without a word and broadcasts the delta_2 that matches it. Every pi_dec holds and delta is off by one;
    only 3's re-proof of pair 3 -> 2 to party 1 shows it: no pi_aff_g exists for a D that is not K_2^gamma_3 Enc(y)."""
    machines = fresh(honest33)
    liar, accomplice = machines[3], machines[2]
    pk2 = liar.aux.paillier_pk(2)
    d = liar._sent[2]
    D = int(pk2.add(d.D, pk2.encrypt(1)[0]))
    sig = liar.attestor.sign(presign_mod.mta_message(liar.sid, 3, 2, D, d.F, d.D_hat, d.F_hat))
    liar._sent[2] = accomplice._received[3] = dataclasses.replace(d, D=D, signature=sig)
    for m in machines.values():  # 2's broadcast delta, as computed from the shifted D
        m._r3[2] = dataclasses.replace(m._r3[2], delta=(m._r3[2].delta + 1) % Q)
    verdicts = identify(machines)
    assert isinstance(verdicts[1], ProtocolAbort) and verdicts[1].culprit == 3
    assert verdicts[1].check.startswith("presign.identify.pi_aff_g."), verdicts[1].check


# --- presigning: the checks identification relies on ------------------------------------------------------------
class OversizedMasks(PresignParty):
    """A sender whose MtA masks are far beyond +-2^ell' but still pass pi_aff_g (+-2^(ell'+eps)): it would push an
    honest receiver's identification plaintext past the bound and frame it."""

    which = "both"

    def _mask(self) -> int:
        self._calls = getattr(self, "_calls", 0) + 1
        big = self.which == "both" or (self.which == "hat") == (self._calls % 2 == 0)
        return (1 << 1500) if big else super()._mask()


@pytest.mark.parametrize("which,check", [("both", "presign.range_alpha"), ("plain", "presign.range_alpha"),
                                         ("hat", "presign.range_alpha_hat")])
def test_oversized_mta_share_named(key33, which, check):
    cls = type("Oversized", (OversizedMasks,), {"which": which})
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines_for(key33, (1, 2, 3), {2: cls}))
    assert (e.value.culprit, e.value.check, e.value.reporter) == (2, check, 1)


@pytest.mark.parametrize("how", ["forged", "empty", "altered"])
def test_unsigned_mta_message_named(key33, how):
    n2 = key33.aux[1].paillier_pk(1).n2

    def change(m):
        if how == "altered":  # still a ciphertext under 1's key, no longer what 2 signed
            return with_field(m, "D_hat", int(m.D_hat * m.D_hat % n2))
        return with_field(m, "signature", b"\x01" * 64 if how == "forged" else b"")

    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines_for(key33, (1, 2, 3)), tamper_message(2, 2, presign_mod.Round2Direct, change,
                                                                   recipient=1))
    assert (e.value.culprit, e.value.check, e.value.reporter) == (2, "presign.mta_signature", 1)


def test_presign_refuses_missing_attestor(key33):
    with pytest.raises(Exception) as e:
        PresignParty(b"sid", key33.shares[1], key33.aux[1], (1, 2, 3), attestor=None)
    assert "MessageAttestor" in str(e.value)


def test_sim_presign_runs_identification(key33):
    """mpc_ray.sim runs identification with signed MtA messages; the abort names the cheater."""
    with pytest.raises(ProtocolAbort) as e:
        key33.presign([1, 2, 3], tamper=wrong_delta(1))
    assert (e.value.culprit, e.value.check) == (1, "presign.identify.pi_dec.equation_mod_q")


def test_claims_round_trip_on_the_wire(honest33):
    machines = fresh(honest33)
    envs = IdentifyParty(machines[1]).start()
    claims = decode(next(e for e in envs if e.recipient is None).payload, identify_mod.Claims)
    assert decode(encode(claims), identify_mod.Claims) == claims
    assert all(isinstance(m.signature, bytes) and len(m.signature) == 64 for m in claims.received)

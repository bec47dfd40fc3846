"""Identification after a failed presigning (CGGMP21 Sec. 4.3): find who sent a wrong delta_i or S_i.

When round 4 of presigning finds delta = 0, delta G != sum Delta_j, or sum S_j != delta Y although every proof
verified, each signer i publishes
- H_i = K_i^gamma_i rho^N_i with pi_mul (against G_i = Enc(gamma_i)), and H-hat_i = K_i^w_i rho^N_i with
  pi_mul_star (against W_i = w_i G);
- the MtA ciphertexts it sent in round 2 (so everyone can rebuild what i received);
- chi_i, and two pi_dec proofs that
  Enc_i(delta_i) = H_i * prod_k D_{k->i} / prod_k F_{i->k}  and  Enc_i(chi_i) = H-hat_i * prod_k D-hat / prod F-hat
  decrypt to delta_i and chi_i mod q; S_i must equal chi_i Gamma.
The presignature is discarded either way, so revealing chi_i costs nothing. A party whose claims about the
messages it sent differ from what the receiver got is named by that receiver (the node layer's signed envelopes
make such a claim provable).
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2

from ...crypto.paillier import sample_unit
from ...crypto.secp256k1 import Q
from ...crypto.zk import pi_dec, pi_mul, pi_mul_star
from ..base import Inbound, Outbox, RoundParty
from ..common import proof_transcript
from .presign import TAG, PresignParty


@dataclass(frozen=True)
class Sent:
    to: int
    D: int
    F: int
    D_hat: int
    F_hat: int


@dataclass(frozen=True)
class Claims:
    H: int
    H_hat: int
    chi: int
    sent: list[Sent]
    psi_mul: pi_mul.Proof


@dataclass(frozen=True)
class Proofs:
    psi_mul_star: pi_mul_star.Proof
    dec_delta: pi_dec.Proof
    dec_chi: pi_dec.Proof


class IdentifyParty(RoundParty):
    NAME = "presign.identify"
    ROUNDS = ((Claims, Proofs),)

    def __init__(self, failed: PresignParty) -> None:
        super().__init__(failed.sid, failed.party, failed.parties)
        self.p = failed

    def _tr(self, proof: str, prover: int, verifier: int | None = None):
        return proof_transcript(f"{TAG}/identify/{proof}", self.sid, prover, verifier)

    def _combined(self, i: int, H: int, H_hat: int, sent_by: dict[int, dict[int, Sent]]) -> tuple[int, int]:
        """Enc_i(delta_i) and Enc_i(chi_i) rebuilt from public data."""
        n2 = self.p.aux.paillier_pk(i).n2
        c_delta, c_chi = gmpy2.mpz(H), gmpy2.mpz(H_hat)
        for k in self.parties:
            if k == i:
                continue
            to_i, from_i = sent_by[k][i], sent_by[i][k]
            c_delta = c_delta * to_i.D * gmpy2.invert(from_i.F, n2) % n2
            c_chi = c_chi * to_i.D_hat * gmpy2.invert(from_i.F_hat, n2) % n2
        return int(c_delta), int(c_chi)

    def round1(self) -> Outbox:
        p, sk = self.p, self.p.aux.paillier
        pk = sk.public
        r, r_hat = sample_unit(pk.n), sample_unit(pk.n)
        self._H = int(pk.mul(p._K, p._gamma) * sk.r_pow_n(r) % pk.n2)
        self._H_hat = int(pk.mul(p._K, p._w) * sk.r_pow_n(r_hat) % pk.n2)
        psi_mul = pi_mul.prove(
            self._tr("pi_mul", self.party), pk=sk, X=p._G, Y=p._K, C=self._H, x=p._gamma, rho_x=p._nu, rho=r
        )
        sent = [Sent(j, d.D, d.F, d.D_hat, d.F_hat) for j, d in sorted(p._sent.items())]
        own_sent = {s.to: s for s in sent}
        # what i received, in the shape of the senders' claims
        sent_by = {self.party: own_sent}
        for k, d in p._received.items():
            sent_by[k] = {self.party: Sent(self.party, d.D, d.F, d.D_hat, d.F_hat)}
        c_delta, c_chi = self._combined(self.party, self._H, self._H_hat, sent_by)
        y_delta, y_chi = sk.decrypt(c_delta), sk.decrypt(c_chi)
        self._claims = Claims(self._H, self._H_hat, y_chi % Q, sent, psi_mul)
        direct = {}
        for j in self.others:
            rp_j = p.aux.rp(j).params
            direct[j] = Proofs(
                pi_mul_star.prove(
                    self._tr("pi_mul_star", self.party, j), pk0=sk, verifier_rp=rp_j,
                    C=p._K, D=self._H_hat, X=p._W[self.party], x=p._w, rho=r_hat, level=p.level,
                ),
                pi_dec.prove(
                    self._tr("pi_dec/delta", self.party, j), prover_pk=pk, verifier_rp=rp_j, C=c_delta,
                    x=y_delta % Q, y=y_delta, rho=sk.recover_randomness(c_delta, y_delta), level=p.level, prover_sk=sk,
                ),
                pi_dec.prove(
                    self._tr("pi_dec/chi", self.party, j), prover_pk=pk, verifier_rp=rp_j, C=c_chi,
                    x=y_chi % Q, y=y_chi, rho=sk.recover_randomness(c_chi, y_chi), level=p.level, prover_sk=sk,
                ),
            )
        return Outbox(broadcast=self._claims, direct=direct)

    def round2(self, inbox: dict[int, Inbound]) -> None:
        """Raise ProtocolAbort naming the first peer whose values are proven wrong; None if every peer's were right
        (then, from this party's view, the fault is its own: only a dishonest party sees that)."""
        p = self.p
        own_rp = p.aux.rp(self.party)
        claims = {j: m.broadcast for j, m in inbox.items()}
        claims[self.party] = self._claims
        sent_by: dict[int, dict[int, Sent]] = {}
        # 1. claims about messages sent to me must match what I received
        for j in self.others:
            c: Claims = claims[j]
            by_to = {s.to: s for s in c.sent}
            if sorted(by_to) != [k for k in self.parties if k != j]:
                raise self.abort(j, "sent_list")
            got = p._received[j]
            if by_to[self.party] != Sent(self.party, got.D, got.F, got.D_hat, got.F_hat):
                raise self.abort(j, "sent_mismatch")
            pk_j = p.aux.paillier_pk(j)
            for s in c.sent:
                pk_to = p.aux.paillier_pk(s.to)
                if not (pk_j.is_valid_ciphertext(s.F) and pk_j.is_valid_ciphertext(s.F_hat)):
                    raise self.abort(j, "ciphertext_F")
                if not (pk_to.is_valid_ciphertext(s.D) and pk_to.is_valid_ciphertext(s.D_hat)):
                    raise self.abort(j, "ciphertext_D")
            sent_by[j] = by_to
        sent_by[self.party] = {s.to: s for s in self._claims.sent}
        # 2. every party's proofs
        for j in self.others:
            c, proofs = claims[j], inbox[j].direct
            pk_j = p.aux.paillier_pk(j)
            for name, value in (("H", c.H), ("H_hat", c.H_hat)):
                if not pk_j.is_valid_ciphertext(value):
                    raise self.abort(j, f"ciphertext_{name}")
            if not isinstance(c.chi, int) or not 0 <= c.chi < Q:
                raise self.abort(j, "chi_range")
            c_delta, c_chi = self._combined(j, c.H, c.H_hat, sent_by)
            with self.blame(j):
                pi_mul.verify(self._tr("pi_mul", j), c.psi_mul, pk=pk_j, X=p._r1[j].G, Y=p._r1[j].K, C=c.H)
                pi_mul_star.verify(
                    self._tr("pi_mul_star", j, self.party), proofs.psi_mul_star, pk0=pk_j, verifier_rp=own_rp,
                    C=p._r1[j].K, D=c.H_hat, X=p._W[j], level=p.level,
                )
                pi_dec.verify(
                    self._tr("pi_dec/delta", j, self.party), proofs.dec_delta, prover_pk=pk_j, verifier_rp=own_rp,
                    C=c_delta, x=p._r3[j].delta, level=p.level,
                )
                pi_dec.verify(
                    self._tr("pi_dec/chi", j, self.party), proofs.dec_chi, prover_pk=pk_j, verifier_rp=own_rp,
                    C=c_chi, x=c.chi, level=p.level,
                )
            if p._r3[j].S != p._Gamma * c.chi:
                raise self.abort(j, "chi_point", "S_j != chi_j Gamma")
        p.wipe()
        return None

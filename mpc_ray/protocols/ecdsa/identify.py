"""Identification after a failed presigning (CGGMP21 Sec. 4.3): find who sent a wrong delta_i or S_i.

When round 4 of presigning finds delta = 0, delta G != sum Delta_j, or sum S_j != delta Y although every proof
verified, each signer i broadcasts
- H_i = K_i^gamma_i rho^N_i with pi_mul (against G_i = Enc(gamma_i)), H-hat_i = K_i^w_i rho^N_i, and chi_i;
- every MtA message (D, F, D-hat, F-hat) it received in presigning round 2, each with its sender's signature
  (`presign.MessageAttestor`);
and sends each verifier v
- pi_mul_star for H-hat_i (against W_i = w_i G);
- two pi_dec proofs, with the plaintext bound `plaintext_bound`, that
  Enc_i(delta_i) = H_i prod_k D_{k->i} / prod_k F_{i->k}  and  Enc_i(chi_i) = H-hat_i prod_k D-hat / prod_k F-hat
  decrypt to delta_i and chi_i mod q;
- pi_aff_g (for gamma_i and for w_i) for each MtA pair it sent to a third party j != v, on v's ring-Pedersen
  parameters: round 3 checked pair i -> j only at j, and if i and j collude that pair can be inconsistent while every
  pi_dec holds, so nobody would be named (the paper has every sender re-prove its pairs to every verifier).
S_i must equal chi_i Gamma. The presignature is discarded either way, so revealing chi_i costs nothing.

Evidence, never claims. v rebuilds Enc_j(delta_j) only from messages that carry their sender's signature: D_{k->j}
from j's list (signed by k), F_{j->k} from k's list (signed by j). A list holding a message its sender did not sign
names the party that presented it: an honest party checked every signature on arrival (presign.mta_signature) and
keeps what it got. So no party can make honest parties disagree about anyone's ciphertexts. (An earlier version
rebuilt them from each sender's word about what it sent: a sender that misreported D_{k->j} made every honest party
but j see honest j's proof fail and blame j.)

Why it names a cheater: if every check passes for every j, each delta_j is Dec(C_j) mod q with Dec(C_j) bounded
(pi_dec), each pair k -> j is a correct MtA of k_j and the gamma_k behind Gamma_k (pi_aff_g, at j or re-proven),
so sum delta_j = (sum k_j)(sum gamma_k) mod q, and likewise for chi; then round 4's checks would have held.

Cost per party, t signers: one pi_mul, then (t-1) x [pi_mul_star, 2 pi_dec, 2 (t-2) pi_aff_g] proofs and as many
verifications, and (t-1)^2 signature checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import gmpy2

from ...crypto.paillier import sample_unit
from ...crypto.params import SecurityLevel
from ...crypto.secp256k1 import Q
from ...crypto.transcript import Transcript
from ...crypto.zk import pi_aff_g, pi_dec, pi_mul, pi_mul_star
from ..base import Inbound, Outbox, RoundParty
from ..common import proof_transcript
from .presign import TAG, PresignParty, mta_message


def plaintext_bound(level: SecurityLevel, signers: int) -> int:
    """B = t 2^(ell'+2): the largest |Dec(Enc_i(delta_i))| (and chi_i) of an honest party i among t signers. Over the
    integers delta_i = k_i gamma_i + sum_k alpha_ki - sum_k y_ik with k_i gamma_i < q^2 <= 2^(ell'+2), each received
    |alpha_ki| <= 2^(ell'+1) (presigning refuses larger: presign.range_alpha) and each own |y_ik| <= 2^ell', so
    |delta_i| < q^2 + 3 (t-1) 2^ell' <= B. pi_dec needs 4 (2^eps + q) B < N0: t 2^1796 < 2^2046 at level 112."""
    return signers << (level.ell_prime + 2)


@dataclass(frozen=True)
class Received:
    """An MtA message `frm` -> the presenting party, as received, with the sender's signature (evidence)."""

    frm: int
    D: int
    F: int
    D_hat: int
    F_hat: int
    signature: bytes


@dataclass(frozen=True)
class Claims:
    H: int
    H_hat: int
    chi: int
    received: list[Received]
    psi_mul: pi_mul.Proof


@dataclass(frozen=True)
class MtaProof:
    """The prover's pair prover -> `to` re-proven to this verifier: D = K_to^gamma Enc(y), F = Enc(y) (psi) and
    D-hat = K_to^w Enc(y-hat), F-hat = Enc(y-hat) (psi_hat)."""

    to: int
    psi: pi_aff_g.Proof
    psi_hat: pi_aff_g.Proof


@dataclass(frozen=True)
class Proofs:
    psi_mul_star: pi_mul_star.Proof
    dec_delta: pi_dec.Proof
    dec_chi: pi_dec.Proof
    mta: list[MtaProof]


class IdentifyParty(RoundParty):
    NAME = "presign.identify"
    ROUNDS = ((Claims, Proofs),)

    def __init__(self, failed: PresignParty) -> None:
        super().__init__(failed.sid, failed.party, failed.parties)
        self.p = failed
        self.bound = plaintext_bound(failed.level, len(failed.parties))

    def _tr(self, proof: str, prover: int, verifier: int | None = None) -> Transcript:
        return proof_transcript(f"{TAG}/identify/{proof}", self.sid, prover, verifier)

    def _combined(
        self, i: int, H: int, H_hat: int, to_i: dict[int, Received], from_i: dict[int, Received]
    ) -> tuple[int, int]:
        """Enc_i(delta_i) and Enc_i(chi_i): H * prod D_{k->i} / prod F_{i->k} (and the hat ones). `to_i[k]` is the
        message k -> i, `from_i[k]` the message i -> k."""
        n2 = self.p.aux.paillier_pk(i).n2
        c_delta, c_chi = gmpy2.mpz(H), gmpy2.mpz(H_hat)
        for k in self.parties:
            if k == i:
                continue
            c_delta = c_delta * to_i[k].D * gmpy2.invert(from_i[k].F, n2) % n2
            c_chi = c_chi * to_i[k].D_hat * gmpy2.invert(from_i[k].F_hat, n2) % n2
        return int(c_delta), int(c_chi)

    # prover ---------------------------------------------------------------------------------------------------
    def _prove_dec(self, what: str, verifier: int, C: int, y: int, rho: gmpy2.mpz) -> pi_dec.Proof:
        """pi_dec that C decrypts to y (its mod-q value is the public x). A method so that a test can play a
        prover that forges it."""
        sk = self.p.aux.paillier
        return pi_dec.prove(
            self._tr(f"pi_dec/{what}", self.party, verifier), prover_pk=sk.public,
            verifier_rp=self.p.aux.rp(verifier).params, C=C, x=y % Q, y=y, rho=rho, bound=self.bound,
            level=self.p.level, prover_sk=sk,
        )

    def _prove_mta(self, to: int, verifier: int) -> MtaProof:
        p, sk = self.p, self.p.aux.paillier
        d, (s, r, s_hat, r_hat) = p._sent[to], p._mta_rand[to]
        pk_to, rp_v, K_to = p.aux.paillier_pk(to), p.aux.rp(verifier).params, p._r1[to].K
        psi = pi_aff_g.prove(
            self._tr("pi_aff_g/gamma", self.party, verifier).append_int("to", to), pk0=pk_to, pk1=sk,
            verifier_rp=rp_v, C=K_to, D=d.D, Y=d.F, X=p._Gamma_i, x=p._gamma, y=p._y[to], rho=s, rho_y=r,
            level=p.level,
        )
        psi_hat = pi_aff_g.prove(
            self._tr("pi_aff_g/x", self.party, verifier).append_int("to", to), pk0=pk_to, pk1=sk,
            verifier_rp=rp_v, C=K_to, D=d.D_hat, Y=d.F_hat, X=p._W[self.party], x=p._w, y=p._y_hat[to],
            rho=s_hat, rho_y=r_hat, level=p.level,
        )
        return MtaProof(to, psi, psi_hat)

    def round1(self) -> Outbox:
        p, sk = self.p, self.p.aux.paillier
        pk = sk.public
        r, r_hat = sample_unit(pk.n), sample_unit(pk.n)
        self._H = int(pk.mul(p._K, p._gamma) * sk.r_pow_n(r) % pk.n2)
        self._H_hat = int(pk.mul(p._K, p._w) * sk.r_pow_n(r_hat) % pk.n2)
        psi_mul = pi_mul.prove(
            self._tr("pi_mul", self.party), pk=sk, X=p._G, Y=p._K, C=self._H, x=p._gamma, rho_x=p._nu, rho=r
        )
        received = [Received(k, d.D, d.F, d.D_hat, d.F_hat, d.signature) for k, d in sorted(p._received.items())]
        sent = {j: Received(self.party, d.D, d.F, d.D_hat, d.F_hat, d.signature) for j, d in p._sent.items()}
        c_delta, c_chi = self._combined(self.party, self._H, self._H_hat, {m.frm: m for m in received}, sent)
        y_delta, y_chi = sk.decrypt(c_delta), sk.decrypt(c_chi)
        rho_delta, rho_chi = sk.recover_randomness(c_delta, y_delta), sk.recover_randomness(c_chi, y_chi)
        self._claims = Claims(self._H, self._H_hat, y_chi % Q, received, psi_mul)
        direct = {}
        for v in self.others:
            direct[v] = Proofs(
                pi_mul_star.prove(
                    self._tr("pi_mul_star", self.party, v), pk0=sk, verifier_rp=p.aux.rp(v).params,
                    C=p._K, D=self._H_hat, X=p._W[self.party], x=p._w, rho=r_hat, level=p.level,
                ),
                self._prove_dec("delta", v, c_delta, y_delta, rho_delta),
                self._prove_dec("chi", v, c_chi, y_chi, rho_chi),
                [self._prove_mta(j, v) for j in self.others if j != v],
            )
        return Outbox(broadcast=self._claims, direct=direct)

    # verifier -------------------------------------------------------------------------------------------------
    def _evidence(self, j: int, received: list[Received]) -> dict[int, Received]:
        """j's list of what it received, each message checked against its sender's signature; j is named for a
        list that is incomplete, holds a non-ciphertext, or a message its sender did not sign."""
        p = self.p
        if sorted(m.frm for m in received) != [k for k in self.parties if k != j]:
            raise self.abort(j, "received_list", "not one message from every other signer")
        pk_j = p.aux.paillier_pk(j)
        for m in received:
            pk_k = p.aux.paillier_pk(m.frm)
            if not (pk_j.is_valid_ciphertext(m.D) and pk_j.is_valid_ciphertext(m.D_hat)):
                raise self.abort(j, "ciphertext_D")
            if not (pk_k.is_valid_ciphertext(m.F) and pk_k.is_valid_ciphertext(m.F_hat)):
                raise self.abort(j, "ciphertext_F")
            if not p.attestor.verify(m.frm, mta_message(self.sid, m.frm, j, m.D, m.F, m.D_hat, m.F_hat),
                                     m.signature):
                raise self.abort(j, "mta_signature", f"presented a message party {m.frm} did not sign")
        return {m.frm: m for m in received}

    def round2(self, inbox: dict[int, Inbound]) -> None:
        """Raise ProtocolAbort naming the first peer whose values are proven wrong; None if every peer's were right
        (then, from this party's view, the fault is its own: only a dishonest party sees that)."""
        p = self.p
        own_rp = p.aux.rp(self.party)
        claims: dict[int, Claims] = {j: m.broadcast for j, m in inbox.items()}
        # 1. evidence first (cheap): got[j][k] is the message k -> j, signed by k
        got = {j: self._evidence(j, claims[j].received) for j in self.others}
        got[self.party] = {
            k: Received(k, d.D, d.F, d.D_hat, d.F_hat, d.signature) for k, d in p._received.items()
        }
        # 2. every peer's values and proofs, cheap checks first
        for j in self.others:
            c, proofs = claims[j], inbox[j].direct
            pk_j = p.aux.paillier_pk(j)
            for name, value in (("H", c.H), ("H_hat", c.H_hat)):
                if not pk_j.is_valid_ciphertext(value):
                    raise self.abort(j, f"ciphertext_{name}")
            if not 0 <= c.chi < Q:
                raise self.abort(j, "chi_range")
            if p._r3[j].S != p._Gamma * c.chi:
                raise self.abort(j, "chi_point", "S_j != chi_j Gamma")
            if sorted(m.to for m in proofs.mta) != [k for k in self.others if k != j]:
                raise self.abort(j, "mta_proof_list", "not one pi_aff_g pair for every third party")
            c_delta, c_chi = self._combined(j, c.H, c.H_hat, got[j], {k: got[k][j] for k in self.parties if k != j})
            with self.blame(j):
                for m in proofs.mta:
                    pair, pk_to, K_to = got[m.to][j], p.aux.paillier_pk(m.to), p._r1[m.to].K
                    pi_aff_g.verify(
                        self._tr("pi_aff_g/gamma", j, self.party).append_int("to", m.to), m.psi, pk0=pk_to,
                        pk1=pk_j, verifier_rp=own_rp, C=K_to, D=pair.D, Y=pair.F, X=p._Gammas[j], level=p.level,
                    )
                    pi_aff_g.verify(
                        self._tr("pi_aff_g/x", j, self.party).append_int("to", m.to), m.psi_hat, pk0=pk_to,
                        pk1=pk_j, verifier_rp=own_rp, C=K_to, D=pair.D_hat, Y=pair.F_hat, X=p._W[j], level=p.level,
                    )
                pi_mul.verify(self._tr("pi_mul", j), c.psi_mul, pk=pk_j, X=p._r1[j].G, Y=p._r1[j].K, C=c.H)
                pi_mul_star.verify(
                    self._tr("pi_mul_star", j, self.party), proofs.psi_mul_star, pk0=pk_j, verifier_rp=own_rp,
                    C=p._r1[j].K, D=c.H_hat, X=p._W[j], level=p.level,
                )
                pi_dec.verify(
                    self._tr("pi_dec/delta", j, self.party), proofs.dec_delta, prover_pk=pk_j, verifier_rp=own_rp,
                    C=c_delta, x=p._r3[j].delta, bound=self.bound, level=p.level,
                )
                pi_dec.verify(
                    self._tr("pi_dec/chi", j, self.party), proofs.dec_chi, prover_pk=pk_j, verifier_rp=own_rp,
                    C=c_chi, x=c.chi, bound=self.bound, level=p.level,
                )
        p.wipe()
        return None

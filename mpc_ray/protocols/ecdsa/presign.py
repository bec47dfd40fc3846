"""Three-round presigning (CGGMP21 Fig. 7) for one signer set S, |S| = threshold.

Shamir shares become additive shares w_i = lambda_i x_i over S. For party i:
1. k_i, gamma_i random; broadcast K_i = Enc_i(k_i), G_i = Enc_i(gamma_i); send each j pi_enc(K_i) on j's
   ring-Pedersen parameters.
2. Check every ciphertext and pi_enc. Gamma_i = gamma_i G. For each j the MtA pairs
   D_{j,i} = K_j^gamma_i Enc_j(y), F_{j,i} = Enc_i(y) and D-hat/F-hat with w_i, each with a pi_aff_g, and a
   pi_log_star that Gamma_i matches G_i. Broadcast Gamma_i and an echo of round 1. The sender signs each pair's
   four ciphertexts (`MessageAttestor`, `mta_message`): evidence identification shows to third parties.
3. Verify everything, the signatures too (each peer's five Paillier equations batched per modulus, with the per-proof
   checks as fallback: crypto/zk/batch.py), and that each decrypted alpha, alpha-hat lies in +-2^(ell'+1) (what an
   honest sender produces; identification's plaintext bound depends on it, see crypto/zk/pi_dec.py);
   Gamma = sum Gamma_j; Delta_i = k_i Gamma; delta_i = k_i gamma_i + sum (alpha - y);
   chi_i = w_i k_i + sum (alpha-hat - y-hat); S_i = chi_i Gamma. Broadcast delta_i, Delta_i, S_i and an echo of
   round 2; send each j a pi_log_star that Delta_i matches K_i (base Gamma).
4. Verify; delta = sum delta_j != 0; delta G == sum Delta_j; sum S_j == delta Y. R = delta^-1 Gamma.
   Output the presignature share (R, k_i, chi_i) and the public points k_j R, chi_j R that let a combiner name a
   party whose partial signature is wrong.

With a `PaillierRandomness` pool (precompute.py, which argues why it is safe), every r^N of the party's own
encryptions and proof commitments, and of its encryptions and pi_aff_g commitments under a peer's key, and the
randomness-only ring-Pedersen terms of its proofs (s^alpha t^gamma, t^mu) come from entries made while the node
was idle; a session takes each entry out of the pool before using it, and draws fresh randomness when the pool
has none. Messages, checks and their distribution are the same with or without it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Callable, Iterable

from gmpy2 import mpz

from ...crypto.paillier import PaillierKey, PaillierNonce, encrypt_nonce
from ...crypto.params import SecurityLevel
from ...crypto.secp256k1 import Q, Point, random_scalar, sum_points
from ...crypto.transcript import Transcript
from ...crypto.vss import lagrange_coefficient
from ...crypto.ring_pedersen import RingPedersenParams
from ...crypto.zk import pi_aff_g, pi_enc, pi_log_star
from ...crypto.zk.common import PrecomputedRange
from ...crypto.zk.batch import PaillierBatch
from ...errors import InvalidInput, ProofError
from ...errors import PresignatureUsed, PresignInconsistent  # noqa: F401  (old import path)
from ..base import Inbound, Outbox, RoundParty
from ..common import echo_digest, proof_transcript, same_bytes
from .aux_info import AuxInfo
from .keygen import KeyShare
from .precompute import PaillierRandomness, x_bound, y_bound

TAG = "cggmp21/presign"


_MTA_DOMAIN = b"mpc-ray/cggmp21/presign/mta-signature/v1"


@dataclass(frozen=True)
class MessageAttestor:
    """How a party signs its MtA messages and checks its peers' signatures, injected so that this layer needs no key
    handling: on a node, `sign` is the node identity's Ed25519 signing and `verify(party, data, signature)` checks
    against the committee directory; `mpc_ray.sim` uses in-process keys. `verify` returns a bool, never raises.

    Why: identification rebuilds every party's Enc_j(delta_j) from MtA ciphertexts sent to j. A party's word about
    a message between two others proves nothing (a liar makes honest parties blame each other); the sender's
    signature over the message does, and the direct envelopes of the node layer cannot serve, being encrypted to
    their recipient."""

    sign: Callable[[bytes], bytes]
    verify: Callable[[int, bytes, bytes], bool]


def mta_message(sid: bytes, sender: int, recipient: int, D: int, F: int, D_hat: int, F_hat: int) -> bytes:
    """The bytes a sender signs for one MtA pair: a domain tag (length-prefixed, unlike anything else a node signs)
    and a digest of the session, both parties and the four ciphertexts."""
    t = Transcript(f"{TAG}/mta").append_bytes("sid", sid).append_int("sender", sender)
    t.append_int("recipient", recipient).append_ints("ciphertexts", [D, F, D_hat, F_hat])
    return len(_MTA_DOMAIN).to_bytes(8, "big") + _MTA_DOMAIN + t.challenge_bytes("digest", 64)


def mta_alpha_bound(level: SecurityLevel) -> int:
    """|alpha| <= 2^(ell'+1) for alpha = Dec(D) = k gamma + y, k, gamma in [0, q), y in +-2^ell' (honest sender)."""
    return 1 << (level.ell_prime + 1)


@dataclass(frozen=True)
class Round1:
    K: int
    G: int


@dataclass(frozen=True)
class EncProof:
    proof: pi_enc.Proof


@dataclass(frozen=True)
class Round2:
    Gamma: Point
    echo: bytes


@dataclass(frozen=True)
class Round2Direct:
    D: int
    F: int
    D_hat: int
    F_hat: int
    psi: pi_aff_g.Proof
    psi_hat: pi_aff_g.Proof
    psi_log: pi_log_star.Proof
    signature: bytes  # the sender's, over mta_message(sid, sender, recipient, D, F, D_hat, F_hat)


@dataclass(frozen=True)
class Round3:
    delta: int
    Delta: Point
    S: Point
    echo: bytes


@dataclass(frozen=True)
class LogProof:
    proof: pi_log_star.Proof


@dataclass(frozen=True)
class PresignaturePublic:
    """What every signer and the combiner know about one presignature. Safe to log and send."""

    presignature_id: bytes
    signers: list[int]
    R: Point
    k_points: list[Point]  # k_j R, in signer order
    chi_points: list[Point]  # chi_j R, in signer order

    @property
    def r(self) -> int:
        return self.R.x() % Q


class PresignatureShare:
    """Party i's secret (k_i, chi_i) for one presignature. Single use: `take()` wipes it. `repr` is redacted."""

    __slots__ = ("party", "public", "_k", "_chi")

    def __init__(self, party: int, public: PresignaturePublic, k: int, chi: int) -> None:
        self.party, self.public = party, public
        self._k: int | None = k  # both None once used
        self._chi: int | None = chi

    @property
    def used(self) -> bool:
        return self._k is None

    def take(self) -> tuple[int, int]:
        k, chi = self._k, self._chi
        if k is None or chi is None:
            raise PresignatureUsed("presignature already used")
        self._k = self._chi = None
        return k, chi

    def secret_values(self) -> tuple[int, int]:
        """(k_i, chi_i) without consuming; for the node's encrypted store only."""
        k, chi = self._k, self._chi
        if k is None or chi is None:
            raise PresignatureUsed("presignature already used")
        return k, chi

    def __repr__(self) -> str:
        state = "used" if self._k is None else "unused"
        return f"PresignatureShare(party={self.party}, id={self.public.presignature_id.hex()[:16]}, {state}, <redacted>)"


# PresignParty's secrets of one run, dropped by `wipe`
_RUN_SECRETS = ("_k", "_chi", "_gamma", "_y", "_y_hat", "_rho", "_nu", "_w", "_mta_rand", "_randomness")


def _sample_y(bits: int) -> int:
    """Uniform in [-2^bits, 2^bits]."""
    return secrets.randbelow((1 << (bits + 1)) + 1) - (1 << bits)


class PresignParty(RoundParty):
    NAME = "presign"
    ROUNDS = ((Round1, EncProof), (Round2, Round2Direct), (Round3, LogProof))

    def __init__(
        self,
        sid: bytes,
        key: KeyShare,
        aux: AuxInfo,
        signers: Iterable[int],
        *,
        attestor: MessageAttestor,
        randomness: PaillierRandomness | None = None,
    ) -> None:
        signers = tuple(sorted(signers))
        super().__init__(sid, key.party, signers)
        if len(signers) != key.threshold or not set(signers) <= set(key.parties):
            raise ValueError(f"a presignature needs exactly {key.threshold} signers among the key's parties")
        if not set(signers) <= set(aux.parties) or aux.party != key.party:
            raise ValueError("aux info does not cover the signer set")
        if not isinstance(attestor, MessageAttestor):
            raise InvalidInput("presigning needs a MessageAttestor (identification relies on signed MtA messages)")
        if randomness is not None and not isinstance(randomness, PaillierRandomness):
            raise InvalidInput("randomness must be a PaillierRandomness pool")
        self._randomness = randomness
        self.key, self.aux, self.level, self.attestor = key, aux, aux.level, attestor
        self._w = lagrange_coefficient(key.party, signers) * key.x % Q
        self._W = {j: key.public_shares[j] * lagrange_coefficient(j, signers) for j in signers}

    def _tr(self, proof: str, prover: int, verifier: int | None = None) -> Transcript:
        return proof_transcript(f"{TAG}/{proof}", self.sid, prover, verifier)

    def _nonce(self, key: PaillierKey) -> PaillierNonce | None:
        """A precomputed (r, r^N) for `key`'s modulus, taken out of the pool; None (draw fresh) without one."""
        pool = self._randomness
        return None if pool is None else pool.take(key)

    def _range(self, rp: RingPedersenParams, bound: int) -> PrecomputedRange | None:
        """A precomputed range-proof entry for the verifier's `rp` and this alpha bound, or None (draw fresh)."""
        pool = self._randomness
        return None if pool is None else pool.take_range(rp, bound, self.level)

    def _encrypt(self, key: PaillierKey, m: int) -> tuple[int, int]:
        """(Enc(m; r), r) under `key`, r from the pool when it has one for the modulus."""
        c, r = encrypt_nonce(key, m, self._nonce(key))
        return c, r

    def _mask(self) -> int:
        """A fresh MtA mask y in +-2^ell' (a method so that a test can play a sender with oversized masks)."""
        return _sample_y(self.level.ell_prime)

    # round 1 ------------------------------------------------------------------------------------------
    def round1(self) -> Outbox:
        sk = self.aux.paillier
        self._k, self._gamma = random_scalar(), random_scalar()
        self._K, self._rho = self._encrypt(sk, self._k)
        self._G, self._nu = self._encrypt(sk, self._gamma)
        direct = {}
        for j in self.others:
            rp_j = self.aux.rp(j).params
            proof = pi_enc.prove(
                self._tr("pi_enc", self.party, j),
                prover_pk=sk.public,
                verifier_rp=rp_j,
                K=self._K,
                k=self._k,
                rho=self._rho,
                level=self.level,
                prover_sk=sk,
                nonce=self._nonce(sk),
                range_pre=self._range(rp_j, x_bound(self.level)),
            )
            direct[j] = EncProof(proof)
        self._r1 = {self.party: Round1(int(self._K), int(self._G))}
        return Outbox(broadcast=self._r1[self.party], direct=direct)

    # round 2 ------------------------------------------------------------------------------------------
    def round2(self, inbox: dict[int, Inbound]) -> Outbox:
        own_rp = self.aux.rp(self.party)
        for j in self.others:
            msg: Round1 = inbox[j].broadcast
            pk_j = self.aux.paillier_pk(j)
            if not pk_j.is_valid_ciphertext(msg.K):
                raise self.abort(j, "ciphertext_K")
            if not pk_j.is_valid_ciphertext(msg.G):
                raise self.abort(j, "ciphertext_G")
            with self.blame(j):
                pi_enc.verify(
                    self._tr("pi_enc", j, self.party),
                    inbox[j].direct.proof,
                    prover_pk=pk_j,
                    verifier_rp=own_rp,
                    K=msg.K,
                    level=self.level,
                )
            self._r1[j] = msg
        self._echo1 = echo_digest(f"{TAG}/1", self.sid, self._r1)
        sk = self.aux.paillier
        self._Gamma_i = Point.base_mul(self._gamma)
        self._y, self._y_hat = {}, {}
        # (s, r, s_hat, r_hat) per peer: identification re-proves pi_aff_g
        self._mta_rand: dict[int, tuple[mpz, mpz, mpz, mpz]] = {}
        self._sent: dict[int, Round2Direct] = {}
        direct = {}
        for j in self.others:
            pk_j = self.aux.paillier_pk(j)
            rp_j = self.aux.rp(j).params
            K_j = self._r1[j].K
            y, y_hat = self._mask(), self._mask()
            self._y[j], self._y_hat[j] = y, y_hat
            enc_y, s = self._encrypt(pk_j, y)
            enc_y_hat, s_hat = self._encrypt(pk_j, y_hat)
            D = pk_j.add(pk_j.mul(K_j, self._gamma), enc_y)
            D_hat = pk_j.add(pk_j.mul(K_j, self._w), enc_y_hat)
            F, r = self._encrypt(sk, y)
            F_hat, r_hat = self._encrypt(sk, y_hat)
            psi = pi_aff_g.prove(
                self._tr("pi_aff_g/gamma", self.party, j),
                pk0=pk_j, pk1=sk, verifier_rp=rp_j,
                C=K_j, D=D, Y=F, X=self._Gamma_i, x=self._gamma, y=y, rho=s, rho_y=r, level=self.level,
                nonce=self._nonce(pk_j), nonce_y=self._nonce(sk),
                range_x=self._range(rp_j, x_bound(self.level)), range_y=self._range(rp_j, y_bound(self.level)),
            )
            psi_hat = pi_aff_g.prove(
                self._tr("pi_aff_g/x", self.party, j),
                pk0=pk_j, pk1=sk, verifier_rp=rp_j,
                C=K_j, D=D_hat, Y=F_hat, X=self._W[self.party], x=self._w, y=y_hat, rho=s_hat, rho_y=r_hat,
                level=self.level, nonce=self._nonce(pk_j), nonce_y=self._nonce(sk),
                range_x=self._range(rp_j, x_bound(self.level)), range_y=self._range(rp_j, y_bound(self.level)),
            )
            psi_log = pi_log_star.prove(
                self._tr("pi_log_star/gamma", self.party, j),
                prover_pk=sk.public, verifier_rp=rp_j,
                C=self._G, X=self._Gamma_i, base=Point.generator(), x=self._gamma, rho=self._nu, level=self.level,
                prover_sk=sk, nonce=self._nonce(sk), range_pre=self._range(rp_j, x_bound(self.level)),
            )
            sig = self.attestor.sign(mta_message(self.sid, self.party, j, int(D), int(F), int(D_hat), int(F_hat)))
            direct[j] = Round2Direct(int(D), int(F), int(D_hat), int(F_hat), psi, psi_hat, psi_log, bytes(sig))
            self._sent[j] = direct[j]
            self._mta_rand[j] = (s, r, s_hat, r_hat)
        return Outbox(broadcast=Round2(self._Gamma_i, self._echo1), direct=direct)

    # round 3 ------------------------------------------------------------------------------------------
    def _verify_round2_proofs(self, j: int, b: Round2, d: Round2Direct) -> None:
        """Peer j's pi_aff_g (gamma), pi_aff_g (x) and pi_log* (gamma), with their five Paillier equations batched
        per modulus: the two Y-equations and pi_log*'s under N_j become one N_j-th power, the two D-equations under
        the own N one by CRT (soundness: crypto/zk/batch.py). If anything fails, the proofs are verified again one
        by one in this order, so the abort names the check it named before batching."""
        own_pk, own_rp, pk_j = self.aux.paillier.public, self.aux.rp(self.party), self.aux.paillier_pk(j)

        def verify_all(batch: PaillierBatch | None) -> None:
            pi_aff_g.verify(
                self._tr("pi_aff_g/gamma", j, self.party), d.psi,
                pk0=own_pk, pk1=pk_j, verifier_rp=own_rp, C=self._K, D=d.D, Y=d.F, X=b.Gamma, level=self.level,
                batch=batch,
            )
            pi_aff_g.verify(
                self._tr("pi_aff_g/x", j, self.party), d.psi_hat,
                pk0=own_pk, pk1=pk_j, verifier_rp=own_rp, C=self._K, D=d.D_hat, Y=d.F_hat, X=self._W[j],
                level=self.level, batch=batch,
            )
            pi_log_star.verify(
                self._tr("pi_log_star/gamma", j, self.party), d.psi_log,
                prover_pk=pk_j, verifier_rp=own_rp, C=self._r1[j].G, X=b.Gamma, base=Point.generator(),
                level=self.level, batch=batch,
            )

        batch = PaillierBatch()
        try:
            verify_all(batch)
            if batch.holds():
                return
        except ProofError:
            pass
        verify_all(None)  # raises the first failed check, as without the batch

    def round3(self, inbox: dict[int, Inbound]) -> Outbox:
        sk = self.aux.paillier
        own_pk = sk.public
        gammas = {self.party: self._Gamma_i}
        self._received: dict[int, Round2Direct] = {}
        delta = self._k * self._gamma
        chi = self._w * self._k
        for j in self.others:
            b: Round2 = inbox[j].broadcast
            d: Round2Direct = inbox[j].direct
            if not same_bytes(b.echo, self._echo1):
                raise self.abort(j, "echo", "round-1 broadcasts differ")
            if b.Gamma.is_identity:
                raise self.abort(j, "identity_Gamma")
            pk_j = self.aux.paillier_pk(j)
            for name, c, pk in (("D", d.D, own_pk), ("D_hat", d.D_hat, own_pk), ("F", d.F, pk_j), ("F_hat", d.F_hat, pk_j)):
                if not pk.is_valid_ciphertext(c):
                    raise self.abort(j, f"ciphertext_{name}")
            if not self.attestor.verify(j, mta_message(self.sid, j, self.party, d.D, d.F, d.D_hat, d.F_hat),
                                        d.signature):
                raise self.abort(j, "mta_signature", "MtA ciphertexts not signed by their sender")
            with self.blame(j):
                self._verify_round2_proofs(j, b, d)
            alpha = sk.decrypt(d.D)
            alpha_hat = sk.decrypt(d.D_hat)
            # pi_aff_g allows ~2^(ell'+eps); an honest sender stays within 2^(ell'+1). Identification's pi_dec bound
            # counts on it, so a larger share (a peer framing this party) stops the run here, naming the sender.
            if abs(alpha) > mta_alpha_bound(self.level):
                raise self.abort(j, "range_alpha", "MtA share outside what an honest sender produces")
            if abs(alpha_hat) > mta_alpha_bound(self.level):
                raise self.abort(j, "range_alpha_hat", "MtA share outside what an honest sender produces")
            delta += alpha - self._y[j]
            chi += alpha_hat - self._y_hat[j]
            gammas[j] = b.Gamma
            self._received[j] = d
        self._Gammas = gammas
        self._echo2 = echo_digest(f"{TAG}/2", self.sid, gammas)
        self._Gamma = sum_points(gammas[j] for j in self.parties)
        if self._Gamma.is_identity:
            raise self.abort(self.others[0], "identity_Gamma_sum")
        self._delta_i = delta % Q
        self._chi = chi % Q
        self._Delta_i = self._Gamma * self._k
        self._S_i = self._Gamma * self._chi
        direct = {}
        for j in self.others:
            rp_j = self.aux.rp(j).params
            direct[j] = LogProof(
                pi_log_star.prove(
                    self._tr("pi_log_star/k", self.party, j),
                    prover_pk=own_pk, verifier_rp=rp_j,
                    C=self._K, X=self._Delta_i, base=self._Gamma, x=self._k, rho=self._rho, level=self.level,
                    prover_sk=sk, nonce=self._nonce(sk), range_pre=self._range(rp_j, x_bound(self.level)),
                )
            )
        return Outbox(broadcast=Round3(self._delta_i, self._Delta_i, self._S_i, self._echo2), direct=direct)

    # output -------------------------------------------------------------------------------------------
    def round4(self, inbox: dict[int, Inbound]) -> PresignatureShare:
        own_rp = self.aux.rp(self.party)
        r3 = {self.party: Round3(self._delta_i, self._Delta_i, self._S_i, self._echo2)}
        for j in self.others:
            b: Round3 = inbox[j].broadcast
            if not same_bytes(b.echo, self._echo2):
                raise self.abort(j, "echo", "round-2 broadcasts differ")
            if not 0 <= b.delta < Q:
                raise self.abort(j, "delta_range")
            if b.Delta.is_identity or b.S.is_identity:
                raise self.abort(j, "identity_point")
            with self.blame(j):
                pi_log_star.verify(
                    self._tr("pi_log_star/k", j, self.party), inbox[j].direct.proof,
                    prover_pk=self.aux.paillier_pk(j), verifier_rp=own_rp,
                    C=self._r1[j].K, X=b.Delta, base=self._Gamma, level=self.level,
                )
            r3[j] = b
        self._r3 = r3
        delta = sum(r3[j].delta for j in self.parties) % Q
        if delta == 0:
            raise PresignInconsistent("delta_zero")
        if Point.base_mul(delta) != sum_points(r3[j].Delta for j in self.parties):
            raise PresignInconsistent("delta_mismatch")
        if sum_points(r3[j].S for j in self.parties) != self.key.public_key * delta:
            raise PresignInconsistent("chi_mismatch")
        delta_inv = pow(delta, -1, Q)
        R = self._Gamma * delta_inv
        public = PresignaturePublic(
            presignature_id=hashlib.sha256(b"mpc-ray/presignature-id" + self.sid).digest(),
            signers=list(self.parties),
            R=R,
            k_points=[r3[j].Delta * delta_inv for j in self.parties],
            chi_points=[r3[j].S * delta_inv for j in self.parties],
        )
        return PresignatureShare(self.party, public, self._k, self._chi)

    def wipe(self) -> None:
        """Drop every secret of the run. The driver calls it once every signer reported success (a party whose
        own view succeeded may still be needed for identification), or after identification."""
        # by name: the fields are typed for the run, which never sees them None; a wiped party is finished
        for name in _RUN_SECRETS:
            setattr(self, name, None)

"""Pi-enc: Paillier encryption in range (CGGMP21, Fig. 14).

Statement: the prover's Paillier key N0 and a ciphertext K = (1 + N0)^k rho^N0 mod N0^2 with k in +-2^ell, proven
against the verifier's ring-Pedersen parameters (N-hat, s, t).

    prover:   alpha <- +-2^(ell+eps), mu <- +-2^ell N-hat, r <- Z*_N0, gamma <- +-2^(ell+eps) N-hat
              S = s^k t^mu, A = (1 + N0)^alpha r^N0, C = s^alpha t^gamma
    challenge e in +-q (Fiat-Shamir over every public input and commitment)
    response: z1 = alpha + e k, z2 = r rho^e mod N0, z3 = gamma + e mu
    verifier: z1 in +-2^(ell+eps); (1 + N0)^z1 z2^N0 = A K^e mod N0^2; s^z1 t^z3 = C S^e mod N-hat
The sigma protocol, setup and checks are shared with Pi-log* and Pi-dec (`paillier_proofs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gmpy2 import mpz

from ...errors import InvalidInput
from ..paillier import PaillierNonce, PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..transcript import Transcript
from . import paillier_proofs as pp
from .common import (
    PrecomputedRange,
    check_types,
    is_int,
    require_abs_at_most,
    require_proof_type,
    require_range,
    z_bound,
)

NAME = "pi_enc"


@dataclass(frozen=True)
class Proof:
    S: int  # s^k t^mu mod N-hat
    A: int  # (1 + N0)^alpha r^N0 mod N0^2
    C: int  # s^alpha t^gamma mod N-hat
    z1: int
    z2: int
    z3: int


def _challenge(transcript: Transcript, st: pp.Setup, K: mpz, S: mpz, A: mpz, C: mpz) -> int:
    t = transcript.fork()
    pp.bind_setup(t, NAME, st)
    t.append_int("K", K)
    t.append_int("S", S)
    t.append_int("A", A)
    t.append_int("C", C)
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: pp.RingPedersen,
    K: int,
    k: int,
    rho: int,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None = None,
    nonce: PaillierNonce | None = None,
    range_pre: PrecomputedRange | None = None,
) -> Proof:
    """Prove K = Enc_N0(k; rho) with k in +-2^ell. `prover_sk` (optional, the prover's own key) makes r^N0 and
    rho^e use CRT. `nonce` (optional) is r with r^N0 made ahead of time for N0, `range_pre` (optional) the
    ring-Pedersen nonces with s^alpha t^gamma and t^mu made for the verifier's parameters (each single use). The
    witness range is not enforced here: an out-of-range k gives a proof that fails range_z1."""
    st = pp.prover_setup(NAME, prover_pk, verifier_rp, level, prover_sk, rho)
    if not is_int(K) or not is_int(k):
        raise InvalidInput(f"{NAME}: K and k must be integers")
    k = mpz(k)
    nonces, r, S, A, C = pp.first_message(st, k, 1 << (st.level.ell + st.level.eps), prover_sk, nonce, range_pre)
    e = _challenge(transcript, st, mpz(K), S, A, C)
    z1, z2, z3 = pp.responses(st, nonces, r, k, rho, e, prover_sk)
    return Proof(int(S), int(A), int(C), int(z1), int(z2), int(z3))


def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: pp.RingPedersen,
    K: int,
    level: SecurityLevel,
) -> None:
    """Return None or raise ProofError naming the failed check. Pass the own `RingPedersenSecret` for CRT speed."""
    st = pp.setup(NAME, prover_pk, verifier_rp, level)
    require_proof_type(proof, Proof, NAME)
    check_types(NAME, {"K": K, "S": proof.S, "A": proof.A, "C": proof.C,
                       "z1": proof.z1, "z2": proof.z2, "z3": proof.z3})
    lv = st.level
    # ranges before membership before equations: cheap rejections first, and no huge exponent is ever used
    require_range(proof.z1, lv.ell + lv.eps, f"{NAME}.range_z1")
    require_abs_at_most(proof.z3, z_bound(st.rp.n, lv), f"{NAME}.range_z3", "response out of range")
    pp.check_memberships(NAME, st, ("K", K), proof.A, proof.S, ("C", proof.C), ("z2", proof.z2))
    K_, S, A, C = mpz(K), mpz(proof.S), mpz(proof.A), mpz(proof.C)
    e = _challenge(transcript, st, K_, S, A, C)
    pp.check_equations(NAME, st, e, mpz(proof.z1), mpz(proof.z2), mpz(proof.z3), K_, A, S, C)

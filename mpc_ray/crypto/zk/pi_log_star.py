"""Pi-log*: knowledge of exponent vs Paillier encryption (CGGMP21, Fig. 25).

Statement: C = (1 + N0)^x rho^N0 mod N0^2 and X = x * base on secp256k1, with x in +-2^ell, proven against the
verifier's ring-Pedersen parameters (N-hat, s, t).

    prover:   alpha <- +-2^(ell+eps), mu <- +-2^ell N-hat, r <- Z*_N0, gamma <- +-2^(ell+eps) N-hat
              S = s^x t^mu, A = (1 + N0)^alpha r^N0, Y = alpha * base, D = s^alpha t^gamma
    challenge e in +-q
    response: z1 = alpha + e x, z2 = r rho^e mod N0, z3 = gamma + e mu
    verifier: z1 in +-2^(ell+eps); (1 + N0)^z1 z2^N0 = A C^e mod N0^2; z1 * base = Y + e X;
              s^z1 t^z3 = D S^e mod N-hat

Pi-enc's sigma protocol plus the point Y = alpha * base (`paillier_proofs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gmpy2 import mpz

from ...errors import InvalidInput
from ..paillier import PaillierNonce, PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..secp256k1 import Point
from ..transcript import Transcript
from . import paillier_proofs as pp
from .batch import PaillierBatch
from .common import (
    PrecomputedRange,
    check_types,
    is_int,
    require,
    require_abs_at_most,
    require_point,
    require_proof_type,
    require_range,
    z_bound,
)

NAME = "pi_log_star"


@dataclass(frozen=True)
class Proof:
    S: int  # s^x t^mu mod N-hat
    A: int  # (1 + N0)^alpha r^N0 mod N0^2
    Y: Point  # alpha * base
    D: int  # s^alpha t^gamma mod N-hat
    z1: int
    z2: int
    z3: int


def _challenge(
    transcript: Transcript, st: pp.Setup, C: mpz, X: Point, base: Point, S: mpz, A: mpz, Y: Point, D: mpz
) -> int:
    t = transcript.fork()
    pp.bind_setup(t, NAME, st)
    t.append_point("base", base)
    t.append_int("C", C)
    t.append_point("X", X)
    t.append_int("S", S)
    t.append_int("A", A)
    t.append_point("Y", Y)
    t.append_int("D", D)
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: pp.RingPedersen,
    C: int,
    X: Point,
    base: Point,
    x: int,
    rho: int,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None = None,
    nonce: PaillierNonce | None = None,
    range_pre: PrecomputedRange | None = None,
) -> Proof:
    """Prove C = Enc_N0(x; rho) and X = x * base with x in +-2^ell. `prover_sk` (optional, the prover's own key)
    makes r^N0 and rho^e use CRT. `nonce` (optional) is r with r^N0 made ahead of time for N0, `range_pre`
    (optional) the ring-Pedersen nonces with s^alpha t^gamma and t^mu made for the verifier's parameters (each
    single use)."""
    st = pp.prover_setup(NAME, prover_pk, verifier_rp, level, prover_sk, rho)
    if not is_int(C) or not is_int(x):
        raise InvalidInput(f"{NAME}: C and x must be integers")
    if not isinstance(X, Point) or not isinstance(base, Point):
        raise InvalidInput(f"{NAME}: X and base must be points")
    x = mpz(x)
    nonces, r, S, A, D = pp.first_message(st, x, 1 << (st.level.ell + st.level.eps), prover_sk, nonce, range_pre)
    Y = base * int(nonces.alpha)  # Point reduces the scalar mod q, sign included
    e = _challenge(transcript, st, mpz(C), X, base, S, A, Y, D)
    z1, z2, z3 = pp.responses(st, nonces, r, x, rho, e, prover_sk)
    return Proof(int(S), int(A), Y, int(D), int(z1), int(z2), int(z3))


def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: pp.RingPedersen,
    C: int,
    X: Point,
    base: Point,
    level: SecurityLevel,
    batch: PaillierBatch | None = None,
) -> None:
    """Return None or raise ProofError naming the failed check. Pass the own `RingPedersenSecret` for CRT speed.

    With `batch`, the Paillier equation goes into it instead of being checked here: the caller must then check
    `batch.holds()` and, if not, verify again without `batch` (see crypto/zk/batch.py)."""
    st = pp.setup(NAME, prover_pk, verifier_rp, level)
    require_proof_type(proof, Proof, NAME)
    check_types(NAME, {"C": C, "S": proof.S, "A": proof.A, "D": proof.D,
                       "z1": proof.z1, "z2": proof.z2, "z3": proof.z3})
    for label, value in (("X", X), ("base", base), ("Y", proof.Y)):
        require(isinstance(value, Point), f"{NAME}.type_{label}", "not a point")
    lv = st.level
    require_range(proof.z1, lv.ell + lv.eps, f"{NAME}.range_z1")
    require_abs_at_most(proof.z3, z_bound(st.rp.n, lv), f"{NAME}.range_z3", "response out of range")
    pp.check_memberships(NAME, st, ("C", C), proof.A, proof.S, ("D", proof.D), ("z2", proof.z2))
    require_point(base, f"{NAME}.point_base")
    require_point(X, f"{NAME}.point_X")
    require_point(proof.Y, f"{NAME}.point_Y")
    C_, S, A, D = mpz(C), mpz(proof.S), mpz(proof.A), mpz(proof.D)
    z1 = mpz(proof.z1)
    e = _challenge(transcript, st, C_, X, base, S, A, proof.Y, D)
    # cheapest first: two curve multiplications, then ring-Pedersen (CRT if ours), then the N0-th power
    require(base * int(z1) == proof.Y + X * e, f"{NAME}.equation_point")
    pp.check_equations(NAME, st, e, z1, mpz(proof.z2), mpz(proof.z3), C_, A, S, D, batch)

"""Pi-aff-g: Paillier affine operation with group commitment in range (CGGMP21, Section 6.2, Fig. 15).

Statement, under the verifier-side key N0 (the verifier owns N0 and the ring-Pedersen parameters (N^, s, t)) and
the prover's key N1:

    D = C^x (1+N0)^y rho^N0 mod N0^2,    Y = (1+N1)^y rho_y^N1 mod N1^2,    X = x G,
    x in +-2^ell,  y in +-2^ell'.

The proof guarantees x in +-2^(ell+eps) and y in +-2^(ell'+eps) (the range checks on z1 and z2 are what stop the
Alpha-Rays style attacks, so they are never skipped). The protocol calls it with y = -beta, hence negative y.

    Prover: alpha <- +-2^(ell+eps), beta <- +-2^(ell'+eps), r <- Z*_N0, r_y <- Z*_N1,
            gamma, delta <- +-2^(ell+eps) N^, m, mu <- +-2^ell N^
            A = C^alpha (1+N0)^beta r^N0, B_x = alpha G, B_y = (1+N1)^beta r_y^N1,
            E = s^alpha t^gamma, S = s^x t^m, F = s^beta t^delta, T = s^y t^mu (mod N^)
            z1 = alpha + e x, z2 = beta + e y, z3 = gamma + e m, z4 = delta + e mu, w = r rho^e, w_y = r_y rho_y^e
    Verifier: z1 in +-2^(ell+eps), z2 in +-2^(ell'+eps); C^z1 (1+N0)^z2 w^N0 = A D^e mod N0^2; z1 G = B_x + e X;
              (1+N1)^z2 w_y^N1 = B_y Y^e mod N1^2; s^z1 t^z3 = E S^e, s^z2 t^z4 = F T^e mod N^

Cost. (1+N)^m mod N^2 is 1 + mN, never a powmod. Prover (passing its own `PaillierSecretKey` as `pk1`): two full
exponentiations mod N0^2 (C^alpha, r^N0), r_y^N1 by CRT, the four ring-Pedersen commitments from cached fixed-base
tables of the verifier's s, t (`RingPedersenParams.fast_commit`, no powmod at all), and two 256-bit ones for w,
w_y. Verifier (passing its own `RingPedersenSecret`, which sits on N0 in CGGMP21): the N0^2 equation by CRT, the
N1^2 one with two full exponentiations (w_y^N1, Y^e: it does not know N1), the ring-Pedersen equations through
`RingPedersenSecret.fast_commit`. Presigning hands both Paillier equations to a `batch.PaillierBatch` with the other
proofs of the same message (one N1-th power for the Y-equations and pi_log*'s of a peer; crypto/zk/batch.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from gmpy2 import mpz

from ..paillier import PaillierNonce, PaillierPublicKey, PaillierSecretKey, affine, nonce_pair, split_key
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret, rp_commit  # noqa: F401  (rp_commit: see below)
from ..secp256k1 import Point
from ..transcript import Transcript
from .batch import PaillierBatch
from .common import (
    PrecomputedRange,
    affine_equation,
    guarded,
    masked_randomness,
    range_commitments,
    range_responses,
    require,
    require_abs_at_most,
    require_ciphertext,
    require_fields,
    require_input_ciphertext,
    require_modulus,
    require_point,
    require_range,
    require_unit,
    require_witness_int,
    require_witness_unit,
    rp_equation,
    verifier_keys,
    z_bound,
)

NAME = "pi_aff_g"

# `rp_commit` lives in ring_pedersen; the name stays importable from here because benchmarks/bench_ecdsa.py wraps
# it as `pi_aff_g.rp_commit`. Proofs commit through `RingPedersenParams.fast_commit`, which calls it.


@dataclass(frozen=True)
class Proof:
    """Commitments (A, B_x, B_y, E, S, F, T) and responses (z1..z4, w, w_y), named as in the paper."""

    A: int  # C^alpha (1+N0)^beta r^N0 mod N0^2
    B_x: Point  # alpha G
    B_y: int  # (1+N1)^beta r_y^N1 mod N1^2
    E: int  # s^alpha t^gamma mod N^
    S: int  # s^x t^m mod N^
    F: int  # s^beta t^delta mod N^
    T: int  # s^y t^mu mod N^
    z1: int
    z2: int
    z3: int
    z4: int
    w: int
    w_y: int


def _challenge(
    transcript: Transcript,
    pk0: PaillierPublicKey,
    pk1: PaillierPublicKey,
    rp: RingPedersenParams,
    C: int,
    D: int,
    Y: int,
    X: Point,
    proof_commitments: tuple[int, Point, int, int, int, int, int],
    level: SecurityLevel,
) -> int:
    A, B_x, B_y, E, S, F, T = proof_commitments
    t = transcript.fork()
    t.append_bytes("proof", NAME.encode())
    t.append_bytes("level", level.name.encode())
    t.append_ints("bounds", [level.ell, level.ell_prime, level.eps])
    t.append_int("N0", pk0.n)
    t.append_int("N1", pk1.n)
    t.append_ints("rp", [rp.n, rp.s, rp.t])
    t.append_int("C", C)
    t.append_int("D", D)
    t.append_int("Y", Y)
    t.append_point("X", X)
    t.append_int("A", A)
    t.append_point("B_x", B_x)
    t.append_int("B_y", B_y)
    t.append_ints("ESFT", [E, S, F, T])
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript,
    *,
    pk0: PaillierPublicKey,
    pk1: PaillierPublicKey | PaillierSecretKey,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    C: int,
    D: int,
    Y: int,
    X: Point,
    x: int,
    y: int,
    rho: int,
    rho_y: int,
    level: SecurityLevel,
    nonce: PaillierNonce | None = None,
    nonce_y: PaillierNonce | None = None,
    range_x: PrecomputedRange | None = None,
    range_y: PrecomputedRange | None = None,
) -> Proof:
    """Prove the statement above. `pk1` may be the prover's own `PaillierSecretKey` (CRT for B_y and w_y).
    `nonce` (for N0) and `nonce_y` (for N1), optional, are r and r_y with their N-th powers made ahead of time
    (crypto/paillier.py `PaillierNonce`, single use): then A and B_y cost no r^N. `range_x`, `range_y` (optional,
    `common.PrecomputedRange` for the verifier's parameters and the bounds of x and y) supply (alpha, m, gamma) and
    (beta, mu, delta) with E, s^0 t^m, F and t^mu: then S and T cost only s^x and s^y.

    The prover does not check its witness: an out-of-range x or y yields a proof that the verifier rejects.
    """
    pub0, _ = split_key(pk0)
    pub1, key1 = split_key(pk1)
    rp = verifier_rp.params  # the prover only ever uses the verifier's public parameters
    C = require_input_ciphertext(C, pub0, NAME, "C")
    x = require_witness_int(x, NAME, "x")
    y = require_witness_int(y, NAME, "y")
    rho = require_witness_unit(rho, pub0.n, NAME, "rho")
    rho_y = require_witness_unit(rho_y, pub1.n, NAME, "rho_y")

    # (alpha, m, gamma) with S = s^x t^m, E = s^alpha t^gamma; (beta, mu, delta) with T = s^y t^mu, F = s^beta t^delta
    n_x, S, E = range_commitments(rp, x, 1 << (level.ell + level.eps), level, range_x)
    n_y, T, F = range_commitments(rp, y, 1 << (level.ell_prime + level.eps), level, range_y)
    alpha, beta = n_x.alpha, n_y.alpha
    r, rn = nonce_pair(pub0, nonce)
    r_y, rn_y = nonce_pair(key1, nonce_y)
    A = affine(pub0, C, alpha, beta, r, rn=rn)
    B_x = Point.base_mul(int(alpha))
    B_y = affine(key1, None, 0, beta, r_y, rn=rn_y)

    e = mpz(_challenge(transcript, pub0, pub1, rp, C, D, Y, X, (A, B_x, B_y, E, S, F, T), level))
    z1, z3 = range_responses(n_x, x, e)
    z2, z4 = range_responses(n_y, y, e)
    w = masked_randomness(pub0, r, rho, e)
    w_y = masked_randomness(key1, r_y, rho_y, e)
    return Proof(
        A=int(A),
        B_x=B_x,
        B_y=int(B_y),
        E=int(E),
        S=int(S),
        F=int(F),
        T=int(T),
        z1=int(z1),
        z2=int(z2),
        z3=int(z3),
        z4=int(z4),
        w=int(w),
        w_y=int(w_y),
    )


@guarded(NAME)
def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    pk0: PaillierPublicKey | PaillierSecretKey,
    pk1: PaillierPublicKey,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    C: int,
    D: int,
    Y: int,
    X: Point,
    level: SecurityLevel,
    batch: PaillierBatch | None = None,
) -> None:
    """Return None or raise ProofError("pi_aff_g.<check>"). Pass the own `RingPedersenSecret` for CRT speed.

    With `batch`, the two Paillier equations (D and Y) go into it instead of being checked here: the caller must
    then check `batch.holds()` and, if not, verify again without `batch` (see crypto/zk/batch.py)."""
    n = NAME
    # 1. types of every proof field
    require_fields(proof, Proof, n)
    pub0, key0, rp = verifier_keys(pk0, verifier_rp)  # CRT for the N0^2 equation when the verifier owns N0
    pub1, _ = split_key(pk1)
    n_hat = mpz(rp.n)
    ell, ellp, eps = level.ell, level.ell_prime, level.eps

    # 2. moduli long enough for the ranges not to wrap
    require_modulus(pub0.n, level, f"{n}.modulus_N0")
    require_modulus(pub1.n, level, f"{n}.modulus_N1")
    require_modulus(rp.n, level, f"{n}.modulus_rp")

    # 3. statement: ciphertexts in Z*_{N^2}, X not the identity
    require_ciphertext(C, pub0, f"{n}.ciphertext_C")
    require_ciphertext(D, pub0, f"{n}.ciphertext_D")
    require_ciphertext(Y, pub1, f"{n}.ciphertext_Y")
    require_point(X, f"{n}.point_X")

    # 4. commitments: group membership
    require_ciphertext(proof.A, pub0, f"{n}.ciphertext_A")
    require_point(proof.B_x, f"{n}.point_B_x")
    require_ciphertext(proof.B_y, pub1, f"{n}.ciphertext_B_y")
    for label in ("E", "S", "F", "T"):
        require_unit(getattr(proof, label), n_hat, f"{n}.commitment_{label}")

    # 5. ranges (paper: z1, z2) and a size guard on z3, z4 that honest proofs always meet
    require_range(proof.z1, ell + eps, f"{n}.range_z1")
    require_range(proof.z2, ellp + eps, f"{n}.range_z2")
    z34_bound = z_bound(n_hat, level)
    require_abs_at_most(proof.z3, z34_bound, f"{n}.range_z3", "too large")
    require_abs_at_most(proof.z4, z34_bound, f"{n}.range_z4", "too large")

    # 6. units
    require_unit(proof.w, pub0.n, f"{n}.unit_w")
    require_unit(proof.w_y, pub1.n, f"{n}.unit_w_y")

    commitments = (proof.A, proof.B_x, proof.B_y, proof.E, proof.S, proof.F, proof.T)
    e = mpz(_challenge(transcript, pub0, pub1, rp, C, D, Y, X, commitments, level))
    z1, z2, z3, z4 = mpz(proof.z1), mpz(proof.z2), mpz(proof.z3), mpz(proof.z4)

    # 7. equations; cheapest first so that a bad proof costs little
    # z1 G = B_x + e X
    require(Point.base_mul(int(z1)) == proof.B_x + X * int(e), f"{n}.equation_X")

    # C^z1 (1+N0)^z2 w^N0 = A D^e mod N0^2,  (1+N1)^z2 w_y^N1 = B_y Y^e mod N1^2
    if batch is not None:
        batch.add(key0, C, z1, z2, proof.w, proof.A, D, e)
        batch.add(pub1, None, 0, z2, proof.w_y, proof.B_y, Y, e)
    else:
        require(affine_equation(key0, mpz(C), z1, z2, mpz(proof.w), proof.A, mpz(D), e), f"{n}.equation_D")
        require(affine_equation(pub1, None, 0, z2, mpz(proof.w_y), proof.B_y, mpz(Y), e), f"{n}.equation_Y")

    # s^z1 t^z3 = E S^e,  s^z2 t^z4 = F T^e  mod N^
    require(rp_equation(verifier_rp, z1, z3, proof.E, proof.S, e), f"{n}.equation_rp_E")
    require(rp_equation(verifier_rp, z2, z4, proof.F, proof.T, e), f"{n}.equation_rp_F")

"""Pi-mul*: multiplication Paillier vs group (CGGMP21 2021 revision, Appendix C.6, Fig. 31).

Statement, under N0 and against the verifier's ring-Pedersen parameters (N^, s, t):
D = C^x rho^N0 mod N0^2, X = x G, x in +-2^ell. The proof guarantees x in +-2^(ell+eps).

    Prover: alpha <- +-2^(ell+eps), r <- Z*_N0, gamma <- +-2^(ell+eps) N^, m <- +-2^ell N^
            A = C^alpha r^N0 mod N0^2, B_x = alpha G, E = s^alpha t^gamma, S = s^x t^m mod N^
            z1 = alpha + e x, z2 = gamma + e m, w = r rho^e mod N0
    Verifier: z1 in +-2^(ell+eps); C^z1 w^N0 = A D^e mod N0^2; z1 G = B_x + e X; s^z1 t^z2 = E S^e mod N^

Typos of the figure, fixed as every implementation does: A has no (1+N0)^beta factor (beta is never defined and
the first check would fail with it), r_y is sampled but unused, and the prover sends B_x (written B).
z2 is the ring-Pedersen randomness response (about |N^| + ell + eps bits): the paper has no range check on it and
the notes' "z2 in +-2^(ell'+eps)" belongs to pi_aff_g, not here; `range_z2` is only a size guard (see `z_bound`).

Cost: prover two exponentiations mod N0^2 (by CRT if it passes N0's secret key), the two commitments from cached
fixed-base tables; verifier (owning N0 and the parameters) the N0^2 equation by CRT, one
`RingPedersenSecret.fast_commit`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gmpy2 import mpz

from ..paillier import PaillierPublicKey, PaillierSecretKey, affine, sample_unit, split_key
from ..params import SecurityLevel
from ..ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..secp256k1 import Point
from ..transcript import Transcript
from .common import (
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

NAME = "pi_mul_star"


@dataclass(frozen=True)
class Proof:
    A: int  # C^alpha r^N0 mod N0^2
    B_x: Point  # alpha G
    E: int  # s^alpha t^gamma mod N^
    S: int  # s^x t^m mod N^
    z1: int
    z2: int
    w: int


def _challenge(
    transcript: Transcript,
    pk0: PaillierPublicKey,
    rp: RingPedersenParams,
    C: int,
    D: int,
    X: Point,
    A: int,
    B_x: Point,
    E: int,
    S: int,
    level: SecurityLevel,
) -> int:
    t = transcript.fork()
    t.append_bytes("proof", NAME.encode())
    t.append_bytes("level", level.name.encode())
    t.append_ints("bounds", [level.ell, level.eps])
    t.append_int("N0", pk0.n)
    t.append_ints("rp", [rp.n, rp.s, rp.t])
    t.append_int("C", C)
    t.append_int("D", D)
    t.append_point("X", X)
    t.append_int("A", A)
    t.append_point("B_x", B_x)
    t.append_ints("ES", [E, S])
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript,
    *,
    pk0: PaillierPublicKey | PaillierSecretKey,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    C: int,
    D: int,
    X: Point,
    x: int,
    rho: int,
    level: SecurityLevel,
) -> Proof:
    """Prove D = C^x rho^N0, X = x G. `pk0` may be a secret key the prover owns (CRT for A)."""
    pub0, key0 = split_key(pk0)
    rp = verifier_rp.params  # the prover only ever uses the verifier's public parameters
    C = require_input_ciphertext(C, pub0, NAME, "C")
    x = require_witness_int(x, NAME, "x")
    rho = require_witness_unit(rho, pub0.n, NAME, "rho")
    nonces, S, E = range_commitments(rp, x, 1 << (level.ell + level.eps), level)  # (alpha, m, gamma)
    r = sample_unit(pub0.n)
    A = affine(key0, C, nonces.alpha, 0, r)
    B_x = Point.base_mul(int(nonces.alpha))
    e = mpz(_challenge(transcript, pub0, rp, C, D, X, A, B_x, E, S, level))
    z1, z2 = range_responses(nonces, x, e)
    w = masked_randomness(key0, r, rho, e)
    return Proof(
        A=int(A),
        B_x=B_x,
        E=int(E),
        S=int(S),
        z1=int(z1),
        z2=int(z2),
        w=int(w),
    )


@guarded(NAME)
def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    pk0: PaillierPublicKey | PaillierSecretKey,
    verifier_rp: RingPedersenParams | RingPedersenSecret,
    C: int,
    D: int,
    X: Point,
    level: SecurityLevel,
) -> None:
    """Return None or raise ProofError("pi_mul_star.<check>"). Pass the own `RingPedersenSecret` for CRT speed."""
    n = NAME
    require_fields(proof, Proof, n)
    pub0, key0, rp = verifier_keys(pk0, verifier_rp)  # CRT for the N0^2 equation when the verifier owns N0
    n_hat = mpz(rp.n)
    ell, eps = level.ell, level.eps

    require_modulus(pub0.n, level, f"{n}.modulus_N0")
    require_modulus(rp.n, level, f"{n}.modulus_rp")
    require_ciphertext(C, pub0, f"{n}.ciphertext_C")
    require_ciphertext(D, pub0, f"{n}.ciphertext_D")
    require_point(X, f"{n}.point_X")
    require_ciphertext(proof.A, pub0, f"{n}.ciphertext_A")
    require_point(proof.B_x, f"{n}.point_B_x")
    require_unit(proof.E, n_hat, f"{n}.commitment_E")
    require_unit(proof.S, n_hat, f"{n}.commitment_S")
    require_range(proof.z1, ell + eps, f"{n}.range_z1")
    # not in the paper: a size guard that honest proofs always meet (see z_bound)
    require_abs_at_most(proof.z2, z_bound(n_hat, level), f"{n}.range_z2", "too large")
    require_unit(proof.w, pub0.n, f"{n}.unit_w")

    e = mpz(_challenge(transcript, pub0, rp, C, D, X, proof.A, proof.B_x, proof.E, proof.S, level))
    z1, z2 = mpz(proof.z1), mpz(proof.z2)

    # z1 G = B_x + e X
    require(Point.base_mul(int(z1)) == proof.B_x + X * int(e), f"{n}.equation_X")
    # C^z1 w^N0 = A D^e mod N0^2
    require(affine_equation(key0, mpz(C), z1, 0, mpz(proof.w), proof.A, mpz(D), e), f"{n}.equation_D")
    # s^z1 t^z2 = E S^e mod N^
    require(rp_equation(verifier_rp, z1, z2, proof.E, proof.S, e), f"{n}.equation_rp_E")

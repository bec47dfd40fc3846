"""Pi-mul: Paillier multiplication (CGGMP21, Appendix C.6, Fig. 29).

Statement, all under the prover's key N: X = Enc(x; rho_x), Y any ciphertext, C = Y^x rho^N mod N^2, i.e. C
encrypts x times the plaintext of Y. Challenge e in +-q, no ring-Pedersen parameters.

    Prover: alpha <- Z*_N, r, s <- Z*_N;  A = Y^alpha r^N,  B = (1+N)^alpha s^N  (mod N^2)
            z = alpha + e x,  u = r rho^e mod N,  v = s rho_x^e mod N
    Verifier: Y^z u^N = A C^e  and  (1+N)^z v^N = B X^e  (mod N^2)

(The 2021 text writes the second check with `c` where v is meant; v is what makes it hold.) The paper has no range
check: x need not be small. The verifier still bounds |z| <= (q+1) N, which every honest proof with |x| <= N meets,
so that a peer cannot make it exponentiate by a huge z.

Cost: prover (passing its own `PaillierSecretKey` as `pk`) all by CRT: Y^alpha, r^N, s^N and two 256-bit ones for u, v;
verifier three full exponentiations mod N^2 (Y^z, u^N, v^N) and two 256-bit ones (C^e, X^e).
"""

from __future__ import annotations

from dataclasses import dataclass

from gmpy2 import mpz

from ..paillier import PaillierPublicKey, PaillierSecretKey, affine, sample_unit, split_key
from ..secp256k1 import Q
from ..transcript import Transcript
from .common import (
    affine_equation,
    guarded,
    masked_randomness,
    require,
    require_abs_at_most,
    require_ciphertext,
    require_fields,
    require_input_ciphertext,
    require_unit,
    require_witness_int,
    require_witness_unit,
)

NAME = "pi_mul"


@dataclass(frozen=True)
class Proof:
    A: int  # Y^alpha r^N mod N^2
    B: int  # (1+N)^alpha s^N mod N^2
    z: int
    u: int
    v: int


def _challenge(transcript: Transcript, pk: PaillierPublicKey, X: int, Y: int, C: int, A: int, B: int) -> int:
    t = transcript.fork()
    t.append_bytes("proof", NAME.encode())
    t.append_int("N", pk.n)
    t.append_int("X", X)
    t.append_int("Y", Y)
    t.append_int("C", C)
    t.append_int("A", A)
    t.append_int("B", B)
    return t.challenge_signed_q("e")


def prove(
    transcript: Transcript,
    *,
    pk: PaillierPublicKey | PaillierSecretKey,
    X: int,
    Y: int,
    C: int,
    x: int,
    rho_x: int,
    rho: int,
) -> Proof:
    """Prove C = Y^x rho^N and X = Enc(x; rho_x). `pk` may be the prover's own secret key (CRT)."""
    pub, key = split_key(pk)
    Y = require_input_ciphertext(Y, pub, NAME, "Y")
    x = require_witness_int(x, NAME, "x")
    rho_x = require_witness_unit(rho_x, pub.n, NAME, "rho_x")
    rho = require_witness_unit(rho, pub.n, NAME, "rho")
    alpha = sample_unit(pub.n)
    r = sample_unit(pub.n)
    s = sample_unit(pub.n)
    A = affine(key, Y, alpha, 0, r)
    B = affine(key, None, 0, alpha, s)
    e = mpz(_challenge(transcript, pub, X, Y, C, A, B))
    return Proof(
        A=int(A),
        B=int(B),
        z=int(alpha + e * x),
        u=int(masked_randomness(key, r, rho, e)),
        v=int(masked_randomness(key, s, rho_x, e)),
    )


@guarded(NAME)
def verify(transcript: Transcript, proof: Proof, *, pk: PaillierPublicKey, X: int, Y: int, C: int) -> None:
    """Return None or raise ProofError("pi_mul.<check>")."""
    n = NAME
    require_fields(proof, Proof, n)
    pub, _ = split_key(pk)
    require(pub.n > 1 and pub.n % 2 == 1, f"{n}.modulus_N", "not an odd modulus")
    require_ciphertext(X, pub, f"{n}.ciphertext_X")
    require_ciphertext(Y, pub, f"{n}.ciphertext_Y")
    require_ciphertext(C, pub, f"{n}.ciphertext_C")
    require_ciphertext(proof.A, pub, f"{n}.ciphertext_A")
    require_ciphertext(proof.B, pub, f"{n}.ciphertext_B")
    require_abs_at_most(proof.z, (Q + 1) * pub.n, f"{n}.range_z", "too large")
    require_unit(proof.u, pub.n, f"{n}.unit_u")
    require_unit(proof.v, pub.n, f"{n}.unit_v")

    e = mpz(_challenge(transcript, pub, X, Y, C, proof.A, proof.B))
    z = mpz(proof.z)
    # Y^z u^N = A C^e mod N^2
    require(affine_equation(pub, mpz(Y), z, 0, mpz(proof.u), proof.A, mpz(C), e), f"{n}.equation_C")
    # (1+N)^z v^N = B X^e mod N^2
    require(affine_equation(pub, None, 0, z, mpz(proof.v), proof.B, mpz(X), e), f"{n}.equation_X")

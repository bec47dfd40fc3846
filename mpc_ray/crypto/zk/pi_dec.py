"""Pi-dec: Paillier decryption modulo q (CGGMP21, Fig. 28).

Statement: C = (1 + N0)^y rho^N0 mod N0^2 under the prover's key, and the public scalar x = y mod q, proven
against the verifier's ring-Pedersen parameters (N-hat, s, t). Used by identifiable abort to show a decrypted
share was reported correctly.

    prover:   alpha <- +-2^(ell+eps) N0, mu <- +-2^ell N-hat, nu <- +-2^(ell+eps) N-hat, r <- Z*_N0
              S = s^y t^mu, T = s^alpha t^nu, A = (1 + N0)^alpha r^N0, gamma = alpha mod q
    challenge e in +-q
    response: z1 = alpha + e y, z2 = nu + e mu, w = r rho^e mod N0
    verifier: (1 + N0)^z1 w^N0 = A C^e mod N0^2; z1 = gamma + e x mod q; s^z1 t^z2 = T S^e mod N-hat

The paper gives this proof no range check on z1 (y is any plaintext). The verifier still caps |z1| and |z2| at
what an honest prover with |y| < N0 can produce, so a peer cannot make it exponentiate by huge exponents.
"""

from __future__ import annotations

from dataclasses import dataclass

from gmpy2 import mpz

from ...errors import InvalidInput
from ..paillier import PaillierPublicKey, PaillierSecretKey, sample_unit
from ..params import SecurityLevel
from ..secp256k1 import Q
from ..transcript import Transcript
from .common import require, require_scalar, require_unit
from .pi_enc import (
    RingPedersen,
    Setup,
    bind_setup,
    check_ciphertext,
    check_rp_unit,
    check_types,
    encrypt,
    is_int,
    mask_randomness,
    paillier_equation,
    prover_setup,
    require_abs_at_most,
    response_bound,
    rp_equation,
    sample_signed,
    setup,
)

NAME = "pi_dec"


@dataclass(frozen=True)
class Proof:
    S: int  # s^y t^mu mod N-hat
    T: int  # s^alpha t^nu mod N-hat
    A: int  # (1 + N0)^alpha r^N0 mod N0^2
    gamma: int  # alpha mod q
    z1: int
    z2: int
    w: int


def _challenge(transcript: Transcript, st: Setup, C: mpz, x: int, S: mpz, T: mpz, A: mpz, gamma: int) -> int:
    t = transcript.fork()
    bind_setup(t, NAME, st)
    t.append_int("q", Q)
    t.append_int("C", C)
    t.append_int("x", x)
    t.append_int("S", S)
    t.append_int("T", T)
    t.append_int("A", A)
    t.append_int("gamma", gamma)
    return t.challenge_signed_q("e")


def _alpha_bound(st: Setup) -> int:
    """alpha must mask e y for any plaintext |y| < N0 (|e y| < q N0): the paper's +-2^(ell+eps) does not when y is
    an identification plaintext of ~2^(ell'+ell) bits, and the top bits of y would leak. +-2^(ell+eps) N0 hides
    e y statistically (eps bits of slack)."""
    return (1 << (st.level.ell + st.level.eps)) * int(st.n0)


def _z1_bound(st: Setup) -> int:
    """|alpha + e y| for alpha in +-2^(ell+eps) N0, e in +-q, |y| < N0."""
    return _alpha_bound(st) + Q * int(st.n0)


def prove(
    transcript: Transcript,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: RingPedersen,
    C: int,
    x: int,
    y: int,
    rho: int,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None = None,
) -> Proof:
    """Prove C = Enc_N0(y; rho) and x = y mod q. `prover_sk` (optional, the prover's own key) makes r^N0 and rho^e
    use CRT. Not checked here: that x really is y mod q (a wrong x gives a proof that fails equation_mod_q)."""
    st = prover_setup(NAME, prover_pk, verifier_rp, level, prover_sk, rho)
    if not (is_int(C) and is_int(x) and is_int(y)):
        raise InvalidInput(f"{NAME}: C, x and y must be integers")
    if abs(y) >= st.n0:
        raise InvalidInput(f"{NAME}: y must be a plaintext, |y| < N0")
    lv, n_hat = st.level, st.rp.n
    alpha = sample_signed(_alpha_bound(st))
    mu = sample_signed((1 << lv.ell) * n_hat)
    nu = sample_signed((1 << (lv.ell + lv.eps)) * n_hat)
    r = sample_unit(st.n0)
    S = st.commit(y, mu)
    T = st.commit(alpha, nu)
    A = encrypt(st, alpha, r, prover_sk)
    gamma = int(alpha % Q)
    e = _challenge(transcript, st, mpz(C), int(x), S, T, A, gamma)
    z1 = alpha + e * mpz(y)
    z2 = nu + e * mu
    w = mask_randomness(st, r, rho, e, prover_sk)
    return Proof(int(S), int(T), int(A), gamma, int(z1), int(z2), int(w))


def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: RingPedersen,
    C: int,
    x: int,
    level: SecurityLevel,
) -> None:
    """Return None or raise ProofError naming the failed check."""
    st = setup(NAME, prover_pk, verifier_rp, level)
    require(isinstance(proof, Proof), f"{NAME}.type_proof", "not a pi_dec proof")
    check_types(NAME, {"C": C, "x": x, "S": proof.S, "T": proof.T, "A": proof.A, "gamma": proof.gamma,
                       "z1": proof.z1, "z2": proof.z2, "w": proof.w})
    require_scalar(x, f"{NAME}.range_x")
    require_scalar(proof.gamma, f"{NAME}.range_gamma")
    require_abs_at_most(proof.z1, _z1_bound(st), f"{NAME}.range_z1")
    require_abs_at_most(proof.z2, response_bound(st, st.level.ell + st.level.eps), f"{NAME}.range_z2")
    check_ciphertext(NAME, st, "C", C)
    check_ciphertext(NAME, st, "A", proof.A)
    check_rp_unit(NAME, st, "S", proof.S)
    check_rp_unit(NAME, st, "T", proof.T)
    require_unit(proof.w, st.n0, f"{NAME}.unit_w")
    C_, S, T, A = mpz(C), mpz(proof.S), mpz(proof.T), mpz(proof.A)
    z1, z2, w = mpz(proof.z1), mpz(proof.z2), mpz(proof.w)
    e = _challenge(transcript, st, C_, int(x), S, T, A, int(proof.gamma))
    # cheapest first: mod q, then ring-Pedersen (CRT if ours), then the N0-th power
    require((z1 - proof.gamma - e * x) % Q == 0, f"{NAME}.equation_mod_q")
    require(rp_equation(st, z1, z2, T, S, e), f"{NAME}.equation_rp")
    require(paillier_equation(st, z1, w, A, C_, e), f"{NAME}.equation_enc")

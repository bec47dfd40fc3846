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

The sigma protocol is Pi-enc's with a wider alpha (`paillier_proofs`), gamma = alpha mod q added.
"""

from __future__ import annotations

from dataclasses import dataclass

from gmpy2 import mpz

from ...errors import InvalidInput
from ..paillier import PaillierPublicKey, PaillierSecretKey
from ..params import SecurityLevel
from ..secp256k1 import Q
from ..transcript import Transcript
from . import paillier_proofs as pp
from .common import check_types, is_int, require, require_abs_at_most, require_proof_type, require_scalar, z_bound

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


def _challenge(transcript: Transcript, st: pp.Setup, C: mpz, x: int, S: mpz, T: mpz, A: mpz, gamma: int) -> int:
    t = transcript.fork()
    pp.bind_setup(t, NAME, st)
    t.append_int("q", Q)
    t.append_int("C", C)
    t.append_int("x", x)
    t.append_int("S", S)
    t.append_int("T", T)
    t.append_int("A", A)
    t.append_int("gamma", gamma)
    return t.challenge_signed_q("e")


def _alpha_bound(st: pp.Setup) -> int:
    """alpha must mask e y for any plaintext |y| < N0 (|e y| < q N0): the paper's +-2^(ell+eps) does not when y is
    an identification plaintext of ~2^(ell'+ell) bits, and the top bits of y would leak. +-2^(ell+eps) N0 hides
    e y statistically (eps bits of slack)."""
    return (1 << (st.level.ell + st.level.eps)) * int(st.n0)


def _z1_bound(st: pp.Setup) -> int:
    """|alpha + e y| for alpha in +-2^(ell+eps) N0, e in +-q, |y| < N0."""
    return _alpha_bound(st) + Q * int(st.n0)


def prove(
    transcript: Transcript,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: pp.RingPedersen,
    C: int,
    x: int,
    y: int,
    rho: int,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None = None,
) -> Proof:
    """Prove C = Enc_N0(y; rho) and x = y mod q. `prover_sk` (optional, the prover's own key) makes r^N0 and rho^e
    use CRT. Not checked here: that x really is y mod q (a wrong x gives a proof that fails equation_mod_q)."""
    st = pp.prover_setup(NAME, prover_pk, verifier_rp, level, prover_sk, rho)
    if not (is_int(C) and is_int(x) and is_int(y)):
        raise InvalidInput(f"{NAME}: C, x and y must be integers")
    if abs(y) >= st.n0:
        raise InvalidInput(f"{NAME}: y must be a plaintext, |y| < N0")
    y = mpz(y)
    # T = s^alpha t^nu: the nonce pp calls gamma is the paper's nu here
    nonces, r, S, A, T = pp.first_message(st, y, _alpha_bound(st), prover_sk)
    gamma = int(nonces.alpha % Q)
    e = _challenge(transcript, st, mpz(C), int(x), S, T, A, gamma)
    z1, w, z2 = pp.responses(st, nonces, r, y, rho, e, prover_sk)
    return Proof(int(S), int(T), int(A), gamma, int(z1), int(z2), int(w))


def verify(
    transcript: Transcript,
    proof: Proof,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: pp.RingPedersen,
    C: int,
    x: int,
    level: SecurityLevel,
) -> None:
    """Return None or raise ProofError naming the failed check. Pass the own `RingPedersenSecret` for CRT speed."""
    st = pp.setup(NAME, prover_pk, verifier_rp, level)
    require_proof_type(proof, Proof, NAME)
    check_types(NAME, {"C": C, "x": x, "S": proof.S, "T": proof.T, "A": proof.A, "gamma": proof.gamma,
                       "z1": proof.z1, "z2": proof.z2, "w": proof.w})
    require_scalar(x, f"{NAME}.range_x")
    require_scalar(proof.gamma, f"{NAME}.range_gamma")
    require_abs_at_most(proof.z1, _z1_bound(st), f"{NAME}.range_z1", "response out of range")
    require_abs_at_most(proof.z2, z_bound(st.rp.n, st.level), f"{NAME}.range_z2", "response out of range")
    pp.check_memberships(NAME, st, ("C", C), proof.A, proof.S, ("T", proof.T), ("w", proof.w))
    C_, S, T, A = mpz(C), mpz(proof.S), mpz(proof.T), mpz(proof.A)
    z1 = mpz(proof.z1)
    e = _challenge(transcript, st, C_, int(x), S, T, A, int(proof.gamma))
    # cheapest first: mod q, then ring-Pedersen (CRT if ours), then the N0-th power
    require((z1 - proof.gamma - e * x) % Q == 0, f"{NAME}.equation_mod_q")
    pp.check_equations(NAME, st, e, z1, mpz(proof.w), mpz(proof.z2), C_, A, S, T)

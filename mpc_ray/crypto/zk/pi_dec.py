"""Pi-dec: Paillier decryption modulo q of a bounded plaintext (CGGMP21, Fig. 28, with a range check on z1).

Statement: C = (1 + N0)^y rho^N0 mod N0^2 under the prover's key N0, |y| <= B, and the public scalar x = y mod q,
proven against the verifier's ring-Pedersen parameters (N-hat, s, t). The bound B is part of the statement (bound
into the challenge): the caller passes the largest plaintext an honest prover can hold (identification:
`protocols.ecdsa.identify.plaintext_bound`).

    prover:   alpha <- +-2^eps B, mu <- +-2^ell N-hat, nu <- +-2^(ell+eps) N-hat, r <- Z*_N0
              S = s^y t^mu, T = s^alpha t^nu, A = (1 + N0)^alpha r^N0, gamma = alpha mod q
    challenge e in +-q
    response: z1 = alpha + e y, z2 = nu + e mu, w = r rho^e mod N0
    verifier: 4 Z1 < N0 for Z1 = 2^eps B + q B; |z1| <= Z1; |z2| <= size guard;
              z1 = gamma + e x mod q; s^z1 t^z2 = T S^e mod N-hat; (1 + N0)^z1 w^N0 = A C^e mod N0^2

Why the range on z1 (the paper gives none). Enc(y) = Enc(y + k N0), and the mod-q and ring-Pedersen equations
hold over the integers, so without a bound a prover runs the honest algorithm on y' = y + k N0 with k chosen so
that y' = x mod q for any x it likes, and the proof says nothing about Dec(C). With it: from two accepting
answers (e, z1, z2, w) and (e', z1', z2', w') to one first message, the ring-Pedersen equation gives
(e - e') | (z1 - z1') (strong RSA), so y* = (z1 - z1') / (e - e') is an integer with C = Enc(y*; rho*) (the
Paillier equation, gcd(e - e', N0) = 1) and y* = x mod q (the mod-q equation, e != e' mod q), and
|y*| <= |z1 - z1'| <= 2 Z1 < N0 / 2. So y* is THE signed decryption of C (`PaillierSecretKey.decrypt`'s range
(-N0/2, N0/2]) and x = Dec(C) mod q: no other residue mod q has a representative that small.

Zero knowledge: |e y| <= q B and alpha is uniform on +-2^eps B, so z1 is within statistical distance
q / 2^eps < 2^(ell-eps) = 2^-256 of alpha's own distribution, the eps - ell slack of every other range proof here.

Why a bound and not opening the ciphertexts (the presignature is discarded anyway): an opening reveals Dec(C) as an
integer, and in identification that integer is k_i w_i + sum_j (k_i w_j + beta-hat_ji) - sum_j beta-hat_ij with
no reduction mod q. The masks cancel across parties: the openings of all signers sum to (sum k_j)(sum w_j), an
unreduced ~512-bit product whose two factors are the nonce and the key mod q; and a malicious peer j that knows
beta-hat_ji and k_j w_i + beta-hat_ij learns an integer relation between k_i and w_i from one opening. A proof
reveals only Dec(C) mod q, which identification publishes anyway.

Honest plaintexts must fit: in identification B = t 2^(ell'+2) (t signers), far below N0 / 2^(eps+3) at both
levels because presigning refuses any MtA share outside +-2^(ell'+1) (`presign.range_alpha`); without that check a
peer could push an honest party's plaintext past B and frame it.

The sigma protocol is Pi-enc's (`paillier_proofs`) with alpha sized to B, gamma = alpha mod q added.
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


def _challenge(transcript: Transcript, st: pp.Setup, bound: int, C: mpz, x: int, S: mpz, T: mpz, A: mpz,
               gamma: int) -> int:
    t = transcript.fork()
    pp.bind_setup(t, NAME, st)
    t.append_int("q", Q)
    t.append_int("B", bound)
    t.append_int("C", C)
    t.append_int("x", x)
    t.append_int("S", S)
    t.append_int("T", T)
    t.append_int("A", A)
    t.append_int("gamma", gamma)
    return t.challenge_signed_q("e")


def _alpha_bound(st: pp.Setup, bound: int) -> int:
    """2^eps B: masks e y (|e y| <= q B) with eps - ell bits of slack."""
    return bound << st.level.eps


def z1_bound(st: pp.Setup, bound: int) -> int:
    """Z1 = 2^eps B + q B, the largest |alpha + e y| of an honest prover."""
    return _alpha_bound(st, bound) + Q * bound


def _check_bound(st: pp.Setup, bound: object) -> int:
    """B must be a positive integer with 4 Z1 < N0, so that the extracted plaintext (|y*| <= 2 Z1) is the unique
    signed decryption. A bound that does not fit is the caller's choice of parameters, not a peer's fault (N0's
    length was already checked against the level)."""
    if not is_int(bound) or bound <= 0:
        raise InvalidInput(f"{NAME}: the plaintext bound B must be a positive integer")
    if 4 * z1_bound(st, int(bound)) >= st.n0:
        raise InvalidInput(f"{NAME}: the plaintext bound B is too large for N0 (4 (2^eps + q) B must be < N0)")
    return int(bound)


def prove(
    transcript: Transcript,
    *,
    prover_pk: PaillierPublicKey,
    verifier_rp: pp.RingPedersen,
    C: int,
    x: int,
    y: int,
    rho: int,
    bound: int,
    level: SecurityLevel,
    prover_sk: PaillierSecretKey | None = None,
) -> Proof:
    """Prove C = Enc_N0(y; rho), |y| <= bound and x = y mod q. `prover_sk` (optional, the prover's own key) makes
    r^N0 and rho^e use CRT. Not checked here: that x really is y mod q (a wrong x gives a proof that fails
    equation_mod_q)."""
    st = pp.prover_setup(NAME, prover_pk, verifier_rp, level, prover_sk, rho)
    if not (is_int(C) and is_int(x) and is_int(y)):
        raise InvalidInput(f"{NAME}: C, x and y must be integers")
    bound = _check_bound(st, bound)
    if abs(y) > bound:
        raise InvalidInput(f"{NAME}: |y| exceeds the statement's bound B")
    y = mpz(y)
    # T = s^alpha t^nu: the nonce pp calls gamma is the paper's nu here
    nonces, r, S, A, T = pp.first_message(st, y, _alpha_bound(st, bound), prover_sk)
    gamma = int(nonces.alpha % Q)
    e = _challenge(transcript, st, bound, mpz(C), int(x), S, T, A, gamma)
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
    bound: int,
    level: SecurityLevel,
) -> None:
    """Return None or raise ProofError naming the failed check; InvalidInput if `bound` does not fit N0 (local
    parameters). Pass the own `RingPedersenSecret` for CRT speed."""
    st = pp.setup(NAME, prover_pk, verifier_rp, level)
    bound = _check_bound(st, bound)
    require_proof_type(proof, Proof, NAME)
    check_types(NAME, {"C": C, "x": x, "S": proof.S, "T": proof.T, "A": proof.A, "gamma": proof.gamma,
                       "z1": proof.z1, "z2": proof.z2, "w": proof.w})
    require_scalar(x, f"{NAME}.range_x")
    require_scalar(proof.gamma, f"{NAME}.range_gamma")
    # the check that makes y the decryption of C (module docstring)
    require_abs_at_most(proof.z1, z1_bound(st, bound), f"{NAME}.range_z1", "response out of range")
    require_abs_at_most(proof.z2, z_bound(st.rp.n, st.level), f"{NAME}.range_z2", "response out of range")
    pp.check_memberships(NAME, st, ("C", C), proof.A, proof.S, ("T", proof.T), ("w", proof.w))
    C_, S, T, A = mpz(C), mpz(proof.S), mpz(proof.T), mpz(proof.A)
    z1 = mpz(proof.z1)
    e = _challenge(transcript, st, bound, C_, int(x), S, T, A, int(proof.gamma))
    # cheapest first: mod q, then ring-Pedersen (CRT if ours), then the N0-th power
    require((z1 - proof.gamma - e * x) % Q == 0, f"{NAME}.equation_mod_q")
    pp.check_equations(NAME, st, e, z1, mpz(proof.w), mpz(proof.z2), C_, A, S, T)

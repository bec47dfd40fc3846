"""Batched verification of the Paillier equations of several proofs (random linear combination, small exponents).

What is batched. Equations of the one shape every Paillier proof checks, over one modulus N:

    C_k^x_k (1+N)^y_k w_k^N = A_k D_k^e_k  mod N^2          (k = 1..m; C_k absent in the encryption form)

(pi_aff_g's D- and Y-equations, pi_log*'s encryption equation) from the proofs of ONE peer's message of one round.
Each proof's verifier runs all its other checks (types, ranges, memberships, curve and ring-Pedersen equations) as
usual and hands these equations to a `PaillierBatch` instead of checking them; the batch checks, per modulus,

    prod C_k^(c_k x_k) (1+N)^(sum c_k y_k) (prod w_k^c_k mod N)^N = prod A_k^c_k D_k^(c_k e_k)  mod N^2

with c_1 = 1 and c_k (k >= 2) uniform in [0, 2^128), drawn by the verifier from `secrets` after the message has
arrived and never sent. One N-bit exponentiation (the N-th power) replaces m of them, and equal bases C_k (presigning
uses its own K in both pi_aff_g) share one exponentiation. Every honest set of equations passes: the batch is the
product of the k-th equation raised to c_k, an identity whatever the weights.

Soundness. Let x_k = LHS_k / RHS_k in G = Z*_{N^2}; the batch accepts iff prod x_k^c_k = 1. For a peer's N,
aux-info has proven N = p q a Paillier-Blum modulus with gcd(N, phi(N)) = 1 (pi_mod) and p, q <= 2^(ell+eps)
sqrt(N) (pi_fac), so both factors are at least sqrt(N) / 2^(ell+eps): 2^255 at level 112, 2^767 at 128, far above
2^128; the verifier's own N is honest (safe primes). Then G is the direct product of the plaintext part
P = <1+N>, of order N, and R = {r^N : r in Z*_N}, and decryption psi: G -> Z_N, (1+N)^m r^N -> m, is a homomorphism
with kernel R. Applying psi, acceptance gives sum c_k psi(x_k) = 0 mod N.
- Plaintext part, exact up to 2^-128. Say psi(x_j) != 0 for some j. If j is the only such k and j = 1, the sum is
  psi(x_1) != 0: rejected. Otherwise take such a j >= 2 and fix every other weight: acceptance needs
  c_j psi(x_j) = t mod N for one t, whose solutions c_j form one residue class modulo the additive order of
  psi(x_j), which is p, q or N, all above 2^128, so at most one c_j in [0, 2^128) passes: probability at most
  2^-128. A prover cannot aim at that value: the weights do not exist when it sends, are not derived from anything
  it sends (no Fiat-Shamir), and are fresh for every batch; and a batch that fails is not the end: the verifier
  then runs the per-proof checks, which name the culprit and the exact check. So a cheat passes only with
  probability 2^-128 per attempt, and each failed attempt is caught and named. Two wrong equations cannot cancel:
  deviations (1+N)^d and (1+N)^-d in two proofs would under fixed weights (all 1); random weights leave
  (1+N)^(d (c_a - c_b)) != 1 (tested).
- Randomness part. psi(x_k) = 0 means x_k = v^N for some v in Z*_N, i.e. equation k holds exactly with the
  response w_k / v in place of w_k: the proof's commitments, challenge and plaintext responses are those of a proof
  the per-proof check accepts, and the plaintext relation the proof establishes holds exactly. Such a deviation is
  still caught unless its order is tiny, which a prover can arrange only where it knows the factors (its own N: it
  could send w_k / v itself) or with v = -1 (order 2, either N); either way nothing the verifier relies on changes.
  That is also why both sides need not be squared against elements of order 2: -1 = (-1)^N lies in R.
The error adds 2^-128 per batch to the soundness errors of pi_mod and pi_fac, which the per-proof checks rely on too.

Use. `verify(..., batch=b)` of pi_aff_g or pi_log_star defers its Paillier equations into `b`; the caller then
calls `b.holds()` and, if it is False (or any deferred verification raised), runs the same verifications again
without `batch`, in the same order as before batching existed, so the culprit and the check are reported exactly
as without the batch (`protocols/ecdsa/presign.py`, round 3).
"""

from __future__ import annotations

import secrets

from gmpy2 import mpz

from ..paillier import PaillierKey, PaillierSecretKey

WEIGHT_BITS = 128


def weight() -> int:
    """One random weight c_k in [0, 2^128) (a module function so that a test can show what fixed weights let pass)."""
    return secrets.randbits(WEIGHT_BITS)


# (c or None, x, y, w, a, d, e) of one deferred equation C^x (1+N)^y w^N = A D^e mod N^2
_Equation = tuple[mpz | None, mpz, mpz, mpz, mpz, mpz, mpz]


class PaillierBatch:
    """Equations C^x (1+N)^y w^N = A D^e mod N^2 collected from verifiers, checked together per modulus by `holds`.
    Every value must already have passed its verifier's membership checks (bases units, w a unit mod N)."""

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: dict[mpz, tuple[PaillierKey, list[_Equation]]] = {}

    def add(self, key: PaillierKey, c: mpz | None, x: int, y: int, w: mpz, a: mpz, d: mpz, e: int) -> None:
        """Defer C^x (1+N)^y w^N = A D^e mod N^2 (c None: the encryption form). `key` computes: a secret key by
        CRT; the last secret key given for a modulus serves the whole group."""
        n = mpz(key.public.n)
        held, eqs = self._groups.get(n, (key, []))
        if isinstance(key, PaillierSecretKey):
            held = key
        eqs.append((None if c is None else mpz(c), mpz(x), mpz(y), mpz(w), mpz(a), mpz(d), mpz(e)))
        self._groups[n] = (held, eqs)

    def __len__(self) -> int:
        return sum(len(eqs) for _, eqs in self._groups.values())

    def holds(self) -> bool:
        """True iff every modulus' weighted product holds (fresh weights for each call). A value the batch cannot
        compute with (not invertible) is a failure too: the caller's per-proof checks then name it."""
        try:
            return all(_group_holds(key, eqs) for key, eqs in self._groups.values())
        except (ArithmeticError, ValueError):
            return False


def _group_holds(key: PaillierKey, eqs: list[_Equation]) -> bool:
    n, n2 = key.public.n, key.public.n2
    weights = [1] + [weight() for _ in eqs[1:]]
    y_sum, w_prod, rhs = mpz(0), mpz(1), mpz(1)
    c_exps: dict[mpz, mpz] = {}
    for ck, (c, x, y, w, a, d, e) in zip(weights, eqs):
        y_sum += ck * y
        # (w mod N)^N mod N^2 depends only on w mod N, so the product of the w_k^c_k is taken mod N
        w_prod = w_prod * (w if ck == 1 else key.powmod_n(w, ck)) % n
        if c is not None:
            c_exps[c] = c_exps.get(c, mpz(0)) + ck * x
        rhs = rhs * (a if ck == 1 else key.powmod_n2(a, ck)) % n2 * key.powmod_n2(d, ck * e) % n2
    lhs = key.encrypt_with(y_sum, w_prod)
    for c, exp in c_exps.items():
        lhs = lhs * key.powmod_n2(c, exp) % n2
    return bool(lhs == rhs)  # gmpy2 is untyped: Any to mypy

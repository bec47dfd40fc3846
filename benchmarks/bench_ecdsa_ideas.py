#!/usr/bin/env python
"""Micro-benchmarks behind the suggestions in BENCHMARKS.md (nothing in mpc_ray is changed; a few seconds).

    python benchmarks/bench_ecdsa_ideas.py

1. `PaillierSecretKey.powmod_n` reduces every exponent mod p-1 and q-1, so a short negative exponent (the challenge
   e, or z1, is negative half of the time) becomes a full prime-size one. Proposal: keep exponents shorter than p-1
   as they are (gmpy2 inverts the base once for a negative exponent), reduce only longer ones.
2. Batch the checks "(1+N)^z1 z^N = A C^e mod N^2" that one verifier makes on one peer's proofs in one round
   (round 3 of presigning: two pi_aff_g Y-equations and one pi_log*; same peer key N_j) with random 128-bit weights
   c_k: (prod z_k^c_k)^N (1+N)^(sum c_k z1_k) = prod A_k^c_k C_k^(e_k c_k), both sides squared. One N-bit
   exponentiation instead of three. A protocol change: needs a soundness review (small-order elements of
   Z*_{N^2}; hence the squaring) before anyone adopts it.

TEST ONLY fixture keys; CPU time (time.process_time), best of 5.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import gmpy2
from gmpy2 import mpz

from mpc_ray.crypto.paillier import sample_unit
from tests.support.primes import fixture_paillier_key  # TEST ONLY keys

PT = time.process_time


def best(fn, reps: int) -> float:
    out = []
    for _ in range(5):
        t0 = PT()
        for _ in range(reps):
            fn()
        out.append((PT() - t0) / reps)
    return min(out)


def proposed_powmod_n(sk, base, exp) -> mpz:
    """base^exp mod N by CRT; exponents shorter than p-1 (q-1) are used as they are."""
    p, q, exp = sk.p, sk.q, mpz(exp)
    ep = exp if -(p - 1) < exp < p - 1 else exp % (p - 1)
    eq = exp if -(q - 1) < exp < q - 1 else exp % (q - 1)
    xp, xq = gmpy2.powmod(base, ep, p), gmpy2.powmod(base, eq, q)
    return xp + p * ((xq - xp) * gmpy2.invert(p, q) % q)


def main() -> None:
    print("| level | what | now | proposed | saved per call |")
    print("|---|---|---|---|---|")
    for lv in ("112", "128"):
        sk = fixture_paillier_key(lv, 0)
        n = sk.public.n
        base = sample_unit(n)
        for label, bits in (("-e (256-bit)", 256), ("-z1 (768-bit)", 768)):
            e = -(mpz(secrets.randbits(bits)) | (mpz(1) << (bits - 1)))
            assert proposed_powmod_n(sk, base, e) == sk.powmod_n(base, e) == gmpy2.powmod(base, e, n)
            a = best(lambda sk=sk, base=base, e=e: sk.powmod_n(base, e), 20)
            b = best(lambda sk=sk, base=base, e=e: proposed_powmod_n(sk, base, e), 20)
            print(f"| {lv} | PaillierSecretKey.powmod_n(base, {label}) | {a * 1e6:,.0f} us | {b * 1e6:,.0f} us | "
                  f"{(a - b) * 1e6:,.0f} us |")

        peer = fixture_paillier_key(lv, 1).public
        N, N2 = peer.n, peer.n2
        k = 3
        zs = [sample_unit(N) for _ in range(k)]
        As = [sample_unit(N2) for _ in range(k)]
        Cs = [sample_unit(N2) for _ in range(k)]
        es = [mpz(secrets.randbits(256)) for _ in range(k)]
        z1s = [mpz(secrets.randbits(768)) for _ in range(k)]

        def separate(zs=zs, As=As, Cs=Cs, es=es, z1s=z1s, N=N, N2=N2):
            for z, a, c, e, z1 in zip(zs, As, Cs, es, z1s):
                lhs = (1 + z1 % N * N) * gmpy2.powmod(z, N, N2) % N2
                _ = lhs == a * gmpy2.powmod(c, e, N2) % N2

        def batched(zs=zs, As=As, Cs=Cs, es=es, z1s=z1s, N=N, N2=N2):
            cs = [mpz(secrets.randbits(128)) for _ in zs]
            zc = mpz(1)
            rhs = mpz(1)
            s = mpz(0)
            for z, a, c, e, z1, w in zip(zs, As, Cs, es, z1s, cs):
                zc = zc * gmpy2.powmod(z, w, N2) % N2
                rhs = rhs * gmpy2.powmod(a, w, N2) % N2 * gmpy2.powmod(c, e * w, N2) % N2
                s += w * z1
            lhs = (1 + s % N * N) * gmpy2.powmod(zc, N, N2) % N2
            _ = lhs * lhs % N2 == rhs * rhs % N2

        a = best(separate, 2)
        b = best(batched, 2)
        print(f"| {lv} | round 3, one peer: 3 checks (1+N)^z1 z^N = A C^e mod N_j^2 | {a * 1e3:.1f} ms | "
              f"{b * 1e3:.1f} ms batched | {(a - b) * 1e3:.1f} ms per peer |")


if __name__ == "__main__":
    main()

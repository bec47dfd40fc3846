"""Pi-mod, Pi-prm and Pi-fac (auxiliary-info proofs of CGGMP21): honest proofs verify, every check rejects.

Keys come from the TEST ONLY fixture primes; level 112 keeps the file fast, one test runs all three at 128.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, Callable

import gmpy2
import pytest
from gmpy2 import mpz

from mpc_ray.crypto.paillier import PaillierSecretKey
from mpc_ray.crypto.params import LEVEL_112, LEVEL_128, SecurityLevel
from mpc_ray.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret, generate_ring_pedersen
from mpc_ray.crypto.transcript import Transcript
from mpc_ray.crypto.zk import pi_fac, pi_mod, pi_prm
from mpc_ray.errors import ProofError
from mpc_ray.protocols import wire
from tests.support.primes import fixture_paillier_key

LV = LEVEL_112


def session(sid: bytes = b"session-1") -> Transcript:
    """What a protocol binds before a proof: protocol, session id, prover and verifier."""
    return Transcript("mpc-ray/test-aux").append_bytes("sid", sid).append_int("prover", 1).append_int("verifier", 2)


def expect(check: str, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ProofError) as info:
        fn(*args, **kwargs)
    assert info.value.check == check, f"expected {check}, got {info.value.check} ({info.value.detail})"


def set_item(values: list, index: int, value: Any) -> list:
    out = list(values)
    out[index] = value
    return out


BAD_VALUES: tuple[Any, ...] = (None, "7", 1.5, True, b"\x01", [3])


def assert_rejects_garbage(proof: Any, verify: Callable[[Any], None]) -> None:
    """Every field, and element 0 of every list field, replaced by a wrong-typed value: ProofError, nothing else."""
    for field in dataclasses.fields(proof):
        current = getattr(proof, field.name)
        bad = list(BAD_VALUES) + ([[], current[:-1]] if isinstance(current, list) else [])
        for value in bad:
            with pytest.raises(ProofError):
                verify(dataclasses.replace(proof, **{field.name: value}))
        if isinstance(current, list):
            for value in BAD_VALUES:
                with pytest.raises(ProofError):
                    verify(dataclasses.replace(proof, **{field.name: set_item(current, 0, value)}))
    with pytest.raises(ProofError):
        verify(None)


# --------------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def sk() -> PaillierSecretKey:
    return fixture_paillier_key("112", 0)


@pytest.fixture(scope="module")
def verifier_rp() -> RingPedersenSecret:
    """The verifier's ring-Pedersen parameters (Pi-fac is proven against them)."""
    return generate_ring_pedersen(fixture_paillier_key("112", 1))


@pytest.fixture(scope="module")
def mod_proof(sk: PaillierSecretKey) -> pi_mod.Proof:
    return pi_mod.prove(session(), sk=sk, level=LV)


@pytest.fixture(scope="module")
def rp_secret(sk: PaillierSecretKey) -> RingPedersenSecret:
    return generate_ring_pedersen(sk)


@pytest.fixture(scope="module")
def prm_proof(rp_secret: RingPedersenSecret) -> pi_prm.Proof:
    return pi_prm.prove(session(), secret=rp_secret, level=LV)


@pytest.fixture(scope="module")
def fac_proof(sk: PaillierSecretKey, verifier_rp: RingPedersenSecret) -> pi_fac.Proof:
    return pi_fac.prove(session(), sk=sk, verifier_rp=verifier_rp.params, level=LV)


# --------------------------------------------------------------------------------------------------------------
# Pi-mod


def test_pi_mod_honest(sk: PaillierSecretKey, mod_proof: pi_mod.Proof) -> None:
    n = sk.public.n
    assert len(mod_proof.x) == len(mod_proof.z) == len(mod_proof.a) == len(mod_proof.b) == LV.m
    pi_mod.verify(session(), mod_proof, n=n, level=LV)
    pi_mod.verify(session(), mod_proof, n=int(n), level=LV)  # plain int statement too
    # the wire codec round-trips it (fields typed int / list[int])
    pi_mod.verify(session(), wire.decode(wire.encode(mod_proof), pi_mod.Proof), n=n, level=LV)


def test_pi_mod_other_session_rejected(sk: PaillierSecretKey, mod_proof: pi_mod.Proof) -> None:
    expect("pi_mod.equation_z", pi_mod.verify, session(b"session-2"), mod_proof, n=sk.public.n, level=LV)


def test_pi_mod_other_modulus_rejected(mod_proof: pi_mod.Proof) -> None:
    with pytest.raises(ProofError):
        pi_mod.verify(session(), mod_proof, n=fixture_paillier_key("112", 2).public.n, level=LV)


def _mod_cases(sk: PaillierSecretKey, proof: pi_mod.Proof) -> list[tuple[str, Any, Any]]:
    """(check, proof, n) triples, each with one value tampered."""
    n, p, q = mpz(sk.public.n), mpz(sk.p), mpz(sk.q)
    r = dataclasses.replace
    w = mpz(proof.w)
    return [
        ("pi_mod.type_proof", object(), n),
        ("pi_mod.type_n", proof, str(n)),
        ("pi_mod.type_n", proof, None),
        ("pi_mod.short_n", proof, n >> 8),
        ("pi_mod.short_n", proof, 1),
        ("pi_mod.short_n", proof, -n),
        ("pi_mod.even_n", proof, n + 1),
        ("pi_mod.prime_n", proof, gmpy2.next_prime(n)),
        ("pi_mod.length", r(proof, x=proof.x[:-1]), n),
        ("pi_mod.length", r(proof, a=None), n),
        ("pi_mod.length", r(proof, z=proof.z + [1]), n),
        ("pi_mod.length", r(proof, b="01" * (LV.m // 2)), n),
        ("pi_mod.range_w", r(proof, w=0), n),
        ("pi_mod.range_w", r(proof, w=int(n)), n),
        ("pi_mod.range_w", r(proof, w=-proof.w), n),
        ("pi_mod.range_w", r(proof, w=None), n),
        ("pi_mod.gcd_w", r(proof, w=int(p)), n),
        ("pi_mod.gcd_w", r(proof, w=int(3 * q)), n),
        ("pi_mod.jacobi_w", r(proof, w=int(w * w % n)), n),
        ("pi_mod.jacobi_w", r(proof, w=int(n - 1)), n),  # -1 has Jacobi +1 mod a Blum integer
        ("pi_mod.unit_x", r(proof, x=set_item(proof.x, 3, 0)), n),
        ("pi_mod.unit_x", r(proof, x=set_item(proof.x, 3, int(p))), n),
        ("pi_mod.unit_x", r(proof, x=set_item(proof.x, 3, int(n))), n),
        ("pi_mod.unit_x", r(proof, x=set_item(proof.x, 3, -proof.x[3])), n),
        ("pi_mod.unit_x", r(proof, x=set_item(proof.x, 3, None)), n),
        ("pi_mod.unit_z", r(proof, z=set_item(proof.z, 5, int(q))), n),
        ("pi_mod.unit_z", r(proof, z=set_item(proof.z, 5, "1")), n),
        ("pi_mod.bit_a", r(proof, a=set_item(proof.a, 0, 2)), n),
        ("pi_mod.bit_a", r(proof, a=set_item(proof.a, 0, -1)), n),
        ("pi_mod.bit_a", r(proof, a=set_item(proof.a, 0, True)), n),
        ("pi_mod.bit_b", r(proof, b=set_item(proof.b, 1, 2)), n),
        ("pi_mod.bit_b", r(proof, b=set_item(proof.b, 1, None)), n),
        ("pi_mod.equation_z", r(proof, z=set_item(proof.z, 2, int(mpz(proof.z[2]) * 2 % n))), n),
        ("pi_mod.equation_x", r(proof, x=set_item(proof.x, 4, int(mpz(proof.x[4]) * 2 % n))), n),
        ("pi_mod.equation_x", r(proof, a=set_item(proof.a, 4, 1 - proof.a[4])), n),
        ("pi_mod.equation_x", r(proof, b=set_item(proof.b, 4, 1 - proof.b[4])), n),
    ]


def test_pi_mod_every_check(sk: PaillierSecretKey, mod_proof: pi_mod.Proof) -> None:
    for check, proof, n in _mod_cases(sk, mod_proof):
        expect(check, pi_mod.verify, session(), proof, n=n, level=LV)


def test_pi_mod_short_for_level(sk: PaillierSecretKey, mod_proof: pi_mod.Proof) -> None:
    """A 2048-bit modulus is refused where level 128 (>= 3071 bits) is demanded."""
    expect("pi_mod.short_n", pi_mod.verify, session(), mod_proof, n=sk.public.n, level=LEVEL_128)


def test_pi_mod_garbage_fields(sk: PaillierSecretKey, mod_proof: pi_mod.Proof) -> None:
    assert_rejects_garbage(mod_proof, lambda pr: pi_mod.verify(session(), pr, n=sk.public.n, level=LV))


def test_pi_mod_non_unit_challenges_exhausted(sk: PaillierSecretKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """N = 3 N': a third of the challenge draws are not units; with one draw allowed the verifier rejects."""
    n = 3 * mpz(sk.public.n)
    w = next(mpz(v) for v in range(2, 1000) if gmpy2.jacobi(v, n) == -1 and gmpy2.gcd(v, n) == 1)
    ones = [1] * LV.m
    forged = pi_mod.Proof(int(w), ones, [0] * LV.m, [0] * LV.m, ones)
    monkeypatch.setattr(pi_mod, "_MAX_DRAWS", 1)
    expect("pi_mod.challenge_y", pi_mod.verify, session(), forged, n=n, level=LV)


def _primes_1_mod_4(bits: int, start: int) -> mpz:
    p = gmpy2.next_prime((mpz(1) << (bits - 1)) + start)
    while p % 4 != 1:
        p = gmpy2.next_prime(p)
    return p


def test_pi_mod_not_blum_rejected() -> None:
    """N = p q with p, q = 1 mod 4 is not Paillier-Blum: -1 is a square, 4th roots are missing, the proof fails."""
    p = _primes_1_mod_4(256, 0x1234567)
    q = _primes_1_mod_4(256, 0x7654321 << 40)
    n = p * q
    assert gmpy2.gcd(n, (p - 1) * (q - 1)) == 1  # so z_i are right and the 4th roots are what fails
    small = dataclasses.replace(LV, modulus_bits=n.bit_length())
    proof = pi_mod.prove(session(), sk=PaillierSecretKey(p, q, test_only=True), level=small)
    expect("pi_mod.equation_x", pi_mod.verify, session(), proof, n=n, level=small)


# --------------------------------------------------------------------------------------------------------------
# Pi-prm


def test_pi_prm_honest(rp_secret: RingPedersenSecret, prm_proof: pi_prm.Proof) -> None:
    assert len(prm_proof.a) == len(prm_proof.z) == LV.m
    pi_prm.verify(session(), prm_proof, params=rp_secret.params, level=LV)
    pi_prm.verify(session(), prm_proof, params=rp_secret, level=LV)
    pi_prm.verify(session(), wire.decode(wire.encode(prm_proof), pi_prm.Proof), params=rp_secret.params, level=LV)


def test_pi_prm_other_session_rejected(rp_secret: RingPedersenSecret, prm_proof: pi_prm.Proof) -> None:
    expect("pi_prm.equation", pi_prm.verify, session(b"session-2"), prm_proof, params=rp_secret.params, level=LV)


def test_pi_prm_every_check(sk: PaillierSecretKey, rp_secret: RingPedersenSecret, prm_proof: pi_prm.Proof) -> None:
    rp = rp_secret.params
    n, p = mpz(rp.n), mpz(sk.p)
    r = dataclasses.replace
    cases: list[tuple[str, Any, Any]] = [
        ("pi_prm.type_proof", None, rp),
        ("pi_prm.modulus", prm_proof, RingPedersenParams(n + 1, rp.s, rp.t)),
        ("pi_prm.modulus", prm_proof, RingPedersenParams(mpz(1), rp.s, rp.t)),
        ("pi_prm.modulus", prm_proof, SimpleNamespace(params=SimpleNamespace(n="N", s=rp.s, t=rp.t))),
        ("pi_prm.short_n", prm_proof, RingPedersenParams(n >> 16 | 1, rp.s % (n >> 16), rp.t % (n >> 16))),
        ("pi_prm.unit_s", prm_proof, RingPedersenParams(n, p, rp.t)),
        ("pi_prm.unit_s", prm_proof, RingPedersenParams(n, mpz(0), rp.t)),
        ("pi_prm.unit_t", prm_proof, RingPedersenParams(n, rp.s, n)),
        ("pi_prm.unit_t", prm_proof, RingPedersenParams(n, rp.s, 2 * p)),
        ("pi_prm.length", r(prm_proof, a=prm_proof.a[1:]), rp),
        ("pi_prm.length", r(prm_proof, z=None), rp),
        ("pi_prm.length", r(prm_proof, z=prm_proof.z + [0]), rp),
        ("pi_prm.unit_a", r(prm_proof, a=set_item(prm_proof.a, 7, int(p))), rp),
        ("pi_prm.unit_a", r(prm_proof, a=set_item(prm_proof.a, 7, 0)), rp),
        ("pi_prm.unit_a", r(prm_proof, a=set_item(prm_proof.a, 7, "x")), rp),
        ("pi_prm.range_z", r(prm_proof, z=set_item(prm_proof.z, 9, -1)), rp),
        ("pi_prm.range_z", r(prm_proof, z=set_item(prm_proof.z, 9, int(n))), rp),
        ("pi_prm.range_z", r(prm_proof, z=set_item(prm_proof.z, 9, None)), rp),
        ("pi_prm.equation", r(prm_proof, z=set_item(prm_proof.z, 9, prm_proof.z[9] + 1)), rp),
        ("pi_prm.equation", r(prm_proof, a=set_item(prm_proof.a, 9, int(mpz(prm_proof.a[9]) * 4 % n))), rp),
    ]
    for check, proof, params in cases:
        expect(check, pi_prm.verify, session(), proof, params=params, level=LV)


def test_pi_prm_s_not_in_t_group(sk: PaillierSecretKey, rp_secret: RingPedersenSecret) -> None:
    """s = -t^lambda is outside <t> (t is a square, -1 is not): no lambda works, the prover fails."""
    rp = rp_secret.params
    bad = RingPedersenSecret(RingPedersenParams(rp.n, rp.n - rp.s, rp.t), rp_secret.lam, sk)
    proof = pi_prm.prove(session(), secret=bad, level=LV)
    expect("pi_prm.equation", pi_prm.verify, session(), proof, params=bad.params, level=LV)


def test_pi_prm_wrong_lambda(sk: PaillierSecretKey, rp_secret: RingPedersenSecret) -> None:
    wrong = RingPedersenSecret(rp_secret.params, rp_secret.lam + 1, sk)
    proof = pi_prm.prove(session(), secret=wrong, level=LV)
    expect("pi_prm.equation", pi_prm.verify, session(), proof, params=rp_secret.params, level=LV)


def test_pi_prm_garbage_fields(rp_secret: RingPedersenSecret, prm_proof: pi_prm.Proof) -> None:
    assert_rejects_garbage(prm_proof, lambda pr: pi_prm.verify(session(), pr, params=rp_secret.params, level=LV))


# --------------------------------------------------------------------------------------------------------------
# Pi-fac


def test_pi_fac_honest(sk: PaillierSecretKey, verifier_rp: RingPedersenSecret, fac_proof: pi_fac.Proof) -> None:
    n0 = sk.public.n
    pi_fac.verify(session(), fac_proof, n0=n0, verifier_rp=verifier_rp.params, level=LV)
    pi_fac.verify(session(), fac_proof, n0=n0, verifier_rp=verifier_rp, level=LV)  # CRT path
    decoded = wire.decode(wire.encode(fac_proof), pi_fac.Proof)
    pi_fac.verify(session(), decoded, n0=int(n0), verifier_rp=verifier_rp.params, level=LV)


def test_pi_fac_other_session_rejected(
    sk: PaillierSecretKey, verifier_rp: RingPedersenSecret, fac_proof: pi_fac.Proof
) -> None:
    for rp in (verifier_rp, verifier_rp.params):
        expect("pi_fac.equation_p", pi_fac.verify, session(b"session-2"), fac_proof, n0=sk.public.n, verifier_rp=rp,
               level=LV)


def test_pi_fac_other_verifier_rejected(sk: PaillierSecretKey, fac_proof: pi_fac.Proof) -> None:
    other = generate_ring_pedersen(fixture_paillier_key("112", 3))
    with pytest.raises(ProofError):
        pi_fac.verify(session(), fac_proof, n0=sk.public.n, verifier_rp=other, level=LV)


def test_pi_fac_every_check(sk: PaillierSecretKey, verifier_rp: RingPedersenSecret, fac_proof: pi_fac.Proof) -> None:
    n0 = mpz(sk.public.n)
    n_hat = mpz(verifier_rp.params.n)
    vp = mpz(verifier_rp.paillier.p)  # a factor of N^: a non-unit
    ell, eps = LV.ell, LV.eps
    # bounds written out from the paper, independently of the module
    z_bound = (mpz(1) << (ell + eps)) * gmpy2.isqrt(n0)
    sigma_bound = (mpz(1) << ell) * n0 * n_hat
    w_over = (mpz(1) << (ell + eps + 1)) * n_hat + 1  # above x + q mu for every honest w1, w2
    v_over = (mpz(1) << (ell + eps + 1)) * n0 * n_hat + 1
    r = dataclasses.replace
    pr = fac_proof
    cases: list[tuple[str, Any, Any]] = [
        ("pi_fac.type_proof", "proof", n0),
        ("pi_fac.type_n0", pr, str(n0)),
        ("pi_fac.type_n0", pr, None),
        ("pi_fac.short_n0", pr, n0 >> 8),
        ("pi_fac.short_n0", pr, -n0),
        ("pi_fac.short_n0", pr, 0),
        ("pi_fac.unit_p", r(pr, cap_p=0), n0),
        ("pi_fac.unit_p", r(pr, cap_p=int(vp)), n0),
        ("pi_fac.unit_q", r(pr, cap_q=int(n_hat)), n0),
        ("pi_fac.unit_q", r(pr, cap_q=None), n0),
        ("pi_fac.unit_a", r(pr, cap_a=int(2 * vp)), n0),
        ("pi_fac.unit_b", r(pr, cap_b=-pr.cap_b), n0),
        ("pi_fac.unit_t", r(pr, cap_t=int(n_hat + pr.cap_t)), n0),
        ("pi_fac.range_sigma", r(pr, sigma=int(sigma_bound + 1)), n0),
        ("pi_fac.range_sigma", r(pr, sigma=int(-sigma_bound - 1)), n0),
        ("pi_fac.range_z1", r(pr, z1=int(z_bound + 1)), n0),
        ("pi_fac.range_z1", r(pr, z1=int(-z_bound - 1)), n0),
        ("pi_fac.range_z1", r(pr, z1="0"), n0),
        ("pi_fac.range_z2", r(pr, z2=int(z_bound + 1)), n0),
        ("pi_fac.range_z2", r(pr, z2=int(-z_bound - 1)), n0),
        ("pi_fac.range_w1", r(pr, w1=int(w_over)), n0),
        ("pi_fac.range_w2", r(pr, w2=int(-w_over)), n0),
        ("pi_fac.range_v", r(pr, v=int(v_over)), n0),
        ("pi_fac.range_v", r(pr, v=1.0), n0),
        ("pi_fac.equation_p", r(pr, w1=pr.w1 + 1), n0),
        ("pi_fac.equation_p", r(pr, z1=pr.z1 - 1), n0),
        ("pi_fac.equation_q", r(pr, w2=pr.w2 + 1), n0),
        ("pi_fac.equation_t", r(pr, v=pr.v + 1), n0),
    ]
    for check, proof, n in cases:
        for rp in (verifier_rp.params, verifier_rp):
            expect(check, pi_fac.verify, session(), proof, n0=n, verifier_rp=rp, level=LV)


def test_pi_fac_garbage_fields(sk: PaillierSecretKey, verifier_rp: RingPedersenSecret, fac_proof: pi_fac.Proof) -> None:
    assert_rejects_garbage(
        fac_proof, lambda pr: pi_fac.verify(session(), pr, n0=sk.public.n, verifier_rp=verifier_rp, level=LV)
    )


def _blum_prime(bits: int, start: int) -> mpz:
    p = gmpy2.next_prime((mpz(1) << (bits - 1)) + start)
    while p % 4 != 3:
        p = gmpy2.next_prime(p)
    return p


def test_pi_fac_bitforge_small_factor_rejected(verifier_rp: RingPedersenSecret) -> None:
    """BitForge: N0 = (17-bit prime) * (2031-bit prime), both 3 mod 4, of full size.

    Pi-mod alone accepts it (it is a Paillier-Blum modulus); Pi-fac is what rejects it, on the range of z2
    (or z1 when the factors are swapped): e q is far above 2^(ell+eps) sqrt(N0).
    """
    small = mpz(65539)  # prime, 3 mod 4
    big = _blum_prime(LV.modulus_bits - small.bit_length() + 1, 0xB17F0463)
    n0 = small * big
    assert n0.bit_length() >= LV.modulus_bits and gmpy2.gcd(n0, (small - 1) * (big - 1)) == 1
    fake = SimpleNamespace(p=small, q=big, public=SimpleNamespace(n=n0))

    # the gap Pi-fac closes: this modulus passes Pi-mod
    pi_mod.verify(session(), pi_mod.prove(session(), sk=fake, level=LV), n=n0, level=LV)

    for p, q, check in ((small, big, "pi_fac.range_z2"), (big, small, "pi_fac.range_z1")):
        attacker = SimpleNamespace(p=p, q=q, public=SimpleNamespace(n=n0))
        proof = pi_fac.prove(session(), sk=attacker, verifier_rp=verifier_rp.params, level=LV)
        for rp in (verifier_rp.params, verifier_rp):
            expect(check, pi_fac.verify, session(), proof, n0=n0, verifier_rp=rp, level=LV)


def test_pi_fac_many_small_factors_rejected(verifier_rp: RingPedersenSecret) -> None:
    """The BitForge shape N0 = p1 ... p16 * q: the prover claims p = p1 ... p16 (about 256 bits)."""
    smalls = []
    c = mpz(1 << 15)
    while len(smalls) < 16:
        c = gmpy2.next_prime(c)
        if c % 4 == 3:
            smalls.append(c)
    p = mpz(1)
    for f in smalls:
        p *= f
    q = _blum_prime(LV.modulus_bits - p.bit_length() + 1, 0x5EED)
    n0 = p * q
    proof = pi_fac.prove(session(), sk=SimpleNamespace(p=p, q=q, public=SimpleNamespace(n=n0)),
                         verifier_rp=verifier_rp.params, level=LV)
    expect("pi_fac.range_z2", pi_fac.verify, session(), proof, n0=n0, verifier_rp=verifier_rp, level=LV)


# --------------------------------------------------------------------------------------------------------------
# level 128


def test_all_three_at_level_128() -> None:
    sk = fixture_paillier_key("128", 0)
    rp_own = generate_ring_pedersen(sk)
    rp_verifier = generate_ring_pedersen(fixture_paillier_key("128", 1))
    level: SecurityLevel = LEVEL_128
    assert level.m == 128

    mod = pi_mod.prove(session(), sk=sk, level=level)
    assert len(mod.x) == 128
    pi_mod.verify(session(), mod, n=sk.public.n, level=level)

    prm = pi_prm.prove(session(), secret=rp_own, level=level)
    pi_prm.verify(session(), prm, params=rp_own.params, level=level)

    fac = pi_fac.prove(session(), sk=sk, verifier_rp=rp_verifier.params, level=level)
    pi_fac.verify(session(), fac, n0=sk.public.n, verifier_rp=rp_verifier.params, level=level)
    pi_fac.verify(session(), fac, n0=sk.public.n, verifier_rp=rp_verifier, level=level)

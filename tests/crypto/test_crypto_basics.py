"""Group, Paillier, safe primes, VSS, transcripts and the wire codec."""

from __future__ import annotations

import dataclasses
import secrets

import gmpy2
import pytest

from mpc_ray.crypto import ed25519 as ed
from mpc_ray.crypto import primes
from mpc_ray.crypto.fixed_base import FixedBase
from mpc_ray.crypto.paillier import PaillierSecretKey, affine, generate_keypair, sample_unit
from mpc_ray.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret, generate_ring_pedersen
from mpc_ray.crypto.secp256k1 import Q, Point, random_scalar, sum_points
from mpc_ray.crypto.transcript import Transcript
from mpc_ray.crypto.vss import Polynomial, evaluate_commitments, lagrange_coefficient, verify_share
from mpc_ray.crypto.zk.common import RangeNonces
from mpc_ray.errors import TestPrimeRefused
from mpc_ray.protocols.wire import WireError, decode, encode
from tests.support.primes import fixture_paillier_key, fixture_primes


def test_point_group_law():
    a, b = random_scalar(), random_scalar()
    A, B = Point.base_mul(a), Point.base_mul(b)
    assert A + B == Point.base_mul(a + b)
    assert (A - A).is_identity and A * Q == Point.identity()
    assert sum_points([A, B, -A]) == B
    assert Point.from_bytes(A.to_bytes()) == A
    with pytest.raises(ValueError):
        Point.from_bytes(b"\x02" + b"\xff" * 32)  # x >= p: not on the curve
    with pytest.raises(ValueError):
        Point.from_bytes(b"\x00" * 33)  # the identity is refused unless asked for


def test_paillier_roundtrip_and_homomorphism():
    sk = fixture_paillier_key("112", 0)
    pk = sk.public
    a, b = 123456789, -987654321
    ca, ra = pk.encrypt(a)
    cb, _ = sk.encrypt(b)  # CRT encryption under the own key
    assert sk.decrypt(ca) == a and sk.decrypt(cb) == b
    assert sk.decrypt(pk.add(ca, cb)) == a + b
    assert sk.decrypt(pk.mul(ca, -7)) == -7 * a
    assert sk.encrypt_with(a, ra) == ca
    assert sk.recover_randomness(ca, a) == ra
    assert pk.is_valid_ciphertext(ca)
    assert not pk.is_valid_ciphertext(0) and not pk.is_valid_ciphertext(pk.n2)
    assert not pk.is_valid_ciphertext(sk.p * 5)  # shares a factor with N
    assert "redacted" in repr(sk) and str(int(sk.p)) not in repr(sk)


def test_test_primes_refused_on_production_path():
    p, q = fixture_primes(1024)[:2]
    with pytest.raises(TestPrimeRefused):
        PaillierSecretKey(p, q)
    with pytest.raises(TestPrimeRefused):
        primes.refuse_test_prime(q)
    assert PaillierSecretKey(p, q, test_only=True).test_only


def test_safe_prime_generation_small():
    p = primes.generate_safe_prime(256)
    assert p.bit_length() == 256 and primes.is_safe_prime(p) and p % 4 == 3
    sk, pk = generate_keypair(256)
    assert sk.public.n.bit_length() in (511, 512) and not sk.test_only


@pytest.mark.slow
def test_fresh_primes_at_level_128():
    sk, pk = generate_keypair(1536)
    assert pk.n.bit_length() >= 3071 and primes.is_safe_prime(sk.p) and primes.is_safe_prime(sk.q)


def test_ring_pedersen_params():
    sk = fixture_paillier_key("112", 1)
    rp = generate_ring_pedersen(sk)
    assert rp.params.is_well_formed()
    assert rp.commit(5, -3) == rp.params.commit(5, -3)
    assert rp.params.s == gmpy2.powmod(rp.params.t, rp.lam, rp.params.n)
    assert "redacted" in repr(rp)


def _signed(bits: int) -> int:
    return secrets.randbits(bits) * (1 if secrets.randbits(1) else -1)


def test_ring_pedersen_secret_commit_is_t_to_lambda_a_plus_b():
    """The owner's commit computes t^(lambda a + b) by CRT: the same value as s^a t^b, signs and sizes included."""
    sk = fixture_paillier_key("112", 2)
    rp = generate_ring_pedersen(sk)
    n_bits = int(rp.params.n).bit_length()
    for a, b in [(0, 0), (1, 0), (0, 1), (-1, -1), (_signed(768), _signed(n_bits + 800)), (_signed(3 * n_bits), 7)]:
        assert rp.commit(a, b) == rp.params.commit(a, b) == rp.fast_commit(a, b) == rp.params.fast_commit(a, b)
    # a secret whose lambda does not match s (as the pi_prm tests build) still commits to s^a t^b
    odd = RingPedersenSecret(RingPedersenParams(rp.params.n, rp.params.n - rp.params.s, rp.params.t), rp.lam, sk)
    assert odd.commit(5, -3) == odd.params.commit(5, -3)
    assert "redacted" in repr(odd) and str(rp.lam) not in repr(odd)


def test_crt_arithmetic_matches_plain():
    sk = fixture_paillier_key("112", 2)
    pk, n = sk.public, sk.public.n
    base = sample_unit(n)
    for e in (0, 1, -1, _signed(256), _signed(2 * n.bit_length()), int(sk.phi)):
        assert sk.powmod_n(base, e) == pk.powmod_n(base, e) == gmpy2.powmod(base, e, n)
        assert sk.powmod_n2(base, e) == pk.powmod_n2(base, e)
    exps = [secrets.randbelow(int(n)) for _ in range(4)]
    assert sk.powmod_n_many(base, exps) == [gmpy2.powmod(base, e, n) for e in exps]
    table = FixedBase(base, n, n.bit_length())
    assert [table.pow(e) for e in exps] == [gmpy2.powmod(base, e, n) for e in exps]
    c, _ = pk.encrypt(11)
    r = sample_unit(n)
    x, y = _signed(300), _signed(1300)
    assert affine(sk, c, x, y, r) == affine(pk, c, x, y, r) == pk.mul(c, x) * pk.encrypt_with(y, r) % pk.n2
    assert sk.decrypt(affine(sk, c, x, y, r)) == 11 * x + y
    assert affine(pk, None, 0, y, r) == sk.encrypt_with(y, r)


def test_prover_nonces_are_redacted():
    nonces = RangeNonces(gmpy2.mpz(123456789), gmpy2.mpz(987654321), gmpy2.mpz(555555555))
    assert "redacted" in repr(nonces) and "123456789" not in repr(nonces)


def test_vss_over_another_group():
    """vss is generic: the same functions over Ed25519 (order L, EdPoint as the group)."""
    poly = Polynomial.random(2, order=ed.L)
    commits = poly.commitments(ed.EdPoint)
    for x in (1, 2, 7):
        assert verify_share(commits, x, poly(x), group=ed.EdPoint, order=ed.L)
        assert evaluate_commitments(commits, x, group=ed.EdPoint) == ed.EdPoint.base_mul(poly(x))
    assert not verify_share(commits, 1, (poly(1) + 1) % ed.L, group=ed.EdPoint, order=ed.L)
    signers = [2, 5, 7]
    assert sum(lagrange_coefficient(i, signers, order=ed.L) * poly(i) for i in signers) % ed.L == poly(0)
    with pytest.raises(ValueError):
        lagrange_coefficient(3, signers)


def test_vss_and_lagrange():
    secret = random_scalar()
    poly = Polynomial.random(2, constant=secret)
    commits = poly.commitments()
    shares = {i: poly(i) for i in range(1, 6)}
    assert all(verify_share(commits, i, s) for i, s in shares.items())
    assert not verify_share(commits, 1, (shares[1] + 1) % Q)
    for signers in ([1, 2, 3], [2, 4, 5], [1, 3, 5]):
        assert sum(lagrange_coefficient(i, signers) * shares[i] for i in signers) % Q == secret
    assert evaluate_commitments(commits, 0) == Point.base_mul(secret)
    assert "redacted" in repr(poly)


def test_transcript_is_unambiguous():
    def c(*parts):
        t = Transcript("x")
        for label, data in parts:
            t.append_bytes(label, data)
        return t.challenge_scalar("e")

    # the TSSHOCK alpha-shuffle: moving bytes between adjacent fields must change the challenge
    assert c(("a", b"12"), ("b", b"3")) != c(("a", b"1"), ("b", b"23"))
    assert c(("a", b"1")) != c(("a1", b""))
    t1, t2 = Transcript("x"), Transcript("y")
    assert t1.challenge_scalar("e") != t2.challenge_scalar("e")
    t = Transcript("z")
    assert t.challenge_scalar("e") != t.challenge_scalar("e")  # each challenge is absorbed
    assert Transcript("n").append_int("v", -5).challenge_scalar("e") != Transcript("n").append_int("v", 5).challenge_scalar("e")
    bits = Transcript("b").challenge_bits("e", 128)
    assert len(bits) == 128 and set(bits) <= {0, 1}
    e = Transcript("s").challenge_signed_q("e")
    assert -Q <= e <= Q


@dataclasses.dataclass(frozen=True)
class _Inner:
    value: int
    point: Point


@dataclasses.dataclass(frozen=True)
class _Outer:
    inner: _Inner
    items: list[int]
    tag: bytes


def test_wire_roundtrip_and_garbage():
    msg = _Outer(_Inner(-(2**3000), Point.base_mul(7)), [0, 1, 2**200], b"x")
    assert decode(encode(msg), _Outer) == msg
    for garbage in (b"", b"\xc1", b"\x93\x01\x02", encode(_Inner(1, Point.base_mul(1))), encode([1, 2, 3])):
        with pytest.raises(WireError):
            decode(garbage, _Outer)
    bad_point = encode(msg).replace(Point.base_mul(7).to_bytes(), b"\x02" + b"\xff" * 32)
    with pytest.raises(WireError):
        decode(bad_point, _Outer)

"""Pi-aff-g, Pi-mul and Pi-mul*: honest proofs verify, replays and every failed check are named ProofErrors.

Keys are TEST ONLY fixture primes. Level 112 (2048-bit moduli) for speed, one happy path at 128.
Roles: K0 = fixture key 0 is the verifier (N0 and its ring-Pedersen parameters, as in the protocol), K1 = key 1 the
prover (N1), key 2 a third party whose ring-Pedersen parameters are on a modulus that is neither N0 nor N1.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import gmpy2
import pytest
from gmpy2 import mpz

from mpc_ray.crypto.paillier import PaillierPublicKey, PaillierSecretKey, sample_unit
from mpc_ray.crypto.params import LEVEL_112, LEVEL_128, SecurityLevel
from mpc_ray.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret, generate_ring_pedersen, rp_commit
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.crypto.transcript import Transcript
from mpc_ray.crypto.zk import pi_aff_g, pi_mul, pi_mul_star
from mpc_ray.errors import InvalidInput, ProofError
from mpc_ray.protocols import wire
from tests.support.primes import fixture_paillier_key

LV = LEVEL_112
ELL, ELLP, EPS = LV.ell, LV.ell_prime, LV.eps


def session(sid: bytes = b"session-1") -> Transcript:
    """What a protocol hands a proof: bound to protocol, session id, prover and verifier."""
    t = Transcript("mpc-ray/test/zk")
    t.append_bytes("sid", sid)
    t.append_int("prover", 2)
    t.append_int("verifier", 1)
    return t


def expect(check: str, fn: Any, *args: Any, **kwargs: Any) -> ProofError:
    with pytest.raises(ProofError) as info:
        fn(*args, **kwargs)
    assert info.value.check == check, f"{info.value.check!r} != {check!r}: {info.value}"
    return info.value


@dataclasses.dataclass
class Keys:
    sk0: PaillierSecretKey  # verifier's Paillier key N0
    rp0: RingPedersenSecret  # verifier's ring-Pedersen parameters, on N0 (the protocol's configuration)
    sk1: PaillierSecretKey  # prover's key N1
    rp2: RingPedersenSecret  # ring-Pedersen parameters on a third modulus

    @property
    def pk0(self) -> PaillierPublicKey:
        return self.sk0.public

    @property
    def pk1(self) -> PaillierPublicKey:
        return self.sk1.public


def make_keys(level: str, i0: int, i1: int, i2: int) -> Keys:
    sk0 = fixture_paillier_key(level, i0)
    sk2 = fixture_paillier_key(level, i2)
    return Keys(sk0, generate_ring_pedersen(sk0), fixture_paillier_key(level, i1), generate_ring_pedersen(sk2))


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys("112", 0, 1, 2)


def non_unit(sk: PaillierSecretKey) -> int:
    """A value in range but sharing the prime factor p with N (a 'ciphertext' that is a multiple of p)."""
    return int(sk.p) * 7


# ==============================================================================================================
# pi_aff_g
# ==============================================================================================================


@dataclasses.dataclass
class AffStatement:
    C: int
    D: int
    Y: int
    X: Point
    x: int
    y: int
    rho: int
    rho_y: int


def aff_statement(k: Keys, x: int, y: int, *, y_in_d: int | None = None, y_in_y: int | None = None) -> AffStatement:
    """D = C^x (1+N0)^y rho^N0 under N0, Y = Enc_N1(y; rho_y), X = x G (optionally inconsistent, for cheats)."""
    pk0 = k.pk0
    C, _ = pk0.encrypt(secrets.randbelow(int(pk0.n)))
    rho, rho_y = sample_unit(pk0.n), sample_unit(k.pk1.n)
    D = pk0.add(pk0.mul(C, x), pk0.encrypt_with(y if y_in_d is None else y_in_d, rho))
    Y = k.sk1.encrypt_with(y if y_in_y is None else y_in_y, rho_y)
    return AffStatement(int(C), int(D), int(Y), Point.base_mul(x), x, y, int(rho), int(rho_y))


def aff_prove(k: Keys, st: AffStatement, *, t: Transcript | None = None, level: SecurityLevel = LV, rp: Any = None):
    return pi_aff_g.prove(
        t or session(),
        pk0=k.pk0,
        pk1=k.sk1,  # the prover owns N1: CRT for B_y and w_y
        verifier_rp=(rp or k.rp0).params,
        C=st.C,
        D=st.D,
        Y=st.Y,
        X=st.X,
        x=st.x,
        y=st.y,
        rho=st.rho,
        rho_y=st.rho_y,
        level=level,
    )


def aff_verify(k: Keys, st: AffStatement, proof: Any, *, t: Transcript | None = None, **over: Any) -> None:
    args: dict[str, Any] = dict(
        pk0=k.pk0, pk1=k.pk1, verifier_rp=k.rp0, C=st.C, D=st.D, Y=st.Y, X=st.X, level=LV
    )
    args.update(over)
    pi_aff_g.verify(t or session(), proof, **args)


@pytest.fixture(scope="module")
def aff(keys: Keys) -> tuple[AffStatement, pi_aff_g.Proof]:
    # protocol shape: x = gamma_i or x_i (a scalar), y = -beta
    st = aff_statement(keys, secrets.randbelow(Q), -secrets.randbelow(1 << ELLP))
    return st, aff_prove(keys, st)


def test_aff_g_honest_verifies_with_secret_and_with_public_params(keys: Keys, aff) -> None:
    st, proof = aff
    aff_verify(keys, st, proof)  # verifier owns N0 and the ring-Pedersen parameters: CRT everywhere
    aff_verify(keys, st, proof, verifier_rp=keys.rp0.params)  # public params: plain arithmetic, same verdict
    assert all(type(getattr(proof, f.name)) in (int, Point) for f in dataclasses.fields(proof))


@pytest.mark.parametrize(
    "x,y",
    [
        (-(1 << ELL), -(1 << ELLP)),  # both extremes of the honest ranges, negative
        ((1 << ELL), (1 << ELLP)),
        (-12345, 0),
        (1, -1),  # x = 0 would make X the identity, which every verifier refuses
    ],
)
def test_aff_g_honest_negative_and_extreme_witnesses(keys: Keys, x: int, y: int) -> None:
    st = aff_statement(keys, x, y)
    aff_verify(keys, st, aff_prove(keys, st))


def test_aff_g_ring_pedersen_on_a_third_modulus(keys: Keys) -> None:
    st = aff_statement(keys, secrets.randbelow(Q), -secrets.randbelow(1 << ELLP))
    proof = aff_prove(keys, st, rp=keys.rp2)
    aff_verify(keys, st, proof, verifier_rp=keys.rp2)
    aff_verify(keys, st, proof, verifier_rp=keys.rp2.params)
    expect("pi_aff_g.equation_X", aff_verify, keys, st, proof)  # other parameters: other challenge


def test_aff_g_level_128_happy_path() -> None:
    k = make_keys("128", 0, 1, 2)
    st = aff_statement(k, -secrets.randbelow(Q), -secrets.randbelow(1 << LEVEL_128.ell_prime))
    proof = aff_prove(k, st, level=LEVEL_128)
    aff_verify(k, st, proof, level=LEVEL_128)
    # the level is bound into the challenge: the same proof does not verify at another level
    expect("pi_aff_g.equation_X", aff_verify, k, st, proof, level=LEVEL_112)


def test_aff_g_wire_roundtrip(keys: Keys, aff) -> None:
    st, proof = aff
    decoded = wire.decode(wire.encode(proof), pi_aff_g.Proof)
    assert decoded == proof and type(decoded.z1) is int
    aff_verify(keys, st, decoded)


def test_aff_g_replay_under_another_session_is_rejected(keys: Keys, aff) -> None:
    st, proof = aff
    expect("pi_aff_g.equation_X", aff_verify, keys, st, proof, t=session(b"session-2"))


def test_aff_g_short_modulus_for_level(keys: Keys, aff) -> None:
    st, proof = aff
    expect("pi_aff_g.modulus_N0", aff_verify, keys, st, proof, level=LEVEL_128)
    expect("pi_aff_g.modulus_N1", aff_verify, keys, st, proof, pk1=PaillierPublicKey.from_n((1 << 1000) + 1))
    small = RingPedersenParams(mpz((1 << 1000) + 1), mpz(4), mpz(9))
    expect("pi_aff_g.modulus_rp", aff_verify, keys, st, proof, verifier_rp=small)


# --- range attacks (Alpha-Rays and friends): a prover with an out-of-range witness --------------------------------


@pytest.mark.parametrize("x", [1 << (ELL + EPS + 1), -(1 << (ELL + EPS + 1)), (1 << 1500) + 3])
def test_aff_g_x_outside_range_is_rejected(keys: Keys, x: int) -> None:
    st = aff_statement(keys, x, -5)
    expect("pi_aff_g.range_z1", aff_verify, keys, st, aff_prove(keys, st))


@pytest.mark.parametrize("y", [1 << (ELLP + EPS + 1), -(1 << (ELLP + EPS + 1)), (1 << 2000) + 1])
def test_aff_g_y_outside_range_is_rejected(keys: Keys, y: int) -> None:
    st = aff_statement(keys, 7, y)
    expect("pi_aff_g.range_z2", aff_verify, keys, st, aff_prove(keys, st))


def test_aff_g_slack_is_by_design(keys: Keys) -> None:
    """The proof guarantees x in +-2^(ell+eps) only (the paper's slack): x just above 2^ell still verifies."""
    st = aff_statement(keys, (1 << ELL) + 1, -(1 << ELLP) - 1)
    aff_verify(keys, st, aff_prove(keys, st))


# --- inconsistent statements: the honest algorithm on a false statement ------------------------------------------


def test_aff_g_false_statements(keys: Keys) -> None:
    st = aff_statement(keys, 11, -22, y_in_d=-23)  # D hides another y than Y
    expect("pi_aff_g.equation_D", aff_verify, keys, st, aff_prove(keys, st))
    st = aff_statement(keys, 11, -22, y_in_y=-23)  # Y hides another y than D
    expect("pi_aff_g.equation_Y", aff_verify, keys, st, aff_prove(keys, st))
    st = aff_statement(keys, 11, -22)
    st = dataclasses.replace(st, X=Point.base_mul(12))  # X is not x G
    expect("pi_aff_g.equation_X", aff_verify, keys, st, aff_prove(keys, st))


# --- every check, one tamper each ------------------------------------------------------------------------------------


def test_aff_g_not_a_proof(keys: Keys, aff) -> None:
    st, _ = aff
    expect("pi_aff_g.type_proof", aff_verify, keys, st, None)
    expect("pi_aff_g.type_proof", aff_verify, keys, st, "proof")


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(pi_aff_g.Proof)])
@pytest.mark.parametrize("bad", ["12", None, b"\x01", True, 1.0])
def test_aff_g_field_of_wrong_type(keys: Keys, aff, field: str, bad: Any) -> None:
    st, proof = aff
    if field == "B_x" and bad is None:
        bad = 5  # an int where a point belongs
    expect(f"pi_aff_g.type_{field}", aff_verify, keys, st, dataclasses.replace(proof, **{field: bad}))


@pytest.mark.parametrize("name", ["C", "D", "Y"])
def test_aff_g_statement_ciphertexts(keys: Keys, aff, name: str) -> None:
    st, proof = aff
    sk = keys.sk1 if name == "Y" else keys.sk0
    for bad in (0, non_unit(sk), int(sk.public.n2), -1, "123", None):
        expect(f"pi_aff_g.ciphertext_{name}", aff_verify, keys, st, proof, **{name: bad})


def test_aff_g_statement_point(keys: Keys, aff) -> None:
    st, proof = aff
    for bad in (Point.identity(), b"\x02" * 33, None):
        expect("pi_aff_g.point_X", aff_verify, keys, st, proof, X=bad)


def test_aff_g_commitment_membership(keys: Keys, aff) -> None:
    st, proof = aff
    n_hat = int(keys.rp0.params.n)
    cases = {
        "ciphertext_A": ("A", [0, non_unit(keys.sk0), int(keys.pk0.n2)]),
        "ciphertext_B_y": ("B_y", [0, non_unit(keys.sk1), int(keys.pk1.n2) + 1]),
        "point_B_x": ("B_x", [Point.identity()]),
        "commitment_E": ("E", [0, n_hat, non_unit(keys.sk0)]),
        "commitment_S": ("S", [0, -3]),
        "commitment_F": ("F", [0, n_hat + 1]),
        "commitment_T": ("T", [0, non_unit(keys.sk0)]),
    }
    for check, (field, values) in cases.items():
        for bad in values:
            expect(f"pi_aff_g.{check}", aff_verify, keys, st, dataclasses.replace(proof, **{field: bad}))


def test_aff_g_response_ranges_and_units(keys: Keys, aff) -> None:
    st, proof = aff
    zb = int(pi_aff_g.z_bound(keys.rp0.params.n, LV))
    cases = [
        ("range_z1", "z1", (1 << (ELL + EPS)) + 1),
        ("range_z1", "z1", -(1 << (ELL + EPS)) - 1),
        ("range_z2", "z2", (1 << (ELLP + EPS)) + 1),
        ("range_z2", "z2", -(1 << (ELLP + EPS)) - 1),
        ("range_z3", "z3", zb + 1),
        ("range_z4", "z4", -zb - 1),
        ("unit_w", "w", 0),
        ("unit_w", "w", non_unit(keys.sk0)),
        ("unit_w", "w", int(keys.pk0.n)),
        ("unit_w_y", "w_y", non_unit(keys.sk1)),
        ("unit_w_y", "w_y", -1),
    ]
    for check, field, bad in cases:
        expect(f"pi_aff_g.{check}", aff_verify, keys, st, dataclasses.replace(proof, **{field: bad}))


def test_aff_g_each_equation(keys: Keys, aff) -> None:
    st, proof = aff
    r = dataclasses.replace
    expect("pi_aff_g.equation_X", aff_verify, keys, st, r(proof, z1=proof.z1 + 1))
    expect("pi_aff_g.equation_X", aff_verify, keys, st, r(proof, B_x=proof.B_x + Point.generator()))
    expect("pi_aff_g.equation_D", aff_verify, keys, st, r(proof, w=proof.w * 2 % int(keys.pk0.n)))
    expect("pi_aff_g.equation_Y", aff_verify, keys, st, r(proof, w_y=proof.w_y * 2 % int(keys.pk1.n)))
    expect("pi_aff_g.equation_rp_E", aff_verify, keys, st, r(proof, z3=proof.z3 + 1))
    expect("pi_aff_g.equation_rp_F", aff_verify, keys, st, r(proof, z4=proof.z4 - 1))
    # the same with public parameters (no CRT): the verdicts do not depend on the path
    pub = keys.rp0.params
    expect("pi_aff_g.equation_D", aff_verify, keys, st, r(proof, w=proof.w * 2 % int(keys.pk0.n)), verifier_rp=pub)
    expect("pi_aff_g.equation_rp_E", aff_verify, keys, st, r(proof, z3=proof.z3 + 1), verifier_rp=pub)
    expect("pi_aff_g.equation_rp_F", aff_verify, keys, st, r(proof, z4=proof.z4 - 1), verifier_rp=pub)
    # every commitment is bound into the challenge: swapping one for another valid value breaks the proof
    n_hat, s = int(keys.rp0.params.n), int(keys.rp0.params.s)
    expect("pi_aff_g.equation_X", aff_verify, keys, st, r(proof, A=proof.A * 4 % int(keys.pk0.n2)))
    expect("pi_aff_g.equation_X", aff_verify, keys, st, r(proof, B_y=proof.B_y * 4 % int(keys.pk1.n2)))
    for label in ("E", "S", "F", "T"):
        expect("pi_aff_g.equation_X", aff_verify, keys, st, r(proof, **{label: getattr(proof, label) * s % n_hat}))


def test_aff_g_every_public_input_is_bound(keys: Keys, aff) -> None:
    st, proof = aff
    other = aff_statement(keys, 3, -4)
    for name in ("C", "D", "Y", "X"):
        expect("pi_aff_g.equation_X", aff_verify, keys, st, proof, **{name: getattr(other, name)})


def test_aff_g_malformed_parameters_never_escape(keys: Keys, aff) -> None:
    st, proof = aff
    expect("pi_aff_g.malformed", aff_verify, keys, st, proof, pk0="not a key")
    expect("pi_aff_g.malformed", aff_verify, keys, st, proof, level=None)


def test_aff_g_prover_refuses_bad_randomness(keys: Keys, aff) -> None:
    st, _ = aff
    with pytest.raises(InvalidInput):
        aff_prove(keys, dataclasses.replace(st, rho=non_unit(keys.sk0)))
    with pytest.raises(InvalidInput):
        aff_prove(keys, dataclasses.replace(st, x="1"))


def test_aff_g_error_messages_carry_no_witness(keys: Keys) -> None:
    st = aff_statement(keys, 1 << (ELL + EPS + 1), -5)
    err = expect("pi_aff_g.range_z1", aff_verify, keys, st, aff_prove(keys, st))
    assert str(st.x) not in str(err) and str(st.rho) not in str(err)


# ==============================================================================================================
# pi_mul (everything under the prover's key N = K1)
# ==============================================================================================================


@dataclasses.dataclass
class MulStatement:
    X: int
    Y: int
    C: int
    x: int
    rho_x: int
    rho: int


def mul_statement(k: Keys, x: int, *, x_in_c: int | None = None, x_in_X: int | None = None) -> MulStatement:
    sk = k.sk1
    pk = sk.public
    rho_x, rho = sample_unit(pk.n), sample_unit(pk.n)
    X = sk.encrypt_with(x if x_in_X is None else x_in_X, rho_x)
    Y, _ = pk.encrypt(secrets.randbelow(int(pk.n)))
    C = pk.mul(Y, x if x_in_c is None else x_in_c) * sk.r_pow_n(rho) % pk.n2
    return MulStatement(int(X), int(Y), int(C), x, int(rho_x), int(rho))


def mul_prove(k: Keys, st: MulStatement, *, t: Transcript | None = None, own_key: bool = True) -> pi_mul.Proof:
    return pi_mul.prove(
        t or session(),
        pk=k.sk1 if own_key else k.pk1,
        X=st.X,
        Y=st.Y,
        C=st.C,
        x=st.x,
        rho_x=st.rho_x,
        rho=st.rho,
    )


def mul_verify(k: Keys, st: MulStatement, proof: Any, *, t: Transcript | None = None, **over: Any) -> None:
    args: dict[str, Any] = dict(pk=k.pk1, X=st.X, Y=st.Y, C=st.C)
    args.update(over)
    pi_mul.verify(t or session(), proof, **args)


@pytest.fixture(scope="module")
def mul(keys: Keys) -> tuple[MulStatement, pi_mul.Proof]:
    st = mul_statement(keys, secrets.randbelow(Q))
    return st, mul_prove(keys, st)


@pytest.mark.parametrize("x", [1, -1, -secrets.randbelow(Q), Q - 1, 0])
@pytest.mark.parametrize("own_key", [True, False])
def test_mul_honest(keys: Keys, x: int, own_key: bool) -> None:
    st = mul_statement(keys, x)
    mul_verify(keys, st, mul_prove(keys, st, own_key=own_key))


def test_mul_wire_roundtrip_and_replay(keys: Keys, mul) -> None:
    st, proof = mul
    mul_verify(keys, st, wire.decode(wire.encode(proof), pi_mul.Proof))
    expect("pi_mul.equation_C", mul_verify, keys, st, proof, t=session(b"session-2"))


def test_mul_false_statements(keys: Keys) -> None:
    st = mul_statement(keys, 5, x_in_c=6)
    expect("pi_mul.equation_C", mul_verify, keys, st, mul_prove(keys, st))
    st = mul_statement(keys, 5, x_in_X=6)
    expect("pi_mul.equation_X", mul_verify, keys, st, mul_prove(keys, st))


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(pi_mul.Proof)])
def test_mul_field_of_wrong_type(keys: Keys, mul, field: str) -> None:
    st, proof = mul
    for bad in ("1", None, b"", False):
        expect(f"pi_mul.type_{field}", mul_verify, keys, st, dataclasses.replace(proof, **{field: bad}))
    expect("pi_mul.type_proof", mul_verify, keys, st, dataclasses.asdict(proof))


def test_mul_every_membership_and_range_check(keys: Keys, mul) -> None:
    st, proof = mul
    n, n2 = int(keys.pk1.n), int(keys.pk1.n2)
    for name in ("X", "Y", "C"):
        for bad in (0, non_unit(keys.sk1), n2, "7"):
            expect(f"pi_mul.ciphertext_{name}", mul_verify, keys, st, proof, **{name: bad})
    r = dataclasses.replace
    for check, field, bad in [
        ("ciphertext_A", "A", 0),
        ("ciphertext_A", "A", non_unit(keys.sk1)),
        ("ciphertext_B", "B", n2),
        ("range_z", "z", (Q + 1) * n + 1),
        ("range_z", "z", -(Q + 1) * n - 1),
        ("unit_u", "u", 0),
        ("unit_u", "u", non_unit(keys.sk1)),
        ("unit_v", "v", n),
    ]:
        expect(f"pi_mul.{check}", mul_verify, keys, st, r(proof, **{field: bad}))
    expect("pi_mul.modulus_N", mul_verify, keys, st, proof, pk=PaillierPublicKey.from_n(n + 1))


def test_mul_each_equation(keys: Keys, mul) -> None:
    st, proof = mul
    n = int(keys.pk1.n)
    r = dataclasses.replace
    expect("pi_mul.equation_C", mul_verify, keys, st, r(proof, u=proof.u * 3 % n))
    expect("pi_mul.equation_C", mul_verify, keys, st, r(proof, z=proof.z + 1))
    expect("pi_mul.equation_X", mul_verify, keys, st, r(proof, v=proof.v * 3 % n))
    expect("pi_mul.equation_C", mul_verify, keys, st, r(proof, B=proof.B * 4 % int(keys.pk1.n2)))


def test_mul_malformed_never_escapes(keys: Keys, mul) -> None:
    st, proof = mul
    expect("pi_mul.malformed", mul_verify, keys, st, proof, pk=None)


# ==============================================================================================================
# pi_mul_star (D = C^x rho^N0 under N0, against the verifier's ring-Pedersen parameters)
# ==============================================================================================================


@dataclasses.dataclass
class MulStarStatement:
    C: int
    D: int
    X: Point
    x: int
    rho: int


def mul_star_statement(k: Keys, sk0: PaillierSecretKey, x: int, *, x_in_d: int | None = None) -> MulStarStatement:
    pk0 = sk0.public
    C, _ = pk0.encrypt(secrets.randbelow(int(pk0.n)))
    rho = sample_unit(pk0.n)
    D = pk0.mul(C, x if x_in_d is None else x_in_d) * sk0.r_pow_n(rho) % pk0.n2
    return MulStarStatement(int(C), int(D), Point.base_mul(x), x, int(rho))


def ms_prove(k: Keys, st: MulStarStatement, *, pk0: Any = None, rp: Any = None, t: Transcript | None = None):
    return pi_mul_star.prove(
        t or session(),
        pk0=pk0 or k.pk0,
        verifier_rp=(rp or k.rp0).params,
        C=st.C,
        D=st.D,
        X=st.X,
        x=st.x,
        rho=st.rho,
        level=LV,
    )


def ms_verify(k: Keys, st: MulStarStatement, proof: Any, *, t: Transcript | None = None, **over: Any) -> None:
    args: dict[str, Any] = dict(pk0=k.pk0, verifier_rp=k.rp0, C=st.C, D=st.D, X=st.X, level=LV)
    args.update(over)
    pi_mul_star.verify(t or session(), proof, **args)


@pytest.fixture(scope="module")
def ms(keys: Keys) -> tuple[MulStarStatement, pi_mul_star.Proof]:
    st = mul_star_statement(keys, keys.sk0, -secrets.randbelow(Q))
    return st, ms_prove(keys, st)


@pytest.mark.parametrize("x", [-(1 << ELL), 1 << ELL, -1, secrets.randbelow(Q)])
def test_mul_star_honest(keys: Keys, x: int) -> None:
    st = mul_star_statement(keys, keys.sk0, x)
    proof = ms_prove(keys, st)
    ms_verify(keys, st, proof)  # verifier owns N0 and the parameters: CRT for both equations
    ms_verify(keys, st, proof, verifier_rp=keys.rp0.params)


def test_mul_star_prover_owns_n0(keys: Keys) -> None:
    """Identification shape: N0 is the prover's key (CRT on its side), the parameters are the verifier's."""
    st = mul_star_statement(keys, keys.sk1, -secrets.randbelow(Q))
    proof = ms_prove(keys, st, pk0=keys.sk1, rp=keys.rp2)
    ms_verify(keys, st, proof, pk0=keys.pk1, verifier_rp=keys.rp2)
    expect("pi_mul_star.equation_D", ms_verify, keys, st, dataclasses.replace(proof, w=proof.w * 2 % int(keys.pk1.n)),
           pk0=keys.pk1, verifier_rp=keys.rp2)


def test_mul_star_wire_roundtrip_and_replay(keys: Keys, ms) -> None:
    st, proof = ms
    ms_verify(keys, st, wire.decode(wire.encode(proof), pi_mul_star.Proof))
    expect("pi_mul_star.equation_X", ms_verify, keys, st, proof, t=session(b"session-2"))


@pytest.mark.parametrize("x", [1 << (ELL + EPS + 1), -(1 << (ELL + EPS + 1)), -((1 << 1800) + 1)])
def test_mul_star_x_outside_range_is_rejected(keys: Keys, x: int) -> None:
    st = mul_star_statement(keys, keys.sk0, x)
    expect("pi_mul_star.range_z1", ms_verify, keys, st, ms_prove(keys, st))


def test_mul_star_false_statements(keys: Keys) -> None:
    st = mul_star_statement(keys, keys.sk0, 9, x_in_d=10)
    expect("pi_mul_star.equation_D", ms_verify, keys, st, ms_prove(keys, st))
    st = dataclasses.replace(mul_star_statement(keys, keys.sk0, 9), X=Point.base_mul(10))
    expect("pi_mul_star.equation_X", ms_verify, keys, st, ms_prove(keys, st))


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(pi_mul_star.Proof)])
def test_mul_star_field_of_wrong_type(keys: Keys, ms, field: str) -> None:
    st, proof = ms
    for bad in ("1", None, b"\x02" * 33, True):
        expect(f"pi_mul_star.type_{field}", ms_verify, keys, st, dataclasses.replace(proof, **{field: bad}))
    expect("pi_mul_star.type_proof", ms_verify, keys, st, object())


def test_mul_star_every_membership_and_range_check(keys: Keys, ms) -> None:
    st, proof = ms
    n0, n02 = int(keys.pk0.n), int(keys.pk0.n2)
    for name in ("C", "D"):
        for bad in (0, non_unit(keys.sk0), n02, None):
            expect(f"pi_mul_star.ciphertext_{name}", ms_verify, keys, st, proof, **{name: bad})
    expect("pi_mul_star.point_X", ms_verify, keys, st, proof, X=Point.identity())
    expect("pi_mul_star.modulus_N0", ms_verify, keys, st, proof, level=LEVEL_128)
    small = RingPedersenParams(mpz((1 << 1000) + 1), mpz(4), mpz(9))
    expect("pi_mul_star.modulus_rp", ms_verify, keys, st, proof, verifier_rp=small)
    zb = int(pi_aff_g.z_bound(keys.rp0.params.n, LV))
    r = dataclasses.replace
    for check, field, bad in [
        ("ciphertext_A", "A", 0),
        ("ciphertext_A", "A", non_unit(keys.sk0)),
        ("point_B_x", "B_x", Point.identity()),
        ("commitment_E", "E", 0),
        ("commitment_E", "E", non_unit(keys.sk0)),
        ("commitment_S", "S", int(keys.rp0.params.n)),
        ("range_z1", "z1", (1 << (ELL + EPS)) + 1),
        ("range_z1", "z1", -(1 << (ELL + EPS)) - 1),
        ("range_z2", "z2", zb + 1),
        ("unit_w", "w", 0),
        ("unit_w", "w", non_unit(keys.sk0)),
        ("unit_w", "w", n0 + 1),
    ]:
        expect(f"pi_mul_star.{check}", ms_verify, keys, st, r(proof, **{field: bad}))


def test_mul_star_each_equation(keys: Keys, ms) -> None:
    st, proof = ms
    r = dataclasses.replace
    w2 = r(proof, w=proof.w * 2 % int(keys.pk0.n))
    expect("pi_mul_star.equation_X", ms_verify, keys, st, r(proof, z1=proof.z1 - 1))
    expect("pi_mul_star.equation_D", ms_verify, keys, st, w2)
    expect("pi_mul_star.equation_D", ms_verify, keys, st, w2, verifier_rp=keys.rp0.params)
    expect("pi_mul_star.equation_rp_E", ms_verify, keys, st, r(proof, z2=proof.z2 + 1))
    expect("pi_mul_star.equation_rp_E", ms_verify, keys, st, r(proof, z2=proof.z2 + 1), verifier_rp=keys.rp0.params)


def test_mul_star_malformed_never_escapes(keys: Keys, ms) -> None:
    st, proof = ms
    expect("pi_mul_star.malformed", ms_verify, keys, st, proof, verifier_rp="params")


# ==============================================================================================================
# helpers (ring_pedersen, paillier): fixed-base ring-Pedersen commitments and the CRT N-th power agree with the
# plain arithmetic
# ==============================================================================================================


def test_fixed_base_commit_matches_plain(keys: Keys) -> None:
    rp = keys.rp0.params
    big = int(rp.n).bit_length() + 2000  # beyond the table: falls back to powmod
    for a, b in [(0, 0), (1, 0), (0, -1), (-5, 7), (secrets.randbits(768), -secrets.randbits(2800)), (-(1 << big), 3)]:
        assert rp_commit(rp, a, b) == rp.commit(a, b) == keys.rp0.commit(a, b)


def test_crt_nth_power_matches_plain(keys: Keys) -> None:
    sk = keys.sk1
    fast, plain = sk, sk.public  # the same arithmetic: by CRT with the secret key, plainly with the public one
    for _ in range(3):
        w = sample_unit(sk.public.n)
        assert fast.r_pow_n(w) == plain.r_pow_n(w) == gmpy2.powmod(w, sk.public.n, sk.public.n2)
        e = -secrets.randbits(300)
        assert fast.powmod_n2(w, e) == plain.powmod_n2(w, e)
    assert plain.one_plus_n_pow(-3) == gmpy2.powmod(1 + sk.public.n, -3, sk.public.n2)

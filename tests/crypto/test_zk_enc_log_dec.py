"""Pi-enc, Pi-log* and Pi-dec (CGGMP21 Figs. 14, 25, 28): honest proofs verify, every check rejects its tamper.

Keys come from the TEST ONLY fixture primes; prover and verifier use different fixture indices.
"""

from __future__ import annotations

import dataclasses
import secrets
from types import SimpleNamespace
from typing import Any

import pytest
from gmpy2 import mpz

from mpc_ray.crypto.params import LEVEL_112, LEVEL_128
from mpc_ray.crypto.ring_pedersen import generate_ring_pedersen
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.crypto.transcript import Transcript
from mpc_ray.crypto.zk import paillier_proofs, pi_dec, pi_enc, pi_log_star
from mpc_ray.errors import InvalidInput, ProofError
from mpc_ray.protocols import wire
from tests.support.primes import fixture_paillier_key

LV = LEVEL_112
ELL_EPS = LV.ell + LV.eps


def transcript(sid: bytes = b"session-1") -> Transcript:
    """What a protocol hands a proof: bound to protocol, session, prover and verifier."""
    t = Transcript("mpc-ray/test/zk")
    t.append_bytes("sid", sid)
    t.append_int("prover", 1)
    t.append_int("verifier", 2)
    return t


def signed_ell() -> int:
    return secrets.randbelow(1 << (LV.ell + 1)) - (1 << LV.ell)


@pytest.fixture(scope="module")
def env() -> SimpleNamespace:
    sk = fixture_paillier_key("112", 0)  # prover's Paillier key
    vsk = fixture_paillier_key("112", 1)  # verifier's Paillier key, carrying its ring-Pedersen parameters
    rps = generate_ring_pedersen(vsk)
    other = generate_ring_pedersen(fixture_paillier_key("112", 2))
    return SimpleNamespace(sk=sk, pk=sk.public, vsk=vsk, rps=rps, rp=rps.params, other_rp=other.params)


def check_of(fn, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ProofError) as info:
        fn(*args, **kwargs)
    return info.value.check


def bad_paillier(env: SimpleNamespace) -> list[int]:
    """Non-members of Z*_{N0^2}: zero, N0^2, a multiple of one factor, N0 itself, negative."""
    n = int(env.pk.n)
    return [0, n * n, int(env.sk.p) * 12345, n, -1]


def bad_rp(env: SimpleNamespace) -> list[int]:
    """Non-members of Z*_{N-hat}."""
    n = int(env.rp.n)
    return [0, n, int(env.vsk.q) * 3, -5]


NOT_INTS = ["12345", None, b"\x01\x02", 1.5, True]


# ---------------------------------------------------------------------------------------------------------------
# Pi-enc
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enc(env: SimpleNamespace) -> SimpleNamespace:
    k = signed_ell()
    K, rho = env.pk.encrypt(k)
    proof = pi_enc.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, K=K, k=k, rho=rho, level=LV)
    return SimpleNamespace(k=k, K=int(K), rho=rho, proof=proof)


@pytest.mark.parametrize("rp_kind", ["params", "secret"])
def test_enc_honest(env, enc, rp_kind):
    rp = env.rp if rp_kind == "params" else env.rps
    pi_enc.verify(transcript(), enc.proof, prover_pk=env.pk, verifier_rp=rp, K=enc.K, level=LV)


def test_enc_with_prover_secret_key_and_wire_roundtrip(env, enc):
    # the CRT prover path, and ints decoded as plain Python int (the codec's output) verify alike
    proof = pi_enc.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, K=enc.K, k=enc.k, rho=enc.rho,
                         level=LV, prover_sk=env.sk)
    decoded = wire.decode(wire.encode(proof), pi_enc.Proof)
    assert all(type(getattr(decoded, f.name)) is int for f in dataclasses.fields(decoded))
    pi_enc.verify(transcript(), decoded, prover_pk=env.pk, verifier_rp=env.rps, K=enc.K, level=LV)


def test_enc_replay_other_session(env, enc):
    check = check_of(pi_enc.verify, transcript(b"session-2"), enc.proof, prover_pk=env.pk, verifier_rp=env.rp,
                     K=enc.K, level=LV)
    assert check == "pi_enc.equation_rp"


def test_enc_other_verifier_params(env, enc):
    # the proof is bound to the verifier's (N-hat, s, t): another verifier cannot accept it
    check = check_of(pi_enc.verify, transcript(), enc.proof, prover_pk=env.pk, verifier_rp=env.other_rp,
                     K=enc.K, level=LV)
    assert check.startswith("pi_enc.")


def test_enc_k_out_of_range_fails_range(env):
    for k in (1 << (ELL_EPS + 2), -(int(env.pk.n) // 3)):
        K, rho = env.pk.encrypt(k)
        proof = pi_enc.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, K=K, k=k, rho=rho, level=LV)
        assert check_of(pi_enc.verify, transcript(), proof, prover_pk=env.pk, verifier_rp=env.rp, K=K,
                        level=LV) == "pi_enc.range_z1"


def test_enc_wrong_witness_fails_equation_enc(env, enc):
    # K hides k + 1 but the prover claims k: the ring-Pedersen side holds, the Paillier side cannot
    K2 = int(env.pk.encrypt_with(enc.k + 1, enc.rho))
    proof = pi_enc.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, K=K2, k=enc.k, rho=enc.rho, level=LV)
    assert check_of(pi_enc.verify, transcript(), proof, prover_pk=env.pk, verifier_rp=env.rp, K=K2,
                    level=LV) == "pi_enc.equation_enc"


def _enc_tampers(env: SimpleNamespace, enc: SimpleNamespace) -> list[tuple[str, Any, str]]:
    p = enc.proof
    n0 = int(env.pk.n)
    out: list[tuple[str, Any, str]] = [
        ("z1", (1 << ELL_EPS) + 1, "pi_enc.range_z1"),
        ("z1", -(1 << ELL_EPS) - 1, "pi_enc.range_z1"),
        ("z1", p.z1 + 1, "pi_enc.equation_rp"),
        ("z3", int(env.rp.n) << (ELL_EPS + LV.ell + 260), "pi_enc.range_z3"),
        ("z3", p.z3 + 1, "pi_enc.equation_rp"),
        ("z2", (p.z2 * 2) % n0, "pi_enc.equation_enc"),
        ("S", p.S * 4 % int(env.rp.n), "pi_enc.equation_rp"),
        ("A", p.A * 4 % (n0 * n0), "pi_enc.equation_rp"),  # A is hashed: a new challenge breaks both equations
    ]
    out += [("z2", v, "pi_enc.unit_z2") for v in (0, n0, int(env.sk.q) * 7, -3)]
    out += [("A", v, "pi_enc.ciphertext_A") for v in bad_paillier(env)]
    out += [("S", v, "pi_enc.unit_S") for v in bad_rp(env)]
    out += [("C", v, "pi_enc.unit_C") for v in bad_rp(env)]
    out += [(f, v, f"pi_enc.type_{f}") for f in ("S", "A", "C", "z1", "z2", "z3") for v in NOT_INTS]
    return out


def test_enc_every_tamper(env, enc):
    for field, value, expected in _enc_tampers(env, enc):
        bad = dataclasses.replace(enc.proof, **{field: value})
        got = check_of(pi_enc.verify, transcript(), bad, prover_pk=env.pk, verifier_rp=env.rps, K=enc.K, level=LV)
        assert got == expected, (field, expected, got)


def test_enc_bad_statement(env, enc):
    for K in bad_paillier(env):
        assert check_of(pi_enc.verify, transcript(), enc.proof, prover_pk=env.pk, verifier_rp=env.rp, K=K,
                        level=LV) == "pi_enc.ciphertext_K"
    for K in NOT_INTS:
        assert check_of(pi_enc.verify, transcript(), enc.proof, prover_pk=env.pk, verifier_rp=env.rp, K=K,
                        level=LV) == "pi_enc.type_K"
    # another ciphertext, valid but not the one proven: new challenge
    assert check_of(pi_enc.verify, transcript(), enc.proof, prover_pk=env.pk, verifier_rp=env.rp,
                    K=enc.K * 4 % int(env.pk.n2), level=LV) == "pi_enc.equation_rp"


def test_enc_wrong_proof_type_and_short_modulus(env, enc):
    assert check_of(pi_enc.verify, transcript(), "proof", prover_pk=env.pk, verifier_rp=env.rp, K=enc.K,
                    level=LV) == "pi_enc.type_proof"
    # a 2048-bit N0 is too short for level 128
    assert check_of(pi_enc.verify, transcript(), enc.proof, prover_pk=env.pk, verifier_rp=env.rp, K=enc.K,
                    level=LEVEL_128) == "pi_enc.modulus_N0"


def test_enc_prover_input_errors(env, enc):
    with pytest.raises(InvalidInput):
        pi_enc.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, K=enc.K, k=enc.k, rho=0, level=LV)
    with pytest.raises(InvalidInput):  # someone else's secret key
        pi_enc.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, K=enc.K, k=enc.k, rho=enc.rho, level=LV,
                     prover_sk=env.vsk)
    with pytest.raises(InvalidInput):
        pi_enc.verify(transcript(), enc.proof, prover_pk=env.pk, verifier_rp="rp", K=enc.K, level=LV)


# ---------------------------------------------------------------------------------------------------------------
# Pi-log*
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log(env: SimpleNamespace) -> SimpleNamespace:
    x = signed_ell()
    base = Point.base_mul(secrets.randbelow(Q - 1) + 1)  # a base other than G, as in presigning round 3
    X = base * x
    C, rho = env.pk.encrypt(x)
    proof = pi_log_star.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=C, X=X, base=base, x=x,
                              rho=rho, level=LV)
    return SimpleNamespace(x=x, base=base, X=X, C=int(C), rho=rho, proof=proof)


def log_check(env: SimpleNamespace, proof: Any, *, C: Any, X: Any, base: Any, rp: Any = None,
              t: Transcript | None = None) -> str:
    return check_of(pi_log_star.verify, t or transcript(), proof, prover_pk=env.pk,
                    verifier_rp=rp if rp is not None else env.rps, C=C, X=X, base=base, level=LV)


@pytest.mark.parametrize("rp_kind", ["params", "secret"])
def test_log_honest(env, log, rp_kind):
    rp = env.rp if rp_kind == "params" else env.rps
    pi_log_star.verify(transcript(), log.proof, prover_pk=env.pk, verifier_rp=rp, C=log.C, X=log.X,
                       base=log.base, level=LV)


def test_log_generator_base_prover_sk_wire(env):
    x = signed_ell()
    G = Point.generator()
    C, rho = env.sk.encrypt(x)
    proof = pi_log_star.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=C, X=G * x, base=G, x=x,
                              rho=rho, level=LV, prover_sk=env.sk)
    decoded = wire.decode(wire.encode(proof), pi_log_star.Proof)
    pi_log_star.verify(transcript(), decoded, prover_pk=env.pk, verifier_rp=env.rps, C=int(C), X=G * x, base=G,
                       level=LV)


def test_log_replay_other_session(env, log):
    assert log_check(env, log.proof, C=log.C, X=log.X, base=log.base,
                     t=transcript(b"session-2")) == "pi_log_star.equation_point"


def test_log_wrong_base(env, log):
    # the base is bound into the challenge, so a wrong base fails the first (point) equation
    assert log_check(env, log.proof, C=log.C, X=log.X, base=Point.generator()) == "pi_log_star.equation_point"


def test_log_x_out_of_range(env, log):
    x = 1 << (ELL_EPS + 3)
    C, rho = env.pk.encrypt(x)
    proof = pi_log_star.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=C, X=log.base * x,
                              base=log.base, x=x, rho=rho, level=LV)
    assert log_check(env, proof, C=int(C), X=log.base * x, base=log.base) == "pi_log_star.range_z1"


def test_log_inconsistent_witness(env, log):
    # X does not match the plaintext of C: the point equation fails
    X_bad = log.base * (log.x + 1)
    proof = pi_log_star.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=log.C, X=X_bad,
                              base=log.base, x=log.x, rho=log.rho, level=LV)
    assert log_check(env, proof, C=log.C, X=X_bad, base=log.base) == "pi_log_star.equation_point"
    # C hides x + 1 while X = x base: only the Paillier equation can see it
    C_bad = int(env.pk.encrypt_with(log.x + 1, log.rho))
    proof = pi_log_star.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=C_bad, X=log.X,
                              base=log.base, x=log.x, rho=log.rho, level=LV)
    assert log_check(env, proof, C=C_bad, X=log.X, base=log.base) == "pi_log_star.equation_enc"


def test_log_every_tamper(env, log):
    p = log.proof
    n0 = int(env.pk.n)
    cases: list[tuple[str, Any, str]] = [
        ("z1", (1 << ELL_EPS) + 1, "pi_log_star.range_z1"),
        ("z1", -(1 << ELL_EPS) - 1, "pi_log_star.range_z1"),
        ("z1", p.z1 + 1, "pi_log_star.equation_point"),
        ("z3", -(int(env.rp.n) << (ELL_EPS + LV.ell + 260)), "pi_log_star.range_z3"),
        ("z3", p.z3 - 1, "pi_log_star.equation_rp"),
        ("z2", (p.z2 * 3) % n0, "pi_log_star.equation_enc"),
        ("Y", p.Y + Point.generator(), "pi_log_star.equation_point"),
        ("D", p.D * 4 % int(env.rp.n), "pi_log_star.equation_point"),
        ("Y", Point.identity(), "pi_log_star.point_Y"),
        ("Y", p.Y.to_bytes(), "pi_log_star.type_Y"),
        ("Y", None, "pi_log_star.type_Y"),
        ("Y", "02" + "11" * 32, "pi_log_star.type_Y"),
    ]
    cases += [("z2", v, "pi_log_star.unit_z2") for v in (0, n0, int(env.sk.p) * 5)]
    cases += [("A", v, "pi_log_star.ciphertext_A") for v in bad_paillier(env)]
    cases += [("S", v, "pi_log_star.unit_S") for v in bad_rp(env)]
    cases += [("D", v, "pi_log_star.unit_D") for v in bad_rp(env)]
    cases += [(f, v, f"pi_log_star.type_{f}") for f in ("S", "A", "D", "z1", "z2", "z3") for v in NOT_INTS]
    for field, value, expected in cases:
        bad = dataclasses.replace(p, **{field: value})
        got = log_check(env, bad, C=log.C, X=log.X, base=log.base)
        assert got == expected, (field, expected, got)


def test_log_bad_statement(env, log):
    for C in bad_paillier(env):
        assert log_check(env, log.proof, C=C, X=log.X, base=log.base) == "pi_log_star.ciphertext_C"
    for C in NOT_INTS:
        assert log_check(env, log.proof, C=C, X=log.X, base=log.base) == "pi_log_star.type_C"
    assert log_check(env, log.proof, C=log.C, X=Point.identity(), base=log.base) == "pi_log_star.point_X"
    assert log_check(env, log.proof, C=log.C, X=log.X, base=Point.identity()) == "pi_log_star.point_base"
    assert log_check(env, log.proof, C=log.C, X=log.X.to_bytes(), base=log.base) == "pi_log_star.type_X"
    assert log_check(env, log.proof, C=log.C, X=log.X, base="G") == "pi_log_star.type_base"
    assert log_check(env, log.proof, C=log.C, X=-log.X, base=log.base) == "pi_log_star.equation_point"
    assert log_check(env, pi_enc.Proof(1, 1, 1, 1, 1, 1), C=log.C, X=log.X,
                     base=log.base) == "pi_log_star.type_proof"


# ---------------------------------------------------------------------------------------------------------------
# Pi-dec
# ---------------------------------------------------------------------------------------------------------------


# the identification bound for 3 signers, t 2^(ell'+2) (protocols/ecdsa/identify.plaintext_bound)
DEC_B = 3 << (LV.ell_prime + 2)


@pytest.fixture(scope="module")
def dec(env: SimpleNamespace) -> SimpleNamespace:
    # y as in identification: a sum of masked products, wider than q and signed, below the bound
    y = -(secrets.randbelow(DEC_B))
    C, rho = env.pk.encrypt(y)
    proof = pi_dec.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=C, x=y % Q, y=y, rho=rho,
                         bound=DEC_B, level=LV)
    return SimpleNamespace(y=y, x=y % Q, C=int(C), rho=rho, proof=proof)


def dec_check(env: SimpleNamespace, proof: Any, *, C: Any, x: Any, t: Transcript | None = None,
              bound: int = DEC_B) -> str:
    return check_of(pi_dec.verify, t or transcript(), proof, prover_pk=env.pk, verifier_rp=env.rps, C=C, x=x,
                    bound=bound, level=LV)


@pytest.mark.parametrize("rp_kind", ["params", "secret"])
def test_dec_honest(env, dec, rp_kind):
    rp = env.rp if rp_kind == "params" else env.rps
    pi_dec.verify(transcript(), dec.proof, prover_pk=env.pk, verifier_rp=rp, C=dec.C, x=dec.x, bound=DEC_B,
                  level=LV)


def test_dec_prover_sk_wire_and_recovered_randomness(env):
    # the decrypting party recovers rho with its key, as identification does
    y = secrets.randbelow(1 << 600)
    C, _ = env.pk.encrypt(y)
    rho = env.sk.recover_randomness(C, y)
    proof = pi_dec.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=int(C), x=y % Q, y=y, rho=rho,
                         bound=DEC_B, level=LV, prover_sk=env.sk)
    decoded = wire.decode(wire.encode(proof), pi_dec.Proof)
    pi_dec.verify(transcript(), decoded, prover_pk=env.pk, verifier_rp=env.rps, C=int(C), x=y % Q, bound=DEC_B,
                  level=LV)


def test_dec_replay_other_session(env, dec):
    assert dec_check(env, dec.proof, C=dec.C, x=dec.x, t=transcript(b"session-2")) == "pi_dec.equation_mod_q"


def test_dec_wrong_x(env, dec):
    # honest prover, false public x: the mod-q equation catches it
    x_bad = (dec.x + 1) % Q
    proof = pi_dec.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=dec.C, x=x_bad, y=dec.y,
                         rho=dec.rho, bound=DEC_B, level=LV)
    assert dec_check(env, proof, C=dec.C, x=x_bad) == "pi_dec.equation_mod_q"
    # the right proof against another x
    assert dec_check(env, dec.proof, C=dec.C, x=x_bad) == "pi_dec.equation_mod_q"


def test_dec_wrong_plaintext(env, dec):
    # C hides y + q (same residue mod q) while the prover claims y: only the Paillier equation sees it
    C_bad = int(env.pk.encrypt_with(dec.y + Q, dec.rho))
    proof = pi_dec.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=C_bad, x=dec.x, y=dec.y,
                         rho=dec.rho, bound=DEC_B, level=LV)
    assert dec_check(env, proof, C=C_bad, x=dec.x) == "pi_dec.equation_enc"


def test_dec_every_tamper(env, dec):
    p = dec.proof
    n0 = int(env.pk.n)
    cases: list[tuple[str, Any, str]] = [
        ("gamma", Q, "pi_dec.range_gamma"),
        ("gamma", -1, "pi_dec.range_gamma"),
        ("gamma", (p.gamma + 1) % Q, "pi_dec.equation_mod_q"),
        ("z1", (1 << (LEVEL_112.ell + LEVEL_112.eps + 2)) * n0, "pi_dec.range_z1"),
        ("z1", pi_dec.z1_bound(paillier_proofs.setup("t", env.pk, env.rp, LV), DEC_B) + 1, "pi_dec.range_z1"),
        ("z1", p.z1 + 2 * int(env.pk.n) * Q, "pi_dec.range_z1"),  # the forger's shape: y + k N0
        ("z1", p.z1 + 1, "pi_dec.equation_mod_q"),
        ("z1", p.z1 + Q, "pi_dec.equation_rp"),  # same residue mod q, different integer
        ("z2", -(int(env.rp.n) << (ELL_EPS + LV.ell + 260)), "pi_dec.range_z2"),
        ("z2", p.z2 + 1, "pi_dec.equation_rp"),
        ("w", p.w * 2 % n0, "pi_dec.equation_enc"),
        ("T", p.T * 4 % int(env.rp.n), "pi_dec.equation_mod_q"),
    ]
    cases += [("w", v, "pi_dec.unit_w") for v in (0, n0, int(env.sk.q) * 11, n0 + 1)]
    cases += [("A", v, "pi_dec.ciphertext_A") for v in bad_paillier(env)]
    cases += [("S", v, "pi_dec.unit_S") for v in bad_rp(env)]
    cases += [("T", v, "pi_dec.unit_T") for v in bad_rp(env)]
    cases += [(f, v, f"pi_dec.type_{f}") for f in ("S", "T", "A", "gamma", "z1", "z2", "w") for v in NOT_INTS]
    for field, value, expected in cases:
        bad = dataclasses.replace(p, **{field: value})
        got = dec_check(env, bad, C=dec.C, x=dec.x)
        assert got == expected, (field, expected, got)


def test_dec_bad_statement(env, dec):
    for C in bad_paillier(env):
        assert dec_check(env, dec.proof, C=C, x=dec.x) == "pi_dec.ciphertext_C"
    for v in NOT_INTS:
        assert dec_check(env, dec.proof, C=v, x=dec.x) == "pi_dec.type_C"
        assert dec_check(env, dec.proof, C=dec.C, x=v) == "pi_dec.type_x"
    for x in (Q, -1, dec.x + Q):
        assert dec_check(env, dec.proof, C=dec.C, x=x) == "pi_dec.range_x"


def _forge_dec(env: SimpleNamespace, C: int, x: int, y_forged: int, rho) -> pi_dec.Proof:
    """The honest prover's algorithm run on y' = y + k N0 instead of y (the prover's own bound check skipped)."""
    st = paillier_proofs.prover_setup("pi_dec", env.pk, env.rp, LV, None, rho)
    y_forged = mpz(y_forged)
    nonces, r, S, A, T = paillier_proofs.first_message(st, y_forged, abs(y_forged) << LV.eps, None)
    gamma = int(nonces.alpha % Q)
    e = pi_dec._challenge(transcript(), st, DEC_B, mpz(C), x, S, T, A, gamma)
    z1, w, z2 = paillier_proofs.responses(st, nonces, r, y_forged, rho, e, None)
    return pi_dec.Proof(int(S), int(T), int(A), gamma, int(z1), int(z2), int(w))


def test_dec_forged_for_any_x_refused_by_range(env, dec):
    """Enc(y) = Enc(y + k N0): with k = (x - y) / N0 mod q the forger proves x = y' mod q for an x of its choice,
    and every equation holds. Only the bound on z1 refuses it."""
    n0 = int(env.pk.n)
    x_forged = (dec.x + 1 + secrets.randbelow(Q - 1)) % Q
    assert x_forged != dec.x
    k = (x_forged - dec.y) * pow(n0, -1, Q) % Q
    y_forged = dec.y + k * n0
    assert y_forged % Q == x_forged and (y_forged - dec.y) % n0 == 0
    forged = _forge_dec(env, dec.C, x_forged, y_forged, dec.rho)
    # every equation of the paper's Pi-dec holds for the false x ...
    st = paillier_proofs.setup("pi_dec", env.pk, env.rps, LV)
    e = pi_dec._challenge(transcript(), st, DEC_B, mpz(dec.C), x_forged, mpz(forged.S), mpz(forged.T),
                          mpz(forged.A), forged.gamma)
    assert (forged.z1 - forged.gamma - e * x_forged) % Q == 0
    paillier_proofs.check_equations("pi_dec", st, e, mpz(forged.z1), mpz(forged.w), mpz(forged.z2), mpz(dec.C),
                                    mpz(forged.A), mpz(forged.S), mpz(forged.T))
    # ... and the verifier refuses it on the range of z1
    assert dec_check(env, forged, C=dec.C, x=x_forged) == "pi_dec.range_z1"
    assert env.sk.decrypt(dec.C) % Q == dec.x != x_forged


def test_dec_bound_is_part_of_the_statement(env, dec):
    # honest plaintexts at the bound pass
    for y in (DEC_B, -DEC_B):
        C, rho = env.pk.encrypt(y)
        proof = pi_dec.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=int(C), x=y % Q, y=y, rho=rho,
                             bound=DEC_B, level=LV)
        pi_dec.verify(transcript(), proof, prover_pk=env.pk, verifier_rp=env.rps, C=int(C), x=y % Q, bound=DEC_B,
                      level=LV)
    # the prover refuses a plaintext over the bound
    C, rho = env.pk.encrypt(DEC_B + 1)
    with pytest.raises(InvalidInput):
        pi_dec.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=int(C), x=(DEC_B + 1) % Q, y=DEC_B + 1,
                     rho=rho, bound=DEC_B, level=LV)
    # the bound is bound into the challenge
    assert dec_check(env, dec.proof, C=dec.C, x=dec.x, bound=2 * DEC_B) == "pi_dec.equation_mod_q"
    # a bound that would not make the extracted plaintext unique, or no bound at all: a local error
    too_big = int(env.pk.n) >> (LV.eps + 2)
    for bad in (too_big, 0, -DEC_B, None, "1"):
        with pytest.raises(InvalidInput):
            pi_dec.verify(transcript(), dec.proof, prover_pk=env.pk, verifier_rp=env.rps, C=dec.C, x=dec.x,
                          bound=bad, level=LV)
        with pytest.raises(InvalidInput):
            pi_dec.prove(transcript(), prover_pk=env.pk, verifier_rp=env.rp, C=dec.C, x=dec.x, y=dec.y,
                         rho=dec.rho, bound=bad, level=LV)


# ---------------------------------------------------------------------------------------------------------------
# Level 128: one happy path for each proof
# ---------------------------------------------------------------------------------------------------------------


def test_all_three_at_level_128():
    lv = LEVEL_128
    sk = fixture_paillier_key("128", 0)
    pk = sk.public
    rps = generate_ring_pedersen(fixture_paillier_key("128", 1))

    k = signed_ell()
    K, rho = pk.encrypt(k)
    proof = pi_enc.prove(transcript(), prover_pk=pk, verifier_rp=rps.params, K=K, k=k, rho=rho, level=lv,
                         prover_sk=sk)
    pi_enc.verify(transcript(), proof, prover_pk=pk, verifier_rp=rps, K=int(K), level=lv)

    G = Point.generator()
    proof = pi_log_star.prove(transcript(), prover_pk=pk, verifier_rp=rps.params, C=K, X=G * k, base=G, x=k,
                              rho=rho, level=lv)
    pi_log_star.verify(transcript(), proof, prover_pk=pk, verifier_rp=rps.params, C=int(K), X=G * k, base=G,
                       level=lv)

    bound = 3 << (lv.ell_prime + 2)
    proof = pi_dec.prove(transcript(), prover_pk=pk, verifier_rp=rps.params, C=K, x=k % Q, y=k, rho=rho, bound=bound,
                         level=lv)
    pi_dec.verify(transcript(), proof, prover_pk=pk, verifier_rp=rps, C=mpz(K), x=k % Q, bound=bound, level=lv)


# ---------------------------------------------------------------------------------------------------------------
# Fiat-Shamir binding: every public input and commitment moves the challenge
# ---------------------------------------------------------------------------------------------------------------


def test_challenge_binds_every_input(env):
    st = paillier_proofs.setup("t", env.pk, env.rp, LV)
    other_st = paillier_proofs.setup("t", env.pk, env.other_rp, LV)
    other_key = fixture_paillier_key("112", 3).public
    key_st = paillier_proofs.setup("t", other_key, env.rp, LV)
    G, H = Point.generator(), Point.base_mul(5)
    cases = {
        pi_enc._challenge: (st, mpz(11), mpz(12), mpz(13), mpz(14)),
        pi_log_star._challenge: (st, mpz(11), G, H, mpz(12), mpz(13), G * 3, mpz(14)),
        pi_dec._challenge: (st, 10, mpz(11), 12, mpz(13), mpz(14), mpz(15), 16),
    }
    for fn, args in cases.items():
        e = fn(transcript(), *args)
        assert -Q <= e <= Q
        assert fn(transcript(), *args) == e  # deterministic
        assert fn(transcript(b"session-2"), *args) != e
        assert fn(transcript(), other_st, *args[1:]) != e
        assert fn(transcript(), key_st, *args[1:]) != e
        for i in range(1, len(args)):
            moved = list(args)
            moved[i] = moved[i] + G if isinstance(moved[i], Point) else moved[i] + 1
            assert fn(transcript(), *moved) != e, (fn.__module__, i)
    # the three proofs never share a challenge on the same transcript (the proof name is bound)
    assert len({pi_enc._challenge(transcript(), st, 1, 2, 3, 4),
                pi_dec._challenge(transcript(), st, 9, 1, 0, 2, 3, 4, 0),
                pi_log_star._challenge(transcript(), st, 1, G, H, 2, 3, G, 4)}) == 3


# ---------------------------------------------------------------------------------------------------------------
# Garbage never escapes as anything but ProofError
# ---------------------------------------------------------------------------------------------------------------


def _garbage(proof_field_value: Any, n: int) -> Any:
    choice = secrets.randbelow(8)
    if choice == 0:
        return secrets.randbelow(1 << 16384) * (-1) ** secrets.randbelow(2)  # as large as the codec allows
    if choice == 1:
        return secrets.randbelow(4 * n) - n
    if choice == 2:
        return [1, 2]
    if choice == 3:
        return Point.generator()
    if choice == 4:
        return mpz(secrets.randbelow(n))
    if choice == 5:
        return -proof_field_value if isinstance(proof_field_value, int) else Point.identity()
    return NOT_INTS[secrets.randbelow(len(NOT_INTS))]


def test_fuzz_only_proof_errors(env, enc, log, dec):
    n2 = int(env.pk.n2)
    runs = [
        (enc.proof, lambda p: pi_enc.verify(transcript(), p, prover_pk=env.pk, verifier_rp=env.rps, K=enc.K,
                                            level=LV)),
        (log.proof, lambda p: pi_log_star.verify(transcript(), p, prover_pk=env.pk, verifier_rp=env.rps, C=log.C,
                                                 X=log.X, base=log.base, level=LV)),
        (dec.proof, lambda p: pi_dec.verify(transcript(), p, prover_pk=env.pk, verifier_rp=env.rps, C=dec.C,
                                            x=dec.x, bound=DEC_B, level=LV)),
    ]
    for proof, run in runs:
        names = [f.name for f in dataclasses.fields(proof)]
        for _ in range(60):
            changes = {f: _garbage(getattr(proof, f), n2) for f in names if secrets.randbelow(3) == 0}
            if not changes:
                continue
            with pytest.raises(ProofError):
                run(dataclasses.replace(proof, **changes))

"""DKLs23 oblivious transfer: GF(2^256) and bit matrices, the batched Verified Simplest OT, KOS OT extension with its
consistency check. Every tamper test feeds one bad value and expects the named check with the culprit."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import secrets

import pytest

from mpc_ray.crypto.ot import gf2, kos
from mpc_ray.crypto.ot import base_ot as bo
from mpc_ray.crypto.ot.base_ot import KAPPA, BaseOTReceiver, BaseOTSender
from mpc_ray.crypto.ot.kos import (
    PAD_ROWS,
    ExtensionMessage,
    OTEReceiverSetup,
    OTESenderSetup,
    _challenges,
    _prg,
    extension_context,
)
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.crypto.transcript import Transcript
from mpc_ray.crypto.zk import schnorr
from mpc_ray.errors import InvalidInput, ProtocolAbort
from mpc_ray.protocols.wire import WireError, decode, encode
from tests.support.layers import FORBIDDEN, ROOT, _imports, _under

S, R = 1, 2  # base-OT sender / receiver party numbers


def _expect_abort(check: str, culprit: int, reporter: int):
    class _Ctx:
        def __enter__(self):
            return self

        def __exit__(self, tp, exc, tb):
            assert tp is ProtocolAbort, f"expected {check}, got {tp}"
            assert (exc.check, exc.culprit, exc.reporter) == (f"dkls23.{check}", culprit, reporter), exc
            return True

    return _Ctx()


# --- GF(2^256) and bit matrices ----------------------------------------------------------------------------------


def _clmul_naive(a: int, b: int) -> int:
    r = 0
    while b:
        if b & 1:
            r ^= a
        a, b = a << 1, b >> 1
    return r


def _polymod(a: int, f: int) -> int:
    while a.bit_length() >= f.bit_length():
        a ^= f << (a.bit_length() - f.bit_length())
    return a


def _polygcd(a: int, b: int) -> int:
    while b:
        a, b = b, _polymod(a, b)
    return a


def test_field_polynomial_is_irreducible():
    # Rabin: f of degree 256 = 2^8 is irreducible iff x^(2^256) = x mod f and gcd(x^(2^128) - x, f) = 1
    f = (1 << 256) | (1 << 10) | (1 << 5) | (1 << 2) | 1
    x, acc = 2, 2
    for k in range(1, 257):
        acc = _polymod(_clmul_naive(acc, acc), f)
        if k == 128:
            assert _polygcd(f, acc ^ x) == 1
    assert acc == x


def test_gf_mul_and_inner_product_match_schoolbook():
    f = (1 << 256) | (1 << 10) | (1 << 5) | (1 << 2) | 1
    for _ in range(20):
        a, b = secrets.randbits(256), secrets.randbits(256)
        assert gf2.clmul(a, b) == _clmul_naive(a, b)
        assert gf2.gf_mul(a, b) == _polymod(_clmul_naive(a, b), f)
    m = 40
    cols = [secrets.randbits(m) for _ in range(256)]
    mat = gf2.BitMatrix.from_columns(cols, m)
    raw = secrets.token_bytes(32 * m)
    chis = [int.from_bytes(raw[32 * j : 32 * j + 32], "little") for j in range(m)]
    expect = 0
    for j in range(m):
        row = sum(((cols[i] >> j) & 1) << i for i in range(256))
        assert mat.row(j) == row and mat.row_bytes(j) == row.to_bytes(32, "little")
        expect ^= _clmul_naive(chis[j], row)
    assert gf2.inner_product(raw, mat) == _polymod(expect, f)


def _rows_naive(cols: list[int], m: int) -> list[int]:
    return [sum(((cols[i] >> j) & 1) << i for i in range(256)) for j in range(m)]


@pytest.mark.parametrize("m", [8, 255, 256, 257, 520, 752])
def test_transpose_and_inner_product_across_block_boundaries(m):
    # the transpose works on 256 x 256 blocks (row 256 b + c is word c * blocks + b): sizes on and off the block
    # edges, and the extreme inputs: all-ones rows and challenges give the largest slot sums a spread product holds
    f = (1 << 256) | (1 << 10) | (1 << 5) | (1 << 2) | 1
    for fill in ("random", "ones"):
        cols = [secrets.randbits(m) if fill == "random" else (1 << m) - 1 for _ in range(256)]
        raw = secrets.token_bytes(32 * m) if fill == "random" else b"\xff" * (32 * m)
        mat = gf2.BitMatrix.from_columns(cols, m)
        rows = _rows_naive(cols, m)
        assert [mat.row(j) for j in range(m)] == rows
        delta = secrets.randbits(256)
        assert mat.rows_bytes(m, delta) == [(r ^ delta).to_bytes(32, "little") for r in rows]
        assert mat.rows_bytes(m // 2) == [r.to_bytes(32, "little") for r in rows[: m // 2]]
        expect = 0
        for j in range(m):
            expect ^= _clmul_naive(int.from_bytes(raw[32 * j : 32 * j + 32], "little"), rows[j])
        assert gf2.inner_product(raw, mat) == _polymod(expect, f)
    top = (1 << 256) - 1
    assert gf2.clmul(top, top) == _clmul_naive(top, top) and gf2.clmul(1 << 255, top) == top << 255


def test_bit_matrix_refuses_bad_shapes():
    with pytest.raises(ValueError):
        gf2.BitMatrix.from_columns([0] * 255, 8)
    with pytest.raises(ValueError):
        gf2.BitMatrix.from_columns([1 << 8] + [0] * 255, 8)  # a column wider than m
    mat = gf2.BitMatrix.from_columns([0] * 256, 8)
    with pytest.raises(ValueError):
        gf2.inner_product(bytes(32 * 7), mat)
    with pytest.raises(IndexError):
        mat.row_bytes(8)


# --- base OT -----------------------------------------------------------------------------------------------------


def _wire(msg, tp):
    return decode(encode(msg), tp)


def _base_ot(sid=b"sid", s=S, r=R, count=KAPPA):
    snd, rcv = BaseOTSender(sid, s, r, count), BaseOTReceiver(sid, r, s, count)
    m2 = rcv.message2(_wire(snd.message1(), bo.BaseOTMsg1))
    m4 = rcv.message4(_wire(snd.message3(_wire(m2, bo.BaseOTMsg2)), bo.BaseOTMsg3))
    rcv.finish(_wire(snd.message5(_wire(m4, bo.BaseOTMsg4)), bo.BaseOTMsg5))
    return snd, rcv


def test_base_ot_gives_the_chosen_pad_only():
    snd, rcv = _base_ot()
    pads0, pads1 = snd.output()
    choices, got = rcv.output()
    assert len(got) == KAPPA and 0 < choices < 1 << KAPPA
    for i in range(KAPPA):
        bit = (choices >> i) & 1
        assert got[i] == (pads1 if bit else pads0)[i] and got[i] != (pads0 if bit else pads1)[i]
    assert len(set(pads0 + pads1)) == 2 * KAPPA


def test_base_ot_pads_bound_to_session_and_pair():
    a, _ = _base_ot(b"one", count=8)
    b, _ = _base_ot(b"two", count=8)
    c, _ = _base_ot(b"one", s=3, r=R, count=8)
    pads = [set(x.output()[0] + x.output()[1]) for x in (a, b, c)]
    assert not (pads[0] & pads[1]) and not (pads[0] & pads[2])


def _run_until(step: int, tamper, count=16):
    """Run a base OT where `tamper(step, msg)` may replace the message of that step (1..5)."""
    snd, rcv = BaseOTSender(b"sid", S, R, count), BaseOTReceiver(b"sid", R, S, count)
    m = tamper(1, snd.message1())
    m = tamper(2, rcv.message2(m))
    m = tamper(3, snd.message3(m))
    m = tamper(4, rcv.message4(m))
    m = tamper(5, snd.message5(m))
    rcv.finish(m)


def _at(step, change):
    return lambda k, msg: change(msg) if k == step else msg


def test_base_ot_identity_b_refused():
    with _expect_abort("base_ot.point_b", S, R):
        _run_until(1, _at(1, lambda m: bo.BaseOTMsg1(Point.identity(), m.proof)))


def test_base_ot_off_curve_point_refused_by_decoder():
    msg = BaseOTSender(b"sid", S, R, 4).message1()
    raw = bytearray(encode(msg))
    at = bytes(raw).index(msg.b_pub.to_bytes())  # find B inside the payload and replace it by an off-curve x
    bad = b"\x02" + (7).to_bytes(32, "big")  # x = 7: x^3 + 7 = 350 is not a square mod p
    raw[at : at + 33] = bad
    with pytest.raises(WireError):
        decode(bytes(raw), bo.BaseOTMsg1)


def test_base_ot_wrong_dlog_proof_refused():
    other = schnorr.prove(Transcript("not-the-base-ot"), 5, Point.base_mul(5))  # a valid proof, for another context
    with _expect_abort("base_ot.dlog_proof", S, R):
        _run_until(1, _at(1, lambda m: bo.BaseOTMsg1(m.b_pub, other)))


def test_base_ot_identity_a_refused():
    def change(m):
        return bo.BaseOTMsg2([Point.identity()] + m.a_pubs[1:])

    with _expect_abort("base_ot.point_a", R, S):
        _run_until(2, _at(2, change))


def test_base_ot_wrong_response_refused():
    def change(m):
        return bo.BaseOTMsg4([bytes(32)] + m.responses[1:])

    with _expect_abort("base_ot.response", R, S):
        _run_until(4, _at(4, change))


@pytest.mark.parametrize("which", [0, 1])
def test_base_ot_wrong_opening_refused(which):
    def change(m):
        o = [list(m.openings0), list(m.openings1)]
        o[which][3] = secrets.token_bytes(32)
        return bo.BaseOTMsg5(*o)

    with _expect_abort("base_ot.opening", S, R):
        _run_until(5, _at(5, change))


@pytest.mark.parametrize("step", [2, 3, 4, 5])
def test_base_ot_short_message_refused(step):
    def change(m):
        field = {2: "a_pubs", 3: "challenges", 4: "responses", 5: "openings0"}[step]
        return dataclasses.replace(m, **{field: getattr(m, field)[:-1]})

    culprit, reporter = (R, S) if step in (2, 4) else (S, R)
    with _expect_abort("base_ot.shape", culprit, reporter):
        _run_until(step, _at(step, change))


def test_base_ot_secrets_not_in_repr_or_pickle():
    snd, rcv = _base_ot(count=4)
    for obj in (snd, rcv):
        assert "redacted" in repr(obj)
        with pytest.raises(TypeError):
            pickle.dumps(obj)


# --- KOS extension -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair():
    """(receiver setup of party 1 toward 2, sender setup of party 2 toward 1) from a real base OT."""
    snd, rcv = _base_ot(b"setup")
    seeds0, seeds1 = snd.output()
    delta, pads = rcv.output()
    return lambda: (OTEReceiverSetup(b"setup", S, R, seeds0, seeds1), OTESenderSetup(b"setup", R, S, delta, pads))


def test_extension_gives_random_ots(pair):
    rs, ss = pair()
    msg, rext = rs.extend(b"e1", 64)
    sext = ss.extend(b"e1", _wire(msg, ExtensionMessage), 64)
    v0, v1 = sext.pads(3)
    got = rext.pads(3)
    for j in range(64):
        assert got[j] == (v1 if (rext.choices >> j) & 1 else v0)[j] != (v0 if (rext.choices >> j) & 1 else v1)[j]
    msg2, rext2 = rs.extend(b"e2", 64)
    assert not set(map(tuple, rext2.pads(3))) & set(map(tuple, got))  # fresh pads per extension id


@pytest.mark.parametrize("count", [64, 184])  # 2 and 3 blocks of 256 rows
def test_extension_matches_the_bitwise_definition(pair, monkeypatch, count):
    """The batched code computes exactly KOS as the module docstring writes it: u, x~, t~ of the receiver, the
    sender's check and the output hashes, recomputed here bit by bit for a fixed x."""
    rs, ss = pair()
    m = count + PAD_ROWS
    nb = m // 8
    x = secrets.randbits(m)
    fresh = secrets.randbits
    monkeypatch.setattr(kos.secrets, "randbits", lambda n: x if n == m else fresh(n))
    msg, rext = rs.extend(b"ref", count)
    ctx = extension_context(rs.setup_id, rs.peer, rs.me, b"ref")
    ts = [int.from_bytes(_prg(k0, ctx, i, nb), "little") for i, k0 in enumerate(rs._seeds0)]
    us = [t ^ int.from_bytes(_prg(k1, ctx, i, nb), "little") ^ x for i, (t, k1) in enumerate(zip(ts, rs._seeds1))]
    assert msg.u == [u.to_bytes(nb, "little") for u in us]
    raw = _challenges(ctx, msg.u, m)
    chi = [int.from_bytes(raw[32 * j : 32 * j + 32], "little") for j in range(m)]
    rows = _rows_naive(ts, m)
    x_tilde = t_tilde = 0
    for j in range(m):
        t_tilde ^= gf2.gf_mul(chi[j], rows[j])
        x_tilde ^= chi[j] if (x >> j) & 1 else 0
    assert (msg.x_tilde, msg.t_tilde) == (x_tilde.to_bytes(32, "little"), t_tilde.to_bytes(32, "little"))
    assert rext.choices == x & ((1 << count) - 1)

    def row_pads(row: int, j: int) -> list[int]:
        out = hashlib.shake_256(b"dkls23/ote/row" + ctx + j.to_bytes(4, "big") + row.to_bytes(32, "little"))
        digest = out.digest(48 * 3)
        return [int.from_bytes(digest[48 * k : 48 * k + 48], "big") % Q for k in range(3)]

    assert rext.pads(3) == [row_pads(rows[j], j) for j in range(count)]
    flat = rext.pad_values(3)  # unreduced, congruent entry by entry
    assert [v % Q for v in flat] == [v for row in rext.pads(3) for v in row] and max(flat) < 1 << 384
    v0, v1 = ss.extend(b"ref", msg, count).pads(3)
    delta = ss._delta
    q_rows = [r ^ (delta if (x >> j) & 1 else 0) for j, r in enumerate(rows)]
    assert v0 == [row_pads(q_rows[j], j) for j in range(count)]
    assert v1 == [row_pads(q_rows[j] ^ delta, j) for j in range(count)]


def _cheating_extension(rs: OTEReceiverSetup, ext_id: bytes, count: int, column: int, row: int, guess: int):
    """A receiver who puts the other choice bit into one (row, column) cell, to learn Delta_column from the outcome,
    and corrects t~ for its guess of Delta_column. Honest otherwise."""
    m = count + PAD_ROWS
    nb = m // 8
    ctx = extension_context(rs.setup_id, rs.peer, rs.me, ext_id)
    x = secrets.randbits(m)
    ts, u = [], []
    for i, (k0, k1) in enumerate(zip(rs._seeds0, rs._seeds1)):
        t = int.from_bytes(_prg(k0, ctx, i, nb), "little")
        ts.append(t)
        xi = x ^ (1 << row) if i == column else x
        u.append((t ^ int.from_bytes(_prg(k1, ctx, i, nb), "little") ^ xi).to_bytes(nb, "little"))
    raw = _challenges(ctx, u, m)
    chi = [int.from_bytes(raw[32 * j : 32 * j + 32], "little") for j in range(m)]
    x_tilde = t_tilde = 0
    for j in range(m):
        rowbits = sum(((ts[i] >> j) & 1) << i for i in range(KAPPA))
        t_tilde ^= gf2.gf_mul(chi[j], rowbits)
        if (x >> j) & 1:
            x_tilde ^= chi[j]
    if guess:  # q_row gains Delta_column at bit `column`: add chi_row * x^column times the guessed bit
        t_tilde ^= gf2.gf_mul(chi[row], 1 << column)
    return ExtensionMessage(u, x_tilde.to_bytes(32, "little"), t_tilde.to_bytes(32, "little"))


@pytest.mark.parametrize("right_guess", [False, True])
def test_selective_failure_attack_caught_unless_delta_guessed(pair, right_guess):
    rs, ss = pair()
    column, row = 17, 5
    delta_bit = (ss._delta >> column) & 1
    guess = delta_bit if right_guess else 1 - delta_bit
    msg = _cheating_extension(rs, b"attack", 64, column, row, guess)
    if right_guess:
        ss.extend(b"attack", msg, 64)  # the known 2^-1 leak of one Delta bit per guessed bit (KOS section 4)
        return
    with _expect_abort("ote.kos_check", S, R):
        ss.extend(b"attack", msg, 64)
    with _expect_abort("ote.retired", S, R):  # no second guess with the same Delta
        ss.extend(b"after", rs.extend(b"after", 64)[0], 64)


@pytest.mark.parametrize("field", ["x_tilde", "t_tilde", "u"])
def test_extension_tampered_check_values_refused(pair, field):
    rs, ss = pair()
    msg, _ = rs.extend(b"t", 64)
    if field == "u":
        bad = ExtensionMessage([bytes([msg.u[0][0] ^ 1]) + msg.u[0][1:]] + msg.u[1:], msg.x_tilde, msg.t_tilde)
    else:
        val = bytearray(getattr(msg, field))
        val[0] ^= 1
        bad = ExtensionMessage(msg.u, **{"x_tilde": msg.x_tilde, "t_tilde": msg.t_tilde, field: bytes(val)})
    with _expect_abort("ote.kos_check", S, R):
        ss.extend(b"t", bad, 64)


def test_extension_wrong_session_or_shape_refused(pair):
    rs, ss = pair()
    msg, _ = rs.extend(b"session-a", 64)
    with _expect_abort("ote.kos_check", S, R):  # a message of another extension id does not pass as this one
        ss.extend(b"session-b", msg, 64)
    rs, ss = pair()
    msg, _ = rs.extend(b"s", 64)
    with _expect_abort("ote.shape", S, R):
        ss.extend(b"s", ExtensionMessage(msg.u[:-1], msg.x_tilde, msg.t_tilde), 64)


def test_extension_id_single_use(pair):
    rs, ss = pair()
    msg, _ = rs.extend(b"once", 64)
    with pytest.raises(InvalidInput):
        rs.extend(b"once", 64)
    ss.extend(b"once", msg, 64)
    with pytest.raises(InvalidInput):
        ss.extend(b"once", msg, 64)


def test_setup_serialisation_and_secrecy(pair):
    rs, ss = pair()
    rs2 = OTEReceiverSetup.from_secret_bytes(rs.to_secret_bytes())
    ss2 = OTESenderSetup.from_secret_bytes(ss.to_secret_bytes())
    msg, rext = rs2.extend(b"ser", 64)
    v0, v1 = ss2.extend(b"ser", msg, 64).pads(1)
    assert rext.pads(1)[0] == (v1 if rext.choices & 1 else v0)[0]
    for obj in (rs, ss, rext):
        assert "redacted" in repr(obj) and "redacted" in str(obj)
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    with pytest.raises(InvalidInput):
        OTESenderSetup.from_secret_bytes(rs.to_secret_bytes())


def test_fresh_copy_is_the_setup_as_stored(pair):
    """`fresh` (a holder's per-session copy of its parsed setup): the same correlation, its own empty record of
    used extension ids, not retired; the original keeps its own record."""
    rs, ss = pair()
    rs.extend(b"used", 64)
    rs2, ss2 = rs.fresh(), ss.fresh()
    assert type(rs2) is OTEReceiverSetup and rs2.to_secret_bytes() == rs.to_secret_bytes()
    msg, rext = rs2.extend(b"used", 64)  # unused in the copy
    v0, v1 = ss2.extend(b"used", msg, 64).pads(1)
    assert rext.pads(1)[0] == (v1 if rext.choices & 1 else v0)[0]
    with pytest.raises(InvalidInput, match="already used"):
        rs.extend(b"used", 64)
    with _expect_abort("ote.kos_check", S, R):
        ss2.extend(b"bad", _cheating_extension(rs, b"bad", 64, 3, 2, 1 - ((ss._delta >> 3) & 1)), 64)
    with _expect_abort("ote.retired", S, R):
        ss2.extend(b"after", rs.extend(b"after", 64)[0], 64)
    assert ss.fresh()._retired is False  # the retirement that lasts is the node's, in its stored record


def test_ot_and_dkls23_modules_stay_below_the_runtime():
    paths = sorted((ROOT / "mpc_ray" / "crypto" / "ot").glob("*.py")) + sorted(
        (ROOT / "mpc_ray" / "protocols" / "dkls23").glob("*.py")
    )
    assert len(paths) >= 7
    bad = [f"{p.name}:{line} {name}" for p in paths for name, line in _imports(p) if any(_under(name, f) for f in FORBIDDEN)]
    assert not bad, bad

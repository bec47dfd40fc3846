"""KOS OT extension (Keller, Orsini, Scholl, CRYPTO 2015, "Actively Secure OT Extension with Optimal Overhead") with
its consistency check: the correlated-OT functionality F_COTe that the DKLs19/DKLs23 multiplication runs on.

Statement: from KAPPA base OTs run once per pair and direction (the extension receiver was the base-OT sender, with
seed pairs k0_i, k1_i; the extension sender was the base-OT receiver, with choice bits Delta and k{Delta_i}_i), one
message from the receiver extends to `count` random OTs: the receiver, with random choice bits x_j, ends with
v{x_j}_j; the sender ends with v0_j, v1_j in Z_q^width; neither learns more, except that a cheating receiver who
passes the check with probability 2^-c learns c bits of Delta (KOS section 4), which the KAPPA = 256 bits of Delta
absorb.

    receiver: m = count + KAPPA + STAT rows; t^i = PRG(k0_i), u^i = t^i xor PRG(k1_i) xor x  (columns, m bits)
              chi_j = H(context, u) in GF(2^256);  x~ = sum_j x_j chi_j,  t~ = sum_j chi_j t_j  (rows t_j)
    sender:   q^i = PRG(k{Delta_i}_i) xor Delta_i u^i, so row q_j = t_j xor x_j Delta;
              check sum_j chi_j q_j == t~ + x~ Delta                               ("dkls23.ote.kos_check")
    outputs:  v0_j = H(context, j, q_j), v1_j = H(context, j, q_j xor Delta); the receiver's H(context, j, t_j)

The check is what stops the selective-failure attack: a receiver who puts a different choice bit into some columns
of a row (to learn a bit of Delta from whether the multiplication later fails) breaks the linear relation unless he
guesses those bits of Delta. The KAPPA + STAT extra rows have random choice bits and are thrown away: they hide the
real choice bits in x~. The challenges chi come from a hash of u (Fiat-Shamir), so the receiver fixes u first.

Every PRG call and output hash is bound to (setup id, sender, receiver, extension id, column or row): no two
extensions of one setup, two pairs or two directions share a pad. An extension id is refused the second time in a
setup object (reusing one would give the sender u xor u' = x xor x', and the receiver tau - tau' = alpha - alpha');
the node layer must give every extension a fresh id across restarts too (a presignature id is). A sender whose check
failed retires the setup: every later extension with it is refused (a new base-OT setup is needed), so a cheating
receiver cannot keep guessing bits of Delta.
"""

from __future__ import annotations

import hashlib
import operator
import secrets
from dataclasses import dataclass
from functools import reduce
from typing import Self

from ...errors import InvalidInput
from ..secp256k1 import Q
from . import gf2
from ._common import SEED_BYTES, SecretHolder, abort, hash_parts, u32
from .base_ot import KAPPA

STAT = 80  # statistical security parameter s (DKLs19 section 5 uses s = 80)
PAD_ROWS = KAPPA + STAT  # KOS: m' = m + kappa + s rows, the extra ones only to mask x~
MAX_COUNT = 8192  # OTs per extension: bounds the matrices (34 blocks of 256 rows at most) and their cost
_SCALAR_BYTES = 48  # 384 bits reduced mod q: bias below 2^-128
_SECRET_VERSION = 1
_SCALAR_BITS = 8 * _SCALAR_BYTES
_TWO_SCALARS = 2 * _SCALAR_BITS
_SCALAR_MASK = (1 << _SCALAR_BITS) - 1


@dataclass(frozen=True)
class ExtensionMessage:
    """Receiver -> sender: the KAPPA columns u^i (m bits each, little-endian), x~ and t~ (32 bytes each)."""

    u: list[bytes]
    x_tilde: bytes
    t_tilde: bytes


def extension_context(setup_id: bytes, sender: int, receiver: int, ext_id: bytes) -> bytes:
    """What every PRG call and output hash of one extension is bound to."""
    return hash_parts(b"dkls23/ote/context", setup_id, u32(sender), u32(receiver), ext_id)


def _prg(seed: bytes, ctx: bytes, column: int, nbytes: int) -> bytes:
    return hashlib.shake_256(b"dkls23/ote/prg" + seed + ctx + u32(column)).digest(nbytes)


def _columns(chunks: list[bytes], nbytes: int, m: int) -> int:
    """KAPPA columns of `nbytes` bytes as one int, each padded to the width `gf2.BitMatrix` takes."""
    pad = bytes(gf2.FIELD_BITS * gf2.blocks(m) // 8 - nbytes)
    return int.from_bytes(pad.join(chunks) + pad, "little")


def _challenges(ctx: bytes, u: list[bytes], m: int) -> bytes:
    h = hashlib.shake_256(b"dkls23/ote/chi" + ctx)
    for column in u:
        h.update(column)
    return h.digest(32 * m)


def _row_digests(ctx: bytes, rows: list[bytes], width: int) -> list[bytes]:
    """H(context, j, row_j) for every row: `width` 48-byte blocks, each a scalar before reduction mod q."""
    prefix, n = b"dkls23/ote/row" + ctx, _SCALAR_BYTES * width
    shake = hashlib.shake_256
    return [shake(prefix + j.to_bytes(4, "big") + row).digest(n) for j, row in enumerate(rows)]


def _int_be(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _scalars(digests: list[bytes]) -> list[int]:
    """The digests' 48-byte blocks as big-endian ints below 2^384, row after row, not reduced mod q: callers that
    only add and multiply reduce once at the end."""
    if not digests or len(digests[0]) != 3 * _SCALAR_BYTES:
        raw = b"".join(digests)
        return [int.from_bytes(raw[k : k + _SCALAR_BYTES], "big") for k in range(0, len(raw), _SCALAR_BYTES)]
    out: list[int] = []  # width 3 (DKLs23's ELL + RHO): one conversion per row, then shifts
    for v in map(_int_be, digests):
        out += (v >> _TWO_SCALARS, (v >> _SCALAR_BITS) & _SCALAR_MASK, v & _SCALAR_MASK)
    return out


def _nested(values: list[int], width: int) -> list[list[int]]:
    return [[v % Q for v in values[k : k + width]] for k in range(0, len(values), width)]


def _check_count(count: object) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0 or count % 8 or count > MAX_COUNT:
        raise InvalidInput(f"count must be a positive multiple of 8, at most {MAX_COUNT}")
    return count


def _check_ext_id(ext_id: object) -> bytes:
    if not isinstance(ext_id, (bytes, bytearray)) or not ext_id:
        raise InvalidInput("extension id must be non-empty bytes")
    return bytes(ext_id)


def _pack_seeds(seeds: list[bytes]) -> bytes:
    return b"".join(seeds)


def _unpack_seeds(data: bytes) -> list[bytes]:
    return [data[SEED_BYTES * i : SEED_BYTES * (i + 1)] for i in range(KAPPA)]


class _Setup(SecretHolder):
    __slots__ = ("setup_id", "me", "peer", "_used", "_retired")

    def _init(self, setup_id: bytes, me: int, peer: int) -> None:
        if not isinstance(setup_id, (bytes, bytearray)) or not setup_id or len(setup_id) > 255:
            raise InvalidInput("setup id must be 1 to 255 bytes")
        for v in (me, peer):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v < 2**32:
                raise InvalidInput("parties must be integers in [1, 2**32)")
        if me == peer:
            raise InvalidInput("an OT extension needs two distinct parties")
        self.setup_id, self.me, self.peer = bytes(setup_id), me, peer
        self._used: set[bytes] = set()
        self._retired = False

    def fresh(self) -> Self:
        """This setup as stored: the same (checked, never changed) seeds, no extension id used, not retired (a node
        keeps both durably)."""
        new = object.__new__(type(self))
        for cls in type(self).__mro__:
            for name in getattr(cls, "__slots__", ()):
                setattr(new, name, getattr(self, name))
        new._used, new._retired = set(), False
        return new

    def _claim(self, ext_id: bytes) -> None:
        if self._retired:
            raise abort(self.peer, "ote.retired", self.me, "this setup failed a check before; run a new setup")
        if ext_id in self._used:
            raise InvalidInput("extension id already used with this setup")
        self._used.add(ext_id)

    def _header(self, kind: int) -> bytes:
        return bytes([_SECRET_VERSION, kind, len(self.setup_id)]) + self.setup_id + u32(self.me) + u32(self.peer)

    @staticmethod
    def _parse_header(data: bytes, kind: int) -> tuple[bytes, int, int, bytes]:
        if not isinstance(data, (bytes, bytearray)) or len(data) < 3 or data[0] != _SECRET_VERSION or data[1] != kind:
            raise InvalidInput("not a serialized OT-extension setup of this kind")
        n = data[2]
        setup_id, rest = bytes(data[3 : 3 + n]), bytes(data[3 + n :])
        if len(rest) < 8:
            raise InvalidInput("truncated OT-extension setup")
        return setup_id, int.from_bytes(rest[:4], "big"), int.from_bytes(rest[4:8], "big"), rest[8:]


class OTESenderSetup(_Setup):
    """The extension sender's long-term state toward `peer`: Delta (its base-OT choice bits) and k{Delta_i}_i."""

    __slots__ = ("_delta", "_seeds")

    def __init__(self, setup_id: bytes, me: int, peer: int, delta: int, seeds: list[bytes]) -> None:
        self._init(setup_id, me, peer)
        if not isinstance(delta, int) or not 0 <= delta < 1 << KAPPA:
            raise InvalidInput("delta must be a KAPPA-bit integer")
        if len(seeds) != KAPPA or any(not isinstance(s, bytes) or len(s) != SEED_BYTES for s in seeds):
            raise InvalidInput("need KAPPA seeds of 32 bytes")
        self._delta, self._seeds = delta, list(seeds)

    def to_secret_bytes(self) -> bytes:
        """For the node's encrypted store only."""
        return self._header(1) + self._delta.to_bytes(KAPPA // 8, "big") + _pack_seeds(self._seeds)

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> "OTESenderSetup":
        setup_id, me, peer, rest = cls._parse_header(data, 1)
        if len(rest) != KAPPA // 8 + KAPPA * SEED_BYTES:
            raise InvalidInput("malformed OT-extension sender setup")
        return cls(setup_id, me, peer, int.from_bytes(rest[: KAPPA // 8], "big"), _unpack_seeds(rest[KAPPA // 8 :]))


    def extend(self, ext_id: bytes, msg: ExtensionMessage, count: int) -> "SenderExtension":
        """Check the receiver's message for extension `ext_id` and return the sender's `count` random OTs."""
        count, ext_id = _check_count(count), _check_ext_id(ext_id)
        self._claim(ext_id)
        m = count + PAD_ROWS
        nbytes = m // 8
        if (
            not isinstance(msg, ExtensionMessage)
            or not isinstance(msg.u, list)
            or len(msg.u) != KAPPA
            or any(not isinstance(c, bytes) or len(c) != nbytes for c in msg.u)
            or not isinstance(msg.x_tilde, bytes)
            or not isinstance(msg.t_tilde, bytes)
            or len(msg.x_tilde) != 32
            or len(msg.t_tilde) != 32
        ):
            raise abort(self.peer, "ote.shape", self.me, f"expected {KAPPA} columns of {nbytes} bytes")
        ctx = extension_context(self.setup_id, self.me, self.peer, ext_id)
        delta = self._delta
        width = gf2.FIELD_BITS * gf2.blocks(m) // 8
        ones, zeros = b"\xff" * width, bytes(width)
        delta_mask = int.from_bytes(b"".join(ones if (delta >> i) & 1 else zeros for i in range(KAPPA)), "little")
        # q^i = PRG(k{Delta_i}_i) xor Delta_i u^i, every column at once
        prgs = [_prg(seed, ctx, i, nbytes) for i, seed in enumerate(self._seeds)]
        rows = gf2.BitMatrix(_columns(prgs, nbytes, m) ^ (_columns(msg.u, nbytes, m) & delta_mask), m)
        lhs = gf2.inner_product(_challenges(ctx, msg.u, m), rows)
        x_tilde = int.from_bytes(msg.x_tilde, "little")
        rhs = int.from_bytes(msg.t_tilde, "little") ^ gf2.gf_mul(x_tilde, delta)
        if lhs != rhs:
            self._retired = True
            raise abort(self.peer, "ote.kos_check", self.me, "the extension's rows are not one correlation")
        return SenderExtension(ctx, rows, delta, count)


class OTEReceiverSetup(_Setup):
    """The extension receiver's long-term state toward `peer`: the base-OT seed pairs k0_i, k1_i."""

    __slots__ = ("_seeds0", "_seeds1")

    def __init__(self, setup_id: bytes, me: int, peer: int, seeds0: list[bytes], seeds1: list[bytes]) -> None:
        self._init(setup_id, me, peer)
        for seeds in (seeds0, seeds1):
            if len(seeds) != KAPPA or any(not isinstance(s, bytes) or len(s) != SEED_BYTES for s in seeds):
                raise InvalidInput("need KAPPA seeds of 32 bytes")
        self._seeds0, self._seeds1 = list(seeds0), list(seeds1)

    def to_secret_bytes(self) -> bytes:
        """For the node's encrypted store only."""
        return self._header(2) + _pack_seeds(self._seeds0) + _pack_seeds(self._seeds1)

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> "OTEReceiverSetup":
        setup_id, me, peer, rest = cls._parse_header(data, 2)
        if len(rest) != 2 * KAPPA * SEED_BYTES:
            raise InvalidInput("malformed OT-extension receiver setup")
        half = KAPPA * SEED_BYTES
        return cls(setup_id, me, peer, _unpack_seeds(rest[:half]), _unpack_seeds(rest[half:]))


    def extend(self, ext_id: bytes, count: int) -> tuple[ExtensionMessage, "ReceiverExtension"]:
        """Start extension `ext_id`: `count` random OTs with fresh random choice bits; the message goes to the peer."""
        count, ext_id = _check_count(count), _check_ext_id(ext_id)
        self._claim(ext_id)
        m = count + PAD_ROWS
        nbytes = m // 8
        x = secrets.randbits(m)
        ctx = extension_context(self.setup_id, self.peer, self.me, ext_id)
        # t^i = PRG(k0_i), u^i = t^i xor PRG(k1_i) xor x, every column at once
        t = _columns([_prg(k0, ctx, i, nbytes) for i, k0 in enumerate(self._seeds0)], nbytes, m)
        t1 = _columns([_prg(seed, ctx, i, nbytes) for i, seed in enumerate(self._seeds1)], nbytes, m)
        width = gf2.FIELD_BITS * gf2.blocks(m) // 8
        x_cols = _columns([x.to_bytes(nbytes, "little")] * KAPPA, nbytes, m)
        u_raw = (t ^ t1 ^ x_cols).to_bytes(KAPPA * width, "little")
        u = [u_raw[width * i : width * i + nbytes] for i in range(KAPPA)]
        rows = gf2.BitMatrix(t, m)
        chi_raw = _challenges(ctx, u, m)
        x_bits = format(x, f"0{m}b")[::-1]  # x_bits[j] = x_j
        x_tilde = reduce(operator.xor, (int.from_bytes(chi_raw[32 * j : 32 * (j + 1)], "little")
                                        for j, bit in enumerate(x_bits) if bit == "1"), 0)
        t_tilde = gf2.inner_product(chi_raw, rows)
        msg = ExtensionMessage(u, x_tilde.to_bytes(32, "little"), t_tilde.to_bytes(32, "little"))
        return msg, ReceiverExtension(ctx, rows, x & ((1 << count) - 1), count)


class SenderExtension(SecretHolder):
    """The sender's side of `count` random OTs that passed the check."""

    __slots__ = ("context", "_rows", "_delta", "count")

    def __init__(self, context: bytes, rows: gf2.BitMatrix, delta: int, count: int) -> None:
        self.context, self._rows, self._delta, self.count = context, rows, delta, count

    def pad_values(self, width: int) -> tuple[list[int], list[int]]:
        """(v0, v1) flat: entry width j + k is scalar k of row j, below 2^384 and not reduced mod q."""
        rows = self._rows
        return (_scalars(_row_digests(self.context, rows.rows_bytes(self.count), width)),
                _scalars(_row_digests(self.context, rows.rows_bytes(self.count, self._delta), width)))

    def pads(self, width: int) -> tuple[list[list[int]], list[list[int]]]:
        """(v0_j, v1_j) in Z_q^width for j < count."""
        v0, v1 = self.pad_values(width)
        return _nested(v0, width), _nested(v1, width)


class ReceiverExtension(SecretHolder):
    """The receiver's side: its choice bits (bit j = x_j) and v{x_j}_j."""

    __slots__ = ("context", "_rows", "choices", "count")

    def __init__(self, context: bytes, rows: gf2.BitMatrix, choices: int, count: int) -> None:
        self.context, self._rows, self.choices, self.count = context, rows, choices, count

    def pad_values(self, width: int) -> list[int]:
        """v{x_j}_j flat: entry width j + k is scalar k of row j, below 2^384 and not reduced mod q."""
        return _scalars(_row_digests(self.context, self._rows.rows_bytes(self.count), width))

    def pads(self, width: int) -> list[list[int]]:
        """v{x_j}_j in Z_q^width for j < count."""
        return _nested(self.pad_values(width), width)

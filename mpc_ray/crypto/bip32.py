"""BIP32 public (non-hardened) key derivation over secp256k1: CKDpub, paths, extended public keys.

A threshold key is an extended public key (the group's public key and a chain code made jointly at key generation,
see `protocols/ecdsa/keygen.py` and `protocols/frost/dkg.py`). Every child of it is

    I = HMAC-SHA512(key = c_par, data = serP(K_par) || ser32(i)),  IL = I[:32], c_i = I[32:]
    K_i = K_par + IL G                                   (BIP32 CKDpub, i < 2^31)

so along a path the child public key is K + tweak G with tweak = sum of the IL values: the child's secret key is
x + tweak, a public additive tweak of the shared secret x. No party ever holds x, so hardened indices (which need
the parent private key) are refused with `InvalidInput`, and a child private key is never formed either (with the
chain code public, one child private key would reveal the master key: BIP32's known property of non-hardened
derivation; here children are only ever threshold-shared, like the master).

BIP340 (x-only) keys. A BIP340 key is published as 32 bytes x(P) and its secret is taken with even Y. We derive
from the even-Y lift of the published key, i.e. from the 33-byte key 0x02 || x(P), exactly as a standard BIP32
implementation does when handed that compressed key and the chain code; every level of the path then works on full
points with their own parity (as BIP32 does), and only the final child point is turned into its x-only key
x(K_path). So `derive_bip340(x(P), c, path).xonly` equals what bip-utils (or any BIP32 library) derives from
(02 || x(P), c) on the same path, followed by dropping the parity byte. The signing side applies the same
convention (the child key is even-Y normalised again at signing time, like BIP340 does for any key).

If an IL is >= the group order or a child point is the identity (probability about 2^-127 per level), BIP32 says to
skip to the next index; we refuse the path instead (`InvalidInput`), so a path always names one key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Sequence

from ..errors import InvalidInput, MpcError
from .secp256k1 import Q, Point

__all__ = [
    "HARDENED",
    "MAX_DEPTH",
    "ChildKey",
    "ckd_pub",
    "derive",
    "derive_bip340",
    "format_path",
    "lift_x",
    "parse_path",
]

HARDENED = 1 << 31
MAX_DEPTH = 255  # BIP32 serialises the depth in one byte
XPUB_VERSION = bytes.fromhex("0488B21E")  # mainnet xpub
CHAIN_CODE_BYTES = 32


# paths ------------------------------------------------------------------------------------------------------
def parse_path(path: str | Sequence[int]) -> tuple[int, ...]:
    """ "m/0/7" (or a sequence of indices) -> (0, 7). Only canonical, non-hardened paths are accepted:
    "m" then "/"-separated decimal indices below 2^31 without sign, spaces or leading zeros; "m" alone is the
    master key. Hardened components ("0'", "0h", indices >= 2^31) raise InvalidInput: no party holds the key."""
    if isinstance(path, str):
        if path == "m":
            return ()
        if not path.startswith("m/"):
            raise InvalidInput("a derivation path starts with 'm/' (or is 'm' for the master key)")
        out = []
        for part in path[2:].split("/"):
            if part[-1:] in ("'", "h", "H"):
                raise InvalidInput("hardened derivation needs the parent private key, which no party holds")
            if not part or not part.isascii() or not part.isdigit() or (len(part) > 1 and part[0] == "0"):
                raise InvalidInput("path components are decimal indices without sign or leading zeros")
            out.append(int(part))
        indices = tuple(out)
    elif isinstance(path, (list, tuple)):
        indices = tuple(path)
        if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in indices):
            raise InvalidInput("path indices are non-negative integers")
    else:
        raise InvalidInput("a derivation path is a string like 'm/0/7' or a sequence of indices")
    if any(i >= HARDENED for i in indices):
        raise InvalidInput("hardened derivation needs the parent private key, which no party holds")
    if len(indices) > MAX_DEPTH:
        raise InvalidInput(f"a path has at most {MAX_DEPTH} levels")
    return indices


def format_path(indices: Sequence[int]) -> str:
    """(0, 7) -> "m/0/7"; () -> "m". The canonical form `parse_path` accepts back."""
    return "/".join(["m", *(str(i) for i in parse_path(tuple(indices)))])


# one step -------------------------------------------------------------------------------------------------
def _check_chain_code(chain_code: bytes) -> bytes:
    if not isinstance(chain_code, (bytes, bytearray)) or len(chain_code) != CHAIN_CODE_BYTES:
        raise InvalidInput("a chain code is 32 bytes (this key may predate HD support)")
    return bytes(chain_code)


def ckd_pub(parent: Point, chain_code: bytes, index: int) -> tuple[int, Point, bytes]:
    """BIP32 CKDpub for one non-hardened index: (IL, child point, child chain code)."""
    if not isinstance(parent, Point) or parent.is_identity:
        raise InvalidInput("the parent key must be a point other than the identity")
    parse_path((index,))
    i = hmac.new(_check_chain_code(chain_code), parent.to_bytes() + index.to_bytes(4, "big"), hashlib.sha512).digest()
    il = int.from_bytes(i[:32], "big")
    if il >= Q:
        raise InvalidInput(f"index {index} gives no valid child (IL >= n); BIP32 skips it: use another index")
    child = parent + Point.base_mul(il)
    if child.is_identity:
        raise InvalidInput(f"index {index} gives no valid child (the identity); use another index")
    return il, child, i[32:]


# a derived key ----------------------------------------------------------------------------------------------
def _hash160(data: bytes) -> bytes:
    sha = hashlib.sha256(data).digest()
    try:
        return hashlib.new("ripemd160", sha).digest()
    except ValueError:  # an OpenSSL 3 build without the legacy provider
        try:
            from Cryptodome.Hash import RIPEMD160
        except ImportError:
            raise MpcError("RIPEMD-160 is unavailable here: no extended-key serialisation") from None
        return RIPEMD160.new(sha).digest()


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, rem = divmod(n, 58)
        out = _B58[rem] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


@dataclass(frozen=True)
class ChildKey:
    """A derived public key. `public_key` = parent + `tweak` G; `tweak` is what signers add to their shares.

    Everything here is public. For BIP340 keys `xonly` is the child's BIP340 public key (see the module docstring).
    """

    path: tuple[int, ...]
    public_key: Point
    chain_code: bytes
    tweak: int
    parent: Point | None  # the key one level up (None at the root), for the xpub's parent fingerprint
    root: Point  # the key the path starts from (even-Y lifted for BIP340 keys)

    @property
    def depth(self) -> int:
        return len(self.path)

    @property
    def path_str(self) -> str:
        return format_path(self.path)

    @property
    def child_number(self) -> int:
        return self.path[-1] if self.path else 0

    @property
    def parent_fingerprint(self) -> bytes:
        """First 4 bytes of HASH160(serP(parent)); zeros at the root (BIP32)."""
        return bytes(4) if self.parent is None else _hash160(self.parent.to_bytes())[:4]

    @property
    def public_key_bytes(self) -> bytes:
        """33-byte compressed SEC1 (what BIP32 and ECDSA verifiers use)."""
        return self.public_key.to_bytes()

    @property
    def xonly(self) -> bytes:
        """32-byte x-only key (BIP340)."""
        return self.public_key.to_bytes()[1:]

    def xpub(self) -> str:
        """The BIP32 extended public key (mainnet "xpub" version bytes), for wallets that import one."""
        payload = (XPUB_VERSION + bytes([self.depth]) + self.parent_fingerprint + self.child_number.to_bytes(4, "big")
                   + self.chain_code + self.public_key_bytes)
        return _base58check(payload)


def derive(public_key: Point | bytes, chain_code: bytes, path: str | Sequence[int]) -> ChildKey:
    """The child of (public_key, chain_code) at `path` (non-hardened only). `public_key` is a point or 33 bytes."""
    if isinstance(public_key, (bytes, bytearray)):
        if len(public_key) != 33:
            raise InvalidInput("an ECDSA public key is 33 bytes compressed")
        try:
            public_key = Point.from_bytes(bytes(public_key))
        except ValueError as exc:
            raise InvalidInput(f"public key: {exc}") from None
    indices = parse_path(path)
    if not isinstance(public_key, Point) or public_key.is_identity:
        raise InvalidInput("the parent key must be a point other than the identity")
    point, cc, tweak, parent = public_key, _check_chain_code(chain_code), 0, None
    for index in indices:
        parent = point
        il, point, cc = ckd_pub(point, cc, index)
        tweak = (tweak + il) % Q
    return ChildKey(indices, point, cc, tweak, parent, public_key)


def lift_x(xonly: bytes) -> Point:
    """The even-Y point with x coordinate `xonly` (BIP340 lift_x); InvalidInput if there is none."""
    if not isinstance(xonly, (bytes, bytearray)) or len(xonly) != 32:
        raise InvalidInput("an x-only key is 32 bytes")
    try:
        return Point.from_bytes(b"\x02" + bytes(xonly))
    except ValueError:
        raise InvalidInput("not the x coordinate of a secp256k1 point") from None


def derive_bip340(xonly: bytes | Point, chain_code: bytes, path: str | Sequence[int]) -> ChildKey:
    """The child of a BIP340 key at `path`: derived from the even-Y lift 02 || x(P) (module docstring);
    the child's BIP340 key is `.xonly`. A full point is accepted too and normalised to even Y first."""
    if isinstance(xonly, Point):
        if xonly.is_identity:
            raise InvalidInput("the parent key must be a point other than the identity")
        xonly = xonly.to_bytes()[1:]
    return derive(lift_x(xonly), chain_code, path)

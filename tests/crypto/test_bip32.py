"""BIP32 public derivation (crypto/bip32.py) against bip-utils, an independent BIP32 implementation, from the same
public key and chain code; hardened and malformed paths refused."""

from __future__ import annotations

import secrets

import coincurve
import pytest
from bip_utils import Bip32ChainCode, Bip32KeyData, Bip32Secp256k1

from mpc_ray.crypto import bip32
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.errors import InvalidInput

PATHS = ["m", "m/0", "m/7", "m/0/7", "m/44/60/0/0/5", "m/2147483647", "m/1/2/3/4/5/6/7/8"]

# BIP32 test vector 2 (published in BIP32): its first step m -> m/0 is non-hardened, so public derivation alone
# must reproduce the published xpub of m/0 from the published xpub of m.
VECTOR2_MASTER_XPUB = (
    "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB"
)
VECTOR2_M0_XPUB = (
    "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH"
)


def reference(public_key: bytes, chain_code: bytes):
    return Bip32Secp256k1.FromPublicKey(public_key, Bip32KeyData(chain_code=Bip32ChainCode(chain_code)))


def random_key() -> tuple[bytes, bytes]:
    return coincurve.PrivateKey().public_key.format(), secrets.token_bytes(32)


@pytest.mark.parametrize("path", PATHS)
def test_child_keys_match_bip_utils(path):
    for _ in range(3):
        pk, cc = random_key()
        ours = bip32.derive(pk, cc, path)
        ref = reference(pk, cc).DerivePath(path)
        assert ours.public_key_bytes == ref.PublicKey().RawCompressed().ToBytes()
        assert ours.chain_code == ref.ChainCode().ToBytes()
        assert ours.depth == ref.Depth().ToInt()
        assert ours.xpub() == ref.PublicKey().ToExtended()
        # the tweak is what the signers add to their shares: child = parent + tweak G
        assert ours.public_key == Point.from_bytes(pk) + Point.base_mul(ours.tweak)


def test_published_bip32_vector():
    """BIP32 test vector 2: m -> m/0 is non-hardened, so public derivation must reproduce the published xpub."""
    master = Bip32Secp256k1.FromExtendedKey(VECTOR2_MASTER_XPUB)
    pk, cc = master.PublicKey().RawCompressed().ToBytes(), master.ChainCode().ToBytes()
    assert bip32.derive(pk, cc, "m").xpub() == VECTOR2_MASTER_XPUB
    assert bip32.derive(pk, cc, "m/0").xpub() == VECTOR2_M0_XPUB


def test_bip340_convention_even_y_lift_then_xonly():
    """BIP340 keys derive from 02 || x(P) and take x-only at the end, whatever the parity of the group point."""
    seen_odd = False
    for _ in range(8):
        pk, cc = random_key()
        point = Point.from_bytes(pk)
        seen_odd |= point.has_odd_y()
        xonly = pk[1:]
        ref = reference(b"\x02" + xonly, cc).DerivePath("m/3/9")
        ours = bip32.derive_bip340(xonly, cc, "m/3/9")
        assert ours.xonly == ref.PublicKey().RawCompressed().ToBytes()[1:]
        assert bip32.derive_bip340(point, cc, "m/3/9").xonly == ours.xonly  # a full point is normalised first
    assert seen_odd


@pytest.mark.parametrize("path", ["m/0'", "m/0h", "m/1/2H", [bip32.HARDENED], [0, 2**31 + 5], "m/2147483648"])
def test_hardened_refused(path):
    pk, cc = random_key()
    with pytest.raises(InvalidInput, match="hardened"):
        bip32.derive(pk, cc, path)


@pytest.mark.parametrize(
    "path",
    ["", "0/1", "m/", "m//1", "m/01", "m/-1", "m/+1", "m/1 ", " m/1", "m/a", "M/1", "m/１", "/m/1", "m/1/", None, 7,
     [-1], [True], ["1"]],
)
def test_malformed_paths_refused(path):
    pk, cc = random_key()
    with pytest.raises(InvalidInput):
        bip32.derive(pk, cc, path)


def test_depth_limit_and_bad_inputs():
    pk, cc = random_key()
    assert bip32.derive(pk, cc, [1] * 255).depth == 255
    with pytest.raises(InvalidInput):
        bip32.derive(pk, cc, [1] * 256)
    with pytest.raises(InvalidInput):
        bip32.derive(pk, cc[:31], "m/1")  # a chain code is 32 bytes
    with pytest.raises(InvalidInput):
        bip32.derive(pk, b"", "m/1")  # a key made before HD support has none
    with pytest.raises(InvalidInput):
        bip32.derive(pk[:32], cc, "m/1")
    with pytest.raises(InvalidInput):
        bip32.derive(b"\x02" + b"\xff" * 32, cc, "m/1")  # not on the curve
    with pytest.raises(InvalidInput):
        bip32.derive_bip340(b"\x00" * 31, cc, "m/1")


def test_path_round_trip():
    assert bip32.parse_path("m/0/7") == (0, 7)
    assert bip32.parse_path("m") == ()
    assert bip32.format_path((0, 7)) == "m/0/7"
    assert bip32.format_path(()) == "m"
    for p in PATHS:
        assert bip32.format_path(bip32.parse_path(p)) == p

"""The coordinator side of HD (BIP32) keys: public child keys and the tweak the combiner needs.

Everything here is public (a key's public key and chain code, its children's keys). The holders never take a tweak
from the coordinator: they get the path and derive the tweak from their own stored chain code (node/hd.py), so a
coordinator that computes a different one only gets a signature that fails to verify.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..crypto import bip32
from ..errors import InvalidInput

if TYPE_CHECKING:
    from .ecdsa_engine import EcdsaKey
    from .frost_engine import FrostKey


def _no_chain_code(key_id: str) -> InvalidInput:
    return InvalidInput(f"key {key_id!r} has no chain code (Ed25519, or made before HD support)")


def ecdsa_tweak(key: EcdsaKey, path: Any) -> tuple[str, int]:
    """(canonical path, tweak) of an ECDSA key's child; InvalidInput for a bad path or a key without chain code."""
    if not isinstance(path, str):
        raise InvalidInput("a derivation path is a string like 'm/0/7'")
    if not key.chain_code:
        raise _no_chain_code(key.key_id)
    child = bip32.derive(key.public_key, key.chain_code, path)
    return child.path_str, child.tweak


def derive_info(key_id: str, key: EcdsaKey | None, fkey: FrostKey | None, path: Any) -> dict[str, Any]:
    """The child at `path` of key `key_id` (ECDSA `key` or FROST `fkey`, both None if unknown) as a dict for
    `ChildKeyInfo`: ECDSA keys give the 33-byte compressed child key, BIP340 keys the 32-byte x-only child key (derived from the even-Y lift of the x-only key, crypto/bip32.py).
    `xpub` is the child's BIP32 extended public key (for BIP340: of the full child point)."""
    if not isinstance(path, str):
        raise InvalidInput("a derivation path is a string like 'm/0/7'")
    if key is not None:
        if not key.chain_code:
            raise _no_chain_code(key_id)
        child = bip32.derive(key.public_key, key.chain_code, path)
        public_key, scheme = child.public_key_bytes, key.scheme
    elif fkey is not None:
        cc = fkey.public_package.chain_code
        if fkey.scheme != "schnorr-bip340" or not cc:
            raise _no_chain_code(key_id)
        child = bip32.derive_bip340(fkey.public_key, cc, path)
        public_key, scheme = child.xonly, fkey.scheme
    else:
        raise InvalidInput(f"unknown key {key_id!r}")
    return {"key_id": key_id, "scheme": scheme, "path": child.path_str,
            "public_key": public_key, "chain_code": child.chain_code, "depth": child.depth, "xpub": child.xpub()}

"""The holder side of HD (BIP32) signing: child tweaks from a key's stored chain code, re-randomised ECDSA partials.

A holder never takes a tweak, a re-randomiser or a child key from the coordinator: it gets only a derivation path
(in a principal-signed request, the path is part of the signed bytes) and computes the tweak from its own stored
public key and chain code, and rho from its own stored presignature point R and signer set (see
`protocols/ecdsa/sign.py` for the construction). Paths are checked before any presignature or nonce is consumed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from ..crypto import bip32
from ..crypto.secp256k1 import Q, Point
from ..errors import InvalidInput, ProtocolMismatch
from ..protocols.dkls23 import sign as dkls23
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.ecdsa.sign import child_sigma, digest_to_int, rerandomize
from .records import (
    CGGMP21,
    DKLS23,
    PresignatureRecord,
    dkls23_presignature_from_bytes,
    presignature_from_bytes,
    presignature_protocol,
)

__all__ = ["check_path", "ecdsa_online", "ecdsa_partial", "ecdsa_tweak", "frost_tweak", "split_request"]


def check_path(path: Any) -> str | None:
    """None, or the canonical form of a non-hardened path string (InvalidInput otherwise)."""
    if path is None:
        return None
    if not isinstance(path, str):
        raise InvalidInput("a derivation path is a string like 'm/0/7'")
    return bip32.format_path(bip32.parse_path(path))


@lru_cache(maxsize=4096)
def _tweak(public_key: bytes, chain_code: bytes, path: str) -> int:
    return bip32.derive(public_key, chain_code, path).tweak


@lru_cache(maxsize=4096)
def _tweak_bip340(xonly: bytes, chain_code: bytes, path: str) -> int:
    return bip32.derive_bip340(xonly, chain_code, path).tweak


def ecdsa_tweak(key: KeyShare, path: str) -> int:
    """The additive tweak of the child at `path` of an ECDSA key share (InvalidInput for a bad path or a key
    without a chain code)."""
    if not key.chain_code:
        raise InvalidInput("this key has no chain code (made before HD support): it cannot derive children")
    return _tweak(key.public_key.to_bytes(), key.chain_code, check_path(path))


def frost_tweak(group_key: Point, chain_code: bytes, path: str) -> int:
    """The tweak of the BIP340 child at `path` (derived from the even-Y lift of the x-only key, crypto/bip32.py)."""
    if not chain_code:
        raise InvalidInput("this key has no chain code (made before HD support): it cannot derive children")
    return _tweak_bip340(group_key.to_bytes()[1:], chain_code, check_path(path))


def split_request(req: Any) -> tuple[bytes, bytes, str | None]:
    """(presignature id, digest[, path]) -> (id, digest, canonical path or None), shapes checked."""
    if not isinstance(req, (tuple, list)) or len(req) not in (2, 3):
        raise InvalidInput("each request is (presignature id, digest[, derivation path])")
    pid, digest = req[0], req[1]
    if not isinstance(pid, (bytes, bytearray)):
        raise InvalidInput("presignature ids are bytes")
    digest_to_int(digest)
    return bytes(pid), bytes(digest), check_path(req[2]) if len(req) == 3 else None


def ecdsa_partial(rec: PresignatureRecord, key: KeyShare, digest: bytes, tweak: int | None) -> int:
    """sigma_i' for a consumed presignature record, always re-randomised: for the child key with `tweak`, for the
    master key (tweak 0) with None. There is no plain partial: a pooled R is known before the digest, and a plain
    master-key signature on m* + r t is one on m* under the child Y + t G (protocols/ecdsa/sign.py)."""
    m = digest_to_int(digest)
    if tweak is None:
        tweak = 0
    if rec.R is None or rec.signers is None:
        raise InvalidInput("this presignature predates re-randomised signing (no stored R): presign again")
    if rec.R.x() % Q != rec.r:
        raise InvalidInput("stored presignature is inconsistent (R does not match r)")
    child = rerandomize(rec.presignature_id, rec.R, rec.signers, key.public_key, tweak, digest)
    return child_sigma(rec.k, rec.chi, m, child)


def dkls23_partial(share: dkls23.PresignatureShare, key: KeyShare, digest: bytes,
                   tweak: int | None) -> dkls23.OnlineShare:
    """(u_i', w_i') for a consumed DKLs23 presignature, re-randomised as `ecdsa_partial` (rho from the stored R and
    signer set; the child key's tweak, or 0 for the master key)."""
    child = dkls23.rerandomize_for(share.public, key.public_key, 0 if tweak is None else tweak, digest)
    return dkls23.partial_sign(share, digest, child)


def _cggmp21_online(data: bytes, key: KeyShare, digest: bytes, tweak: int | None) -> tuple[int, bytes]:
    sigma = ecdsa_partial(presignature_from_bytes(data), key, digest, tweak)
    return sigma, sigma.to_bytes(32, "big")


def _dkls23_online(data: bytes, key: KeyShare, digest: bytes, tweak: int | None) -> tuple[Any, bytes]:
    share = dkls23_partial(dkls23_presignature_from_bytes(data), key, digest, tweak)
    return share, share.u.to_bytes(32, "big") + share.w.to_bytes(32, "big")


# a stored presignature's protocol -> its online step: (answer, its bytes for the audit record)
ONLINE_STEPS: dict[str, Callable[[bytes, KeyShare, bytes, "int | None"], tuple[Any, bytes]]] = {
    CGGMP21: _cggmp21_online,
    DKLS23: _dkls23_online,
}


def ecdsa_online(data: bytes, key_protocol: str, key: KeyShare, digest: bytes, tweak: int | None) -> tuple[Any, bytes]:
    """The online answer for a consumed presignature record of a key that signs with `key_protocol`: CGGMP21's
    sigma_i, DKLs23's `OnlineShare`; with the bytes the audit record keeps. A record of the other protocol is refused
    (ProtocolMismatch): each protocol's online step is sound only for its own presignatures."""
    got = presignature_protocol(data)
    if got != key_protocol:
        raise ProtocolMismatch(f"a {got} presignature cannot sign for a {key_protocol} key")
    return ONLINE_STEPS[got](data, key, digest, tweak)

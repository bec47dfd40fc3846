"""Public result types: `KeyInfo` (a pydantic model: it crosses the API boundary) and `Signature`."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from .crypto.secp256k1 import Q

SCHEMES = ("ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340")


class KeyInfo(BaseModel):
    """Public description of a threshold key. `threshold` is the number of parties that must sign."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    scheme: str = Field(pattern="^(ecdsa-secp256k1|eddsa-ed25519|schnorr-bip340)$")
    public_key: bytes
    threshold: int = Field(ge=1)
    parties: int = Field(ge=1)
    # BIP32 chain code made jointly at key generation (public; with public_key it is the key's xpub). b"" for
    # Ed25519 keys and keys made before HD support. Derive children with `mpc.derive(key_id, "m/0/7")`.
    chain_code: bytes = b""


class ChildKeyInfo(BaseModel):
    """Public description of a BIP32 child of a threshold key (`mpc.derive(key_id, path)`): no party holds its
    secret either; signing for it goes through the master key's shares (`mpc.sign(key_id, msg, path=path)`).
    `public_key`: 33-byte compressed SEC1 for ECDSA, 32-byte x-only for BIP340 (derived from the even-Y lift of
    the x-only master key, see `mpc_ray.crypto.bip32`). `xpub`: the child's BIP32 extended public key."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    scheme: str = Field(pattern="^(ecdsa-secp256k1|schnorr-bip340)$")
    path: str
    public_key: bytes
    chain_code: bytes
    depth: int = Field(ge=0, le=255)
    xpub: str


def _der_int(v: int) -> bytes:
    b = v.to_bytes((v.bit_length() + 8) // 8, "big")  # a leading zero byte keeps it positive
    return b"\x02" + bytes([len(b)]) + b


@dataclass(frozen=True)
class Signature:
    """A finished signature. ECDSA ones carry r, s (low-s) and the recovery id; Schnorr ones only bytes."""

    scheme: str
    raw: bytes
    recovery_id: int | None = None

    def to_bytes(self) -> bytes:
        """64 bytes: r||s for ECDSA, R||S for Ed25519 (RFC 8032), BIP340 for Schnorr."""
        return self.raw

    @property
    def r(self) -> int:
        self._require_ecdsa()
        return int.from_bytes(self.raw[:32], "big")

    @property
    def s(self) -> int:
        self._require_ecdsa()
        return int.from_bytes(self.raw[32:], "big")

    def der(self) -> bytes:
        self._require_ecdsa()
        body = _der_int(self.r) + _der_int(self.s)
        return b"\x30" + bytes([len(body)]) + body

    def _require_ecdsa(self) -> None:
        if self.scheme != "ecdsa-secp256k1":
            raise AttributeError("r, s and der() exist only for ECDSA signatures")

    @classmethod
    def ecdsa(cls, r: int, s: int, recovery_id: int) -> "Signature":
        if not (0 < r < Q and 0 < s <= Q // 2 and recovery_id in (0, 1)):
            raise ValueError("not a normalised ECDSA signature")
        return cls("ecdsa-secp256k1", r.to_bytes(32, "big") + s.to_bytes(32, "big"), recovery_id)

"""Public result types: `KeyInfo` (a pydantic model: it crosses the API boundary), `Signature`, and the
committee's answers `Status` (with a `KeyStatus` per key) and `EpochResult` (`refresh_key`, `reshare_key`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field

from .crypto.secp256k1 import Q
from .schemes import SCHEMES, Scheme  # noqa: F401  (SCHEMES: old import path)


class KeyInfo(BaseModel):
    """Public description of a threshold key. `threshold` is the number of parties that must sign."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    scheme: Scheme  # a plain string is accepted and becomes the member (which equals that string)
    public_key: bytes
    threshold: int = Field(ge=1)
    parties: int = Field(ge=1)
    # BIP32 chain code made jointly at key generation (public; with public_key it is the key's xpub). b"" for
    # Ed25519 keys and keys made before HD support. Derive children with `mpc.derive(key_id, "m/0/7")`.
    chain_code: bytes = b""
    # ECDSA: the threshold protocol it signs with, "cggmp21" or "dkls23" (chosen at creation); "" for FROST keys
    protocol: str = ""


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


# the committee's answers --------------------------------------------------------------------------------------
class _ReadsLikeADict:
    """Read access by name, as the dicts these results replace allowed (``st["keys"]``, ``st.get("down", [])``,
    ``"members" in info``); a field that is None was not in the answer, so it reads as missing. `to_dict()` gives
    the plain dict (JSON-ready). No ``keys()``: `Status` has a field of that name."""

    def _present(self) -> Iterator[str]:
        return (f.name for f in fields(self) if getattr(self, f.name) is not None)  # type: ignore[arg-type]

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in set(self._present())

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self._present()}


def _plain(value: Any) -> Any:
    if isinstance(value, _ReadsLikeADict):
        return value.to_dict()
    if isinstance(value, Scheme):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class KeyStatus(_ReadsLikeADict):
    """One key as the coordinator reports it. `public_key` is hex (ECDSA: the 33-byte compressed point; FROST: the
    group's public key). `parties` (how many hold it), `members` (which) and `protocol` are reported for ECDSA keys
    only."""

    scheme: Scheme
    threshold: int
    public_key: str
    parties: int | None = None
    members: list[int] | None = None
    protocol: str | None = None  # ECDSA keys: "cggmp21" or "dkls23"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeyStatus:
        # the coordinator omits the scheme of ECDSA keys (the first scheme, before FROST)
        return cls(**{**d, "scheme": Scheme(d.get("scheme", Scheme.ECDSA_SECP256K1))})


@dataclass(frozen=True)
class Status(_ReadsLikeADict):
    """`MpcClient.status()`: the committee (`parties`, default `threshold`), every key, pool depths, parties marked
    `down` for now, parties `excluded` for a failed check (party -> the check), pairs of parties in identification
    `disputes` (never put in one signer set), and the coordinator's telemetry snapshot."""

    parties: list[int]
    threshold: int
    keys: dict[str, KeyStatus]
    pools: dict[str, int]
    down: list[int]
    excluded: dict[int, str]
    disputes: list[list[int]]
    telemetry: dict[str, Any]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Status:
        # an unknown field is a TypeError here, so that a new one in the coordinator's answer gets a type too
        return cls(**{**d, "keys": {k: KeyStatus.from_dict(v) for k, v in d["keys"].items()}})


@dataclass(frozen=True)
class EpochResult(_ReadsLikeADict):
    """What `refresh_key` and `reshare_key` did: the key's new `epoch`, its committee (`parties`) and `threshold`,
    and per holder how many one-time secrets of the old epoch it destroyed (pooled presignatures, nonces)."""

    key_id: str
    scheme: Scheme
    epoch: int
    parties: list[int]
    threshold: int
    destroyed: dict[int, int]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EpochResult:
        return cls(**{**d, "scheme": Scheme(d["scheme"])})

"""Byte records of what a holder keeps in its encrypted store: aux info, key shares, presignature shares.

Plain dataclasses encoded with the protocol wire codec; they are only ever written through `EncryptedStore`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto.paillier import PaillierSecretKey
from ..crypto.params import level as as_level
from ..crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..crypto.secp256k1 import Point
from ..protocols.ecdsa.aux_info import AuxInfo, AuxPublic
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.ecdsa.presign import PresignatureShare
from ..protocols.wire import decode, encode


@dataclass(frozen=True)
class _AuxEntry:
    party: int
    public: AuxPublic


@dataclass(frozen=True)
class AuxRecord:
    party: int
    level: str
    p: int
    q: int
    lam: int
    test_only: bool
    public: list[_AuxEntry]


def aux_to_bytes(aux: AuxInfo) -> bytes:
    sk, rp = aux.paillier, aux.ring_pedersen
    entries = [_AuxEntry(j, aux.public[j]) for j in sorted(aux.public)]
    return encode(AuxRecord(aux.party, aux.level.name, int(sk.p), int(sk.q), int(rp.lam), sk.test_only, entries))


def aux_from_bytes(data: bytes) -> AuxInfo:
    r = decode(data, AuxRecord)
    sk = PaillierSecretKey(r.p, r.q, test_only=r.test_only)
    public = {e.party: e.public for e in r.public}
    own = public[r.party]
    rp = RingPedersenSecret(RingPedersenParams(sk.public.n, own.s, own.t), r.lam, sk)
    return AuxInfo(r.party, as_level(r.level), sk, rp, public)


@dataclass(frozen=True)
class _PublicShare:
    party: int
    point: Point


@dataclass(frozen=True)
class KeyRecord:
    party: int
    threshold: int
    parties: list[int]
    x: int
    public_key: Point
    public_shares: list[_PublicShare]


def key_to_bytes(key: KeyShare) -> bytes:
    shares = [_PublicShare(j, key.public_shares[j]) for j in sorted(key.public_shares)]
    return encode(KeyRecord(key.party, key.threshold, list(key.parties), key.x, key.public_key, shares))


def key_from_bytes(data: bytes) -> KeyShare:
    r = decode(data, KeyRecord)
    return KeyShare(r.party, r.threshold, r.parties, r.x, r.public_key, {s.party: s.point for s in r.public_shares})


@dataclass(frozen=True)
class PresignatureRecord:
    """What a holder needs to sign with one presignature: its id, r = x(R) mod q, and the secret (k_i, chi_i)."""

    party: int
    presignature_id: bytes
    r: int
    k: int
    chi: int

    def __repr__(self) -> str:
        return f"PresignatureRecord(party={self.party}, id={self.presignature_id.hex()[:16]}, <redacted>)"


def presignature_to_bytes(share: PresignatureShare) -> bytes:
    k, chi = share.secret_values()
    return encode(PresignatureRecord(share.party, share.public.presignature_id, share.public.r, k, chi))


def presignature_from_bytes(data: bytes) -> PresignatureRecord:
    return decode(data, PresignatureRecord)

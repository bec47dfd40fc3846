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
from ..protocols.wire import WireError, decode, encode


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
class _KeyRecordV1:
    """A key share stored before HD support (no chain code): still readable, but cannot derive children."""

    party: int
    threshold: int
    parties: list[int]
    x: int
    public_key: Point
    public_shares: list[_PublicShare]


@dataclass(frozen=True)
class KeyRecord:
    party: int
    threshold: int
    parties: list[int]
    x: int
    public_key: Point
    public_shares: list[_PublicShare]
    chain_code: bytes  # public BIP32 chain code made at key generation


def key_to_bytes(key: KeyShare) -> bytes:
    shares = [_PublicShare(j, key.public_shares[j]) for j in sorted(key.public_shares)]
    return encode(KeyRecord(key.party, key.threshold, list(key.parties), key.x, key.public_key, shares,
                            key.chain_code))


def key_from_bytes(data: bytes) -> KeyShare:
    try:
        r = decode(data, KeyRecord)
        chain_code = r.chain_code
    except WireError:
        r = decode(data, _KeyRecordV1)  # type: ignore[assignment]
        chain_code = b""
    return KeyShare(r.party, r.threshold, r.parties, r.x, r.public_key, {s.party: s.point for s in r.public_shares},
                    chain_code=chain_code)


@dataclass(frozen=True)
class _PresignatureRecordV1:
    """A presignature stored before HD support: signs for the master key only (no R to re-randomise)."""

    party: int
    presignature_id: bytes
    r: int
    k: int
    chi: int


@dataclass(frozen=True)
class PresignatureRecord:
    """What a holder needs to sign with one presignature: its id, r = x(R) mod q, the secret (k_i, chi_i), and the
    point R and signer set that a child-key signature hashes into its re-randomiser (None in older records)."""

    party: int
    presignature_id: bytes
    r: int
    k: int
    chi: int
    R: Point | None = None
    signers: list[int] | None = None

    def __repr__(self) -> str:
        return f"PresignatureRecord(party={self.party}, id={self.presignature_id.hex()[:16]}, <redacted>)"


@dataclass(frozen=True)
class _PresignatureRecordV2:
    party: int
    presignature_id: bytes
    r: int
    k: int
    chi: int
    R: Point
    signers: list[int]


def presignature_to_bytes(share: PresignatureShare) -> bytes:
    k, chi = share.secret_values()
    p = share.public
    return encode(_PresignatureRecordV2(share.party, p.presignature_id, p.r, k, chi, p.R, list(p.signers)))


def presignature_from_bytes(data: bytes) -> PresignatureRecord:
    try:
        r = decode(data, _PresignatureRecordV2)
        return PresignatureRecord(r.party, r.presignature_id, r.r, r.k, r.chi, r.R, r.signers)
    except WireError:
        v1 = decode(data, _PresignatureRecordV1)
        return PresignatureRecord(v1.party, v1.presignature_id, v1.r, v1.k, v1.chi)
